//! Builds the HTTP application: the Socket.IO endpoint with the signaling
//! namespace, and the operational routes.

use axum::routing::get;
use axum::Router;
use rtcio::{Builder, Rooms};
use rtcio_engine::Server;

use crate::admin;
use crate::config::Settings;

/// The Socket.IO server and the router that serves it.
pub fn build(settings: &Settings) -> Result<(Server, Router), String> {
    let mut builder = Builder::new(settings.engine_config()?, settings.relay_scope);
    let rooms = Rooms::new();
    rooms.attach(builder.signaling(&settings.namespace));
    settings
        .chat
        .attach(builder.signaling(&settings.namespace), &rooms)?;
    let ice = settings.ice.build()?;
    ice.attach(builder.signaling(&settings.namespace));
    let admin = admin::install(
        &mut builder,
        &settings.admin,
        &settings.namespace,
        &rooms,
        None,
    )?;
    let io = builder.build();
    // GET /ice takes the socket's authenticator once JWT auth is wired (None: auth off).
    let ice_routes = ice.router(None, &io.config().cors);
    let router = Router::new()
        .route("/health", get(health))
        .route_service("/socket.io/", io.service())
        .merge(ice_routes);
    let router = crate::demo::mount(router, &settings.demo, &settings.namespace);
    let router = admin::mount(router, admin.as_ref(), &io, &settings.namespace)?;
    Ok((io, router))
}

/// `GET /health`: 200 `ok`, revealing nothing else.
async fn health() -> &'static str {
    "ok"
}
