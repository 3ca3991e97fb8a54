//! Engine settings, with socket.io's defaults.

use std::time::Duration;

use http::{HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// Which transports clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    pub polling: bool,
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Transports {
            polling: true,
            websocket: true,
        }
    }
}

/// Which origins may reach the server from a browser.
#[derive(Debug, Clone, Default)]
pub enum Cors {
    /// `Access-Control-Allow-Origin: *` (socket.io's default, and the reference deployment's).
    #[default]
    Any,
    /// Only these origins; with `credentials`, cookies and auth headers are allowed too.
    List {
        origins: Vec<HeaderValue>,
        credentials: bool,
    },
}

impl Cors {
    /// This policy as a tower-http layer for routes answering `methods`, so
    /// plain HTTP routes beside the Socket.IO endpoint (`GET /ice`) follow
    /// exactly the socket's origins. Request headers are mirrored (a page may
    /// send `Authorization`).
    pub fn layer(&self, methods: impl IntoIterator<Item = Method>) -> CorsLayer {
        let layer = CorsLayer::new()
            .allow_methods(methods.into_iter().collect::<Vec<_>>())
            .allow_headers(AllowHeaders::mirror_request());
        match self {
            Cors::Any => layer.allow_origin(AllowOrigin::any()),
            Cors::List {
                origins,
                credentials,
            } => layer
                .allow_origin(AllowOrigin::list(origins.iter().cloned()))
                .allow_credentials(*credentials),
        }
    }
}

/// Engine.IO / Socket.IO settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often the server pings each client (socket.io: 25 s).
    pub ping_interval: Duration,
    /// How long a pong may take before the connection is closed (socket.io: 20 s).
    pub ping_timeout: Duration,
    /// Largest message or polling body a client may send, in bytes (socket.io: 1 MB).
    pub max_payload: usize,
    /// How long a new connection may wait before joining a namespace (socket.io: 45 s).
    pub connect_timeout: Duration,
    /// How long a polling→WebSocket upgrade may take (socket.io: 10 s).
    pub upgrade_timeout: Duration,
    /// Bytes that may wait in one socket's outgoing queue before it is cut off
    /// as a slow consumer.
    pub max_queue_bytes: usize,
    pub transports: Transports,
    pub cors: Cors,
    /// Connection-state recovery (socket.io 4.6+); `None`, socket.io's
    /// default, turns it off.
    pub recovery: Option<Recovery>,
}

/// Connection-state recovery: a client whose connection was lost (not one
/// that said goodbye) and that reconnects within `window` gets back its
/// socket id, rooms, per-socket data and the packets it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// How long a lost socket's state is kept (socket.io: 2 minutes).
    pub window: Duration,
    /// Most packets kept for one socket (sent but unconfirmed, then missed
    /// while away); past it an absent socket's state is dropped.
    pub max_packets: usize,
    /// Most bytes kept for one socket, counted like the outgoing queue.
    pub max_bytes: usize,
    /// Whether a recovered socket skips the connect middleware (socket.io's
    /// `skipMiddlewares`, default true): its data, the identity included,
    /// comes back with it.
    pub skip_middleware: bool,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            window: Duration::from_secs(120),
            max_packets: 1000,
            max_bytes: 1 << 20,
            skip_middleware: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_secs(45),
            upgrade_timeout: Duration::from_secs(10),
            max_queue_bytes: 4 << 20,
            transports: Transports::default(),
            cors: Cors::default(),
            recovery: None,
        }
    }
}
