//! Command-line flags, each also read from the environment variable of the
//! same name in upper snake case (`--max-payload` ↔ `MAX_PAYLOAD`).

use std::time::Duration;

use clap::Parser;
use rtcio::RelayScope;
use rtcio_engine::{Config, Cors, Transports};

/// A production rtc.io signaling server: the `#rtcio:message` relay, rooms &
/// presence, room passwords and media-state, on a lean Socket.IO engine.
#[derive(Debug, Clone, Parser)]
#[command(name = "rtcio-server", version, about, long_about = None)]
pub struct Settings {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3001)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Origins allowed to connect from a browser: `*`, or a comma-separated list.
    #[arg(long, env = "ALLOWED_ORIGINS", default_value = "*")]
    pub allowed_origins: String,

    /// Allow credentials (cookies, auth headers) on cross-origin requests.
    /// Refused with `--allowed-origins '*'`.
    #[arg(long, env = "CORS_CREDENTIALS", default_value_t = false)]
    pub cors_credentials: bool,

    /// The namespace that carries the relay and rooms (`/calls`, say).
    #[arg(long, env = "NAMESPACE", default_value = "/")]
    pub namespace: String,

    /// Whom a client may relay `#rtcio:message` to: `room` (sockets sharing a
    /// room with it) or `any` (any socket, as the Node package does).
    #[arg(long, env = "RELAY_SCOPE", default_value = "room")]
    pub relay_scope: RelayScope,

    /// How often clients are pinged (`25s`, `500ms`, `1m`; a bare number is seconds).
    /// Heartbeats are what clears ghost presence when a browser vanishes.
    #[arg(long, env = "PING_INTERVAL", default_value = "25s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// How long a client may take to answer a ping before it is dropped.
    #[arg(long, env = "PING_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub ping_timeout: Duration,

    /// Largest message (or polling body) a client may send, in bytes.
    #[arg(long, env = "MAX_PAYLOAD", default_value_t = 1_000_000)]
    pub max_payload: usize,

    /// Bytes that may wait for one slow client before it is disconnected.
    #[arg(long, env = "MAX_QUEUE_BYTES", default_value_t = 4 << 20)]
    pub max_queue_bytes: usize,

    /// Transports clients may use: `polling`, `websocket`, or both (comma-separated).
    #[arg(long, env = "TRANSPORTS", default_value = "polling,websocket")]
    pub transports: String,

    #[command(flatten)]
    pub ice: crate::ice::IceSettings,

    #[command(flatten)]
    pub chat: crate::chat::ChatSettings,

    #[command(flatten)]
    pub demo: crate::demo::DemoArgs,

    #[command(flatten)]
    pub admin: crate::admin::AdminSettings,

    #[command(flatten)]
    pub access: crate::access::AccessArgs,

    #[command(flatten)]
    pub config_file: crate::config_file::ConfigFileArgs,

    #[command(flatten)]
    pub logging: crate::logging::LogArgs,

    #[command(flatten)]
    pub metrics: crate::prometheus::MetricsArgs,

    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,

    #[command(flatten)]
    pub shutdown: crate::shutdown::ShutdownArgs,

    #[command(flatten)]
    pub recovery: crate::recovery::RecoverySettings,

    #[command(flatten)]
    pub cluster: crate::cluster::ClusterSettings,
}

/// Parses `250ms`, `25s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 25s or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{text}`: the unit must be ms, s or m")),
    }
}

impl Settings {
    /// The engine configuration, or why these settings cannot work.
    pub fn engine_config(&self) -> Result<Config, String> {
        let origins: Vec<&str> = self
            .allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        let cors = if origins.is_empty() || origins.contains(&"*") {
            if self.cors_credentials {
                return Err("--cors-credentials cannot be used with --allowed-origins '*': browsers refuse \
                            credentials with a wildcard origin; list the allowed origins instead"
                    .into());
            }
            Cors::Any
        } else {
            let origins = origins
                .iter()
                .map(|o| {
                    o.parse()
                        .map_err(|_| format!("`{o}` is not a valid origin"))
                })
                .collect::<Result<_, _>>()?;
            Cors::List {
                origins,
                credentials: self.cors_credentials,
            }
        };
        let mut transports = Transports {
            polling: false,
            websocket: false,
        };
        for t in self.transports.split(',').map(str::trim) {
            match t {
                "polling" => transports.polling = true,
                "websocket" => transports.websocket = true,
                other => return Err(format!("unknown transport `{other}` (polling, websocket)")),
            }
        }
        if !transports.polling && !transports.websocket {
            return Err("--transports must name at least one transport".into());
        }
        if !self.namespace.starts_with('/') {
            return Err(format!(
                "--namespace must start with `/`, not `{}`",
                self.namespace
            ));
        }
        Ok(Config {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            max_payload: self.max_payload,
            max_queue_bytes: self.max_queue_bytes,
            transports,
            cors,
            ..Config::default()
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Settings parsed from `args` as the command line (the environment too).
    pub(crate) fn settings(args: &[&str]) -> Settings {
        Settings::try_parse_from(std::iter::once("rtcio-server").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn defaults_match_the_reference() {
        let s = settings(&[]);
        assert_eq!(
            (s.port, s.host.as_str(), s.namespace.as_str()),
            (3001, "0.0.0.0", "/")
        );
        assert_eq!(s.relay_scope, RelayScope::SharedRoom);
        let c = s.engine_config().unwrap();
        assert_eq!(
            (c.ping_interval, c.ping_timeout),
            (Duration::from_secs(25), Duration::from_secs(20))
        );
        assert!(matches!(c.cors, Cors::Any));
    }

    #[test]
    fn credentials_with_a_wildcard_are_refused() {
        let err = settings(&["--cors-credentials"])
            .engine_config()
            .unwrap_err();
        assert!(err.contains("wildcard"), "{err}");
        let ok = settings(&[
            "--cors-credentials",
            "--allowed-origins",
            "https://a.example, https://b.example",
        ]);
        match ok.engine_config().unwrap().cors {
            Cors::List {
                origins,
                credentials,
            } => assert!(credentials && origins.len() == 2),
            Cors::Any => panic!("expected a list"),
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(settings(&["--transports", "carrier-pigeon"])
            .engine_config()
            .is_err());
        assert!(settings(&["--namespace", "calls"]).engine_config().is_err());
        assert!(Settings::try_parse_from(["rtcio-server", "--relay-scope", "everyone"]).is_err());
    }
}
