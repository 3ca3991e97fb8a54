//! Opening a Redis client the cluster's way.
//!
//! The redis crate leaves Nagle's algorithm on by default. Every cross-node
//! envelope is a small PUBLISH written while the previous pipeline may still
//! be unacknowledged, and every join waits on a small EVALSHA: with Nagle,
//! such a write can sit in the kernel until Redis's delayed ACK comes back,
//! adding milliseconds to an envelope or a join. So every connection the
//! cluster opens (commands, publisher, subscriber, room store) sets
//! `TCP_NODELAY`, as the server does on its client sockets.

use redis::{IntoConnectionInfo, RedisResult};

/// A client for `url` whose connections send each write at once.
pub fn client(url: &str) -> RedisResult<redis::Client> {
    let info = url.into_connection_info()?;
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    redis::Client::open(info.set_tcp_settings(tcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_opened_without_nagle() {
        let c = client("redis://:secret@127.0.0.1:6379/2").unwrap();
        assert!(c.get_connection_info().tcp_settings().nodelay());
        // Everything else of the URL is kept.
        assert_eq!(c.get_connection_info().redis_settings().db(), 2);
    }

    #[test]
    fn a_unix_socket_url_is_accepted() {
        let c = client("unix:///tmp/redis.sock").unwrap();
        assert!(matches!(
            c.get_connection_info().addr(),
            redis::ConnectionAddr::Unix(path) if path.to_str() == Some("/tmp/redis.sock")
        ));
    }

    #[test]
    fn a_malformed_url_is_refused() {
        assert!(client("http://nope").is_err());
    }
}
