//! What a client presented when it opened its connection.

use std::net::SocketAddr;
use std::time::SystemTime;

use http::HeaderMap;

/// The HTTP request that opened an Engine.IO session, shared by all of its
/// namespaces' sockets (socket.io's `socket.handshake`; `auth` is per socket).
#[derive(Debug)]
pub struct Handshake {
    pub headers: HeaderMap,
    /// The raw query string (without `?`).
    pub query: String,
    /// The peer's address, when the server was started with connect info.
    pub address: Option<SocketAddr>,
    pub issued: SystemTime,
}

impl Handshake {
    /// The decoded query parameters.
    pub fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        form_urlencoded::parse(self.query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
    }

    /// One query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
