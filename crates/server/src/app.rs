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
    let rooms = Rooms::new();
    crate::observe::count_joins(&rooms);
    rooms.attach(crate::observe::attach(
        builder.signaling(&settings.namespace),
    ));
    let io = builder.build();
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/ready", get(crate::readiness::ready))
        .route_service("/socket.io/", io.service());
    if settings.metrics.metrics_addr.is_none() {
        router = router.merge(crate::prometheus::router(io.clone(), &settings.metrics));
    }
    Ok((io, router))
}

/// `GET /health`: 200 `ok`, revealing nothing else (liveness; `/ready` is readiness).
pub async fn health() -> &'static str {
    "ok"
}
