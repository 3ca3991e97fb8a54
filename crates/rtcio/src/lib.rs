//! # rtcio
//!
//! The Rust counterpart of the Node `rtc.io-server` package, on
//! [`rtcio_engine`]: the reserved event names ([`events`]), the default
//! listeners (the `#rtcio:message` relay and the `#rtcio:peer-left` hint,
//! [`relay`]), and the reference server's rooms & presence ([`rooms`]), each a
//! building block a namespace opts into; and server-routed chat with durable
//! history ([`chat`] over the [`history`] store: SQLite or PostgreSQL);
//! [`admin`] is an authenticated namespace that manages a signaling one
//! (list rooms, stats, kick, close).
//!
//! ```no_run
//! use rtcio::{Builder, RelayScope, Rooms};
//!
//! # async fn run() {
//! let mut builder = Builder::new(Default::default(), RelayScope::SharedRoom);
//! // `/calls` relays signaling and has rooms; `/admin` does no WebRTC.
//! Rooms::new().attach(builder.signaling("/calls"));
//! builder.namespace("/admin").on_connect(|socket| tracing::info!(id = %socket.id(), "admin"));
//! let io = builder.build();
//! let app: axum::Router = axum::Router::new().route_service("/socket.io/", io.service());
//! # }
//! ```

pub mod admin;
pub mod admission;
pub mod auth;
pub mod chat;
mod counters;
pub mod errors;
pub mod events;
pub mod history;
mod http_client;
pub mod ice;
pub mod identity;
pub mod policy;
pub mod presence;
pub mod ratelimit;
pub mod relay;
pub mod room_store;
pub mod rooms;

pub use admin::Admin;
pub use chat::{Chat, ChatConfig};
pub use errors::{ClientError, ErrorCode};
pub use history::{ChatStore, SqlStore};
pub use ice::{Ice, IceConfig, IceServers, TurnSecrets, TurnTransports};
pub use identity::{AuthError, Authenticator, Identity};
pub use relay::{add_default_listeners, RelayScope};
pub use room_store::{MemoryRoomStore, PeerInfo, RoomStore};
pub use rooms::{Peer, RoomRules, Rooms, RoomsBuilder};

use axum::serve::ListenerExt;
use rtcio_engine::{Config, NamespaceBuilder, Server, ServerBuilder};

/// Serves `io` at `/socket.io/` (and `GET /health` → `ok`) on `addr` until
/// the process ends: the shortest way to run a server built with this crate.
/// (The `rtcio-server` binary adds configuration and graceful shutdown.)
pub async fn serve(io: Server, addr: &str) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route_service("/socket.io/", io.service());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    // Small frames must not wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}

/// Builds a server whose signaling namespaces carry the default listeners.
pub struct Builder {
    engine: ServerBuilder,
    scope: RelayScope,
    signaling: Vec<String>,
}

impl Builder {
    pub fn new(config: Config, scope: RelayScope) -> Self {
        Builder {
            engine: Server::builder_with(config),
            scope,
            signaling: Vec::new(),
        }
    }

    /// A namespace that relays signaling (the default listeners are attached once).
    pub fn signaling(&mut self, name: &str) -> &mut NamespaceBuilder {
        let scope = self.scope;
        let first = !self.signaling.iter().any(|n| n == name);
        if first {
            self.signaling.push(name.to_owned());
        }
        let ns = self.engine.namespace(name);
        if first {
            add_default_listeners(ns, scope);
        }
        ns
    }

    /// A namespace without the relay (an admin panel, say).
    pub fn namespace(&mut self, name: &str) -> &mut NamespaceBuilder {
        self.engine.namespace(name)
    }

    /// The engine settings, to adjust before building.
    pub fn config_mut(&mut self) -> &mut Config {
        self.engine.config_mut()
    }

    pub fn build(self) -> Server {
        self.engine.build()
    }
}
