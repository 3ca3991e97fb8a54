//! Settings of connection-state recovery and the presence grace.

use std::time::Duration;

use rtcio_engine::Recovery;

use crate::config::parse_duration;

/// Connection-state recovery: a client whose connection was lost and that
/// comes back within the window keeps its socket id, rooms and data, and
/// gets the packets it missed.
#[derive(Debug, Clone, clap::Args)]
pub struct RecoverySettings {
    /// How long a lost socket's state is kept for its reconnect (`2m`, `30s`;
    /// a bare number is seconds); `0` turns recovery off.
    #[arg(long, env = "RECOVERY_WINDOW", default_value = "2m", value_parser = parse_duration)]
    pub recovery_window: Duration,

    /// With recovery on, how long `user-disconnected` waits for a lost socket
    /// to come back (`#rtcio:peer-left` is sent at once). Goodbyes are never held.
    #[arg(long, env = "PRESENCE_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub presence_grace: Duration,

    /// Most packets kept for one lost socket (unconfirmed, then missed while
    /// away); past it its state is dropped and the client connects fresh.
    #[arg(long, env = "RECOVERY_MAX_PACKETS", default_value_t = 1000)]
    pub recovery_max_packets: usize,

    /// Most bytes kept for one lost socket (at most half of --max-queue-bytes).
    #[arg(long, env = "RECOVERY_MAX_BYTES", default_value_t = 1 << 20)]
    pub recovery_max_bytes: usize,

    /// Whether a recovered socket skips the connect middleware (its data,
    /// identity included, comes back with it).
    #[arg(long, env = "RECOVERY_SKIP_MIDDLEWARE", default_value_t = true, action = clap::ArgAction::Set)]
    pub recovery_skip_middleware: bool,
}

impl RecoverySettings {
    /// The engine's recovery configuration (`None` when off), or why these
    /// settings cannot work with `max_queue_bytes`.
    pub fn engine(&self, max_queue_bytes: usize) -> Result<Option<Recovery>, String> {
        if self.recovery_window.is_zero() {
            return Ok(None);
        }
        if self.recovery_max_bytes > max_queue_bytes / 2 {
            // A recovered socket's missed packets are queued at once: they
            // must fit the outgoing queue with room to spare.
            return Err(format!(
                "--recovery-max-bytes ({}) must be at most half of --max-queue-bytes ({max_queue_bytes})",
                self.recovery_max_bytes
            ));
        }
        if self.recovery_max_packets == 0 {
            return Err("--recovery-max-packets must be at least 1 (use --recovery-window 0 to turn recovery off)".into());
        }
        Ok(Some(Recovery {
            window: self.recovery_window,
            max_packets: self.recovery_max_packets,
            max_bytes: self.recovery_max_bytes,
            skip_middleware: self.recovery_skip_middleware,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::settings;

    #[test]
    fn recovery_is_on_by_default_as_the_reference() {
        let s = settings(&[]);
        let r = s.recovery.engine(s.max_queue_bytes).unwrap().unwrap();
        assert_eq!(r.window, Duration::from_secs(120));
        assert!(r.skip_middleware);
        assert_eq!(s.recovery.presence_grace, Duration::from_secs(10));
    }

    #[test]
    fn a_zero_window_turns_it_off_and_bad_limits_are_refused() {
        let s = settings(&["--recovery-window", "0"]);
        assert_eq!(s.recovery.engine(s.max_queue_bytes).unwrap(), None);
        let s = settings(&["--recovery-max-bytes", "4000000"]);
        assert!(s.recovery.engine(s.max_queue_bytes).is_err());
        let s = settings(&["--recovery-max-packets", "0"]);
        assert!(s.recovery.engine(s.max_queue_bytes).is_err());
        let s = settings(&[
            "--recovery-skip-middleware",
            "false",
            "--presence-grace",
            "3",
        ]);
        assert!(
            !s.recovery
                .engine(s.max_queue_bytes)
                .unwrap()
                .unwrap()
                .skip_middleware
        );
        assert_eq!(s.recovery.presence_grace, Duration::from_secs(3));
    }
}
