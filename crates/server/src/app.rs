//! Builds the HTTP application: the Socket.IO endpoint with the signaling
//! namespace, and the operational routes.

use axum::routing::get;
use axum::Router;
use rtcio::{Builder, Rooms};
use rtcio_engine::Server;

use crate::config::Settings;

/// The Socket.IO server and the router that serves it.
pub fn build(settings: &Settings) -> Result<(Server, Router), String> {
    let mut builder = Builder::new(settings.engine_config()?, settings.relay_scope);
    let access = settings.access.build()?;
    access.attach(builder.signaling(&settings.namespace));
    Rooms::with_rules(access.rules.clone()).attach(builder.signaling(&settings.namespace));
    let io = builder.build();
    let router = Router::new()
        .route("/health", get(health))
        .route_service("/socket.io/", access.admit(&io, io.service()));
    Ok((io, router))
}

/// `GET /health`: 200 `ok`, revealing nothing else.
async fn health() -> &'static str {
    "ok"
}
