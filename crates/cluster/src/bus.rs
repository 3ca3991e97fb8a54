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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Most commands sent in one pipeline.
const BATCH: usize = 512;

/// Most messages waiting for the publisher connection. A node whose Redis
/// is slower than its traffic drops what comes past this (one warning per
/// episode, counted in [`Bus::dropped`]) instead of growing without limit,
/// as while Redis is down. About 200 MB of relays of 500 bytes; a node
/// closing 16,667 sockets in rooms of 4 spread over 6 nodes queues about 9
/// messages each (departure, leave, and the peers' notices to 3 nodes):
/// 150,000 at once.
pub const QUEUE_BOUND: usize = 400_000;

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
    queue: Arc<Queue>,
}

/// How full the publisher queue is.
#[derive(Default)]
struct Queue {
    /// Messages queued and not yet taken by the publisher task.
    len: AtomicUsize,
    /// Most messages waiting before new ones are dropped.
    bound: usize,
    /// Whether messages are being dropped (warned once until it drains).
    overflowing: AtomicBool,
}

impl Queue {
    fn new(bound: usize) -> Arc<Queue> {
        Arc::new(Queue {
            bound,
            ..Queue::default()
        })
    }

    /// Takes a place for one message; false when full.
    fn take(&self) -> bool {
        if self.len.fetch_add(1, Ordering::Relaxed) < self.bound {
            return true;
        }
        self.len.fetch_sub(1, Ordering::Relaxed);
        if !self.overflowing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                bound = self.bound,
                "Redis does not keep up with this node's cluster messages: new ones are dropped until the queue drains"
            );
        }
        false
    }

    /// `n` messages left the queue.
    fn taken(&self, n: usize) {
        let before = self.len.fetch_sub(n, Ordering::Relaxed);
        if before.saturating_sub(n) <= self.bound / 2 && self.overflowing.load(Ordering::Relaxed) {
            self.overflowing.store(false, Ordering::Relaxed);
            tracing::info!("the cluster message queue drained: messages flow again");
        }
    }
}

impl Bus {
    /// Starts the publisher task on `conn`.
    pub fn start(conn: ConnectionManager, up: Arc<AtomicBool>) -> Bus {
        Bus::start_bounded(conn, up, QUEUE_BOUND)
    }

    /// [`Bus::start`] with at most `bound` messages waiting.
    pub fn start_bounded(conn: ConnectionManager, up: Arc<AtomicBool>, bound: usize) -> Bus {
        let (tx, rx) = mpsc::unbounded_channel();
        let dropped = Arc::new(AtomicU64::new(0));
        let queue = Queue::new(bound);
        tokio::spawn(publisher(conn, rx, dropped.clone(), queue.clone()));
        Bus {
            tx,
            up,
            dropped,
            queue,
        }
    }

    /// A bus whose queue the caller reads (tests: what would be sent, in order).
    #[doc(hidden)]
    pub fn detached(up: bool) -> (Bus, mpsc::UnboundedReceiver<Op>) {
        Bus::detached_bounded(up, usize::MAX / 2)
    }

    fn detached_bounded(up: bool, bound: usize) -> (Bus, mpsc::UnboundedReceiver<Op>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let bus = Bus {
            tx,
            up: Arc::new(AtomicBool::new(up)),
            dropped: Arc::new(AtomicU64::new(0)),
            queue: Queue::new(bound),
        };
        (bus, rx)
    }

    /// Whether Redis is reachable.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Queues `op` (dropped while Redis is down, or while the queue holds
    /// [`QUEUE_BOUND`] messages).
    pub fn send(&self, op: Op) {
        if self.is_up() && self.queue.take() {
            if self.tx.send(op).is_err() {
                self.queue.taken(1);
            }
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `op` whatever the state and the bound (the resynchronisation,
    /// the goodbye).
    pub fn send_always(&self, op: Op) {
        self.queue.len.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(op).is_err() {
            self.queue.taken(1);
        }
    }

    /// Messages waiting for the publisher connection.
    pub fn queued(&self) -> usize {
        self.queue.len.load(Ordering::Relaxed)
    }

    pub fn publish(&self, channel: String, payload: impl Into<Bytes>) {
        self.send(Op::Publish(channel, payload.into()));
    }

    /// Resolves once everything queued so far was sent (or failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.send_always(Op::Flush(tx));
        let _ = rx.await;
    }

    /// Messages not sent because Redis was down, the queue was full, or a
    /// batch failed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn publisher(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Op>,
    dropped: Arc<AtomicU64>,
    queue: Arc<Queue>,
) {
    let mut ops = Vec::with_capacity(BATCH);
    loop {
        let taken = rx.recv_many(&mut ops, BATCH).await;
        if taken == 0 {
            return;
        }
        queue.taken(taken);
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
    /// Node `n` is stopping: it closes its sockets (their departures follow)
    /// then says goodbye within `ms` milliseconds; until then its liveness
    /// key going missing is no death (a node closing many sockets may be
    /// slow to refresh it).
    Leaving { n: String, ms: u64 },
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
    fn a_full_queue_drops_and_counts_until_it_drains() {
        let (bus, mut rx) = Bus::detached_bounded(true, 4);
        for i in 0..6 {
            bus.publish("c".into(), format!("{i}"));
        }
        assert_eq!(bus.queued(), 4);
        assert_eq!(bus.dropped(), 2);
        assert!(bus.queue.overflowing.load(Ordering::Relaxed));
        // The goodbye and the resync pass whatever the bound.
        bus.send_always(Op::Publish("c".into(), Bytes::from_static(b"bye")));
        assert_eq!(bus.queued(), 5);
        let mut got = Vec::new();
        while let Ok(Op::Publish(_, p)) = rx.try_recv() {
            got.push(p);
        }
        assert_eq!(got, ["0", "1", "2", "3", "bye"]);
        bus.queue.taken(5);
        assert!(!bus.queue.overflowing.load(Ordering::Relaxed));
        bus.publish("c".into(), "again");
        assert_eq!(bus.dropped(), 2);
        assert_eq!(bus.queued(), 1);
        // Down: dropped and counted, no place taken.
        bus.up.store(false, Ordering::Release);
        bus.publish("c".into(), "lost");
        assert_eq!((bus.dropped(), bus.queued()), (3, 1));
    }

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
