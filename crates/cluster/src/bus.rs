//! The wire between nodes: ONE publisher connection that sends, in order,
//! every command and publish a node makes, and the message format.
//!
//! Everything one node sends goes through one queue drained by one task
//! onto one Redis connection, and every node reads both its channels on one
//! subscriber connection: so what node A sends reaches node B in the order A
//! sent it, whatever the channel. That is what keeps a sender's relays in
//! order and a `join` ahead of the `user-connected` it causes.
//!
//! A message is a JSON header line, then (for packets) the Socket.IO packet
//! exactly as it was encoded for the local sockets, its text then its binary
//! attachments, their lengths in the header: a payload is never re-encoded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Most commands sent in one pipeline.
const BATCH: usize = 512;

/// Something for the publisher connection.
pub enum Op {
    /// `PUBLISH channel payload`.
    Publish(String, Bytes),
    /// Any other command (HSET, DEL...), its answer ignored.
    Cmd(redis::Cmd),
    /// Answered once everything queued before it was sent.
    Flush(oneshot::Sender<()>),
}

/// The publisher: a queue in front of one connection. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    tx: mpsc::UnboundedSender<Op>,
    /// Whether Redis is reachable (the subscriber connection is up). While
    /// it is not, nothing is queued: what would be sent is re-sent whole by
    /// the resynchronisation when it is back.
    up: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl Bus {
    /// Starts the publisher task on `conn`.
    pub fn start(conn: ConnectionManager, up: Arc<AtomicBool>) -> Bus {
        let (tx, rx) = mpsc::unbounded_channel();
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(publisher(conn, rx, dropped.clone()));
        Bus { tx, up, dropped }
    }

    /// A bus whose queue the caller reads (tests: what would be sent, in order).
    #[doc(hidden)]
    pub fn detached(up: bool) -> (Bus, mpsc::UnboundedReceiver<Op>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let bus = Bus {
            tx,
            up: Arc::new(AtomicBool::new(up)),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (bus, rx)
    }

    /// Whether Redis is reachable.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Queues `op` (dropped while Redis is down).
    pub fn send(&self, op: Op) {
        if self.is_up() {
            let _ = self.tx.send(op);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `op` whatever the state (the resynchronisation, the goodbye).
    pub fn send_always(&self, op: Op) {
        let _ = self.tx.send(op);
    }

    pub fn publish(&self, channel: String, payload: impl Into<Bytes>) {
        self.send(Op::Publish(channel, payload.into()));
    }

    /// Resolves once everything queued so far was sent (or failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Op::Flush(tx));
        let _ = rx.await;
    }

    /// Messages not sent because Redis was down (or a batch failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn publisher(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Op>,
    dropped: Arc<AtomicU64>,
) {
    let mut ops = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut ops, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let mut flushes = Vec::new();
        let mut n = 0u64;
        for op in ops.drain(..) {
            match op {
                Op::Publish(channel, payload) => {
                    pipe.cmd("PUBLISH").arg(channel).arg(&payload[..]).ignore();
                    n += 1;
                }
                Op::Cmd(cmd) => {
                    pipe.add_command(cmd).ignore();
                    n += 1;
                }
                Op::Flush(done) => flushes.push(done),
            }
        }
        if n > 0 {
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                dropped.fetch_add(n, Ordering::Relaxed);
                tracing::debug!(kind = ?e.kind(), "a batch of cluster messages was not sent");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// A message's header (the line before the packet, if any).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Header {
    /// A socket of node `n` connected to namespace `ns`.
    Connect { n: String, ns: String, s: String },
    /// A socket of node `n` left (with a goodbye: its departure was announced).
    Disconnect { n: String, ns: String, s: String },
    /// A socket of node `n` joined room `r`.
    Join {
        n: String,
        ns: String,
        s: String,
        r: String,
    },
    /// A socket of node `n` left room `r`.
    Leave {
        n: String,
        ns: String,
        s: String,
        r: String,
    },
    /// Node `n` (re)connected: every node answers with its snapshots.
    Hello { n: String },
    /// Every socket of node `n` in `ns` with its rooms: replaces what the
    /// replica held for that node in that namespace.
    Snapshot {
        n: String,
        ns: String,
        sockets: Vec<(String, Vec<String>)>,
    },
    /// Node `n` stops cleanly.
    Goodbye { n: String },
    /// A packet for sockets `s` of the receiving node: its text is the first
    /// `l` bytes of the body, then attachments of lengths `a`.
    Deliver {
        ns: String,
        s: Vec<String>,
        l: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        a: Vec<usize>,
    },
    /// Node `n` asks every other node to run the `on_cluster_request`
    /// handler `kind` of namespace `ns` with `data`.
    Request {
        n: String,
        ns: String,
        kind: String,
        data: String,
    },
    /// Node `n` asks the receiving node to disconnect its socket `s`.
    Kick { n: String, ns: String, s: String },
    /// Anything else (recovery takeover...), for a handler registered by
    /// `kind` on the cluster; `data` is its own header, the body follows.
    Custom {
        n: String,
        kind: String,
        #[serde(default)]
        data: serde_json::Value,
    },
}

/// Header line + body.
pub fn encode(header: &Header, body: &[&[u8]]) -> Bytes {
    let mut out = serde_json::to_vec(header).expect("headers always serialise");
    let size: usize = body.iter().map(|b| b.len()).sum();
    out.reserve(size + 1);
    out.push(b'\n');
    for part in body {
        out.extend_from_slice(part);
    }
    Bytes::from(out)
}

/// The header and the body of a message; `None` if it is not one of ours.
pub fn decode(message: &[u8]) -> Option<(Header, &[u8])> {
    let split = message.iter().position(|&b| b == b'\n')?;
    let header = serde_json::from_slice(&message[..split]).ok()?;
    Some((header, &message[split + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_raw_bodies() {
        let h = Header::Deliver {
            ns: "/".into(),
            s: vec!["a".into(), "b".into()],
            l: 5,
            a: vec![3],
        };
        let m = encode(&h, &[b"42[1]", b"\n\x00\xff"]);
        let (back, body) = decode(&m).unwrap();
        assert_eq!(back, h);
        assert_eq!(body, b"42[1]\n\x00\xff");
        let j = encode(
            &Header::Join {
                n: "n".into(),
                ns: "/x".into(),
                s: "s".into(),
                r: "line\nbreak".into(),
            },
            &[],
        );
        assert!(matches!(decode(&j), Some((Header::Join { r, .. }, b"")) if r == "line\nbreak"));
        assert!(decode(b"garbage").is_none());
        assert!(decode(b"{\"t\":\"nope\"}\n").is_none());
    }
}
