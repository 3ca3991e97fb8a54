//! Graceful shutdown: on SIGINT or SIGTERM `/ready` answers 503 at once
//! (draining), the server keeps serving for `--drain-delay` so a load
//! balancer stops sending new clients, then it stops accepting, closes
//! every session (clients see the connection close and reconnect
//! elsewhere), and exits within a bounded time.

use std::time::Duration;

use crate::config::parse_duration;

/// How long sessions get to close before the process exits anyway.
pub const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownArgs {
    /// On SIGTERM, how long the server keeps serving while /ready answers
    /// 503, before it closes the sessions: time for a load balancer to stop
    /// sending new clients here (`0s`: close at once).
    #[arg(long, env = "DRAIN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub drain_delay: Duration,
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
