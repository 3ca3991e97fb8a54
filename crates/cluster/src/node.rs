//! A node's identity: 16 random hex characters drawn at start, so a
//! restarted process is a new node (its old sockets are gone anyway).

use std::fmt;
use std::sync::Arc;

/// The id of one server process in the cluster.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// A fresh random id.
    pub fn random() -> Self {
        let bytes: [u8; 8] = rand::random();
        let mut hex = String::with_capacity(16);
        for b in bytes {
            hex.push_str(&format!("{b:02x}"));
        }
        NodeId(hex.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId(s.into())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

/// The Redis keys and channels of a cluster, under one prefix (`rtcio`).
#[derive(Clone, Debug)]
pub struct Keys {
    pub prefix: String,
}

impl Keys {
    /// `rtcio:node:{node}`: the liveness key (`SET .. PX ttl`, refreshed each second).
    pub fn node(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }
    /// `rtcio:nodes`: every node seen alive (dead ones removed by the reaper).
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    /// `rtcio:sockets:{node}`: hash `{ns}|{sid}` → `{"rooms":[..]}`.
    pub fn sockets(&self, node: &str) -> String {
        format!("{}:sockets:{node}", self.prefix)
    }
    /// `rtcio:room:{ns}:{room}`: room membership (the room store's hash).
    pub fn room(&self, ns: &str, room: &str) -> String {
        format!("{}:room:{ns}:{room}", self.prefix)
    }
    /// `rtcio:reaper:{node}`: the lock one survivor takes to clean up after a dead node.
    pub fn reaper(&self, node: &str) -> String {
        format!("{}:reaper:{node}", self.prefix)
    }
    /// `rtcio:leaving:{node}`: set (with an expiry) by a node that is
    /// stopping; while it exists the node is not declared dead.
    pub fn leaving(&self, node: &str) -> String {
        format!("{}:leaving:{node}", self.prefix)
    }
    /// `rtcio:bus`: membership changes and node announcements, to every node.
    pub fn bus(&self) -> String {
        format!("{}:bus", self.prefix)
    }
    /// `rtcio:to:{node}`: packets and requests for one node.
    pub fn to(&self, node: &str) -> String {
        format!("{}:to:{node}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex_chars_and_differ() {
        let (a, b) = (NodeId::random(), NodeId::random());
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn keys_follow_the_contract() {
        let k = Keys {
            prefix: "rtcio".into(),
        };
        assert_eq!(k.node("n1"), "rtcio:node:n1");
        assert_eq!(k.sockets("n1"), "rtcio:sockets:n1");
        assert_eq!(k.room("/", "r"), "rtcio:room:/:r");
        assert_eq!(k.bus(), "rtcio:bus");
        assert_eq!(k.to("n1"), "rtcio:to:n1");
        assert_eq!(k.leaving("n1"), "rtcio:leaving:n1");
    }
}
