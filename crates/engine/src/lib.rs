//! # rtcio-engine
//!
//! A lean Engine.IO 4 / Socket.IO 5 server core, written for a signaling
//! server's load: many mostly idle connections, and small messages relayed
//! between them in order.
//!
//! - **Order.** Each connection is driven by one task that runs its
//!   handlers one at a time in arrival order, so what one client sends is
//!   handled, and relayed, in the order it was sent, on any number of threads.
//! - **Bounded memory.** Each connection's outgoing queue is bounded; a
//!   client that does not read is cut off as a slow consumer. An idle
//!   WebSocket holds no read or write buffer.
//! - **Batching.** Frames queued while a write is in progress go out
//!   together in one system call.
//! - **A socket.io-like API.** [`Server::builder`] → namespaces with
//!   middleware, connection and event handlers (registered once per
//!   namespace), [`Socket`]s with rooms, emits, acks and typed data, and an
//!   [`Adapter`] trait behind rooms and broadcasts.
//!
//! ```no_run
//! use rtcio_engine::{Server, ConnectError};
//!
//! # async fn run() {
//! let mut builder = Server::builder();
//! builder
//!     .namespace("/")
//!     .middleware(|socket| async move {
//!         match socket.auth::<serde_json::Value>() {
//!             Some(auth) if auth["token"].is_string() => Ok(()),
//!             _ => Err(ConnectError::new("missing token")),
//!         }
//!     })
//!     .on("echo", |socket, event| {
//!         let _ = socket.emit_payload("echo", event.args().to_payload());
//!     });
//! let io = builder.build();
//! let app = axum::Router::new().route_service("/socket.io/", io.service());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

mod adapter;
mod broadcast;
mod config;
pub mod eio;
mod event;
mod handshake;
mod namespace;
mod queue;
mod recovery;
mod server;
mod service;
mod session;
mod sid;
pub mod sio;
mod socket;
mod transport;
pub mod ws;

pub use adapter::{Adapter, BroadcastOptions, LocalAdapter, Room};
pub use broadcast::BroadcastOperator;
pub use config::{Config, Cors, Recovery, Transports};
pub use event::{
    AckError, AckSender, ArgError, Args, EmitError, Encoded, Event, Payload, Placeholder,
};
pub use handshake::Handshake;
pub use namespace::{ConnectError, Namespace, NamespaceBuilder, NamespaceHandle};
pub use recovery::{MemoryStore, Parked, RecoveryStore};
pub use server::{Server, ServerBuilder};
pub use service::{EngineService, Service};
pub use sid::{InvalidSid, Sid};
pub use socket::{DisconnectReason, Socket};
