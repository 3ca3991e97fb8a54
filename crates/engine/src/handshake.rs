//! What a client presented when it opened its connection.

use std::net::SocketAddr;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

/// The HTTP request that opened an Engine.IO session, shared by all of its
/// namespaces' sockets (socket.io's `socket.handshake`; `auth` is per socket).
///
/// Headers are kept as one compact owned text block: the request's own
/// header values are slices of hyper's connection buffer, and keeping them
/// would keep that whole buffer alive for as long as the client stays
/// connected (measured: the largest part of an idle socket's memory).
#[derive(Debug)]
pub struct Handshake {
    /// `name: value` lines, names in lower case.
    headers: Box<str>,
    /// The raw query string (without `?`).
    pub query: Box<str>,
    /// The peer's address, when the server was started with connect info.
    pub address: Option<SocketAddr>,
    pub issued: SystemTime,
}

impl Handshake {
    pub(crate) fn new(headers: &HeaderMap, query: &str, address: Option<SocketAddr>) -> Self {
        let mut block = String::with_capacity(
            headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 3)
                .sum(),
        );
        for (name, value) in headers {
            block.push_str(name.as_str());
            block.push_str(": ");
            block.push_str(&String::from_utf8_lossy(value.as_bytes()));
            block.push('\n');
        }
        Handshake {
            headers: block.into_boxed_str(),
            query: query.into(),
            address,
            issued: SystemTime::now(),
        }
    }

    /// Every header as `(name, value)`, names in lower case, in request order.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .lines()
            .filter_map(|line| line.split_once(": "))
    }

    /// One header's value (the first, if repeated); `name` in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The headers as an `http::HeaderMap` (built on each call).
    pub fn headers(&self) -> HeaderMap {
        self.header_pairs()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::from_bytes(k.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect()
    }

    /// The decoded query parameters.
    pub fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        form_urlencoded::parse(self.query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
    }

    /// One query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_kept_and_readable() {
        let mut map = HeaderMap::new();
        map.insert("origin", HeaderValue::from_static("https://app.example"));
        map.append("x-multi", HeaderValue::from_static("one"));
        map.append("x-multi", HeaderValue::from_static("two"));
        let hs = Handshake::new(&map, "a=1&b=x%20y", None);
        assert_eq!(hs.header("Origin"), Some("https://app.example"));
        assert_eq!(hs.header("x-multi"), Some("one"));
        assert_eq!(hs.header("missing"), None);
        assert_eq!(hs.headers().get_all("x-multi").iter().count(), 2);
        assert_eq!(hs.query_param("b").as_deref(), Some("x y"));
        assert_eq!(hs.header_pairs().count(), 3);
    }
}
