//! `rtcio-server`: read the settings (flags, environment, configuration
//! file), set up logs, descriptors and metrics, serve (HTTP or HTTPS, and
//! optionally /metrics on its own address), shut down gracefully.

mod access;
mod admin;
mod app;
mod capacity;
mod chat;
mod cluster;
mod config;
mod config_file;
mod demo;
mod ice;
mod listener;
mod logging;
mod observe;
mod process;
mod prometheus;
mod readiness;
mod recovery;
mod secret;
mod shutdown;
mod tls;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;

use crate::listener::Accepting;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match config_file::load() {
        Ok(config_file::Loaded::Run(settings)) => settings,
        Ok(config_file::Loaded::Printed) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtcio-server: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(settings.logging.log_format);
    capacity::raise_and_report();
    // Before the server is built: the counters it registers must reach this recorder.
    if let Err(e) = prometheus::install() {
        tracing::warn!("{e}");
    }

    let tls = match settings.tls.server_config() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("rtcio-server: {e}");
            return ExitCode::from(2);
        }
    };
    let (io, router) = match app::build(&settings) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("rtcio-server: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match bind(&settings.host, settings.port).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rtcio-server: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(addr) = &settings.metrics.metrics_addr {
        let metrics_listener = match bind_addr(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("rtcio-server: --metrics-addr: {e}");
                return ExitCode::from(1);
            }
        };
        let local = axum::serve::Listener::local_addr(&metrics_listener)
            .map(|a| a.to_string())
            .unwrap_or_default();
        let metrics_router = prometheus::router(io.clone(), &settings.metrics)
            .route("/health", get(app::health))
            .route("/ready", get(readiness::ready));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics_listener, metrics_router).await {
                tracing::error!(error = %e, "the metrics server failed");
            }
        });
        tracing::info!("metrics served on http://{local}/metrics");
    }
    let addr = axum::serve::Listener::local_addr(&listener)
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(
        namespace = %settings.namespace,
        relay_scope = ?settings.relay_scope,
        tls = tls.is_some(),
        "rtcio-server listening on {addr}"
    );

    let drain_delay = settings.shutdown.drain_delay;
    let closing = io.clone();
    let stop = async move {
        shutdown::signal().await;
        readiness::global().start_draining();
        cluster::leaving(drain_delay, shutdown::GRACE).await;
        tracing::info!(?drain_delay, "shutting down: draining (/ready answers 503)");
        tokio::time::sleep(drain_delay).await;
        tracing::info!("closing every session");
        closing.close(shutdown::GRACE).await;
        cluster::goodbye().await;
    };
    let result = match tls {
        Some(config) => match tls::TlsListener::new(listener, config) {
            Ok(l) => serve(l, router, stop, drain_delay).await,
            Err(e) => Err(e),
        },
        None => serve(listener, router, stop, drain_delay).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn bind(host: &str, port: u16) -> Result<Accepting, String> {
    tokio::net::TcpListener::bind((host, port))
        .await
        .map(Accepting::new)
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))
}

async fn bind_addr(addr: &str) -> Result<Accepting, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Accepting::new)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Serves until `stop` has run; HTTP connections still open after the
/// sessions closed do not hold the exit up.
async fn serve<L>(
    listener: L,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
    drain_delay: std::time::Duration,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: Send,
{
    // `tap_io` gives any listener with socket addresses the `ConnectInfo` the engine reads.
    let serve = axum::serve(
        listener.tap_io(|_| {}),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop);
    tokio::select! {
        r = serve.into_future() => r,
        _ = async {
            shutdown::signal().await;
            tokio::time::sleep(drain_delay + shutdown::GRACE * 2).await;
        } => Ok(()),
    }
}
