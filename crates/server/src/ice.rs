//! TURN/STUN settings of `ask-ice` and `GET /ice` (see `rtcio::ice`).

use std::time::Duration;

use rtcio::{Ice, IceConfig, TurnSecrets, TurnTransports};

use crate::config::parse_duration;

/// ICE credential vending (coturn REST API scheme).
#[derive(Debug, Clone, clap::Args)]
pub struct IceSettings {
    /// Shared secret of the TURN server (coturn `static-auth-secret`), used to
    /// mint short-lived TURN credentials. Several, comma separated, for
    /// rotation: the first mints, coturn accepts any it has. Unset: `ask-ice`
    /// and `/ice` answer STUN only.
    #[arg(long, env = "TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<TurnSecrets>,

    /// TURN server host(s) offered to clients, comma separated.
    #[arg(long, env = "TURN_HOST", value_delimiter = ',')]
    pub turn_host: Vec<String>,

    /// How long a minted TURN credential is valid (`600`, `10m`, `90s`).
    #[arg(long, env = "TURN_TTL", default_value = "600", value_parser = parse_duration)]
    pub turn_ttl: Duration,

    /// Port of `stun:` and `turn:` URLs (coturn `listening-port`).
    #[arg(long, env = "TURN_PORT", default_value_t = 3478)]
    pub turn_port: u16,

    /// Port of `turns:` URLs (coturn `tls-listening-port`).
    #[arg(long, env = "TURN_TLS_PORT", default_value_t = 5349)]
    pub turn_tls_port: u16,

    /// TURN transports offered: `udp`, `tcp` and/or `tls` (comma separated).
    #[arg(long, env = "TURN_TRANSPORTS", default_value = "udp,tcp,tls")]
    pub turn_transports: TurnTransports,

    /// Extra STUN URLs offered as they are, comma separated (`stun:stun.example.org:3478`).
    #[arg(long, env = "STUN_URLS", value_delimiter = ',')]
    pub stun_urls: Vec<String>,
}

impl IceSettings {
    /// The ICE building block, or why these settings cannot work. Warns when
    /// no secret is set: the answer is then STUN only.
    pub fn build(&self) -> Result<Ice, String> {
        let list = |items: &[String]| -> Vec<String> {
            items
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let ice = Ice::new(IceConfig {
            secrets: self.turn_secret.clone().unwrap_or_default(),
            hosts: list(&self.turn_host),
            ttl: self.turn_ttl,
            port: self.turn_port,
            tls_port: self.turn_tls_port,
            transports: self.turn_transports,
            stun_urls: list(&self.stun_urls),
        })?;
        if ice.mints() {
            tracing::info!(
                hosts = ?ice.config().hosts,
                ttl_secs = self.turn_ttl.as_secs(),
                secrets = ice.config().secrets.len(),
                "ask-ice and GET /ice mint TURN credentials"
            );
        } else {
            tracing::warn!(
                "TURN_SECRET is not set: ask-ice and GET /ice answer STUN only; \
                 relayed calls will fail for peers behind symmetric NATs or strict firewalls"
            );
        }
        Ok(ice)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::config::Settings;

    use crate::config::tests::settings;

    #[test]
    fn defaults_are_the_seeds() {
        let s = settings(&[]);
        let ice = s.ice.build().unwrap();
        let c = ice.config();
        assert!(!ice.mints());
        assert_eq!((c.ttl.as_secs(), c.port, c.tls_port), (600, 3478, 5349));
        assert!(c.transports.udp && c.transports.tcp && c.transports.tls);
        assert!(c.hosts.is_empty() && c.stun_urls.is_empty());
    }

    #[test]
    fn flags_reach_the_answer() {
        let s = settings(&[
            "--turn-secret",
            "new-secret,old-secret",
            "--turn-host",
            "turn1.example, turn2.example",
            "--turn-ttl",
            "2m",
            "--turn-port",
            "3479",
            "--turn-tls-port",
            "443",
            "--turn-transports",
            "udp,tls",
            "--stun-urls",
            "stun:stun.example.net:19302",
        ]);
        let answer = s.ice.build().unwrap().servers_at(1000, None);
        let urls: Vec<_> = answer.ice_servers.iter().map(|s| s.urls.as_str()).collect();
        assert_eq!(
            urls,
            [
                "stun:turn1.example:3479",
                "turn:turn1.example:3479?transport=udp",
                "turns:turn1.example:443?transport=tcp",
                "stun:turn2.example:3479",
                "turn:turn2.example:3479?transport=udp",
                "turns:turn2.example:443?transport=tcp",
                "stun:stun.example.net:19302",
            ]
        );
        assert_eq!(answer.ice_servers[1].username.as_deref(), Some("1120"));
        assert_eq!(
            answer.ice_servers[1].credential.as_deref(),
            Some(rtcio::ice::credential(b"new-secret", "1120").as_str())
        );
    }

    #[test]
    fn the_secret_stays_out_of_debug_help_and_errors() {
        let s = settings(&["--turn-secret", "hush-hush"]);
        let debug = format!("{s:?}");
        assert!(!debug.contains("hush-hush"), "{debug}");
        let err = s.ice.build().unwrap_err();
        assert!(!err.contains("hush-hush"), "{err}");
        let help = Settings::command().render_long_help().to_string();
        assert!(help.contains("--turn-secret") && help.contains("TURN_SECRET"));
        assert!(Settings::try_parse_from(["rtcio-server", "--turn-transports", "smoke"]).is_err());
    }
}
