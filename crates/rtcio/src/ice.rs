//! ICE credential vending: `ask-ice` (socket, with an acknowledgement) and
//! `GET /ice` (plain HTTP) answer `{ iceServers: [...] }`, the shape a browser
//! passes straight to `RTCPeerConnection` (and the rtc.io client to
//! `io(URL, { iceServers })`).
//!
//! Why mint instead of configuring the client: a TURN relay costs bandwidth,
//! so a long-lived TURN password shipped in a client bundle is an open relay
//! for anyone who reads the bundle. The coturn "REST API" scheme lets the
//! signaling server mint short-lived credentials from a secret it shares with
//! the TURN server, with no call between the two:
//!
//! - username = `expiry` (unix seconds, now + TTL), or `expiry:userId` when the
//!   requester is authenticated (coturn reads the timestamp before the `:` and
//!   logs the whole username, so relayed traffic can be traced to a user);
//! - credential = base64(HMAC-SHA1(secret, username)).
//!
//! coturn (`use-auth-secret`, `static-auth-secret=...`) recomputes the HMAC
//! with each of its secrets and refuses expired usernames, so rotation is:
//! add the new secret to coturn, put it first in [`TurnSecrets`] here (minting
//! uses the first), and drop the old one from both once the last credentials
//! minted with it have expired.
//!
//! Without a secret the answer is STUN only (the configured STUN URLs): calls
//! then still work between peers that can reach each other directly, and fail
//! behind symmetric NATs or strict firewalls.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use rtcio_engine::{Cors, NamespaceBuilder, Socket};
use serde::Serialize;
use sha1::Sha1;

use crate::errors::{ClientError, ErrorCode};
use crate::events::app::ASK_ICE;
use crate::identity::{bearer, AuthError, Authenticator, Identity};

/// The HTTP path of the ICE endpoint.
pub const ICE_PATH: &str = "/ice";

/// The credential coturn expects for `username`: base64(HMAC-SHA1(secret, username)).
pub fn credential(secret: &[u8], username: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The coturn REST username: `expiry`, or `expiry:userId` for an authenticated user.
pub fn username(expiry: u64, user_id: Option<&str>) -> String {
    match user_id {
        Some(user) => format!("{expiry}:{user}"),
        None => expiry.to_string(),
    }
}

/// One or more shared TURN secrets, the first used for minting.
///
/// Its `Debug` shows how many secrets there are, never their text, so a
/// settings struct holding it can be logged or printed safely.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TurnSecrets(Arc<[String]>);

impl TurnSecrets {
    /// The secrets, in order; blank entries are dropped.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        TurnSecrets(
            secrets
                .into_iter()
                .map(Into::into)
                .filter(|s| !s.trim().is_empty())
                .collect(),
        )
    }

    /// The secret new credentials are minted with.
    pub fn minting(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// How many secrets are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TurnSecrets {
    type Err = std::convert::Infallible;

    /// A comma-separated list. Never fails: a parse error could echo the
    /// secret (clap prints the offending value), and a blank value simply
    /// means "no secret".
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(TurnSecrets::new(text.split(',').map(str::trim)))
    }
}

impl fmt::Debug for TurnSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TurnSecrets(<{} redacted>)", self.0.len())
    }
}

/// Which TURN transports are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnTransports {
    /// `turn:HOST:PORT?transport=udp`
    pub udp: bool,
    /// `turn:HOST:PORT?transport=tcp`
    pub tcp: bool,
    /// `turns:HOST:TLS_PORT?transport=tcp` (TURN over TLS, gets through
    /// firewalls that only let HTTPS-looking traffic out)
    pub tls: bool,
}

impl Default for TurnTransports {
    fn default() -> Self {
        TurnTransports {
            udp: true,
            tcp: true,
            tls: true,
        }
    }
}

impl FromStr for TurnTransports {
    type Err = String;

    /// `udp`, `tcp`, `tls`, comma separated, at least one.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut t = TurnTransports {
            udp: false,
            tcp: false,
            tls: false,
        };
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "udp" => t.udp = true,
                "tcp" => t.tcp = true,
                "tls" => t.tls = true,
                other => return Err(format!("unknown TURN transport `{other}` (udp, tcp, tls)")),
            }
        }
        if !(t.udp || t.tcp || t.tls) {
            return Err("name at least one TURN transport (udp, tcp, tls)".into());
        }
        Ok(t)
    }
}

/// What the ICE answer contains.
#[derive(Debug, Clone)]
pub struct IceConfig {
    /// Shared secrets; empty means STUN only.
    pub secrets: TurnSecrets,
    /// TURN server host names or addresses (each gets its own URLs).
    pub hosts: Vec<String>,
    /// How long a minted credential is valid.
    pub ttl: Duration,
    /// Port of `stun:` and plain `turn:` (coturn's `listening-port`).
    pub port: u16,
    /// Port of `turns:` (coturn's `tls-listening-port`).
    pub tls_port: u16,
    pub transports: TurnTransports,
    /// Extra STUN URLs offered as they are (`stun:stun.example.org:3478`).
    pub stun_urls: Vec<String>,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            secrets: TurnSecrets::default(),
            hosts: Vec::new(),
            ttl: Duration::from_secs(600),
            port: 3478,
            tls_port: 5349,
            transports: TurnTransports::default(),
            stun_urls: Vec::new(),
        }
    }
}

/// One entry of `iceServers`, as `RTCIceServer` has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The answer of `ask-ice` and `GET /ice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServers {
    #[serde(rename = "iceServers")]
    pub ice_servers: Vec<IceServer>,
}

/// The ICE building block: mints answers, handles `ask-ice` on a namespace,
/// and serves `GET /ice`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ice {
    config: Arc<IceConfig>,
}

impl Ice {
    /// Checks `config`: a secret is useless without a TURN host to send clients to.
    pub fn new(config: IceConfig) -> Result<Self, String> {
        if !config.secrets.is_empty() && config.hosts.is_empty() {
            return Err(
                "a TURN secret is set but no TURN host: set --turn-host / TURN_HOST".into(),
            );
        }
        if let Some(bad) = config
            .stun_urls
            .iter()
            .find(|u| !(u.starts_with("stun:") || u.starts_with("stuns:")))
        {
            return Err(format!(
                "`{bad}` is not a STUN URL (stun:HOST[:PORT] or stuns:HOST[:PORT])"
            ));
        }
        Ok(Ice {
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &IceConfig {
        &self.config
    }

    /// Whether answers carry minted TURN credentials (a secret is configured).
    pub fn mints(&self) -> bool {
        !self.config.secrets.is_empty()
    }

    /// The answer for `user_id` (authenticated) or an anonymous requester, now.
    pub fn servers(&self, user_id: Option<&str>) -> IceServers {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.servers_at(now, user_id)
    }

    /// The answer as minted at unix time `now` (seconds).
    pub fn servers_at(&self, now: u64, user_id: Option<&str>) -> IceServers {
        let c = &*self.config;
        let mut out = Vec::new();
        let minted = c.secrets.minting().map(|secret| {
            let name = username(now.saturating_add(c.ttl.as_secs()), user_id);
            let credential = credential(secret.as_bytes(), &name);
            (name, credential)
        });
        for host in &c.hosts {
            let host = url_host(host);
            out.push(IceServer {
                urls: format!("stun:{host}:{}", c.port),
                username: None,
                credential: None,
            });
            let Some((name, credential)) = &minted else {
                continue;
            };
            let turn = [
                (c.transports.udp, "turn", c.port, "udp"),
                (c.transports.tcp, "turn", c.port, "tcp"),
                (c.transports.tls, "turns", c.tls_port, "tcp"),
            ];
            for (_, scheme, port, transport) in turn.into_iter().filter(|t| t.0) {
                out.push(IceServer {
                    urls: format!("{scheme}:{host}:{port}?transport={transport}"),
                    username: Some(name.clone()),
                    credential: Some(credential.clone()),
                });
            }
        }
        out.extend(c.stun_urls.iter().map(|url| IceServer {
            urls: url.clone(),
            username: None,
            credential: None,
        }));
        IceServers { ice_servers: out }
    }

    /// The answer for `socket`: `expiry:userId` when it authenticated.
    pub fn servers_for(&self, socket: &Socket) -> IceServers {
        self.servers(Identity::user_id(socket).as_deref())
    }

    /// Handles `ask-ice` on `ns`: the acknowledgement gets `{ iceServers }`.
    /// Without an acknowledgement there is nowhere to answer, so the client
    /// gets `error { code: "bad-request" }` instead of silence.
    pub fn attach(&self, ns: &mut NamespaceBuilder) {
        let ice = self.clone();
        ns.on(ASK_ICE, move |socket, mut event| match event.take_ack() {
            Some(ack) => {
                if let Err(e) = ack.send(&ice.servers_for(socket)) {
                    tracing::debug!(socket = %socket.id(), error = %e, "could not answer ask-ice");
                }
            }
            None => ClientError::new(
                ErrorCode::BadRequest,
                "ask-ice needs an acknowledgement callback: socket.emit(\"ask-ice\", (answer) => ...)",
            )
            .send(socket),
        });
    }

    /// `GET /ice` answering the same JSON as `ask-ice`, with `Cache-Control:
    /// no-store` (a cached answer would hand out expired or another user's
    /// credentials) and the socket's CORS policy.
    ///
    /// With an `authenticator`, the request needs `Authorization: Bearer
    /// TOKEN` (the same token as the socket's `auth.token`); it is refused with
    /// 401 and `{ code: "forbidden", message: "missing token" | "invalid token" }`
    /// otherwise, and the username is `expiry:userId`. Without one, anyone
    /// may ask, as anyone may open a socket and `ask-ice`.
    pub fn router(&self, authenticator: Option<Arc<dyn Authenticator>>, cors: &Cors) -> Router {
        let state = Arc::new(RouteState {
            ice: self.clone(),
            authenticator,
        });
        Router::new()
            .route(ICE_PATH, get(get_ice))
            .with_state(state)
            .layer(cors.layer([Method::GET]))
    }
}

struct RouteState {
    ice: Ice,
    authenticator: Option<Arc<dyn Authenticator>>,
}

async fn get_ice(State(state): State<Arc<RouteState>>, headers: HeaderMap) -> Response {
    let user_id = match &state.authenticator {
        None => None,
        Some(authenticator) => {
            let token = headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer);
            let result = match token {
                Some(token) => authenticator.authenticate(token).await,
                None => Err(AuthError::Missing),
            };
            match result {
                Ok(identity) => Some(identity.user_id),
                Err(e) => {
                    tracing::debug!(reason = e.reason(), "GET /ice refused");
                    let body = ClientError::new(ErrorCode::Forbidden, e.client_message());
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(WWW_AUTHENTICATE, "Bearer"), (CACHE_CONTROL, "no-store")],
                        Json(body),
                    )
                        .into_response();
                }
            }
        }
    };
    let answer = state.ice.servers(user_id.as_deref());
    ([(CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

/// An IPv6 literal needs brackets inside a URL (`turn:[::1]:3478`).
fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coturn(secrets: &str) -> Ice {
        Ice::new(IceConfig {
            secrets: secrets.parse().unwrap(),
            hosts: vec!["turn.example.org".into()],
            ..IceConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202, HMAC-SHA1 test case 2: key "Jefe", data "what do ya want
        // for nothing?", digest effcdf6ae5eb2fa2d27416d5f184df9c259a7c79, here
        // base64-encoded (`printf %s "what do ya want for nothing?" | openssl
        // dgst -sha1 -hmac Jefe -binary | base64`).
        assert_eq!(
            credential(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn coturn_rest_credentials_match_openssl_and_node() {
        // Computed independently with
        // `printf %s 1700000600 | openssl dgst -sha1 -hmac north-secret -binary | base64`
        // and node:crypto `createHmac("sha1", "north-secret").update("1700000600:alice").digest("base64")`.
        assert_eq!(
            credential(b"north-secret", "1700000600"),
            "6Aqu4IWGngGIs0112NLKPnD2Fs0="
        );
        assert_eq!(
            credential(b"north-secret", "1700000600:alice"),
            "EdbFJ9kE5DnzTiD/imsvvWqUMAs="
        );
        assert_eq!(username(1_700_000_600, None), "1700000600");
        assert_eq!(username(1_700_000_600, Some("alice")), "1700000600:alice");
    }

    #[test]
    fn the_seed_shape_with_expiry_now_plus_ttl() {
        let answer = coturn("north-secret").servers_at(1_700_000_000, None);
        let turn = |urls: &str| IceServer {
            urls: urls.into(),
            username: Some("1700000600".into()),
            credential: Some("6Aqu4IWGngGIs0112NLKPnD2Fs0=".into()),
        };
        assert_eq!(
            answer.ice_servers,
            vec![
                IceServer {
                    urls: "stun:turn.example.org:3478".into(),
                    username: None,
                    credential: None
                },
                turn("turn:turn.example.org:3478?transport=udp"),
                turn("turn:turn.example.org:3478?transport=tcp"),
                turn("turns:turn.example.org:5349?transport=tcp"),
            ]
        );
        assert_eq!(
            serde_json::to_value(&answer).unwrap()["iceServers"][0],
            serde_json::json!({ "urls": "stun:turn.example.org:3478" })
        );
    }

    #[test]
    fn authenticated_users_get_expiry_colon_user_id() {
        let answer = coturn("north-secret").servers_at(1_700_000_000, Some("alice"));
        let t = &answer.ice_servers[1];
        assert_eq!(t.username.as_deref(), Some("1700000600:alice"));
        assert_eq!(
            t.credential.as_deref(),
            Some("EdbFJ9kE5DnzTiD/imsvvWqUMAs=")
        );
    }

    #[test]
    fn rotation_mints_with_the_first_secret() {
        let answer = coturn(" north-secret , old-secret").servers_at(1_700_000_000, None);
        assert_eq!(
            answer.ice_servers[1].credential.as_deref(),
            Some("6Aqu4IWGngGIs0112NLKPnD2Fs0=")
        );
    }

    #[test]
    fn hosts_ports_transports_and_extra_stun() {
        let ice = Ice::new(IceConfig {
            secrets: "s".parse().unwrap(),
            hosts: vec!["a.example".into(), "::1".into()],
            ttl: Duration::from_secs(60),
            port: 3479,
            tls_port: 443,
            transports: "tls, udp".parse().unwrap(),
            stun_urls: vec!["stun:stun.example.net:19302".into()],
        })
        .unwrap();
        let urls: Vec<_> = ice
            .servers_at(100, None)
            .ice_servers
            .into_iter()
            .map(|s| (s.urls, s.username))
            .collect();
        let u = || Some("160".to_owned());
        assert_eq!(
            urls,
            vec![
                ("stun:a.example:3479".to_owned(), None),
                ("turn:a.example:3479?transport=udp".to_owned(), u()),
                ("turns:a.example:443?transport=tcp".to_owned(), u()),
                ("stun:[::1]:3479".to_owned(), None),
                ("turn:[::1]:3479?transport=udp".to_owned(), u()),
                ("turns:[::1]:443?transport=tcp".to_owned(), u()),
                ("stun:stun.example.net:19302".to_owned(), None),
            ]
        );
    }

    #[test]
    fn without_a_secret_only_stun_is_offered() {
        let ice = Ice::new(IceConfig {
            stun_urls: vec!["stun:stun.example.net:3478".into()],
            ..IceConfig::default()
        })
        .unwrap();
        assert!(!ice.mints());
        assert_eq!(
            serde_json::to_value(ice.servers(None)).unwrap(),
            serde_json::json!({ "iceServers": [{ "urls": "stun:stun.example.net:3478" }] })
        );
        // A TURN host without a secret is still a STUN server.
        let ice = Ice::new(IceConfig {
            hosts: vec!["turn.example.org".into()],
            ..IceConfig::default()
        })
        .unwrap();
        assert_eq!(
            serde_json::to_value(ice.servers(Some("alice"))).unwrap(),
            serde_json::json!({ "iceServers": [{ "urls": "stun:turn.example.org:3478" }] })
        );
    }

    #[test]
    fn bad_configurations_are_refused_without_the_secret() {
        let err = Ice::new(IceConfig {
            secrets: "hush-hush".parse().unwrap(),
            ..IceConfig::default()
        })
        .unwrap_err();
        assert!(
            err.contains("TURN_HOST") && !err.contains("hush-hush"),
            "{err}"
        );
        assert!(Ice::new(IceConfig {
            stun_urls: vec!["http://x".into()],
            ..IceConfig::default()
        })
        .is_err());
        assert!("udp,smoke".parse::<TurnTransports>().is_err());
        assert!(" , ".parse::<TurnTransports>().is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let ice = coturn("hush-hush,older-hush");
        let text = format!("{ice:?} {:?}", ice.config().secrets);
        assert!(!text.contains("hush"), "{text}");
        assert!(text.contains("<2 redacted>"), "{text}");
        assert!("".parse::<TurnSecrets>().unwrap().is_empty());
        assert!(" , ".parse::<TurnSecrets>().unwrap().is_empty());
    }

    /// A stand-in for the JWT authenticator: token `good-token` is alice.
    struct TestAuth;

    impl Authenticator for TestAuth {
        fn authenticate(&self, token: &str) -> crate::identity::AuthFuture {
            let ok = token == "good-token";
            Box::pin(async move {
                if ok {
                    Ok(Identity {
                        user_id: "alice".into(),
                        ..Identity::default()
                    })
                } else {
                    Err(AuthError::Invalid("bad-signature"))
                }
            })
        }
    }

    async fn get(
        router: &Router,
        headers: &[(&str, &str)],
    ) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        use tower::ServiceExt;
        let mut req = http::Request::get(ICE_PATH);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = router
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        (parts.status, parts.headers, body_json(body).await)
    }

    fn assert_fresh_username(value: &serde_json::Value, user: Option<&str>) {
        let name = value["iceServers"][1]["username"].as_str().unwrap();
        let (expiry, rest) = match name.split_once(':') {
            Some((e, u)) => (e, Some(u)),
            None => (name, None),
        };
        assert_eq!(rest, user, "{name}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            expiry >= now + 590 && expiry <= now + 610,
            "expiry {expiry} vs now {now}"
        );
        assert_eq!(
            value["iceServers"][1]["credential"].as_str().unwrap(),
            credential(b"north-secret", name)
        );
    }

    #[tokio::test]
    async fn get_ice_without_auth_answers_anyone_uncached() {
        let router = coturn("north-secret").router(None, &Cors::Any);
        let (status, headers, body) = get(&router, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert_fresh_username(&body, None);
    }

    #[tokio::test]
    async fn get_ice_with_auth_needs_a_valid_bearer_token() {
        let router = coturn("north-secret").router(Some(Arc::new(TestAuth)), &Cors::Any);

        let (status, headers, body) = get(&router, &[("authorization", "Bearer good-token")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert_fresh_username(&body, Some("alice"));

        for (header, message) in [
            (None, "missing token"),
            (Some("Basic Z29vZC10b2tlbg=="), "missing token"),
            (Some("Bearer forged-token"), "invalid token"),
        ] {
            let headers: Vec<_> = header.map(|h| ("authorization", h)).into_iter().collect();
            let (status, headers, body) = get(&router, &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
            assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
            assert_eq!(headers[CACHE_CONTROL], "no-store");
            assert_eq!(
                body,
                serde_json::json!({ "code": "forbidden", "message": message })
            );
        }
    }

    #[tokio::test]
    async fn get_ice_follows_the_socket_cors_policy() {
        let cors = Cors::List {
            origins: vec!["https://app.example".parse().unwrap()],
            credentials: true,
        };
        let router = coturn("north-secret").router(None, &cors);
        let (_, headers, _) = get(&router, &[("origin", "https://app.example")]).await;
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(headers["access-control-allow-credentials"], "true");
        let (status, headers, _) = get(&router, &[("origin", "https://evil.example")]).await;
        assert_eq!(status, StatusCode::OK, "CORS is the browser's to enforce");
        assert!(headers.get("access-control-allow-origin").is_none());
    }

    /// ask-ice through the real engine, driven over HTTP long-polling in
    /// process: a socket whose connect middleware set an [`Identity`] gets
    /// `expiry:userId`, an anonymous one `expiry`; without an ack, an error.
    #[tokio::test]
    async fn ask_ice_uses_the_socket_identity() {
        use tower::ServiceExt;

        let ice = coturn("north-secret");
        let mut builder = rtcio_engine::Server::builder();
        let authed = builder.namespace("/authed");
        authed.middleware(|socket: Socket| async move {
            socket.insert(Identity {
                user_id: "alice".into(),
                ..Identity::default()
            });
            Ok(())
        });
        ice.attach(authed);
        ice.attach(builder.namespace("/anon"));
        let io = builder.build();

        // One Engine.IO polling request; the response body as text.
        let call = |method: Method, sid: Option<&str>, body: String| {
            let sid = sid.map(|s| format!("&sid={s}")).unwrap_or_default();
            let req = http::Request::builder()
                .method(method)
                .uri(format!("/socket.io/?EIO=4&transport=polling{sid}"))
                .body(axum::body::Body::from(body))
                .unwrap();
            let service = io.service();
            async move {
                let res = service.oneshot(req).await.unwrap();
                String::from_utf8(body_bytes(axum::body::Body::new(res.into_body())).await).unwrap()
            }
        };

        for (nsp, user) in [("/authed", Some("alice")), ("/anon", None)] {
            let open = call(Method::GET, None, String::new()).await;
            let open: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
            let sid = open["sid"].as_str().unwrap();
            // Polls until a packet starting with `prefix` arrives; returns the rest of it.
            let poll = |prefix: String| async move {
                loop {
                    let body = call(Method::GET, Some(sid), String::new()).await;
                    if let Some(p) = body.split('\x1e').find_map(|p| p.strip_prefix(&prefix)) {
                        return p.to_owned();
                    }
                }
            };

            call(Method::POST, Some(sid), format!("40{nsp},")).await;
            poll(format!("40{nsp},")).await;

            call(Method::POST, Some(sid), format!("42{nsp},7[\"ask-ice\"]")).await;
            let args: serde_json::Value =
                serde_json::from_str(&poll(format!("43{nsp},7")).await).unwrap();
            assert_fresh_username(&args[0], user);

            call(Method::POST, Some(sid), format!("42{nsp},[\"ask-ice\"]")).await;
            let error: serde_json::Value =
                serde_json::from_str(&poll(format!("42{nsp},")).await).unwrap();
            assert_eq!(error[0], "error");
            assert_eq!(error[1]["code"], "bad-request");
        }
    }

    async fn body_bytes(body: axum::body::Body) -> Vec<u8> {
        http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    async fn body_json(body: axum::body::Body) -> serde_json::Value {
        serde_json::from_slice(&body_bytes(body).await).unwrap()
    }
}
