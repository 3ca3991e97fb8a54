//! Recovery sessions every node of a cluster can reach.
//!
//! Each node keeps the packets of its own lost sockets in memory (an engine
//! [`MemoryStore`]), as a single process does. What Redis holds is the
//! session record, `{prefix}:session:{pid}` → JSON `{sid, ns, node, rooms,
//! data, away?}`: written when a socket connects and rewritten when its
//! rooms or portable data change (collected and written every 100 ms, off
//! the event path), its expiry refreshed while the socket lives, and set to
//! the recovery window when the connection is lost.
//!
//! A client reconnecting with its `pid` to node Y:
//! - the record names Y: Y's own memory has the session (or it is connected
//!   here, or gone): answered locally;
//! - it names X, alive (its liveness key exists): Y asks X through the bus
//!   (a [`SessionMessage::Request`] on X's channel); X takes the session out
//!   of its memory, answers with a [`SessionMessage::Handover`] (the missed
//!   frames in order, rooms, data) and from then forwards anything that still
//!   arrives for the socket to Y, after the handover on the same channel, so
//!   Y receives everything once and in order. X refuses a session it does not
//!   hold parked (the socket is connected, or unknown) or whose offset the
//!   client cannot resume from: the client connects fresh;
//! - it names a dead node (no liveness key): the record is claimed
//!   atomically (deleted in the same Lua script that read it, so two claims
//!   cannot both win) and the socket gets back its id, rooms and data; the
//!   packets the dead node held for it, and those sent to it while it had no
//!   node, are lost;
//! - no record (unknown, forged, expired, or of another namespace): fresh.
//!
//! The bus itself (pub/sub channels, ordering) belongs to the cluster's bus
//! module: this module talks to it through [`SessionBus`], and the node feeds
//! the session messages arriving on its channel to [`Sessions::receive`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes_util::{put_bytes, Reader};
use redis::aio::ConnectionManager;
use rtcio_engine::eio::Frame;
use rtcio_engine::{
    BroadcastOptions, Claim, Encoded, MemoryStore, Parked, Recovery, RecoveryStore, Room, Sid,
    Socket,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How often the changed records of live sockets are written.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How long a node waits for another's answer to a takeover request (a node
/// killed without a goodbye is known dead within its liveness TTL, 5 s).
const TAKEOVER_WAIT: Duration = Duration::from_secs(8);
/// How often, while waiting, the record and the node's liveness are looked at again.
const TAKEOVER_RECHECK: Duration = Duration::from_millis(500);
/// How long a node forwards what arrives for a socket that moved to another
/// node (until the cluster's membership says where it is now).
const MOVED_FOR: Duration = Duration::from_secs(10);
/// How long a restore from a dead node's record waits for the survivors'
/// cleanup of that node's sockets.
const REAPER_WAIT: Duration = Duration::from_secs(3);
/// Most commands in one pipeline.
const BATCH: usize = 512;

/// Looks up a session record: `self` (this node's), `alive` (another live
/// node's) or `dead` (its node is gone; with `take`, deleted in the same
/// step, so only one claim gets it). Nothing for a missing record or one of
/// another namespace.
const CLAIM: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return false end
local ok, rec = pcall(cjson.decode, v)
if not ok or type(rec) ~= 'table' or type(rec.node) ~= 'string' or rec.ns ~= ARGV[3] then
  return false
end
if rec.node == ARGV[1] then return {'self', v} end
if redis.call('EXISTS', ARGV[2] .. rec.node) == 1 then return {'alive', v} end
if ARGV[4] == 'take' then redis.call('DEL', KEYS[1]) end
return {'dead', v}
"#;

/// What this module needs of the cluster bus.
pub trait SessionBus: Send + Sync + 'static {
    /// Sends `message` (a [`SessionMessage`], encoded) to `node`'s channel,
    /// in order with everything else this node sends there.
    fn send(&self, node: &str, message: Vec<u8>);
    /// Sends `message` to every other node, in order with everything else
    /// this node sends.
    fn broadcast(&self, message: Vec<u8>);
    /// Sends `packet` to socket `sid` of namespace `ns` on `node` (the bus's
    /// ordinary relay to a remote socket), in the same order.
    fn deliver(&self, node: &str, ns: &str, sid: Sid, packet: &Encoded);
    /// Whether the cluster's membership already routes to socket `sid` of
    /// `ns` (connected on some node): then packets for it need no detour
    /// through the node it was parked on.
    fn routes(&self, ns: &str, sid: Sid) -> bool;
}

/// The session record in Redis.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    sid: String,
    ns: String,
    node: String,
    rooms: Vec<String>,
    #[serde(default)]
    data: Value,
    /// When the connection was lost (ms since the epoch), for a parked socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    away: Option<u64>,
}

/// Messages between the nodes about sessions.
#[derive(Debug, PartialEq)]
pub enum SessionMessage {
    /// "Hand me session `pid` of `ns`; its client's last offset is `offset`."
    Request {
        from: String,
        ns: String,
        pid: Sid,
        offset: Option<u64>,
    },
    /// The session, taken out of the sender's memory.
    Handover(Handover),
    /// The sender does not hold that session parked (connected, unknown, or
    /// an offset its client cannot resume from).
    Refused { ns: String, pid: Sid },
    /// To every node: socket `sid` of `ns` is parked on `node`, in `rooms`:
    /// what is sent to it goes there (the membership no longer lists it).
    Parked {
        node: String,
        ns: String,
        sid: Sid,
        rooms: Vec<String>,
    },
    /// To every node: socket `sid` of `ns` is parked no more; it moved to
    /// node `to` (a takeover), or came back or was dropped where it was.
    Unparked {
        ns: String,
        sid: Sid,
        to: Option<String>,
    },
}

/// A parked session moving between nodes.
#[derive(Debug, PartialEq)]
pub struct Handover {
    pub ns: String,
    pub sid: Sid,
    pub pid: Sid,
    pub rooms: Vec<String>,
    pub data: Value,
    pub frames: Vec<Frame>,
    pub lost: u64,
    pub last_offset: u64,
    /// When the connection was lost (ms since the epoch).
    pub away: u64,
}

#[derive(Serialize, Deserialize)]
struct RequestHeader {
    from: String,
    ns: String,
    pid: String,
    offset: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct RefusedHeader {
    ns: String,
    pid: String,
}

#[derive(Serialize, Deserialize)]
struct ParkedHeader {
    node: String,
    ns: String,
    sid: String,
    rooms: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct UnparkedHeader {
    ns: String,
    sid: String,
    to: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct HandoverHeader {
    ns: String,
    sid: String,
    pid: String,
    rooms: Vec<String>,
    data: Value,
    lost: u64,
    last_offset: u64,
    away: u64,
}

mod bytes_util {
    pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }

    pub struct Reader<'a>(pub &'a [u8]);

    impl<'a> Reader<'a> {
        pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Some(head)
        }

        pub fn u8(&mut self) -> Option<u8> {
            self.take(1).map(|b| b[0])
        }

        pub fn u64(&mut self) -> Option<u64> {
            Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
        }

        pub fn bytes(&mut self) -> Option<&'a [u8]> {
            let n = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
            self.take(n as usize)
        }
    }
}

impl SessionMessage {
    /// Bytes for the bus: a tag, a JSON header, then (handover) the frames
    /// as they are, never re-encoded.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            SessionMessage::Request {
                from,
                ns,
                pid,
                offset,
            } => {
                out.push(b'R');
                out.extend(to_json(&RequestHeader {
                    from: from.clone(),
                    ns: ns.clone(),
                    pid: pid.to_string(),
                    offset: *offset,
                }));
            }
            SessionMessage::Refused { ns, pid } => {
                out.push(b'N');
                out.extend(to_json(&RefusedHeader {
                    ns: ns.clone(),
                    pid: pid.to_string(),
                }));
            }
            SessionMessage::Parked {
                node,
                ns,
                sid,
                rooms,
            } => {
                out.push(b'P');
                out.extend(to_json(&ParkedHeader {
                    node: node.clone(),
                    ns: ns.clone(),
                    sid: sid.to_string(),
                    rooms: rooms.clone(),
                }));
            }
            SessionMessage::Unparked { ns, sid, to } => {
                out.push(b'U');
                out.extend(to_json(&UnparkedHeader {
                    ns: ns.clone(),
                    sid: sid.to_string(),
                    to: to.clone(),
                }));
            }
            SessionMessage::Handover(h) => {
                out.push(b'H');
                let header = to_json(&HandoverHeader {
                    ns: h.ns.clone(),
                    sid: h.sid.to_string(),
                    pid: h.pid.to_string(),
                    rooms: h.rooms.clone(),
                    data: h.data.clone(),
                    lost: h.lost,
                    last_offset: h.last_offset,
                    away: h.away,
                });
                put_bytes(&mut out, &header);
                for frame in &h.frames {
                    let (kind, offset, bytes) = match frame {
                        Frame::Text(b) => (0u8, 0, b),
                        Frame::Binary(b) => (1, 0, b),
                        Frame::Stamped(b, o) => (2, *o, b),
                    };
                    out.push(kind);
                    out.extend_from_slice(&offset.to_be_bytes());
                    put_bytes(&mut out, bytes);
                }
            }
        }
        out
    }

    /// The message in `bytes`; `None` if they are not one.
    pub fn decode(bytes: &[u8]) -> Option<SessionMessage> {
        let (&tag, rest) = bytes.split_first()?;
        match tag {
            b'R' => {
                let h: RequestHeader = serde_json::from_slice(rest).ok()?;
                Some(SessionMessage::Request {
                    from: h.from,
                    ns: h.ns,
                    pid: h.pid.parse().ok()?,
                    offset: h.offset,
                })
            }
            b'N' => {
                let h: RefusedHeader = serde_json::from_slice(rest).ok()?;
                Some(SessionMessage::Refused {
                    ns: h.ns,
                    pid: h.pid.parse().ok()?,
                })
            }
            b'P' => {
                let h: ParkedHeader = serde_json::from_slice(rest).ok()?;
                Some(SessionMessage::Parked {
                    node: h.node,
                    ns: h.ns,
                    sid: h.sid.parse().ok()?,
                    rooms: h.rooms,
                })
            }
            b'U' => {
                let h: UnparkedHeader = serde_json::from_slice(rest).ok()?;
                Some(SessionMessage::Unparked {
                    ns: h.ns,
                    sid: h.sid.parse().ok()?,
                    to: h.to,
                })
            }
            b'H' => {
                let mut r = Reader(rest);
                let h: HandoverHeader = serde_json::from_slice(r.bytes()?).ok()?;
                let mut frames = Vec::new();
                while !r.0.is_empty() {
                    let kind = r.u8()?;
                    let offset = r.u64()?;
                    let b = bytes::Bytes::copy_from_slice(r.bytes()?);
                    frames.push(match kind {
                        0 => Frame::Text(b),
                        1 => Frame::Binary(b),
                        2 => Frame::Stamped(b, offset),
                        _ => return None,
                    });
                }
                Some(SessionMessage::Handover(Handover {
                    ns: h.ns,
                    sid: h.sid.parse().ok()?,
                    pid: h.pid.parse().ok()?,
                    rooms: h.rooms,
                    data: h.data,
                    frames,
                    lost: h.lost,
                    last_offset: h.last_offset,
                    away: h.away,
                }))
            }
            _ => None,
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_epoch_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl Handover {
    fn into_parked(self) -> Parked {
        Parked {
            sid: self.sid,
            pid: self.pid,
            rooms: self.rooms.into_iter().map(Room::from).collect(),
            data: Default::default(),
            frames: self.frames,
            lost: self.lost,
            last_offset: self.last_offset,
            portable: Some(self.data),
            away_since: from_epoch_ms(self.away),
        }
    }
}

/// Forgets a takeover request when its claim ends, however it ends.
struct Pending<'a>(&'a Shared, Sid);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending().remove(&self.1);
    }
}

/// What every namespace's store shares: the Redis connection and the node.
struct Shared {
    conn: ConnectionManager,
    prefix: String,
    node: String,
    limits: Recovery,
    bus: OnceLock<Arc<dyn SessionBus>>,
    /// Takeover requests waiting for their answer, by pid.
    pending: Mutex<HashMap<Sid, oneshot::Sender<bool>>>,
    claim: redis::Script,
    /// When this node noticed other nodes die.
    deaths: Mutex<HashMap<String, SystemTime>>,
}

impl Shared {
    /// When `node` was noticed dead (now, if this node has not noticed yet).
    fn died_at(&self, node: &str) -> SystemTime {
        let deaths = self.deaths.lock().unwrap_or_else(|e| e.into_inner());
        deaths.get(node).copied().unwrap_or_else(SystemTime::now)
    }

    fn key(&self, pid: Sid) -> String {
        format!("{}:session:{}", self.prefix, pid)
    }

    /// Expiry of a live socket's record: the window past the last refresh.
    fn live_ttl(&self) -> Duration {
        self.limits.window + self.refresh_every()
    }

    fn refresh_every(&self) -> Duration {
        (self.limits.window / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<Sid, oneshot::Sender<bool>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs commands without waiting for them (the session path never waits on Redis).
    fn spawn_pipe(&self, pipe: redis::Pipeline) {
        let mut conn = self.conn.clone();
        tokio::spawn(async move {
            if let Err(e) = pipe.exec_async(&mut conn).await {
                tracing::debug!(error = %e, "recovery session write failed");
            }
        });
    }
}

/// The recovery sessions of this node, for every namespace.
pub struct Sessions {
    shared: Arc<Shared>,
    stores: RwLock<HashMap<String, Arc<SessionStore>>>,
}

impl Sessions {
    /// Sessions kept in Redis through `conn`, under `prefix` (`rtcio`), for
    /// node `node`, with the engine's recovery settings. Spawns the task that
    /// writes and refreshes the records (call within a tokio runtime).
    pub fn new(
        conn: ConnectionManager,
        prefix: &str,
        node: &str,
        limits: Recovery,
    ) -> Arc<Sessions> {
        let sessions = Arc::new(Sessions {
            shared: Arc::new(Shared {
                conn,
                prefix: prefix.to_owned(),
                node: node.to_owned(),
                limits,
                bus: OnceLock::new(),
                pending: Mutex::new(HashMap::new()),
                claim: redis::Script::new(CLAIM),
                deaths: Mutex::new(HashMap::new()),
            }),
            stores: RwLock::new(HashMap::new()),
        });
        tokio::spawn(writer(Arc::downgrade(&sessions)));
        sessions
    }

    /// Plugs in the bus (once; later calls are ignored). Until then a
    /// session parked on another live node cannot be taken over (the client
    /// connects fresh).
    pub fn set_bus(&self, bus: Arc<dyn SessionBus>) {
        let _ = self.shared.bus.set(bus);
    }

    /// The recovery store of namespace `ns` (one per namespace), for
    /// `NamespaceBuilder::recovery_store`.
    pub fn store(&self, ns: &str) -> Arc<SessionStore> {
        let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
        stores
            .entry(ns.to_owned())
            .or_insert_with(|| {
                Arc::new(SessionStore {
                    ns: ns.to_owned(),
                    shared: self.shared.clone(),
                    local: MemoryStore::new(self.shared.limits),
                    live: Mutex::new(HashMap::new()),
                    dirty: Mutex::new(HashMap::new()),
                    moved: Mutex::new(HashMap::new()),
                    moved_count: AtomicUsize::new(0),
                    parked_here: Mutex::new(HashMap::new()),
                    elsewhere: Mutex::new(HashMap::new()),
                    elsewhere_count: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    fn get(&self, ns: &str) -> Option<Arc<SessionStore>> {
        self.stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(ns)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<SessionStore>> {
        self.stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A session message that arrived on this node's channel (the bytes of
    /// [`SessionMessage::encode`]). Runs in the bus's receiving task, in
    /// channel order: a handover is in this node's memory before the packets
    /// forwarded after it are delivered.
    pub fn receive(&self, bytes: &[u8]) {
        match SessionMessage::decode(bytes) {
            Some(SessionMessage::Request {
                from,
                ns,
                pid,
                offset,
            }) => {
                let bus = self.shared.bus.get();
                let store = self.get(&ns);
                let handed = match (bus, &store) {
                    (Some(bus), Some(store)) => store.hand_over(bus, &from, pid, offset),
                    _ => false,
                };
                if !handed {
                    if let Some(bus) = bus {
                        bus.send(&from, SessionMessage::Refused { ns, pid }.encode());
                    }
                }
            }
            Some(SessionMessage::Handover(h)) => {
                let pid = h.pid;
                if let Some(store) = self.get(&h.ns) {
                    // Kept here before anything forwarded after it arrives.
                    store.local.park(h.into_parked());
                }
                if let Some(tx) = self.shared.pending().remove(&pid) {
                    let _ = tx.send(true);
                }
            }
            Some(SessionMessage::Refused { pid, .. }) => {
                if let Some(tx) = self.shared.pending().remove(&pid) {
                    let _ = tx.send(false);
                }
            }
            Some(SessionMessage::Parked {
                node,
                ns,
                sid,
                rooms,
            }) => {
                let until = Instant::now() + self.shared.limits.window + MOVED_FOR;
                let rooms = rooms.into_iter().map(Room::from).collect();
                self.store(&ns).elsewhere_insert(sid, node, rooms, until);
            }
            Some(SessionMessage::Unparked { ns, sid, to }) => {
                let store = self.store(&ns);
                match to {
                    // Straight to its new node until the membership says so.
                    Some(node) if node != self.shared.node => store.elsewhere_redirect(sid, node),
                    _ => store.elsewhere_remove(sid),
                }
            }
            None => tracing::debug!("malformed recovery session message ignored"),
        }
    }

    /// Node `node` was found dead (the cluster's dead-node hook): its
    /// sockets restored here count as away since now, as the presence grace
    /// the cluster started for them.
    pub fn node_dead(&self, node: &str) {
        let now = SystemTime::now();
        let mut deaths = self.shared.deaths.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.shared.limits.window;
        deaths.retain(|_, t| now.duration_since(*t).unwrap_or_default() < window);
        deaths.insert(node.to_owned(), now);
        drop(deaths);
        // What was parked there is gone with it.
        for store in self.all() {
            let mut away = store.elsewhere();
            away.retain(|_, m| m.node != node);
            store.elsewhere_count.store(away.len(), Ordering::Release);
        }
    }

    /// Redis is reachable again (the cluster's reconnect hook): every live
    /// socket's record is written again, for a Redis that restarted empty.
    pub fn resync(&self) {
        for store in self.all() {
            store.rewrite_all();
        }
    }

    /// The cluster now knows socket `sid` of `ns` is connected elsewhere:
    /// this node stops forwarding to it (what arrives for it goes there
    /// directly).
    pub fn forget_moved(&self, ns: &str, sid: Sid) {
        if let Some(store) = self.get(ns) {
            store.forget_moved(sid);
        }
    }
}

/// Writes the changed records and refreshes the live ones, until the
/// sessions are dropped.
async fn writer(sessions: Weak<Sessions>) {
    let mut last_refresh = Instant::now();
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        let shared = sessions.shared.clone();
        let refresh = last_refresh.elapsed() >= shared.refresh_every();
        if refresh {
            last_refresh = Instant::now();
        }
        let ttl = shared.live_ttl().as_millis() as u64;
        let mut pipe = redis::pipe();
        let mut queued = 0;
        for store in sessions.all() {
            store.report_unparked();
            let dirty = std::mem::take(&mut *store.dirty());
            for (_, socket) in dirty {
                let Some(pid) = socket.pid().filter(|_| socket.connected()) else {
                    continue;
                };
                let record = Record {
                    sid: socket.id().to_string(),
                    ns: store.ns.clone(),
                    node: shared.node.clone(),
                    rooms: socket
                        .rooms()
                        .iter()
                        .skip(1)
                        .map(|r| r.to_string())
                        .collect(),
                    data: socket.portable_data(),
                    away: None,
                };
                let json = serde_json::to_string(&record).unwrap_or_default();
                pipe.cmd("SET")
                    .arg(shared.key(pid))
                    .arg(json)
                    .arg("PX")
                    .arg(ttl)
                    .ignore();
                queued += 1;
                if queued >= BATCH {
                    shared.spawn_pipe(std::mem::replace(&mut pipe, redis::pipe()));
                    queued = 0;
                }
            }
            if refresh {
                store.refresh(ttl);
            }
        }
        if queued > 0 {
            shared.spawn_pipe(pipe);
        }
    }
}

struct Moved {
    node: String,
    rooms: Vec<Room>,
    until: Instant,
}

/// One namespace's recovery store on a cluster node (a [`RecoveryStore`]).
pub struct SessionStore {
    ns: String,
    shared: Arc<Shared>,
    /// The sockets this node lost, with their packets.
    local: Arc<MemoryStore>,
    /// Live sockets on this node (their records are refreshed).
    live: Mutex<HashMap<Sid, Socket>>,
    /// Live sockets whose record must be (re)written.
    dirty: Mutex<HashMap<Sid, Socket>>,
    /// Sockets handed over to another node: what still arrives here for them
    /// is forwarded there.
    moved: Mutex<HashMap<Sid, Moved>>,
    moved_count: AtomicUsize,
    /// Sockets parked here (sid → pid), to tell the other nodes when that ends.
    parked_here: Mutex<HashMap<Sid, Sid>>,
    /// Sockets parked on other nodes (or just moved between nodes): what
    /// this node sends them goes to that node.
    elsewhere: Mutex<HashMap<Sid, Moved>>,
    elsewhere_count: AtomicUsize,
}

impl SessionStore {
    fn live(&self) -> MutexGuard<'_, HashMap<Sid, Socket>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dirty(&self) -> MutexGuard<'_, HashMap<Sid, Socket>> {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn moved(&self) -> MutexGuard<'_, HashMap<Sid, Moved>> {
        self.moved.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn elsewhere(&self) -> MutexGuard<'_, HashMap<Sid, Moved>> {
        self.elsewhere.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn elsewhere_insert(&self, sid: Sid, node: String, rooms: Vec<Room>, until: Instant) {
        let mut away = self.elsewhere();
        away.insert(sid, Moved { node, rooms, until });
        self.elsewhere_count.store(away.len(), Ordering::Release);
    }

    fn elsewhere_redirect(&self, sid: Sid, node: String) {
        let mut away = self.elsewhere();
        if let Some(m) = away.get_mut(&sid) {
            m.node = node;
            m.until = Instant::now() + MOVED_FOR;
        }
    }

    fn elsewhere_remove(&self, sid: Sid) {
        let mut away = self.elsewhere();
        away.remove(&sid);
        self.elsewhere_count.store(away.len(), Ordering::Release);
    }

    /// Tells the other nodes which of the sockets parked here are parked no
    /// more (came back here, or dropped); run by the writer task.
    fn report_unparked(&self) {
        let ended: Vec<Sid> = {
            let mut here = self.parked_here.lock().unwrap_or_else(|e| e.into_inner());
            if here.is_empty() {
                return;
            }
            let mut ended = Vec::new();
            here.retain(|sid, pid| {
                let kept = self.local.knows(*pid);
                if !kept {
                    ended.push(*sid);
                }
                kept
            });
            ended
        };
        let moved = self.moved();
        let Some(bus) = self.shared.bus.get() else {
            return;
        };
        for sid in ended {
            // A handover already told them where it went.
            if !moved.contains_key(&sid) {
                let msg = SessionMessage::Unparked {
                    ns: self.ns.clone(),
                    sid,
                    to: None,
                };
                bus.broadcast(msg.encode());
            }
        }
        drop(moved);
        let mut away = self.elsewhere();
        let now = Instant::now();
        away.retain(|_, m| m.until > now);
        self.elsewhere_count.store(away.len(), Ordering::Release);
    }

    fn sweep_moved(&self, moved: &mut HashMap<Sid, Moved>) {
        let now = Instant::now();
        moved.retain(|_, m| m.until > now);
        self.moved_count.store(moved.len(), Ordering::Release);
    }

    fn forget_moved(&self, sid: Sid) {
        let mut moved = self.moved();
        moved.remove(&sid);
        self.sweep_moved(&mut moved);
    }

    /// Node X's side of a takeover: hands session `pid` to node `to` if it is
    /// parked here and its client can resume from `offset`. The session is
    /// taken and the handover sent while forwarding is being set up, so that
    /// nothing sent to the socket meanwhile is lost or overtakes it.
    fn hand_over(
        &self,
        bus: &Arc<dyn SessionBus>,
        to: &str,
        pid: Sid,
        offset: Option<u64>,
    ) -> bool {
        let mut moved = self.moved();
        let Some(parked) = self.local.take(pid, offset) else {
            return false;
        };
        let handover = Handover {
            ns: self.ns.clone(),
            sid: parked.sid,
            pid: parked.pid,
            rooms: parked.rooms.iter().map(|r| r.to_string()).collect(),
            data: parked
                .portable
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default())),
            frames: parked.frames,
            lost: parked.lost,
            last_offset: parked.last_offset,
            away: epoch_ms(parked.away_since),
        };
        let sid = parked.sid;
        bus.send(to, SessionMessage::Handover(handover).encode());
        bus.broadcast(
            SessionMessage::Unparked {
                ns: self.ns.clone(),
                sid,
                to: Some(to.to_owned()),
            }
            .encode(),
        );
        self.parked_here
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sid);
        moved.insert(
            parked.sid,
            Moved {
                node: to.to_owned(),
                rooms: parked.rooms,
                until: Instant::now() + MOVED_FOR,
            },
        );
        self.sweep_moved(&mut moved);
        true
    }

    /// Runs the claim script: `(state, record)`.
    async fn lookup(&self, pid: Sid, take: bool) -> Option<(String, Record)> {
        let shared = &self.shared;
        let mut conn = shared.conn.clone();
        let answer: Option<(String, String)> = shared
            .claim
            .key(shared.key(pid))
            .arg(&shared.node)
            .arg(format!("{}:node:", shared.prefix))
            .arg(&self.ns)
            .arg(if take { "take" } else { "peek" })
            .invoke_async(&mut conn)
            .await
            .map_err(|e| tracing::debug!(error = %e, "recovery session lookup failed"))
            .ok()
            .flatten();
        let (state, json) = answer?;
        Some((state, serde_json::from_str(&json).ok()?))
    }

    /// Waits (a little) until a survivor has removed dead `node`'s sockets
    /// from the room state (it deletes `{prefix}:sockets:{node}` when done),
    /// so that the socket restored here is not removed from its rooms again
    /// by that cleanup.
    async fn wait_reaped(&self, node: &str) {
        let key = format!("{}:sockets:{}", self.shared.prefix, node);
        let deadline = Instant::now() + REAPER_WAIT;
        let mut conn = self.shared.conn.clone();
        while Instant::now() < deadline {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap_or(false);
            if !exists {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Node Y's side: the record says where the session is.
    async fn claim_remote(self: Arc<Self>, pid: Sid, offset: Option<u64>) -> Option<Parked> {
        let shared = self.shared.clone();
        let (mut state, mut record) = self.lookup(pid, false).await?;
        if state == "alive" {
            let bus = shared.bus.get()?;
            let (tx, mut rx) = oneshot::channel();
            shared.pending().insert(pid, tx);
            // Given up (the client went away meanwhile): no answer is awaited any more.
            let _pending = Pending(&shared, pid);
            bus.send(
                &record.node,
                SessionMessage::Request {
                    from: shared.node.clone(),
                    ns: self.ns.clone(),
                    pid,
                    offset,
                }
                .encode(),
            );
            // A node that was just killed still looks alive until its
            // liveness key expires: while no answer comes, look again, and
            // restore from the record as soon as the node is known dead.
            let deadline = Instant::now() + TAKEOVER_WAIT;
            loop {
                match tokio::time::timeout(TAKEOVER_RECHECK, &mut rx).await {
                    Ok(Ok(true)) => return self.local.take(pid, offset),
                    Ok(_) => return None,
                    Err(_) => {}
                }
                let again = if Instant::now() < deadline {
                    self.lookup(pid, false).await
                } else {
                    None
                };
                match again {
                    Some((s, r)) if s == "alive" && r.node == record.node => continue,
                    Some((s, r)) if s == "dead" => {
                        (state, record) = (s, r);
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if state != "dead" {
            // This node's own record: the session is not parked here (the
            // socket is connected here, or its state was dropped).
            return None;
        }
        // Its node died: what it held for the socket died with it. The
        // client's offset is where its new offsets continue.
        // Nothing is taken before the wait, so a client that gives up
        // meanwhile leaves the session for its next try.
        self.wait_reaped(&record.node).await;
        let (state, record) = self.lookup(pid, true).await?;
        if state != "dead" {
            return None;
        }
        let sid: Sid = record.sid.parse().ok()?;
        let offset = offset.unwrap_or(0);
        let away_since = match record.away {
            Some(ms) => from_epoch_ms(ms),
            // Live when its node died: away since the death was noticed.
            None => shared.died_at(&record.node),
        };
        Some(Parked {
            sid,
            pid,
            rooms: record.rooms.into_iter().map(Room::from).collect(),
            data: Default::default(),
            frames: Vec::new(),
            lost: offset,
            last_offset: offset,
            portable: Some(record.data),
            away_since,
        })
    }

    /// Pushes back the expiry of the live sockets' records; a record that is
    /// missing (Redis restarted empty, a write lost while it was down) is
    /// written again at the next flush.
    fn refresh(self: &Arc<Self>, ttl: u64) {
        let live: Vec<(Sid, Sid)> = self
            .live()
            .iter()
            .filter_map(|(sid, socket)| Some((*sid, socket.pid()?)))
            .collect();
        for chunk in live.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (_, pid) in chunk {
                pipe.cmd("PEXPIRE").arg(self.shared.key(*pid)).arg(ttl);
            }
            let sids: Vec<Sid> = chunk.iter().map(|(sid, _)| *sid).collect();
            let (store, mut conn) = (self.clone(), self.shared.conn.clone());
            tokio::spawn(async move {
                let Ok(found) = pipe.query_async::<Vec<i64>>(&mut conn).await else {
                    return;
                };
                store.rewrite_missing(&sids, &found);
            });
        }
    }

    fn rewrite_missing(&self, sids: &[Sid], found: &[i64]) {
        let live = self.live();
        let mut dirty = self.dirty();
        for (sid, found) in sids.iter().zip(found) {
            if *found == 0 {
                if let Some(socket) = live.get(sid) {
                    dirty.insert(*sid, socket.clone());
                }
            }
        }
    }

    /// Writes every live socket's record again (after Redis came back).
    fn rewrite_all(&self) {
        let live = self.live();
        let mut dirty = self.dirty();
        for (sid, socket) in live.iter() {
            dirty.insert(*sid, socket.clone());
        }
    }

    /// Sockets parked on this node (not counting those that moved).
    pub fn parked(&self) -> usize {
        self.local.parked()
    }
}

impl RecoveryStore for SessionStore {
    fn park(&self, parked: Parked) {
        let (sid, pid) = (parked.sid, parked.pid);
        let record = Record {
            sid: sid.to_string(),
            ns: self.ns.clone(),
            node: self.shared.node.clone(),
            rooms: parked.rooms.iter().map(|r| r.to_string()).collect(),
            data: parked.portable.clone().unwrap_or_default(),
            away: Some(epoch_ms(parked.away_since)),
        };
        self.live().remove(&sid);
        self.dirty().remove(&sid);
        self.local.park(parked);
        let mut pipe = redis::pipe();
        if self.local.knows(pid) {
            self.parked_here
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sid, pid);
            if let Some(bus) = self.shared.bus.get() {
                let msg = SessionMessage::Parked {
                    node: self.shared.node.clone(),
                    ns: self.ns.clone(),
                    sid,
                    rooms: record.rooms.clone(),
                };
                bus.broadcast(msg.encode());
            }
            let json = serde_json::to_string(&record).unwrap_or_default();
            pipe.cmd("SET")
                .arg(self.shared.key(pid))
                .arg(json)
                .arg("PX")
                .arg(self.shared.limits.window.as_millis() as u64)
                .ignore();
        } else {
            // Over the limits at once: nothing to recover.
            pipe.cmd("DEL").arg(self.shared.key(pid)).ignore();
        }
        self.shared.spawn_pipe(pipe);
    }

    fn is_empty(&self) -> bool {
        self.local.is_empty()
            && self.moved_count.load(Ordering::Acquire) == 0
            && self.elsewhere_count.load(Ordering::Acquire) == 0
    }

    fn take(&self, pid: Sid, offset: Option<u64>) -> Option<Parked> {
        self.local.take(pid, offset)
    }

    fn rooms_of(&self, sid: Sid) -> Option<Vec<Room>> {
        self.local
            .rooms_of(sid)
            .or_else(|| self.moved().get(&sid).map(|m| m.rooms.clone()))
            .or_else(|| self.elsewhere().get(&sid).map(|m| m.rooms.clone()))
    }

    fn send(&self, sid: Sid, packet: &Encoded) -> bool {
        if self.local.send(sid, packet) {
            return true;
        }
        let Some(bus) = self.shared.bus.get() else {
            return false;
        };
        let now = Instant::now();
        // Moved from here: forwarded to where it went, whatever the
        // membership says (a packet routed here by a node that does not
        // know yet must not be lost).
        if self.moved_count.load(Ordering::Acquire) > 0 {
            if let Some(m) = self.moved().get(&sid).filter(|m| m.until > now) {
                bus.deliver(&m.node, &self.ns, sid, packet);
                return true;
            }
        }
        // Parked elsewhere: only while the membership does not route to it
        // (once it is live somewhere, that is where packets go).
        if self.elsewhere_count.load(Ordering::Acquire) > 0 {
            let target = self
                .elsewhere()
                .get(&sid)
                .filter(|m| m.until > now)
                .map(|m| m.node.clone());
            if let Some(node) = target {
                if !bus.routes(&self.ns, sid) {
                    bus.deliver(&node, &self.ns, sid, packet);
                    return true;
                }
            }
        }
        false
    }

    fn broadcast(&self, opts: &BroadcastOptions, packet: &Encoded) {
        if !self.local.is_empty() {
            self.local.broadcast(opts, packet);
        }
        let Some(bus) = self.shared.bus.get() else {
            return;
        };
        let now = Instant::now();
        for (map, count) in [
            (&self.moved, &self.moved_count),
            (&self.elsewhere, &self.elsewhere_count),
        ] {
            if count.load(Ordering::Acquire) == 0 {
                continue;
            }
            let map = map.lock().unwrap_or_else(|e| e.into_inner());
            for (sid, m) in map.iter().filter(|(_, m)| m.until > now) {
                let in_room = |room: &Room| &**room == sid.as_str() || m.rooms.contains(room);
                let skipped = opts.except_sid == Some(*sid) || opts.except.iter().any(in_room);
                // Once the membership lists it again, the broadcast reaches it that way.
                if !skipped
                    && (opts.rooms.is_empty() || opts.rooms.iter().any(in_room))
                    && !bus.routes(&self.ns, *sid)
                {
                    bus.deliver(&m.node, &self.ns, *sid, packet);
                }
            }
        }
    }

    fn claim(self: Arc<Self>, pid: Sid, offset: Option<u64>) -> Claim {
        if self.local.knows(pid) {
            return Claim::Ready(self.local.take(pid, offset));
        }
        Claim::Pending(Box::pin(self.claim_remote(pid, offset)))
    }

    fn shared(&self) -> bool {
        true
    }

    fn opened(&self, socket: &Socket) {
        if socket.pid().is_none() {
            return;
        }
        let sid = socket.id();
        if self.moved_count.load(Ordering::Acquire) > 0 {
            // Back on this node after a stay elsewhere.
            self.forget_moved(sid);
        }
        if self.elsewhere_count.load(Ordering::Acquire) > 0 {
            self.elsewhere_remove(sid);
        }
        self.live().insert(sid, socket.clone());
        self.dirty().insert(sid, socket.clone());
    }

    fn touched(&self, socket: &Socket) {
        if socket.pid().is_some() {
            self.dirty().insert(socket.id(), socket.clone());
        }
    }

    fn closed(&self, socket: &Socket) {
        let sid = socket.id();
        self.dirty().remove(&sid);
        if let Some(pid) = self.live().remove(&sid).and_then(|s| s.pid()) {
            let mut pipe = redis::pipe();
            pipe.cmd("DEL").arg(self.shared.key(pid)).ignore();
            self.shared.spawn_pipe(pipe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::net::TcpListener;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};

    /// A throwaway redis-server on a free loopback port (fails, not skips, when missing).
    struct RedisServer {
        child: Child,
        dir: PathBuf,
        url: String,
    }

    impl RedisServer {
        fn start() -> RedisServer {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir =
                std::env::temp_dir().join(format!("rtcio-sessions-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let bin = std::env::var("RTCIO_REDIS_BIN").unwrap_or_else(|_| "redis-server".into());
            let child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("redis-server not found ({e}): install the Debian package redis-server")
                });
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "redis-server did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            RedisServer {
                child,
                dir,
                url: format!("redis://127.0.0.1:{port}"),
            }
        }

        async fn conn(&self) -> ConnectionManager {
            let client = redis::Client::open(self.url.as_str()).unwrap();
            ConnectionManager::new(client).await.unwrap()
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The bus between nodes of one process: session messages are handed
    /// to the target node at once (in order), forwarded packets recorded.
    #[derive(Default)]
    struct Loopback {
        nodes: Mutex<HashMap<String, Weak<Sessions>>>,
        delivered: Mutex<Vec<(String, Sid, Bytes)>>,
        /// Sockets the membership routes to.
        routed: Mutex<Vec<Sid>>,
    }

    /// One node's end of the loopback.
    struct Link(String, Arc<Loopback>);

    impl SessionBus for Link {
        fn send(&self, node: &str, message: Vec<u8>) {
            let target = self
                .1
                .nodes
                .lock()
                .unwrap()
                .get(node)
                .and_then(Weak::upgrade);
            if let Some(target) = target {
                target.receive(&message);
            }
        }

        fn broadcast(&self, message: Vec<u8>) {
            let others: Vec<Arc<Sessions>> = self
                .1
                .nodes
                .lock()
                .unwrap()
                .iter()
                .filter(|(name, _)| **name != self.0)
                .filter_map(|(_, node)| node.upgrade())
                .collect();
            for node in others {
                node.receive(&message);
            }
        }

        fn deliver(&self, node: &str, _ns: &str, sid: Sid, packet: &Encoded) {
            self.1
                .delivered
                .lock()
                .unwrap()
                .push((node.to_owned(), sid, packet.text.clone()));
        }

        fn routes(&self, _ns: &str, sid: Sid) -> bool {
            self.1.routed.lock().unwrap().contains(&sid)
        }
    }

    fn limits(window: Duration) -> Recovery {
        Recovery {
            window,
            ..Recovery::default()
        }
    }

    /// Two nodes, `x` and `y`, on one Redis under their own prefix.
    async fn cluster(
        redis: &RedisServer,
        prefix: &str,
        window: Duration,
    ) -> (Arc<Sessions>, Arc<Sessions>, Arc<Loopback>) {
        let bus = Arc::new(Loopback::default());
        let x = Sessions::new(redis.conn().await, prefix, "x", limits(window));
        let y = Sessions::new(redis.conn().await, prefix, "y", limits(window));
        for (name, node) in [("x", &x), ("y", &y)] {
            node.set_bus(Arc::new(Link(name.to_owned(), bus.clone())));
            bus.nodes
                .lock()
                .unwrap()
                .insert(name.into(), Arc::downgrade(node));
        }
        (x, y, bus)
    }

    fn text(s: &str) -> Frame {
        Frame::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn stamped(s: &str, o: u64) -> Frame {
        Frame::Stamped(Bytes::copy_from_slice(s.as_bytes()), o)
    }

    fn packet(s: &str) -> Encoded {
        Encoded::from_text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn parked(frames: Vec<Frame>, lost: u64, last_offset: u64) -> Parked {
        Parked {
            sid: Sid::random(),
            pid: Sid::random(),
            rooms: vec![Room::from("r1")],
            data: Default::default(),
            frames,
            lost,
            last_offset,
            portable: Some(serde_json::json!({ "peer": { "name": "ada" } })),
            away_since: SystemTime::now(),
        }
    }

    async fn get(conn: &mut ConnectionManager, key: &str) -> Option<String> {
        redis::cmd("GET").arg(key).query_async(conn).await.unwrap()
    }

    /// Waits for the record of `pid` to be written (writes are not awaited).
    async fn record(conn: &mut ConnectionManager, prefix: &str, pid: Sid) -> Record {
        let key = format!("{prefix}:session:{pid}");
        for _ in 0..200 {
            if let Some(json) = get(conn, &key).await {
                return serde_json::from_str(&json).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no record for {key}");
    }

    async fn set_alive(conn: &mut ConnectionManager, prefix: &str, node: &str) {
        redis::cmd("SET")
            .arg(format!("{prefix}:node:{node}"))
            .arg("1")
            .arg("PX")
            .arg(60_000)
            .query_async::<()>(conn)
            .await
            .unwrap();
    }

    async fn claim(store: &Arc<SessionStore>, pid: Sid, offset: Option<u64>) -> Option<Parked> {
        match store.clone().claim(pid, offset) {
            Claim::Ready(p) => p,
            Claim::Pending(f) => f.await,
        }
    }

    #[test]
    fn messages_cross_the_bus_intact() {
        let handover = Handover {
            ns: "/".into(),
            sid: Sid::random(),
            pid: Sid::random(),
            rooms: vec!["r".into()],
            data: serde_json::json!({ "peer": { "name": "é" } }),
            frames: vec![
                stamped("451-[\"b\",{\"_placeholder\":true,\"num\":0}]", 4),
                Frame::Binary(Bytes::from_static(&[0, 255, 10])),
                text("42[\"c\"]"),
            ],
            lost: 2,
            last_offset: 4,
            away: 1234,
        };
        let messages = [
            SessionMessage::Request {
                from: "y".into(),
                ns: "/calls".into(),
                pid: Sid::random(),
                offset: Some(9),
            },
            SessionMessage::Refused {
                ns: "/".into(),
                pid: Sid::random(),
            },
            SessionMessage::Handover(handover),
            SessionMessage::Parked {
                node: "x".into(),
                ns: "/".into(),
                sid: Sid::random(),
                rooms: vec!["a".into(), "b".into()],
            },
            SessionMessage::Unparked {
                ns: "/".into(),
                sid: Sid::random(),
                to: Some("y".into()),
            },
            SessionMessage::Unparked {
                ns: "/".into(),
                sid: Sid::random(),
                to: None,
            },
        ];
        for m in messages {
            assert_eq!(SessionMessage::decode(&m.encode()), Some(m));
        }
        for junk in [&b""[..], b"X{}", b"R{", b"H\0\0\0\x02{}\x09"] {
            assert_eq!(SessionMessage::decode(junk), None);
        }
    }

    #[tokio::test]
    async fn a_session_parked_on_a_live_node_is_taken_over_in_order() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (x, y, bus) = cluster(&redis, "t1", Duration::from_secs(60)).await;
        let (on_x, on_y) = (x.store("/"), y.store("/"));
        let frames = vec![
            stamped("42[\"a\"]", 3),
            stamped("42[\"b\"]", 4),
            text("42[\"away\"]"),
        ];
        let p = parked(frames.clone(), 2, 4);
        let (sid, pid) = (p.sid, p.pid);
        on_x.park(p);
        let rec = record(&mut conn, "t1", pid).await;
        assert_eq!((rec.node.as_str(), rec.ns.as_str()), ("x", "/"));
        assert_eq!(rec.rooms, vec!["r1".to_owned()]);
        assert_eq!(rec.sid, sid.to_string());
        set_alive(&mut conn, "t1", "x").await;
        assert!(on_x.send(sid, &packet("42[\"away2\"]")));
        // y was told: what y sends it goes to x, where it is parked.
        assert_eq!(on_y.rooms_of(sid), Some(vec![Room::from("r1")]));
        assert!(on_y.send(sid, &packet("42[\"from-y\"]")));
        assert_eq!(
            bus.delivered.lock().unwrap().drain(..).collect::<Vec<_>>(),
            vec![("x".to_owned(), sid, Bytes::from_static(b"42[\"from-y\"]"))]
        );
        // Once the membership routes to it (live somewhere), that way only.
        bus.routed.lock().unwrap().push(sid);
        assert!(!on_y.send(sid, &packet("42[\"routed\"]")));
        bus.routed.lock().unwrap().clear();

        let back = claim(&on_y, pid, Some(3)).await.expect("taken over");
        assert_eq!((back.sid, back.pid), (sid, pid));
        assert_eq!(back.rooms, vec![Room::from("r1")]);
        assert_eq!(
            back.portable,
            Some(serde_json::json!({ "peer": { "name": "ada" } }))
        );
        let mut want = frames[1..].to_vec();
        want.push(text("42[\"away2\"]"));
        assert_eq!(back.frames, want, "missed frames once and in order");
        assert!(!on_x.local.knows(pid), "gone from the old node");

        // What still reaches the old node for it goes to the new one.
        assert!(on_x.send(sid, &packet("42[\"late\"]")));
        let to_room = BroadcastOptions {
            rooms: vec![Room::from("r1")],
            ..Default::default()
        };
        on_x.broadcast(&to_room, &packet("42[\"room\"]"));
        let elsewhere = BroadcastOptions {
            rooms: vec![Room::from("r2")],
            ..Default::default()
        };
        on_x.broadcast(&elsewhere, &packet("42[\"not-for-it\"]"));
        let delivered = bus.delivered.lock().unwrap().clone();
        assert_eq!(
            delivered,
            vec![
                ("y".to_owned(), sid, Bytes::from_static(b"42[\"late\"]")),
                ("y".to_owned(), sid, Bytes::from_static(b"42[\"room\"]")),
            ]
        );
        assert_eq!(on_x.rooms_of(sid), Some(vec![Room::from("r1")]));
        assert_eq!(on_y.rooms_of(sid), None, "y holds it now, not a detour");
        // Once the membership routes to it, broadcasts take that way only.
        bus.routed.lock().unwrap().push(sid);
        on_x.broadcast(&to_room, &packet("42[\"room2\"]"));
        assert_eq!(bus.delivered.lock().unwrap().len(), 2);
        x.forget_moved("/", sid);
        assert!(!on_x.send(sid, &packet("42[\"x\"]")) && on_x.is_empty());

        // Taken once: a second claim finds it parked nowhere.
        assert!(claim(&on_y, pid, Some(3)).await.is_none());
    }

    #[tokio::test]
    async fn a_connected_socket_or_a_bad_offset_is_refused() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (x, y, _bus) = cluster(&redis, "t2", Duration::from_secs(60)).await;
        let (on_x, on_y) = (x.store("/"), y.store("/"));
        set_alive(&mut conn, "t2", "x").await;

        let p = parked(vec![stamped("42[\"a\"]", 3)], 2, 3);
        let pid = p.pid;
        on_x.park(p);
        record(&mut conn, "t2", pid).await;
        assert!(claim(&on_y, pid, Some(9)).await.is_none(), "never sent");
        assert!(claim(&on_y, pid, Some(1)).await.is_none(), "too old");
        assert!(on_x.local.knows(pid), "kept for its owner");

        // Its client came back to x: connected there, not parked any more.
        assert!(claim(&on_x, pid, Some(3)).await.is_some());
        assert!(claim(&on_y, pid, Some(3)).await.is_none());
        // And x's own record does not give x a session it does not hold.
        assert!(claim(&on_x, pid, Some(3)).await.is_none());
    }

    #[tokio::test]
    async fn a_dead_nodes_session_is_restored_from_its_record_once() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (x, y, _bus) = cluster(&redis, "t3", Duration::from_secs(60)).await;
        let (on_x, on_y) = (x.store("/"), y.store("/"));
        let p = parked(vec![stamped("42[\"a\"]", 3)], 2, 3);
        let (sid, pid) = (p.sid, p.pid);
        let away = p.away_since;
        on_x.park(p);
        record(&mut conn, "t3", pid).await;
        // No liveness key for x: it is dead. A survivor is still removing
        // its sockets from the rooms: the restore waits for that.
        redis::cmd("HSET")
            .arg("t3:sockets:x")
            .arg(format!("/|{sid}"))
            .arg(r#"{"rooms":["r1"]}"#)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        let mut reaper = redis.conn().await;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            redis::cmd("DEL")
                .arg("t3:sockets:x")
                .query_async::<()>(&mut reaper)
                .await
                .unwrap();
        });
        let started = std::time::Instant::now();
        let back = claim(&on_y, pid, Some(3)).await.expect("restored");
        assert!(
            started.elapsed() >= Duration::from_millis(350),
            "after the cleanup"
        );
        assert_eq!((back.sid, back.pid), (sid, pid));
        assert_eq!(back.rooms, vec![Room::from("r1")]);
        assert_eq!(
            back.portable,
            Some(serde_json::json!({ "peer": { "name": "ada" } }))
        );
        assert!(back.frames.is_empty(), "what x held died with it");
        assert_eq!((back.lost, back.last_offset), (3, 3));
        assert_eq!(epoch_ms(back.away_since), epoch_ms(away));
        assert_eq!(get(&mut conn, &format!("t3:session:{pid}")).await, None);
        assert!(claim(&on_y, pid, Some(3)).await.is_none(), "claimed once");
    }

    #[tokio::test]
    async fn a_node_killed_a_moment_ago_is_waited_for_then_restored_from() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (x, y, bus) = cluster(&redis, "t6", Duration::from_secs(60)).await;
        let p = parked(vec![], 0, 0);
        let (sid, pid) = (p.sid, p.pid);
        x.store("/").park(p);
        record(&mut conn, "t6", pid).await;
        // x is killed: it answers nothing, its liveness key outlives it a little.
        bus.nodes.lock().unwrap().remove("x");
        redis::cmd("SET")
            .arg("t6:node:x")
            .arg("1")
            .arg("PX")
            .arg(1200)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let back = claim(&y.store("/"), pid, None).await.expect("restored");
        assert_eq!(back.sid, sid);
        assert!(
            started.elapsed() >= Duration::from_millis(1000),
            "waited for the key"
        );
        assert!(y.shared.pending().is_empty());
    }

    #[tokio::test]
    async fn a_live_socket_of_a_dead_node_is_away_since_its_death_was_noticed() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (_x, y, _bus) = cluster(&redis, "t7", Duration::from_secs(60)).await;
        let (sid, pid) = (Sid::random(), Sid::random());
        let live = Record {
            sid: sid.to_string(),
            ns: "/".into(),
            node: "x".into(),
            rooms: vec!["r".into()],
            data: serde_json::json!({}),
            away: None,
        };
        redis::cmd("SET")
            .arg(format!("t7:session:{pid}"))
            .arg(serde_json::to_string(&live).unwrap())
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        y.node_dead("x");
        let noticed = SystemTime::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let back = claim(&y.store("/"), pid, Some(12)).await.expect("restored");
        assert_eq!((back.sid, back.last_offset), (sid, 12));
        assert!(back.away_since <= noticed);
    }

    #[tokio::test]
    async fn a_claim_given_up_halfway_leaves_the_session_for_the_next() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (x, y, bus) = cluster(&redis, "t8", Duration::from_secs(60)).await;
        let p = parked(vec![], 0, 0);
        let (sid, pid) = (p.sid, p.pid);
        x.store("/").park(p);
        record(&mut conn, "t8", pid).await;
        bus.nodes.lock().unwrap().remove("x");
        // x looks alive for a while, then its sockets are being cleaned up.
        set_alive(&mut conn, "t8", "x").await;
        let on_y = y.store("/");
        let first = tokio::spawn({
            let on_y = on_y.clone();
            async move { claim(&on_y, pid, None).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        first.abort();
        assert!(first.await.is_err(), "given up");
        assert!(y.shared.pending().is_empty(), "no answer awaited any more");
        redis::cmd("DEL")
            .arg("t8:node:x")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        redis::cmd("SET")
            .arg("t8:sockets:x")
            .arg("1")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        let second = tokio::spawn({
            let on_y = on_y.clone();
            async move { claim(&on_y, pid, None).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        second.abort();
        assert!(second.await.is_err(), "given up while the cleanup runs");
        assert!(get(&mut conn, &format!("t8:session:{pid}")).await.is_some());
        redis::cmd("DEL")
            .arg("t8:sockets:x")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        let back = claim(&on_y, pid, None).await.expect("the next try gets it");
        assert_eq!(back.sid, sid);
    }

    #[tokio::test]
    async fn forged_unknown_and_other_namespace_pids_get_nothing() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (x, y, _bus) = cluster(&redis, "t4", Duration::from_secs(60)).await;
        assert!(claim(&y.store("/"), Sid::random(), None).await.is_none());
        let p = parked(vec![], 0, 0);
        let pid = p.pid;
        x.store("/").park(p);
        record(&mut conn, "t4", pid).await;
        assert!(claim(&y.store("/admin"), pid, None).await.is_none());
        assert!(
            get(&mut conn, &format!("t4:session:{pid}")).await.is_some(),
            "another namespace's claim leaves the record alone"
        );
        redis::cmd("SET")
            .arg(format!("t4:session:{}", Sid::random()))
            .arg("not json")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        assert!(claim(&y.store("/"), Sid::random(), None).await.is_none());
    }

    #[tokio::test]
    async fn records_expire_with_the_window() {
        let redis = RedisServer::start();
        let mut conn = redis.conn().await;
        let (x, y, _bus) = cluster(&redis, "t5", Duration::from_millis(300)).await;
        let p = parked(vec![], 0, 0);
        let pid = p.pid;
        x.store("/").park(p);
        record(&mut conn, "t5", pid).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(get(&mut conn, &format!("t5:session:{pid}")).await, None);
        assert!(claim(&y.store("/"), pid, None).await.is_none());
        assert!(x.store("/").is_empty());
    }
}
