//! JWT authentication: an [`Authenticator`] that verifies tokens signed with a
//! shared secret (HS256), a public key from a PEM file (RS256 / ES256), or the
//! keys an identity provider publishes as a JWKS (Keycloak, Auth0, Cognito).
//! [`require_auth`] installs any authenticator as connect middleware.
//!
//! The algorithm a token may use is decided by the key, never by the token:
//! an HS256 token presented against a public key (the classic "algorithm
//! confusion" forgery, signing with the public key as an HMAC secret) and
//! `alg: none` are refused before any signature check.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{errors::ErrorKind, DecodingKey, Validation};
use rtcio_engine::{ConnectError, NamespaceBuilder, Socket};
use serde::Deserialize;
use serde_json::Value;

use crate::http_client::{check_url, HttpClient};
use crate::identity::{bearer, AuthError, AuthFuture, Authenticator, Identity};

/// Clock skew tolerated on `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// A JWKS is refetched for an unknown `kid` at most this often, so a flood of
/// forged `kid`s cannot turn the server into a load generator against the
/// identity provider.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);
/// A cached JWKS older than this is refetched on the next token (rotated-out
/// keys stop being accepted within this time).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// How long a JWKS fetch may take.
pub const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A shared secret: HS256 (and HS384 / HS512).
    Secret(Vec<u8>),
    /// A public key in PEM (RSA → RS256 family, EC → ES256 / ES384).
    PublicKeyPem(Vec<u8>),
    /// An identity provider's JWKS URL.
    JwksUrl(String),
}

impl std::fmt::Debug for KeySource {
    // Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Secret(_) => f.write_str("Secret(..)"),
            KeySource::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
            KeySource::JwksUrl(url) => write!(f, "JwksUrl({url})"),
        }
    }
}

/// What a [`JwtAuthenticator`] checks besides the signature.
#[derive(Debug, Clone)]
pub struct JwtOptions {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
}

impl Default for JwtOptions {
    fn default() -> Self {
        JwtOptions {
            issuer: None,
            audience: None,
            leeway: DEFAULT_LEEWAY,
        }
    }
}

enum Keys {
    Static(DecodingKey),
    Jwks(Arc<Jwks>),
}

/// Verifies JWTs; `sub` becomes the user id, `username` (else `name`) the
/// display name, `admin: true` the admin flag and `rooms` the room patterns.
pub struct JwtAuthenticator {
    keys: Keys,
    options: JwtOptions,
}

impl JwtAuthenticator {
    /// Builds an authenticator, or says why the key cannot be used.
    pub fn new(source: KeySource, options: JwtOptions) -> Result<Self, String> {
        let keys = match source {
            KeySource::Secret(secret) => {
                if secret.is_empty() {
                    return Err("the JWT secret is empty".into());
                }
                Keys::Static(DecodingKey::from_secret(&secret))
            }
            KeySource::PublicKeyPem(pem) => {
                let key = DecodingKey::from_rsa_pem(&pem)
                    .or_else(|_| DecodingKey::from_ec_pem(&pem))
                    .or_else(|_| DecodingKey::from_ed_pem(&pem))
                    .map_err(|_| {
                        "the JWT public key is not an RSA, EC or Ed25519 public key in PEM"
                            .to_string()
                    })?;
                Keys::Static(key)
            }
            KeySource::JwksUrl(url) => Keys::Jwks(Arc::new(Jwks::new(url)?)),
        };
        Ok(JwtAuthenticator { keys, options })
    }

    /// Fetches the JWKS now (when keys come from one), so the first client
    /// does not wait for it. Failures are logged; tokens retry later.
    pub fn prefetch(&self) {
        if let Keys::Jwks(jwks) = &self.keys {
            let jwks = jwks.clone();
            tokio::spawn(async move {
                jwks.refresh(None).await;
            });
        }
    }

    /// A short description for the start-up log (no key material).
    pub fn describe(&self) -> String {
        match &self.keys {
            Keys::Static(key) => format!("JWT ({:?} keys)", key.family()),
            Keys::Jwks(jwks) => format!("JWT (JWKS at {})", jwks.url),
        }
    }

    async fn verify(keys: &Keys, options: &JwtOptions, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `alg: none` (and any unknown algorithm) fails to parse as a header.
            ErrorKind::Json(_) if names_alg_none(token) => AuthError::Invalid("alg-none"),
            _ => AuthError::Invalid("malformed"),
        })?;
        let key = match keys {
            Keys::Static(key) => key.clone(),
            Keys::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(AuthError::Invalid("no-kid"))?;
                jwks.key(kid).await?
            }
        };
        // The key decides the algorithm family; the token only picks within it.
        if !key.family().algorithms().contains(&header.alg) {
            return Err(AuthError::Invalid("wrong-algorithm"));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = options.leeway.as_secs();
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        validation.required_spec_claims.insert("sub".into());
        match &options.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &options.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(reason(e.kind())))?;
        data.claims.into_identity()
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, token: &str) -> AuthFuture {
        let token = token.to_owned();
        let keys = match &self.keys {
            Keys::Static(key) => Keys::Static(key.clone()),
            Keys::Jwks(jwks) => Keys::Jwks(jwks.clone()),
        };
        let options = self.options.clone();
        Box::pin(async move { Self::verify(&keys, &options, &token).await })
    }
}

/// Whether the token's header says `"alg":"none"` (any case), for the log reason only.
fn names_alg_none(token: &str) -> bool {
    use base64::Engine as _;
    let Some(head) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.trim_end_matches('='))
    else {
        return false;
    };
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("alg").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|alg| alg.eq_ignore_ascii_case("none"))
}

fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not-yet-valid",
        ErrorKind::InvalidSignature => "bad-signature",
        ErrorKind::InvalidAudience => "wrong-audience",
        ErrorKind::InvalidIssuer => "wrong-issuer",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "wrong-algorithm",
        ErrorKind::MissingRequiredClaim(_) => "missing-claim",
        ErrorKind::InvalidClaimFormat(_) => "bad-claim",
        _ => "malformed",
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: Value,
    #[serde(default)]
    username: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    admin: Option<Value>,
    #[serde(default)]
    rooms: Option<Value>,
}

impl Claims {
    fn into_identity(self) -> Result<Identity, AuthError> {
        let user_id = match self.sub {
            Value::String(s) if !s.is_empty() => s,
            _ => return Err(AuthError::Invalid("bad-claim")),
        };
        let name = [self.username, self.name]
            .into_iter()
            .flatten()
            .find_map(|v| match v {
                Value::String(s) if !s.is_empty() => Some(Arc::<str>::from(s)),
                _ => None,
            });
        let rooms = match self.rooms {
            Some(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .into(),
            ),
            _ => None,
        };
        Ok(Identity {
            user_id: user_id.into(),
            name,
            admin: self.admin == Some(Value::Bool(true)),
            rooms,
        })
    }
}

/// An identity provider's published keys, cached by `kid`.
struct Jwks {
    url: String,
    client: HttpClient,
    keys: RwLock<JwksState>,
    /// One fetch at a time; waiters re-read the cache afterwards.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, DecodingKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last attempted (successful or not).
    attempted: Option<Instant>,
}

impl Jwks {
    fn new(url: String) -> Result<Self, String> {
        check_url(&url, "the JWKS URL")?;
        let client = HttpClient::new(JWKS_TIMEOUT)?;
        Ok(Jwks {
            url,
            client,
            keys: RwLock::new(JwksState::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let state = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let stale = state.fetched.is_none_or(|t| t.elapsed() > JWKS_MAX_AGE);
        (state.keys.get(kid).cloned(), stale)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let (key, stale) = self.cached(kid);
        if let (Some(key), false) = (&key, stale) {
            return Ok(key.clone());
        }
        self.refresh(Some(kid)).await;
        match self.cached(kid).0.or(key) {
            Some(key) => Ok(key),
            None => Err(AuthError::Invalid("unknown-kid")),
        }
    }

    /// Fetches the set for a token naming `kid`, unless a refetch was
    /// attempted less than [`JWKS_MIN_REFETCH`] ago or a fetch that finished
    /// while this one waited brought the key. `None` is the start-up fetch,
    /// which does not count towards that spacing (a key rotated in right
    /// after start-up is picked up by the first token that names it).
    async fn refresh(&self, kid: Option<&str>) {
        let _one = self.fetching.lock().await;
        if let Some(kid) = kid {
            if let (Some(_), false) = self.cached(kid) {
                return;
            }
            let mut state = self.keys.write().unwrap_or_else(|e| e.into_inner());
            if state
                .attempted
                .is_some_and(|t| t.elapsed() < JWKS_MIN_REFETCH)
            {
                return;
            }
            state.attempted = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "fetched the JWKS");
                let mut state = self.keys.write().unwrap_or_else(|e| e.into_inner());
                state.keys = keys;
                state.fetched = Some(Instant::now());
            }
            Err(e) => tracing::warn!(url = %self.url, error = %e, "could not fetch the JWKS"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let (status, body) = self.client.get(&self.url).await?;
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let set: Set = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for value in set.keys {
            // Keys this server cannot use (other types, encryption keys) are skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            // A published set holds public keys: a symmetric one there would let
            // anyone who reads the set sign tokens.
            if key.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                continue;
            }
            keys.insert(kid, key);
        }
        Ok(keys)
    }
}

/// The JWT settings of a deployment: at most one key source.
#[derive(Clone, Default)]
pub struct JwtConfig {
    pub secret: Option<String>,
    /// A PEM file.
    pub public_key: Option<std::path::PathBuf>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Option<Duration>,
}

impl std::fmt::Debug for JwtConfig {
    // Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| ".."))
            .field("public_key", &self.public_key)
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwtConfig {
    /// Whether a key source is configured (auth is on).
    pub fn is_enabled(&self) -> bool {
        self.secret.is_some() || self.public_key.is_some() || self.jwks_url.is_some()
    }
}

/// The one authenticator of a deployment, shared by the socket handshake and
/// every HTTP route that accepts the same tokens; `None` when no key is
/// configured (auth off). Starts fetching a JWKS right away.
pub fn build_authenticator(config: &JwtConfig) -> Result<Option<Arc<dyn Authenticator>>, String> {
    let mut sources = Vec::new();
    if let Some(secret) = config.secret.as_ref().filter(|s| !s.is_empty()) {
        sources.push(KeySource::Secret(secret.as_bytes().to_vec()));
    }
    if let Some(path) = &config.public_key {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the JWT public key {}: {e}", path.display()))?;
        sources.push(KeySource::PublicKeyPem(pem));
    }
    if let Some(url) = config.jwks_url.as_ref().filter(|s| !s.is_empty()) {
        sources.push(KeySource::JwksUrl(url.clone()));
    }
    if sources.len() > 1 {
        return Err(
            "set only one of JWT_SECRET, JWT_PUBLIC_KEY and JWT_JWKS_URL: a deployment verifies \
             tokens with one kind of key"
                .into(),
        );
    }
    let Some(source) = sources.pop() else {
        return Ok(None);
    };
    let options = JwtOptions {
        issuer: config.issuer.clone().filter(|s| !s.is_empty()),
        audience: config.audience.clone().filter(|s| !s.is_empty()),
        leeway: config.leeway.unwrap_or(DEFAULT_LEEWAY),
    };
    let auth = JwtAuthenticator::new(source, options)?;
    tracing::info!("authentication on: {}", auth.describe());
    auth.prefetch();
    Ok(Some(Arc::new(auth)))
}

/// The credential a socket presented: `auth.token`, else an `Authorization: Bearer` header.
pub fn socket_token(socket: &Socket) -> Option<String> {
    #[derive(Deserialize)]
    struct Auth {
        token: Option<Value>,
    }
    if let Some(Auth {
        token: Some(Value::String(token)),
    }) = socket.auth::<Auth>()
    {
        if !token.is_empty() {
            return Some(token);
        }
    }
    socket
        .handshake()
        .header("authorization")
        .and_then(bearer)
        .map(str::to_owned)
}

/// Connect middleware: refuses sockets without a valid credential
/// (`connect_error` `missing token` / `invalid token`) and stores the
/// [`Identity`] of the others.
pub fn require_auth(ns: &mut NamespaceBuilder, auth: Arc<dyn Authenticator>) {
    crate::identity::Identity::make_portable(ns);
    ns.middleware(move |socket: Socket| {
        let auth = auth.clone();
        async move {
            let result = match socket_token(&socket) {
                None => Err(AuthError::Missing),
                Some(token) => auth.authenticate(&token).await,
            };
            match result {
                Ok(identity) => {
                    socket.insert(identity);
                    Ok(())
                }
                Err(e) => {
                    metrics::counter!("rtcio_auth_failures_total", "reason" => e.reason())
                        .increment(1);
                    tracing::info!(
                        address = ?socket.handshake().address,
                        reason = e.reason(),
                        "refused a connection"
                    );
                    Err(ConnectError::new(e.client_message()))
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_none_is_recognised_for_the_log() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"sub":"a"}"#));
        assert!(names_alg_none(&token));
        assert!(!names_alg_none("x.y.z"));
    }

    #[tokio::test]
    async fn hs256_tokens_verify_and_confusion_is_refused() {
        let auth =
            JwtAuthenticator::new(KeySource::Secret(b"s3cret".to_vec()), JwtOptions::default())
                .unwrap();
        let claims = serde_json::json!({ "sub": "u1", "username": "Ann", "rooms": ["a*"] });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        let id = auth.authenticate(&token).await.unwrap();
        assert_eq!(&*id.user_id, "u1");
        assert_eq!(id.name.as_deref(), Some("Ann"));
        assert_eq!(id.rooms.as_deref(), Some(&["a*".to_string()][..]));
        let other = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"other"),
        )
        .unwrap();
        assert_eq!(
            auth.authenticate(&other).await,
            Err(AuthError::Invalid("bad-signature"))
        );
        assert_eq!(
            auth.authenticate("garbage").await,
            Err(AuthError::Invalid("malformed"))
        );
    }
}
