//! Readiness (`GET /ready`): whether a load balancer should send new clients
//! here. It answers 503 while the server drains during shutdown, or while a
//! dependency a feature registered (the chat database, Redis) fails its
//! check; 200 otherwise. `/health` stays a pure liveness check, so an
//! orchestrator does not restart a process whose database is down.
//!
//! Features register their checks on the process-wide registry with one
//! line, wherever they are built:
//!
//! ```ignore
//! readiness::global().register("chat-database", move || {
//!     let store = store.clone();
//!     async move { store.ping().await.map_err(|e| e.to_string()) }
//! });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// How long one check may take before it counts as failed: a dependency
/// that hangs is as unavailable as one that refuses.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

struct Check {
    name: &'static str,
    run: CheckFn,
    /// Whether the last run failed, so a failure is logged when it starts
    /// and when it ends rather than on every probe.
    failing: AtomicBool,
}

/// The draining flag and the registered dependency checks.
#[derive(Default)]
pub struct Readiness {
    draining: AtomicBool,
    checks: RwLock<Vec<Arc<Check>>>,
}

/// What `/ready` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Ready,
    Draining,
    /// The names of the checks that failed.
    Unavailable(Vec<&'static str>),
}

impl Readiness {
    /// Adds a dependency check; `/ready` is 503 while it fails (its error is
    /// logged, never sent to the prober, as it may name hosts).
    // Called by the features that have a dependency (chat database, Redis).
    #[allow(dead_code)]
    pub fn register<F, Fut>(&self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let run: CheckFn = Arc::new(move || Box::pin(check()));
        self.checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(Check {
                name,
                run,
                failing: AtomicBool::new(false),
            }));
    }

    /// From now on `/ready` answers 503 (shutdown has begun).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Runs every check (each bounded by [`CHECK_TIMEOUT`]) unless draining.
    pub async fn status(&self) -> Status {
        if self.is_draining() {
            return Status::Draining;
        }
        let checks = self
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut failed = Vec::new();
        for check in checks {
            let result = match tokio::time::timeout(CHECK_TIMEOUT, (check.run)()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            match result {
                Ok(()) => {
                    if check.failing.swap(false, Ordering::AcqRel) {
                        tracing::info!(check = check.name, "readiness check passes again");
                    }
                }
                Err(error) => {
                    if !check.failing.swap(true, Ordering::AcqRel) {
                        tracing::warn!(check = check.name, %error, "readiness check failed: /ready answers 503");
                    }
                    failed.push(check.name);
                }
            }
        }
        if failed.is_empty() {
            Status::Ready
        } else {
            Status::Unavailable(failed)
        }
    }
}

/// The registry the binary's `/ready` route reads.
pub fn global() -> &'static Readiness {
    static GLOBAL: OnceLock<Readiness> = OnceLock::new();
    GLOBAL.get_or_init(Readiness::default)
}

/// `GET /ready`: 200 `{"status":"ready"}`, or 503 with `draining` or
/// `unavailable` and the names of the failing checks.
pub async fn ready() -> Response {
    respond(global().status().await)
}

fn respond(status: Status) -> Response {
    match status {
        Status::Ready => (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Status::Draining => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response(),
        Status::Unavailable(failing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "failing": failing })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn ready_without_checks_and_draining_after_shutdown_starts() {
        let r = Readiness::default();
        assert_eq!(r.status().await, Status::Ready);
        r.start_draining();
        assert_eq!(r.status().await, Status::Draining);
        assert_eq!(
            respond(r.status().await).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn a_failing_check_makes_it_unavailable_until_it_passes() {
        let r = Readiness::default();
        let up = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let (up2, calls2) = (up.clone(), calls.clone());
        r.register("db", move || {
            calls2.fetch_add(1, Ordering::Relaxed);
            let ok = up2.load(Ordering::Relaxed);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("connection refused".into())
                }
            }
        });
        r.register("cache", || async { Ok(()) });
        assert_eq!(r.status().await, Status::Unavailable(vec!["db"]));
        assert_eq!(
            respond(r.status().await).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        up.store(true, Ordering::Relaxed);
        assert_eq!(r.status().await, Status::Ready);
        assert_eq!(respond(Status::Ready).status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::Relaxed), 3, "checked on every probe");
    }

    #[tokio::test]
    async fn a_hanging_check_times_out_as_failed() {
        let r = Readiness::default();
        r.register("slow", std::future::pending);
        assert_eq!(r.status().await, Status::Unavailable(vec!["slow"]));
    }
}
