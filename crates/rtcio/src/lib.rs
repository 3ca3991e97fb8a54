//! # rtcio
//!
//! The Rust counterpart of the Node `rtc.io-server` package, on
//! [`rtcio_engine`]: the reserved event names ([`events`]), the default
//! listeners (the `#rtcio:message` relay and the `#rtcio:peer-left` hint,
//! [`relay`]), and the reference server's rooms & presence ([`rooms`]), each a
//! building block a namespace opts into.
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

pub mod errors;
pub mod events;
pub mod relay;
pub mod rooms;

pub use errors::{ClientError, ErrorCode};
pub use relay::{add_default_listeners, RelayScope};
pub use rooms::{Peer, Rooms};

use rtcio_engine::{Config, NamespaceBuilder, Server, ServerBuilder};

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
