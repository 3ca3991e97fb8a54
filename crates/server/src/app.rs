//! Builds the HTTP application: the Socket.IO endpoint with the signaling
//! namespace and its building blocks, and the plain HTTP routes.

use axum::routing::get;
use axum::Router;
use rtcio::Builder;
use rtcio::Rooms;
use rtcio_engine::Server;

use crate::admin;
use crate::config::Settings;

/// The Socket.IO server and the router that serves it.
pub fn build(settings: &Settings) -> Result<(Server, Router), String> {
    let mut config = settings.engine_config()?;
    config.recovery = settings.recovery.engine(settings.max_queue_bytes)?;
    let config_recovery = config.recovery;
    let mut builder = Builder::new(config, settings.relay_scope);
    let ns = settings.namespace.as_str();
    // Scaling out: the signaling namespace's rooms become the cluster's (Redis).
    let cluster = settings.cluster.start()?;
    if let Some(cluster) = &cluster {
        let signaling = builder.signaling(ns);
        signaling.adapter(cluster.adapter(ns));
        // Recovery sessions every node can reach: a client is recovered on
        // whichever node it reconnects to.
        if let Some(limits) = config_recovery {
            let sessions = rtcio_cluster::recovery::sessions(cluster, limits);
            signaling.recovery_store(sessions.store(ns));
        }
        // A dead node's sockets: peer-left at once, user-disconnected after the
        // grace unless recovered elsewhere (at once with recovery off).
        let grace = if settings.recovery.recovery_window.is_zero() {
            std::time::Duration::ZERO
        } else {
            settings.recovery.presence_grace
        };
        rtcio::presence::attach_remote_departures(signaling, grace);
    }
    // Authentication and rate limits first: they guard everything after them.
    let access = settings.access.build()?;
    access.attach(builder.signaling(ns));
    let mut rooms = Rooms::builder()
        .rules(access.rules.clone())
        .presence_grace(settings.recovery.presence_grace);
    // Scaling out: caps, passwords, names and media-state of rooms in Redis.
    if let Some(cluster) = &cluster {
        rooms = rooms.store(rtcio_cluster::RedisRoomStore::new(
            cluster.commands(),
            cluster.prefix(),
            cluster.node(),
        ));
    }
    let rooms = rooms.build();
    crate::observe::count_joins(&rooms);
    rooms.attach(crate::observe::attach(builder.signaling(ns)));
    let chat = settings.chat.attach(builder.signaling(ns), &rooms)?;
    if let Some(store) = chat.store().cloned() {
        // `/ready` answers 503 while the chat database cannot be reached.
        crate::readiness::global().register("chat-database", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        });
    }
    let ice = settings.ice.build()?;
    ice.attach(builder.signaling(ns));
    let admin = admin::install(
        &mut builder,
        &settings.admin,
        ns,
        &rooms,
        access.authenticator.clone(),
    )?;
    let io = builder.build();
    if let (Some(cluster), Some(signaling)) = (&cluster, io.of(ns)) {
        // Redis back (maybe restarted empty): the local sockets' rooms again.
        let rooms = rooms.clone();
        cluster.on_reconnect(move || {
            rooms.resync(&signaling);
            async {}
        });
    }

    // GET /ice accepts the socket's tokens and has its own per-IP budget.
    let ice_limit = access.http_limit(&io);
    let ice_routes = ice
        .router(access.authenticator.clone(), &io.config().cors)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let limit = ice_limit.clone();
                async move {
                    match limit.check(&req) {
                        Some(refusal) => refusal.map(axum::body::Body::new),
                        None => next.run(req).await,
                    }
                }
            },
        ));
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/ready", get(crate::readiness::ready))
        .route_service("/socket.io/", access.admit(&io, io.service()))
        .merge(ice_routes);
    if settings.metrics.metrics_addr.is_none() {
        router = router.merge(crate::prometheus::router(io.clone(), &settings.metrics));
    }
    let router = crate::demo::mount(router, &settings.demo, ns);
    let router = admin::mount(router, admin.as_ref(), &io, ns)?;
    Ok((io, router))
}

/// `GET /health`: 200 `ok`, revealing nothing else (liveness; `/ready` is readiness).
pub async fn health() -> &'static str {
    "ok"
}
