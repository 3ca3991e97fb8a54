//! A client's connection to one namespace: the handle handlers work with.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::adapter::Room;
use crate::broadcast::BroadcastOperator;
use crate::event::{AckError, Args, EmitError, Encoded, Payload};
use crate::handshake::Handshake;
use crate::namespace::{Namespace, NsInner};
use crate::queue::Leftover;
use crate::recovery::Parked;
use crate::session::Session;
use crate::sid::Sid;

/// Why a socket left its namespace (socket.io's reason strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client disconnected this namespace.
    ClientNamespaceDisconnect,
    /// The server called [`Socket::disconnect`].
    ServerNamespaceDisconnect,
    /// The client closed the connection, or it was lost.
    TransportClose,
    /// The connection failed (I/O error, protocol violation).
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent something that is not Socket.IO.
    ParseError,
    /// The client could not keep up with what it was sent.
    SlowConsumer,
    /// The server is shutting down.
    ServerShuttingDown,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::SlowConsumer => "slow consumer",
            DisconnectReason::ServerShuttingDown => "server shutting down",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client's connection to one namespace. Cheap to clone (one reference count).
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

pub(crate) struct SocketInner {
    pub(crate) id: Sid,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) session: Arc<Session>,
    auth: Option<Box<RawValue>>,
    extensions: Mutex<http::Extensions>,
    /// Acks the server is waiting for; allocated on first use.
    acks: Mutex<Option<HashMap<u64, oneshot::Sender<Args>>>>,
    next_ack: AtomicU64,
    connected: AtomicBool,
    /// The private recovery session id (with recovery on).
    pub(crate) pid: Option<Sid>,
    /// Whether this socket came back through connection-state recovery.
    recovered: bool,
    /// Whether this socket's state is being kept for a reconnect.
    parking: AtomicBool,
}

impl Socket {
    pub(crate) fn new(
        ns: Arc<NsInner>,
        session: Arc<Session>,
        auth: Option<Box<RawValue>>,
    ) -> Socket {
        let pid = ns.recovery.is_some().then(Sid::random);
        Self::build(ns, session, auth, Sid::random(), pid, None)
    }

    /// The socket of a recovered session: its old id, pid and data.
    pub(crate) fn restored(
        ns: Arc<NsInner>,
        session: Arc<Session>,
        auth: Option<Box<RawValue>>,
        parked: &mut Parked,
    ) -> Socket {
        let mut data = std::mem::take(&mut parked.data);
        if let Some(portable) = parked.portable.take().filter(|_| data.is_empty()) {
            // Brought from another process: rebuilt from its JSON form.
            data = ns.portable.decode(&portable);
        }
        data.insert(AwaySince(parked.away_since));
        Self::build(ns, session, auth, parked.sid, Some(parked.pid), Some(data))
    }

    fn build(
        ns: Arc<NsInner>,
        session: Arc<Session>,
        auth: Option<Box<RawValue>>,
        id: Sid,
        pid: Option<Sid>,
        data: Option<http::Extensions>,
    ) -> Socket {
        Socket(Arc::new(SocketInner {
            id,
            ns,
            session,
            auth,
            recovered: data.is_some(),
            extensions: Mutex::new(data.unwrap_or_default()),
            acks: Mutex::new(None),
            next_ack: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            pid,
            parking: AtomicBool::new(false),
        }))
    }

    /// The socket id (also the name of its own room).
    pub fn id(&self) -> Sid {
        self.0.id
    }

    /// The namespace this socket belongs to.
    pub fn ns(&self) -> Namespace {
        Namespace(self.0.ns.clone())
    }

    pub(crate) fn ns_name(&self) -> &str {
        &self.0.ns.name
    }

    /// The HTTP request that opened the connection.
    pub fn handshake(&self) -> &Handshake {
        &self.0.session.handshake
    }

    /// The transport the connection runs on now: `"websocket"` once it has
    /// one (opened on it or upgraded), `"polling"` before (metrics and logs
    /// label sockets with it).
    pub fn transport(&self) -> &'static str {
        if self.0.session.transport() == crate::session::WEBSOCKET {
            "websocket"
        } else {
            "polling"
        }
    }

    /// The Engine.IO session id (shared by the sockets of one connection).
    pub fn session_id(&self) -> Sid {
        self.0.session.id
    }

    /// The `auth` object the client sent with CONNECT, parsed as `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Option<T> {
        self.0
            .auth
            .as_ref()
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// The `auth` object as JSON text.
    pub fn auth_raw(&self) -> Option<&RawValue> {
        self.0.auth.as_deref()
    }

    /// Stores per-socket data of type `T` (socket.io's `socket.data`), replacing any previous `T`.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        let old = self
            .0
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(value);
        if self.0.ns.shared_store && self.0.ns.portable.covers(TypeId::of::<T>()) {
            self.touched();
        }
        old
    }

    /// A copy of the per-socket data of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get::<T>()
            .cloned()
    }

    /// Removes the per-socket data of type `T`.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        let old = self
            .0
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove::<T>();
        if self.0.ns.shared_store && self.0.ns.portable.covers(TypeId::of::<T>()) {
            self.touched();
        }
        old
    }

    /// Whether this socket came back through connection-state recovery: same
    /// id, rooms and data as before its connection was lost, missed packets
    /// delivered (the client sees `socket.recovered === true`).
    pub fn recovered(&self) -> bool {
        self.0.recovered
    }

    /// Whether this socket's state is kept for a reconnect: true in the
    /// `disconnecting` and `disconnect` handlers of a socket whose connection
    /// was lost (not closed on purpose) while recovery is on. Presence can
    /// then wait before telling the socket's peers it left.
    pub fn recoverable(&self) -> bool {
        self.0.parking.load(Ordering::Acquire)
    }

    /// The private recovery session id (recovery on): what the client
    /// presents to get this socket back. Only ever for its own client and a
    /// recovery store; never logged or sent to anyone else.
    pub fn pid(&self) -> Option<Sid> {
        self.0.pid
    }

    /// For a [recovered](Self::recovered) socket: when its connection was
    /// lost (it may have been on another node then).
    pub fn away_since(&self) -> Option<std::time::SystemTime> {
        self.get::<AwaySince>().map(|a| a.0)
    }

    /// The socket's data that is carried across processes, as JSON (see
    /// [`NamespaceBuilder::portable_data`](crate::NamespaceBuilder::portable_data)).
    pub fn portable_data(&self) -> serde_json::Value {
        let data = self.0.extensions.lock().unwrap_or_else(|e| e.into_inner());
        self.0.ns.portable.encode(&data)
    }

    /// A copy of all of the socket's data.
    pub(crate) fn data_clone(&self) -> http::Extensions {
        self.0
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tells a shared recovery store that this live socket changed.
    fn touched(&self) {
        if let Some(store) = self.0.ns.shared_store() {
            if self.connected() {
                store.touched(self);
            }
        }
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Joins `room`; false if already in it.
    pub fn join(&self, room: &str) -> bool {
        let joined = self.0.ns.adapter.join(self.0.id, room);
        if joined && self.0.ns.shared_store {
            self.touched();
        }
        joined
    }

    /// Leaves `room`; false if not in it.
    pub fn leave(&self, room: &str) -> bool {
        let left = self.0.ns.adapter.leave(self.0.id, room);
        if left && self.0.ns.shared_store {
            self.touched();
        }
        left
    }

    /// The socket's rooms, its own-id room first.
    pub fn rooms(&self) -> Vec<Room> {
        self.0.ns.adapter.rooms_of(self.0.id)
    }

    /// Whether the socket is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.0.ns.adapter.is_member(self.0.id, room)
    }

    /// Sends `event` with one argument to this client.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_payload(event, Payload::new().arg(data)?)
    }

    /// Sends `event` with any arguments (binary included).
    pub fn emit_payload(&self, event: &str, payload: Payload) -> Result<(), EmitError> {
        self.send_encoded(&payload.into_event(&self.0.ns.name, event, None))
    }

    /// Sends `event` and waits for the client's acknowledgement.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> impl Future<Output = Result<Args, AckError>> + Send + 'static {
        let sent = Payload::new()
            .arg(data)
            .map_err(EmitError::from)
            .and_then(|payload| self.send_with_ack(event, payload));
        async move {
            let (id, rx, socket) = sent?;
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(args)) => Ok(args),
                Ok(Err(_)) => Err(AckError::Disconnected),
                Err(_) => {
                    socket.take_ack(id);
                    Err(AckError::Timeout)
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn send_with_ack(
        &self,
        event: &str,
        payload: Payload,
    ) -> Result<(u64, oneshot::Receiver<Args>, Socket), EmitError> {
        if !self.connected() {
            return Err(EmitError::Closed);
        }
        let id = self.0.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.0
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(id, tx);
        if let Err(e) = self.send_encoded(&payload.into_event(&self.0.ns.name, event, Some(id))) {
            self.take_ack(id);
            return Err(e);
        }
        Ok((id, rx, self.clone()))
    }

    fn take_ack(&self, id: u64) -> Option<oneshot::Sender<Args>> {
        let mut acks = self.0.acks.lock().unwrap_or_else(|e| e.into_inner());
        let map = acks.as_mut()?;
        let tx = map.remove(&id);
        if map.is_empty() {
            *acks = None;
        }
        tx
    }

    /// Delivers an acknowledgement the client sent.
    pub(crate) fn on_ack(&self, id: u64, args: Args) {
        if let Some(tx) = self.take_ack(id) {
            let _ = tx.send(args);
        }
    }

    /// Queues an encoded packet to this client. A socket whose connection was
    /// lost, its state kept for a reconnect, keeps the packet for then.
    pub fn send_encoded(&self, packet: &Encoded) -> Result<(), EmitError> {
        if !self.connected() {
            return match &self.0.ns.recovery {
                Some(store) if self.recoverable() && store.send(self.0.id, packet) => Ok(()),
                _ => Err(EmitError::Closed),
            };
        }
        self.0
            .session
            .push(packet.frames())
            .map_err(|_| EmitError::Closed)
    }

    /// Everyone in `room` but this socket.
    pub fn to(&self, room: &str) -> BroadcastOperator {
        BroadcastOperator::new(self.0.ns.clone())
            .to(room)
            .except_sid(self.0.id)
    }

    /// Everyone sharing a room with this socket (its own-id room aside), each
    /// once however many rooms they share. `None` when it is in no room.
    pub fn peers(&self) -> Option<BroadcastOperator> {
        let rooms = self.rooms();
        if rooms.len() <= 1 {
            return None;
        }
        Some(
            rooms[1..]
                .iter()
                .fold(self.broadcast(), |op, room| op.to(room)),
        )
    }

    /// Everyone in the namespace but this socket.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.ns.clone()).except_sid(self.0.id)
    }

    /// Disconnects this socket from its namespace (the client sees
    /// `io server disconnect` and does not reconnect by itself).
    pub fn disconnect(&self) {
        if self.0.connected.load(Ordering::Acquire) {
            let _ = self
                .0
                .session
                .push([crate::eio::Frame::Text(crate::sio::disconnect(
                    &self.0.ns.name,
                ))]);
            self.close(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Makes the socket live: reachable in its namespace and its rooms.
    pub(crate) fn open(&self) {
        self.0.ns.adapter.add_socket(self.0.id);
        self.0.ns.insert(self.clone());
        self.0.connected.store(true, Ordering::Release);
    }

    /// Leaves the namespace once: `disconnecting` handlers see the rooms, then
    /// the rooms are dropped, then `disconnect` handlers run.
    /// Queues a packet a broadcast reaches this socket with: a parked socket
    /// gets broadcasts from the recovery store, not through here.
    pub(crate) fn send_broadcast(&self, packet: &Encoded) {
        if self.connected() {
            let _ = self.0.session.push(packet.frames());
        }
    }

    pub(crate) fn close(&self, reason: DisconnectReason) {
        self.close_with(reason, None);
    }

    /// [`close`](Self::close), keeping the socket's state for a reconnect
    /// when its connection was lost (`leftover` is what its queue held).
    pub(crate) fn close_with(&self, reason: DisconnectReason, leftover: Option<&Leftover>) {
        if !self.0.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let ns = &self.0.ns;
        if let (Some(store), Some(pid), Some(leftover)) = (&ns.recovery, self.0.pid, leftover) {
            // Parked before any handler runs: what peers send it from now on
            // (a relay answering the departure hint, say) is kept for it. Its
            // data is as it was when the connection was lost.
            let data = self
                .0
                .extensions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let portable = ns.shared_store.then(|| ns.portable.encode(&data));
            store.park(Parked {
                sid: self.0.id,
                pid,
                rooms: ns.adapter.rooms_of(self.0.id).into_iter().skip(1).collect(),
                data,
                frames: leftover.frames_of(&ns.name),
                lost: leftover.lost,
                last_offset: leftover.seq,
                portable,
                away_since: std::time::SystemTime::now(),
            });
            self.0.parking.store(true, Ordering::Release);
        } else if let Some(store) = ns.shared_store() {
            store.closed(self);
        }
        for handler in &ns.handlers.disconnecting {
            crate::namespace::guard("disconnecting handler", || handler(self, reason));
        }
        ns.adapter.remove_socket(self.0.id);
        ns.remove(self.0.id);
        self.0.session.forget_socket(&ns.name);
        // Dropping the senders tells every waiting emit_with_ack it will not be answered.
        self.0.acks.lock().unwrap_or_else(|e| e.into_inner()).take();
        for handler in &ns.handlers.disconnect {
            crate::namespace::guard("disconnect handler", || handler(self, reason));
        }
    }
}

/// When a recovered socket's connection was lost (kept in its data).
#[derive(Clone, Copy)]
struct AwaySince(std::time::SystemTime);

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Socket({} on {})", self.0.id, self.0.ns.name)
    }
}
