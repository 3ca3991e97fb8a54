//! Graceful shutdown: on SIGINT or SIGTERM stop accepting, close every
//! session (clients see the connection close and reconnect elsewhere), and
//! exit within a bounded time.

use std::time::Duration;

/// How long sessions get to close before the process exits anyway.
pub const GRACE: Duration = Duration::from_secs(5);

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
