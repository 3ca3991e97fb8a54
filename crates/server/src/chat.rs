//! The chat settings (`--database-url`, retention, `--no-history`...) and the
//! wiring of `rtcio::chat` into the signaling namespace.

use std::sync::Arc;
use std::time::Duration;

use rtcio::history::{Retention, DEFAULT_DATABASE_URL};
use rtcio::{Chat, ChatConfig, ChatStore, Rooms, SqlStore};
use rtcio_engine::NamespaceBuilder;

/// Server-routed chat with durable history.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatSettings {
    /// Where chat history is kept: `sqlite://PATH` (created when missing) or
    /// `postgres://user:password@host:port/db`. Default: `rtcio.db` (SQLite)
    /// in the working directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Store nothing: chat is relayed with the same validation, without
    /// history (no database is opened, no `chat-history` on join). The
    /// variable takes 1/0, true/false, yes/no, on/off.
    #[arg(long, env = "NO_HISTORY", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_history: bool,

    /// Messages older than this are deleted (`30d`, `12h`, `90m`, `45s`; `0` keeps them forever).
    #[arg(long, env = "HISTORY_MAX_AGE", default_value = "30d", value_parser = parse_age)]
    pub history_max_age: Duration,

    /// Only the newest this-many messages of each room are kept (`0`: no limit).
    #[arg(long, env = "HISTORY_MAX_PER_ROOM", default_value_t = 10_000)]
    pub history_max_per_room: u32,

    /// Recent messages a joiner receives as `chat-history` (`0`: none, and no `chat-history` on join).
    #[arg(long, env = "HISTORY_ON_JOIN", default_value_t = 50)]
    pub history_on_join: u32,

    /// How often retention runs (`ms`, `s`, `m`; a bare number is seconds).
    #[arg(long, env = "HISTORY_PRUNE_INTERVAL", default_value = "1m", value_parser = crate::config::parse_duration)]
    pub history_prune_interval: Duration,

    /// Most chat messages stored in one INSERT (1 turns batching off).
    #[arg(long, env = "HISTORY_BATCH_MAX", default_value_t = 128)]
    pub history_batch_max: usize,
}

/// Parses a retention age: a number with `s`, `m`, `h` or `d` (a bare number is seconds).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not an age like 30d, 12h or 90m"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(unit)))
}

impl ChatSettings {
    /// The store these settings name (`None` with `--no-history`). It
    /// connects lazily; a start-up check is spawned so a broken database is
    /// logged at once instead of at the first message.
    pub fn store(&self) -> Result<Option<Arc<dyn ChatStore>>, String> {
        if self.no_history {
            return Ok(None);
        }
        let url = self
            .database_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_DATABASE_URL);
        let store = SqlStore::open(url).map_err(|e| format!("--database-url: {e}"))?;
        let kind = store.kind();
        let store: Arc<dyn ChatStore> = Arc::new(store);
        let check = store.clone();
        tokio::spawn(async move {
            match check.ping().await {
                Ok(()) => tracing::info!(database = kind, "chat history ready"),
                Err(e) => tracing::warn!(
                    database = kind,
                    error = %e,
                    "chat history database unreachable; chat answers `unavailable` until it is back"
                ),
            }
        });
        Ok(Some(store))
    }

    pub fn config(&self) -> ChatConfig {
        ChatConfig {
            history_on_join: self.history_on_join,
            batch_max: self.history_batch_max.max(1),
            retention: Retention {
                max_age: Some(self.history_max_age).filter(|d| !d.is_zero()),
                max_per_room: Some(self.history_max_per_room).filter(|&n| n > 0),
            },
            prune_interval: self.history_prune_interval,
            ..ChatConfig::default()
        }
    }

    /// Chat on `ns`, its history on join hooked into `rooms`.
    pub fn attach(&self, ns: &mut NamespaceBuilder, rooms: &Rooms) -> Result<Arc<Chat>, String> {
        let chat = Chat::new(self.store()?, self.config());
        chat.attach(ns, rooms);
        Ok(chat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert!(parse_age("1w").is_err());
        assert!(parse_age("soon").is_err());
    }
}
