//! Builds the HTTP application: the Socket.IO endpoint with the signaling
//! namespace, and the operational routes.

use axum::routing::get;
use axum::Router;
use rtcio::{Builder, Rooms};
use rtcio_engine::Server;

use crate::config::Settings;

/// The Socket.IO server and the router that serves it.
pub fn build(settings: &Settings) -> Result<(Server, Router), String> {
    let mut config = settings.engine_config()?;
    config.recovery = settings.recovery.engine(settings.max_queue_bytes)?;
    let mut builder = Builder::new(config, settings.relay_scope);
    Rooms::with_presence_grace(settings.recovery.presence_grace)
        .attach(builder.signaling(&settings.namespace));
    let io = builder.build();
    let router = Router::new()
        .route("/health", get(health))
        .route_service("/socket.io/", io.service());
    Ok((io, router))
}

/// `GET /health`: 200 `ok`, revealing nothing else.
async fn health() -> &'static str {
    "ok"
}
