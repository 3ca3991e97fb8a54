//! Connection-state recovery (socket.io 4.6+): what is kept of a socket whose
//! connection was lost, so that a client reconnecting within the window gets
//! back its id, rooms, data and every packet it missed, once and in order.
//!
//! The protocol, as the official client speaks it: the CONNECT answer carries
//! a private session id (`pid`) next to `sid`; every plain event the server
//! sends is stamped with an offset (an extra last argument); a reconnecting
//! client puts `pid` and the last offset it received in its CONNECT `auth`.
//!
//! Offsets are per session and follow queue order (see `queue.rs`). What a
//! lost socket may have missed is (1) what its queue had handed to the
//! transport without the client confirming it (a pong to a later ping), (2)
//! what was still queued, and (3) what was sent to it, or to its rooms, while
//! it was away. (1) and (2) carry their offsets, so the client's offset says
//! exactly where to resume; (3) is replayed whole.
//!
//! The state sits behind [`RecoveryStore`] so that a cluster can keep it
//! where every node sees it; [`MemoryStore`] keeps it in this process. A
//! store outside the process cannot keep the socket's data as Rust values:
//! the building blocks that keep per-socket data register a
//! [`PortableData`] codec on the namespace (JSON both ways), and a
//! [shared](RecoveryStore::shared) store gets the data in that form.

use std::any::TypeId;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::adapter::{BroadcastOptions, Room};
use crate::config::Recovery;
use crate::eio::Frame;
use crate::event::Encoded;
use crate::sid::Sid;
use crate::socket::Socket;

/// Bookkeeping cost of one kept frame on top of its bytes (as the outgoing queue counts).
const FRAME_OVERHEAD: usize = 64;

/// A lost socket's state, kept for its reconnect.
pub struct Parked {
    /// The socket id it gets back.
    pub sid: Sid,
    /// The private session id the client presents to recover.
    pub pid: Sid,
    /// Its rooms (its own-id room not included).
    pub rooms: Vec<Room>,
    /// Its per-socket data.
    pub data: http::Extensions,
    /// Packets the client may not have received, in order: first those of
    /// the lost session (stamped with that session's offsets), then those
    /// sent to it while away (not stamped).
    pub frames: Vec<Frame>,
    /// The lost session's highest offset dropped before the client confirmed
    /// it: a client whose last offset is older cannot be recovered.
    pub lost: u64,
    /// The lost session's last offset.
    pub last_offset: u64,
    /// The data as JSON ([`PortableData`]): set when the store is
    /// [shared](RecoveryStore::shared) at parking time, and by a store that
    /// brings the state from elsewhere (then `data` is empty and the socket's
    /// data is decoded from this).
    pub portable: Option<serde_json::Value>,
    /// When the connection was lost (wall clock, so that another process can
    /// tell how long the socket has been away).
    pub away_since: SystemTime,
}

impl Parked {
    /// Keeps only what a client whose last offset is `offset` did not
    /// receive; `None` if that offset cannot be resumed from (older than what
    /// was dropped, or newer than anything sent: forged or malformed).
    pub fn resume_from(mut self, offset: Option<u64>) -> Option<Parked> {
        if !self.can_resume_from(offset) {
            return None;
        }
        let offset = offset.unwrap_or(0);
        let mut skip = false;
        self.frames.retain(|frame| {
            skip = match frame {
                Frame::Stamped(_, o) => *o <= offset,
                Frame::Text(_) => false,
                Frame::Binary(_) => skip,
            };
            !skip
        });
        Some(self)
    }
}

impl Parked {
    /// Whether a client whose last offset is `offset` can resume here.
    pub fn can_resume_from(&self, offset: Option<u64>) -> bool {
        let offset = offset.unwrap_or(0);
        offset >= self.lost && offset <= self.last_offset
    }
}

/// A future a store returns (boxed: stores are trait objects).
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The answer to a reconnecting client's claim on a session.
pub enum Claim {
    /// Known at once (an in-process store).
    Ready(Option<Parked>),
    /// Being looked up (a shared store: another node may hold the session).
    Pending(StoreFuture<Option<Parked>>),
}

/// Where lost sockets' state waits for their reconnect (one per namespace).
pub trait RecoveryStore: Send + Sync + 'static {
    /// Keeps `parked` for the recovery window.
    fn park(&self, parked: Parked);
    /// Whether no socket is parked: checked on every broadcast, so it must be cheap.
    fn is_empty(&self) -> bool;
    /// Takes the state of session `pid`, if it is known, in the window, and
    /// `offset` (the client's last, `None` if it received nothing) can be
    /// resumed from; its frames are then exactly what the client missed.
    fn take(&self, pid: Sid, offset: Option<u64>) -> Option<Parked>;
    /// The rooms of the parked socket `sid`.
    fn rooms_of(&self, sid: Sid) -> Option<Vec<Room>>;
    /// Keeps a packet sent to the parked socket `sid`; false if it is not
    /// parked (or its state was just dropped for being over the limits).
    fn send(&self, sid: Sid, packet: &Encoded) -> bool;
    /// Keeps a broadcast packet for every parked socket it reaches.
    fn broadcast(&self, opts: &BroadcastOptions, packet: &Encoded);

    /// What the CONNECT path asks: [`take`](Self::take) at once by default; a
    /// store shared between processes may look elsewhere first. The client's
    /// later packets wait until the claim is answered.
    fn claim(self: Arc<Self>, pid: Sid, offset: Option<u64>) -> Claim {
        Claim::Ready(self.take(pid, offset))
    }

    /// Whether this store keeps sessions outside this process: it then gets
    /// parked sockets' data as JSON ([`Parked::portable`]) and hears of live
    /// sockets ([`opened`](Self::opened), [`touched`](Self::touched),
    /// [`closed`](Self::closed)), so that their sessions outlive this process.
    fn shared(&self) -> bool {
        false
    }

    /// A shared store: `socket` is live (new or recovered), its rooms joined.
    fn opened(&self, _socket: &Socket) {}

    /// A shared store: the rooms or the portable data of the live `socket` changed.
    fn touched(&self, _socket: &Socket) {}

    /// A shared store: `socket` left for good (a goodbye, or a lost
    /// connection whose state could not be kept): its session is over.
    fn closed(&self, _socket: &Socket) {}
}

type EncodeFn = dyn Fn(&http::Extensions) -> Option<serde_json::Value> + Send + Sync;
type DecodeFn = dyn Fn(&serde_json::Value, &mut http::Extensions) + Send + Sync;

struct Codec {
    key: Box<str>,
    type_id: TypeId,
    encode: Box<EncodeFn>,
    decode: Box<DecodeFn>,
}

/// How per-socket data crosses a process boundary: each building block that
/// keeps data on its sockets registers its type under a key, with a JSON
/// encoding both ways (`{ key: value, ... }` for the whole socket). Types
/// nobody registered (caches, counters) are not carried: they start empty
/// on a socket recovered from another process.
#[derive(Default)]
pub struct PortableData {
    codecs: Vec<Codec>,
}

impl PortableData {
    /// Carries data of type `T` under `key`; `decode` returns `None` for a
    /// value it does not understand (it is then left out).
    pub fn register<T, E, D>(&mut self, key: &str, encode: E, decode: D)
    where
        T: Clone + Send + Sync + 'static,
        E: Fn(&T) -> serde_json::Value + Send + Sync + 'static,
        D: Fn(&serde_json::Value) -> Option<T> + Send + Sync + 'static,
    {
        self.codecs.retain(|c| &*c.key != key);
        self.codecs.push(Codec {
            key: key.into(),
            type_id: TypeId::of::<T>(),
            encode: Box::new(move |data| data.get::<T>().map(&encode)),
            decode: Box::new(move |value, data| {
                if let Some(v) = decode(value) {
                    data.insert(v);
                }
            }),
        });
    }

    /// Whether no type is registered.
    pub fn is_empty(&self) -> bool {
        self.codecs.is_empty()
    }

    /// Whether data of type `T` is carried.
    pub(crate) fn covers(&self, type_id: TypeId) -> bool {
        self.codecs.iter().any(|c| c.type_id == type_id)
    }

    /// The registered data of `data` as one JSON object.
    pub fn encode(&self, data: &http::Extensions) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for codec in &self.codecs {
            if let Some(v) = (codec.encode)(data) {
                out.insert(codec.key.to_string(), v);
            }
        }
        serde_json::Value::Object(out)
    }

    /// Socket data from what [`encode`](Self::encode) made (unknown keys ignored).
    pub fn decode(&self, value: &serde_json::Value) -> http::Extensions {
        let mut data = http::Extensions::new();
        if let Some(map) = value.as_object() {
            for codec in &self.codecs {
                if let Some(v) = map.get(&*codec.key) {
                    (codec.decode)(v, &mut data);
                }
            }
        }
        data
    }
}

struct Entry {
    parked: Parked,
    packets: usize,
    bytes: usize,
    deadline: Instant,
}

impl Entry {
    /// Adds frames; false when that takes the entry past the limits.
    fn add(&mut self, frames: impl Iterator<Item = Frame>, limits: &Recovery) -> bool {
        for frame in frames {
            self.bytes += frame.len() + FRAME_OVERHEAD;
            self.packets += usize::from(!matches!(frame, Frame::Binary(_)));
            self.parked.frames.push(frame);
        }
        self.packets <= limits.max_packets && self.bytes <= limits.max_bytes
    }

    fn reaches(&self, opts: &BroadcastOptions) -> bool {
        let sid = self.parked.sid;
        let in_room = |room: &Room| &**room == sid.as_str() || self.parked.rooms.contains(room);
        if opts.except_sid == Some(sid) || opts.except.iter().any(in_room) {
            return false;
        }
        opts.rooms.is_empty() || opts.rooms.iter().any(in_room)
    }
}

#[derive(Default)]
struct Inner {
    by_pid: HashMap<Sid, Entry>,
    /// Socket id → pid of the parked sockets.
    pids: HashMap<Sid, Sid>,
    /// Deadlines in parking order (the window is fixed, so they are sorted).
    expiry: VecDeque<(Instant, Sid)>,
}

impl Inner {
    fn remove(&mut self, pid: Sid) -> Option<Entry> {
        let entry = self.by_pid.remove(&pid)?;
        self.pids.remove(&entry.parked.sid);
        Some(entry)
    }

    fn sweep(&mut self, now: Instant) {
        while let Some(&(deadline, pid)) = self.expiry.front() {
            if deadline > now {
                break;
            }
            self.expiry.pop_front();
            // A socket recovered and lost again is parked again under the
            // same pid, with a later deadline: only the matching one expires.
            if self
                .by_pid
                .get(&pid)
                .is_some_and(|e| e.deadline == deadline)
            {
                self.remove(pid);
            }
        }
        if self.expiry.is_empty() {
            self.expiry = VecDeque::new();
        }
    }
}

/// The in-process [`RecoveryStore`]: bounded per socket in packets and bytes,
/// each entry dropped when its window ends.
pub struct MemoryStore {
    limits: Recovery,
    inner: Mutex<Inner>,
    count: AtomicUsize,
    this: Weak<MemoryStore>,
}

impl MemoryStore {
    pub fn new(limits: Recovery) -> Arc<MemoryStore> {
        Arc::new_cyclic(|this| MemoryStore {
            limits,
            inner: Mutex::new(Inner::default()),
            count: AtomicUsize::new(0),
            this: this.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent before anything can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recount(&self, inner: &Inner) {
        self.count.store(inner.by_pid.len(), Ordering::Release);
    }

    /// Whether session `pid` is parked here (whatever offset its client has).
    pub fn knows(&self, pid: Sid) -> bool {
        let mut inner = self.lock();
        inner.sweep(Instant::now());
        self.recount(&inner);
        inner.by_pid.contains_key(&pid)
    }

    /// How many sockets are parked.
    pub fn parked(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

impl RecoveryStore for MemoryStore {
    fn park(&self, mut parked: Parked) {
        let now = Instant::now();
        let deadline = now + self.limits.window;
        let (pid, sid) = (parked.pid, parked.sid);
        let frames = std::mem::take(&mut parked.frames);
        let mut entry = Entry {
            parked,
            packets: 0,
            bytes: 0,
            deadline,
        };
        if !entry.add(frames.into_iter(), &self.limits) {
            // Already over the limits: nothing is kept, the client connects fresh.
            return;
        }
        {
            let mut inner = self.lock();
            inner.sweep(now);
            if let Some(old) = inner.by_pid.insert(pid, entry) {
                inner.pids.remove(&old.parked.sid);
            }
            inner.pids.insert(sid, pid);
            inner.expiry.push_back((deadline, pid));
            self.recount(&inner);
        }
        // Memory is given back when the window ends, even if nothing else
        // happens on this namespace by then.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let this = self.this.clone();
            runtime.spawn(async move {
                tokio::time::sleep_until(deadline).await;
                if let Some(store) = this.upgrade() {
                    let mut inner = store.lock();
                    inner.sweep(Instant::now());
                    store.recount(&inner);
                }
            });
        }
    }

    fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    fn take(&self, pid: Sid, offset: Option<u64>) -> Option<Parked> {
        let mut inner = self.lock();
        inner.sweep(Instant::now());
        // An offset it cannot resume from leaves the state for its owner: a
        // guess at someone's pid with a bad offset does not destroy it.
        let entry = inner.by_pid.get(&pid)?;
        if !entry.parked.can_resume_from(offset) {
            return None;
        }
        let entry = inner.remove(pid);
        self.recount(&inner);
        drop(inner);
        entry?.parked.resume_from(offset)
    }

    fn rooms_of(&self, sid: Sid) -> Option<Vec<Room>> {
        let inner = self.lock();
        let pid = inner.pids.get(&sid)?;
        inner.by_pid.get(pid).map(|e| e.parked.rooms.clone())
    }

    fn send(&self, sid: Sid, packet: &Encoded) -> bool {
        let mut inner = self.lock();
        let Some(&pid) = inner.pids.get(&sid) else {
            return false;
        };
        let entry = inner.by_pid.get_mut(&pid).expect("pids and by_pid agree");
        if entry.add(packet.frames(), &self.limits) {
            return true;
        }
        // Past the limits: the state is dropped and the client will connect fresh.
        inner.remove(pid);
        self.recount(&inner);
        false
    }

    fn broadcast(&self, opts: &BroadcastOptions, packet: &Encoded) {
        let mut inner = self.lock();
        let mut over = Vec::new();
        for (pid, entry) in inner.by_pid.iter_mut() {
            if entry.reaches(opts) && !entry.add(packet.frames(), &self.limits) {
                over.push(*pid);
            }
        }
        for pid in over {
            inner.remove(pid);
        }
        self.recount(&inner);
    }
}

/// The `pid` and `offset` a reconnecting client put in its CONNECT `auth`:
/// `Some((pid, offset))` when it asks to recover in a well-formed way.
pub(crate) fn resume_request(auth: Option<&RawValue>) -> Option<(Sid, Option<u64>)> {
    #[derive(Deserialize)]
    struct Resume<'a> {
        #[serde(borrow)]
        pid: Option<std::borrow::Cow<'a, str>>,
        offset: Option<serde_json::Value>,
    }
    let resume: Resume = serde_json::from_str(auth?.get()).ok()?;
    let pid = resume.pid?.parse().ok()?;
    let offset = match resume.offset {
        None => None,
        // socket.io's offsets are strings; ours are decimal numbers in them.
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= 20 => {
            Some(s.parse::<u64>().ok()?)
        }
        Some(_) => return None,
    };
    Some((pid, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn text(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    fn parked(frames: Vec<Frame>, lost: u64, last_offset: u64) -> Parked {
        Parked {
            sid: Sid::random(),
            pid: Sid::random(),
            rooms: vec![Room::from("r")],
            data: http::Extensions::new(),
            frames,
            lost,
            last_offset,
            portable: None,
            away_since: SystemTime::now(),
        }
    }

    fn stamped(s: &'static str, o: u64) -> Frame {
        Frame::Stamped(Bytes::from_static(s.as_bytes()), o)
    }

    #[test]
    fn resuming_keeps_what_the_client_did_not_receive() {
        let frames = vec![
            stamped("42[\"a\"]", 3),
            stamped("451-[\"b\",{}]", 4),
            Frame::Binary(Bytes::from_static(b"x")),
            stamped("42[\"c\"]", 5),
            text("42[\"away\"]"),
        ];
        let p = parked(frames.clone(), 2, 5).resume_from(Some(4)).unwrap();
        assert_eq!(p.frames, frames[3..].to_vec());
        let p = parked(frames.clone(), 2, 5).resume_from(Some(2)).unwrap();
        assert_eq!(p.frames, frames);
        assert!(
            parked(frames.clone(), 2, 5).resume_from(Some(1)).is_none(),
            "too old"
        );
        assert!(
            parked(frames.clone(), 2, 5).resume_from(Some(6)).is_none(),
            "never sent"
        );
        assert!(
            parked(frames.clone(), 2, 5).resume_from(None).is_none(),
            "lost packets"
        );
        assert_eq!(
            parked(frames.clone(), 0, 5)
                .resume_from(None)
                .unwrap()
                .frames,
            frames
        );
    }

    #[test]
    fn resume_requests_are_parsed_strictly() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let pid = Sid::random();
        let ok = raw(&format!(r#"{{"pid":"{pid}","offset":"12","token":"t"}}"#));
        assert_eq!(resume_request(Some(&ok)), Some((pid, Some(12))));
        let no_offset = raw(&format!(r#"{{"pid":"{pid}"}}"#));
        assert_eq!(resume_request(Some(&no_offset)), Some((pid, None)));
        for bad in [
            format!(r#"{{"pid":"{pid}","offset":12}}"#),
            format!(r#"{{"pid":"{pid}","offset":"x1"}}"#),
            format!(r#"{{"pid":"{pid}","offset":""}}"#),
            format!(r#"{{"pid":"{pid}","offset":"-1"}}"#),
            r#"{"pid":"short","offset":"1"}"#.to_owned(),
            r#"{"pid":7}"#.to_owned(),
            r#"{"offset":"1"}"#.to_owned(),
        ] {
            assert_eq!(resume_request(Some(&raw(&bad))), None, "{bad}");
        }
        assert_eq!(resume_request(None), None);
    }

    #[test]
    fn portable_data_crosses_as_json() {
        #[derive(Clone, Debug, PartialEq)]
        struct Name(String);
        #[derive(Clone)]
        struct Cache;
        let mut codec = PortableData::default();
        codec.register::<Name, _, _>(
            "name",
            |n| serde_json::json!(n.0),
            |v| v.as_str().map(|s| Name(s.to_owned())),
        );
        assert!(codec.covers(TypeId::of::<Name>()) && !codec.covers(TypeId::of::<Cache>()));
        let mut data = http::Extensions::new();
        data.insert(Name("ada".into()));
        data.insert(Cache);
        let json = codec.encode(&data);
        assert_eq!(json, serde_json::json!({ "name": "ada" }));
        let back = codec.decode(&json);
        assert_eq!(back.get::<Name>(), Some(&Name("ada".into())));
        assert!(
            back.get::<Cache>().is_none(),
            "unregistered data is not carried"
        );
        let odd = codec.decode(&serde_json::json!({ "name": 7, "other": 1 }));
        assert!(
            odd.get::<Name>().is_none(),
            "a value the codec refuses is left out"
        );
        assert!(codec.decode(&serde_json::json!("x")).is_empty());
    }

    #[tokio::test]
    async fn the_store_is_bounded_and_expires() {
        let limits = Recovery {
            window: Duration::from_millis(50),
            max_packets: 2,
            max_bytes: 1 << 20,
            skip_middleware: true,
        };
        let store = MemoryStore::new(limits);
        let p = parked(vec![], 0, 0);
        let (sid, pid) = (p.sid, p.pid);
        store.park(p);
        assert_eq!(store.rooms_of(sid), Some(vec![Room::from("r")]));
        let packet = Encoded::from_text(Bytes::from_static(b"42[\"x\"]"));
        let to_room = BroadcastOptions {
            rooms: vec![Room::from("r")],
            ..Default::default()
        };
        store.broadcast(&to_room, &packet);
        assert!(store.send(sid, &packet));
        assert!(
            !store.send(sid, &packet),
            "a third packet is past the limit"
        );
        assert!(store.is_empty() && store.take(pid, None).is_none());

        let p = parked(vec![], 0, 0);
        let (sid, pid) = (p.sid, p.pid);
        store.park(p);
        let elsewhere = BroadcastOptions {
            rooms: vec![Room::from("q")],
            ..Default::default()
        };
        store.broadcast(&elsewhere, &packet);
        let except = BroadcastOptions {
            except_sid: Some(sid),
            ..Default::default()
        };
        store.broadcast(&except, &packet);
        let taken = store.take(pid, None).unwrap();
        assert!(taken.frames.is_empty(), "not reached by those broadcasts");
        assert!(store.take(pid, None).is_none(), "taken once");

        let p = parked(vec![], 0, 4);
        let pid = p.pid;
        store.park(p);
        assert!(store.take(pid, Some(5)).is_none(), "an offset never sent");
        assert!(
            store.take(pid, Some(4)).is_some(),
            "the state stayed for its owner"
        );

        store.park(parked(vec![], 0, 0));
        assert_eq!(store.parked(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(store.is_empty(), "expired with its window");
    }
}
