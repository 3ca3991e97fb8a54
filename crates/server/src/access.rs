//! Access and abuse control settings: JWT authentication, the room access
//! policy, room caps, event rate limits and connection admission, and the
//! wiring of each onto the signaling namespace.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rtcio::admission::{Admission, AdmissionLimits};
use rtcio::auth::{build_authenticator, require_auth, JwtConfig};
use rtcio::policy::{FilePolicy, HttpPolicy, JwtRoomsPolicy, RoomPolicy};
use rtcio::ratelimit::{parse_overrides, EventLimits, Rate, RateLimiter};
use rtcio::{Authenticator, RoomRules};
use rtcio_engine::{NamespaceBuilder, Server};

use crate::config::parse_duration;

#[derive(Debug, Clone, clap::Args)]
pub struct AccessArgs {
    /// Verify connection tokens (HS256) with this shared secret. With no JWT
    /// key set, authentication is off.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, value_parser = secret)]
    pub jwt_secret: Option<Secret>,

    /// Verify connection tokens (RS256 / ES256) with the public key in this PEM file.
    #[arg(long, env = "JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// Verify connection tokens with an identity provider's JWKS (fetched with
    /// a 5 s timeout, cached 10 min, refetched on an unknown `kid` at most every 30 s).
    #[arg(long, env = "JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// Required `iss` of tokens.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of tokens.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Clock skew tolerated on `exp` / `nbf`.
    #[arg(long, env = "JWT_LEEWAY", default_value = "30s", value_parser = parse_duration)]
    pub jwt_leeway: Duration,

    /// Who may join which room: `open`, `jwt` (the token's `rooms` claim),
    /// `file` (--room-policy-file, reloaded on SIGHUP) or `http` (--room-policy-url).
    #[arg(long, env = "ROOM_POLICY", default_value = "open")]
    pub room_policy: String,

    /// The allow-list of `--room-policy file` (TOML, or JSON if it ends in .json).
    #[arg(long, env = "ROOM_POLICY_FILE")]
    pub room_policy_file: Option<PathBuf>,

    /// The service `--room-policy http` POSTs `{ userId, roomId, name }` to.
    #[arg(long, env = "ROOM_POLICY_URL")]
    pub room_policy_url: Option<String>,

    /// How long the policy service may take before a join is refused `unavailable`.
    #[arg(long, env = "ROOM_POLICY_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub room_policy_timeout: Duration,

    /// How long the policy service's allow / forbid answers are reused (0: never).
    #[arg(long, env = "ROOM_POLICY_CACHE", default_value = "10s", value_parser = parse_duration)]
    pub room_policy_cache: Duration,

    /// Peers one room holds at most (0 = unlimited; 8 is the practical full-mesh size).
    #[arg(long, env = "MAX_PEERS", default_value_t = 8)]
    pub max_peers: usize,

    /// Rooms one socket may be in at once (0 = unlimited).
    #[arg(long, env = "MAX_ROOMS_PER_SOCKET", default_value_t = 16)]
    pub max_rooms_per_socket: usize,

    /// `0` turns every event and handshake rate limit off (benchmarks, tests).
    #[arg(long, env = "RATE_LIMIT", default_value = "1", value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub rate_limit: bool,

    /// Application events per socket: `rate/burst` per second (0 = unlimited).
    #[arg(long, env = "EVENT_RATE", default_value = "50/100")]
    pub event_rate: Rate,

    /// `#rtcio:message` envelopes per socket: `rate/burst` per second (0 = unlimited).
    #[arg(long, env = "MESSAGE_RATE", default_value = "200/400")]
    pub message_rate: Rate,

    /// Events with a budget of their own, instead of --event-rate: `name=rate/burst,...`.
    #[arg(
        long,
        env = "EVENT_RATE_OVERRIDES",
        default_value = "chat-message=10/20,join-room=5/10,check-room=5/10"
    )]
    pub event_rate_overrides: String,

    /// New connections per client IP per minute (0 = unlimited).
    #[arg(long, env = "HANDSHAKE_LIMIT", default_value_t = 600)]
    pub handshake_limit: u32,

    /// Take the client IP from the last `X-Forwarded-For` entry (only behind your own proxy).
    #[arg(long, env = "TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,

    /// Connections this process accepts at most; later ones get HTTP 503 (0 = unlimited).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
}

/// A secret setting: its `Debug` never shows the value (the settings are
/// `Debug`, and a secret must not reach a log by way of them).
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_owned()))
}

/// `1`/`0`, `true`/`false`, `on`/`off`, `yes`/`no`.
fn parse_switch(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        other => Err(format!("`{other}` is not 1 or 0")),
    }
}

/// Everything built from [`AccessArgs`].
pub struct Access {
    /// The deployment's one authenticator (`None`: auth off), also for HTTP routes.
    pub authenticator: Option<Arc<dyn Authenticator>>,
    pub rules: RoomRules,
    limiter: Option<Arc<RateLimiter>>,
    admission: AdmissionLimits,
}

impl AccessArgs {
    pub fn jwt(&self) -> JwtConfig {
        JwtConfig {
            secret: self.jwt_secret.as_ref().map(|s| s.0.clone()),
            public_key: self.jwt_public_key.clone(),
            jwks_url: self.jwt_jwks_url.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway: Some(self.jwt_leeway),
        }
    }

    /// Checks the settings and builds the pieces (a JWKS fetch starts here).
    pub fn build(&self) -> Result<Access, String> {
        let authenticator = build_authenticator(&self.jwt())?;
        if authenticator.is_none() {
            tracing::info!("authentication off: no JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL set");
        }
        let policy: Option<Arc<dyn RoomPolicy>> = match self.room_policy.as_str() {
            "open" => None,
            "jwt" => {
                if authenticator.is_none() {
                    return Err("--room-policy jwt needs JWT authentication (JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL)".into());
                }
                Some(Arc::new(JwtRoomsPolicy))
            }
            "file" => {
                let path = self
                    .room_policy_file
                    .as_ref()
                    .ok_or("--room-policy file needs --room-policy-file")?;
                let policy = FilePolicy::load(path)?;
                policy.reload_on_sighup();
                Some(Arc::new(policy))
            }
            "http" => {
                let url = self
                    .room_policy_url
                    .clone()
                    .ok_or("--room-policy http needs --room-policy-url")?;
                Some(Arc::new(HttpPolicy::new(
                    url,
                    self.room_policy_timeout,
                    self.room_policy_cache,
                )?))
            }
            other => {
                return Err(format!(
                    "--room-policy must be open, jwt, file or http, not `{other}`"
                ))
            }
        };
        let overrides = parse_overrides(&self.event_rate_overrides)?;
        let limiter = self.rate_limit.then(|| {
            RateLimiter::new(EventLimits {
                events: Some(self.event_rate),
                message: Some(self.message_rate),
                overrides,
                ..EventLimits::default()
            })
        });
        if !self.rate_limit {
            tracing::warn!("rate limits off (RATE_LIMIT=0)");
        }
        Ok(Access {
            authenticator,
            rules: RoomRules {
                max_peers: self.max_peers,
                max_rooms_per_socket: self.max_rooms_per_socket,
                policy,
            },
            limiter,
            admission: AdmissionLimits {
                handshakes_per_minute: if self.rate_limit {
                    self.handshake_limit
                } else {
                    0
                },
                max_connections: self.max_connections,
                trust_proxy: self.trust_proxy,
            },
        })
    }
}

impl Access {
    /// Authentication and rate limits on the signaling namespace (the room
    /// rules go to its `Rooms`).
    pub fn attach(&self, ns: &mut NamespaceBuilder) {
        if let Some(auth) = &self.authenticator {
            require_auth(ns, auth.clone());
        }
        if let Some(limiter) = &self.limiter {
            limiter.attach(ns);
        }
    }

    /// The per-client-IP limit for plain HTTP routes that mint something
    /// (`GET /ice`): the handshake budget, on a table of its own, without the
    /// connection ceiling (a request there opens no session).
    pub fn http_limit(&self, io: &Server) -> Arc<Admission> {
        Admission::new(
            io,
            AdmissionLimits {
                max_connections: 0,
                ..self.admission
            },
        )
    }

    /// The Socket.IO service behind the handshake limit and connection ceiling.
    pub fn admit<S>(&self, io: &Server, service: S) -> rtcio::admission::Admit<S> {
        Admission::new(io, self.admission).wrap(service)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::Settings;

    use crate::config::tests::settings;

    #[test]
    fn defaults_are_safe() {
        let a = settings(&[]).access;
        assert_eq!((a.max_peers, a.max_rooms_per_socket), (8, 16));
        assert!(a.rate_limit);
        assert_eq!(a.handshake_limit, 600);
        assert_eq!(a.max_connections, 0);
        assert_eq!(a.room_policy, "open");
        assert_eq!((a.event_rate.per_second, a.event_rate.burst), (50, 100));
        assert_eq!(
            (a.message_rate.per_second, a.message_rate.burst),
            (200, 400)
        );
    }

    #[test]
    fn rate_limit_switch() {
        assert!(!settings(&["--rate-limit", "0"]).access.rate_limit);
        assert!(settings(&["--rate-limit", "on"]).access.rate_limit);
        assert!(Settings::try_parse_from(["rtcio-server", "--rate-limit", "maybe"]).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let s = settings(&["--jwt-secret", "hunter3-not-in-debug"]);
        assert!(!format!("{s:?}").contains("hunter3"));
        assert_eq!(
            s.access.jwt().secret.as_deref(),
            Some("hunter3-not-in-debug")
        );
    }

    #[test]
    fn secrets_stay_out_of_help() {
        use clap::CommandFactory;
        std::env::set_var("JWT_SECRET", "hunter2-not-in-help");
        let help = Settings::command().render_long_help().to_string();
        std::env::remove_var("JWT_SECRET");
        assert!(help.contains("--jwt-secret") && help.contains("JWT_SECRET"));
        assert!(!help.contains("hunter2"), "{help}");
    }
}
