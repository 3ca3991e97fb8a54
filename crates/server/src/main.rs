//! `rtcio-server`: parse the settings, build the pieces, serve, shut down gracefully.

mod app;
mod config;
mod recovery;
mod shutdown;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::serve::ListenerExt;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let settings = config::Settings::parse();
    let (io, router) = match app::build(&settings) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("rtcio-server: {e}");
            return ExitCode::from(2);
        }
    };
    let listener =
        match tokio::net::TcpListener::bind((settings.host.as_str(), settings.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "rtcio-server: cannot listen on {}:{}: {e}",
                    settings.host, settings.port
                );
                return ExitCode::from(1);
            }
        };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // Small frames must not wait for Nagle's algorithm (measured: 4x lower relay rate).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tracing::info!(namespace = %settings.namespace, relay_scope = ?settings.relay_scope, "rtcio-server listening on {addr}");

    let closing = io.clone();
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown::signal().await;
        tracing::info!("shutting down");
        closing.close(shutdown::GRACE).await;
    });
    // HTTP connections still open after the sessions closed do not hold the exit up.
    let result = tokio::select! {
        r = serve => r,
        _ = async {
            shutdown::signal().await;
            tokio::time::sleep(shutdown::GRACE * 2).await;
        } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
