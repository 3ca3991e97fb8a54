//! Namespaces: their handlers (registered once, shared by every socket) and
//! their connected sockets.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock, Weak};

use crate::adapter::{Adapter, LocalAdapter, Room};
use crate::broadcast::BroadcastOperator;
use crate::config::Recovery;
use crate::event::{EmitError, Encoded, Event, Payload};
use crate::recovery::{MemoryStore, PortableData, RecoveryStore};
use crate::sid::Sid;
use crate::socket::{DisconnectReason, Socket};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a connection to a namespace was refused; the client receives it in
/// `connect_error` (`err.message`, `err.data`).
#[derive(Debug, Clone)]
pub struct ConnectError {
    pub message: String,
    pub data: Option<serde_json::Value>,
}

impl ConnectError {
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

type SyncHandler = dyn Fn(&Socket, Event) + Send + Sync;
type AsyncHandler = dyn Fn(Socket, Event) -> BoxFuture<()> + Send + Sync;

/// An event handler: synchronous ones run inline in the socket's reader, in
/// arrival order; asynchronous ones also keep that order, by holding the
/// socket's later events (not its pings or acks) until they finish.
#[derive(Clone)]
pub(crate) enum Handler {
    Sync(Arc<SyncHandler>),
    Async(Arc<AsyncHandler>),
}

pub(crate) type Middleware =
    Arc<dyn Fn(Socket) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;
pub(crate) type EventMiddleware = Arc<dyn Fn(&Socket, &Event) -> ControlFlow<()> + Send + Sync>;
pub(crate) type SocketHook = Arc<dyn Fn(&Socket) + Send + Sync>;
pub(crate) type DisconnectHook = Arc<dyn Fn(&Socket, DisconnectReason) + Send + Sync>;
pub(crate) type RemoteDepartureHook = Arc<dyn Fn(&Namespace, Sid, Vec<Room>) + Send + Sync>;
pub(crate) type ClusterRequestHook = Arc<dyn Fn(&Namespace, &str) + Send + Sync>;

#[derive(Default, Clone)]
pub(crate) struct Handlers {
    pub(crate) middleware: Vec<Middleware>,
    pub(crate) event_middleware: Vec<EventMiddleware>,
    pub(crate) connect: Vec<SocketHook>,
    pub(crate) events: HashMap<String, Handler>,
    pub(crate) fallback: Option<Handler>,
    pub(crate) disconnecting: Vec<DisconnectHook>,
    pub(crate) disconnect: Vec<DisconnectHook>,
    pub(crate) remote_departure: Vec<RemoteDepartureHook>,
    pub(crate) cluster_requests: HashMap<String, ClusterRequestHook>,
}

/// Configures one namespace before the server starts.
pub struct NamespaceBuilder {
    pub(crate) name: String,
    pub(crate) handlers: Handlers,
    pub(crate) adapter: Option<Arc<dyn Adapter>>,
    pub(crate) recovery_store: Option<Arc<dyn RecoveryStore>>,
    pub(crate) portable: PortableData,
}

impl NamespaceBuilder {
    pub(crate) fn new(name: &str) -> Self {
        NamespaceBuilder {
            name: name.to_owned(),
            handlers: Handlers::default(),
            adapter: None,
            recovery_store: None,
            portable: PortableData::default(),
        }
    }

    /// The namespace name (`/`, `/calls`...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds connect middleware (socket.io's `io.use`): it runs before the
    /// socket joins the namespace, may read the handshake and `auth` and store
    /// data on the socket, and refuses the connection by returning an error.
    pub fn middleware<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.handlers
            .middleware
            .push(Arc::new(move |s| Box::pin(f(s))));
        self
    }

    /// Adds event middleware (socket.io's `socket.use`): it sees every event
    /// before its handler and may drop it with `ControlFlow::Break`.
    pub fn event_middleware<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&Socket, &Event) -> ControlFlow<()> + Send + Sync + 'static,
    {
        self.handlers.event_middleware.push(Arc::new(f));
        self
    }

    /// Runs when a socket has connected (socket.io's `connection`).
    pub fn on_connect<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&Socket) + Send + Sync + 'static,
    {
        self.handlers.connect.push(Arc::new(f));
        self
    }

    /// Handles `event` synchronously.
    pub fn on<F>(&mut self, event: &str, f: F) -> &mut Self
    where
        F: Fn(&Socket, Event) + Send + Sync + 'static,
    {
        self.handlers
            .events
            .insert(event.to_owned(), Handler::Sync(Arc::new(f)));
        self
    }

    /// Handles `event` with an async function; the socket's later events wait for it.
    pub fn on_async<F, Fut>(&mut self, event: &str, f: F) -> &mut Self
    where
        F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.events.insert(
            event.to_owned(),
            Handler::Async(Arc::new(move |s, e| Box::pin(f(s, e)))),
        );
        self
    }

    /// Handles every event that has no handler of its own.
    pub fn on_any<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&Socket, Event) + Send + Sync + 'static,
    {
        self.handlers.fallback = Some(Handler::Sync(Arc::new(f)));
        self
    }

    /// Runs when a socket is leaving, while its rooms are still known
    /// (socket.io's `disconnecting`).
    pub fn on_disconnecting<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&Socket, DisconnectReason) + Send + Sync + 'static,
    {
        self.handlers.disconnecting.push(Arc::new(f));
        self
    }

    /// Runs after a socket has left, its rooms gone (socket.io's `disconnect`).
    pub fn on_disconnect<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&Socket, DisconnectReason) + Send + Sync + 'static,
    {
        self.handlers.disconnect.push(Arc::new(f));
        self
    }

    /// Runs when a socket of another node left without a goodbye (its node
    /// died): `rooms` are the rooms it was in, already without it. Only a
    /// cluster adapter reports these; each surviving node runs the hook once,
    /// so it should tell this node's sockets only.
    pub fn on_remote_departure<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&Namespace, Sid, Vec<Room>) + Send + Sync + 'static,
    {
        self.handlers.remote_departure.push(Arc::new(f));
        self
    }

    /// Handles requests of `kind` that another node of a cluster sends with
    /// [`Namespace::request_others`] (`data` as it sent it): an action on
    /// this node's sockets (an administrator's kick by user id, say).
    pub fn on_cluster_request<F>(&mut self, kind: &str, f: F) -> &mut Self
    where
        F: Fn(&Namespace, &str) + Send + Sync + 'static,
    {
        self.handlers
            .cluster_requests
            .insert(kind.to_owned(), Arc::new(f));
        self
    }

    /// Uses `adapter` for this namespace's rooms instead of the in-memory one.
    pub fn adapter(&mut self, adapter: Arc<dyn Adapter>) -> &mut Self {
        self.adapter = Some(adapter);
        self
    }

    /// Keeps lost sockets' state in `store` instead of this process's memory
    /// (used only when connection-state recovery is on).
    pub fn recovery_store(&mut self, store: Arc<dyn RecoveryStore>) -> &mut Self {
        self.recovery_store = Some(store);
        self
    }

    /// Makes per-socket data of type `T` portable under `key` (JSON both
    /// ways), so that a recovery store shared between processes can give a
    /// socket its data back on another node. See [`PortableData`].
    pub fn portable_data<T, E, D>(&mut self, key: &str, encode: E, decode: D) -> &mut Self
    where
        T: Clone + Send + Sync + 'static,
        E: Fn(&T) -> serde_json::Value + Send + Sync + 'static,
        D: Fn(&serde_json::Value) -> Option<T> + Send + Sync + 'static,
    {
        self.portable.register(key, encode, decode);
        self
    }

    pub(crate) fn build(self, recovery: Option<Recovery>) -> Arc<NsInner> {
        let recovery_store = recovery.map(|limits| {
            self.recovery_store
                .unwrap_or_else(|| MemoryStore::new(limits) as Arc<dyn RecoveryStore>)
        });
        let shared_store = recovery_store.as_ref().is_some_and(|s| s.shared());
        let inner = Arc::new(NsInner {
            portable: self.portable,
            shared_store,
            name: self.name.into_boxed_str(),
            handlers: self.handlers,
            adapter: self
                .adapter
                .unwrap_or_else(|| Arc::new(LocalAdapter::new())),
            sockets: RwLock::new(HashMap::new()),
            recovery: recovery_store,
        });
        inner.adapter.bind(NamespaceHandle(Arc::downgrade(&inner)));
        inner
    }
}

pub(crate) struct NsInner {
    pub(crate) name: Box<str>,
    pub(crate) handlers: Handlers,
    pub(crate) adapter: Arc<dyn Adapter>,
    sockets: RwLock<HashMap<Sid, Socket>>,
    /// Where lost sockets wait for their reconnect (recovery on).
    pub(crate) recovery: Option<Arc<dyn RecoveryStore>>,
    /// How the sockets' data crosses processes (a shared recovery store).
    pub(crate) portable: PortableData,
    /// Whether `recovery` is shared between processes (hears of live sockets).
    pub(crate) shared_store: bool,
}

impl NsInner {
    /// The shared recovery store, when there is one.
    pub(crate) fn shared_store(&self) -> Option<&Arc<dyn RecoveryStore>> {
        if self.shared_store {
            self.recovery.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn insert(&self, socket: Socket) {
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(socket.id(), socket);
    }

    pub(crate) fn remove(&self, sid: Sid) {
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sid);
    }

    pub(crate) fn get(&self, sid: Sid) -> Option<Socket> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sid)
            .cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.sockets.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn all(&self) -> Vec<Socket> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// A handle on a running namespace: emit to it, query its rooms and sockets.
#[derive(Clone)]
pub struct Namespace(pub(crate) Arc<NsInner>);

impl Namespace {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// A connected socket of this namespace on this node.
    pub fn get_socket(&self, sid: Sid) -> Option<Socket> {
        self.0.get(sid)
    }

    /// Every connected socket of this namespace on this node.
    pub fn sockets(&self) -> Vec<Socket> {
        self.0.all()
    }

    /// How many sockets are connected to this namespace on this node.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no socket is connected to this namespace on this node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids of the sockets in `room`.
    pub fn room_members(&self, room: &str) -> Vec<Sid> {
        self.0.adapter.members(room)
    }

    /// How many sockets are in `room`.
    pub fn room_len(&self, room: &str) -> usize {
        self.0.adapter.room_len(room)
    }

    /// Every non-empty room with its size.
    pub fn rooms(&self) -> Vec<(Room, usize)> {
        self.0.adapter.rooms()
    }

    /// The rooms of `sid` while it is away: its connection was lost and its
    /// state is kept for a reconnect (connection-state recovery).
    pub fn absent_rooms(&self, sid: Sid) -> Option<Vec<Room>> {
        let store = self.0.recovery.as_ref()?;
        if store.is_empty() {
            return None;
        }
        store.rooms_of(sid)
    }

    /// Keeps `packet` for the absent socket `sid`, delivered if it recovers;
    /// false when no such socket is away.
    pub fn send_to_absent(&self, sid: Sid, packet: &Encoded) -> bool {
        self.0
            .recovery
            .as_ref()
            .is_some_and(|store| !store.is_empty() && store.send(sid, packet))
    }

    /// Sends `packet` to the socket `sid` wherever it is: connected here,
    /// away with its state kept for a reconnect (recovery), or on another
    /// node (cluster adapter). False when it is nowhere.
    pub fn send_to(&self, sid: Sid, packet: &Encoded) -> bool {
        if let Some(socket) = self.0.get(sid) {
            if socket.send_encoded(packet).is_ok() {
                return true;
            }
        }
        self.send_to_absent(sid, packet) || self.0.adapter.send_to(sid, packet)
    }

    /// Sends `packet` to `sid`, here if it is connected here, else to the
    /// cluster node `node` (where shared state, such as a room store, says
    /// it lives), whether or not the membership replica knows it yet.
    pub fn send_to_node(&self, node: &str, sid: Sid, packet: &Encoded) -> bool {
        if let Some(socket) = self.0.get(sid) {
            if socket.send_encoded(packet).is_ok() {
                return true;
            }
        }
        self.0.adapter.send_to_node(node, sid, packet) || self.send_to(sid, packet)
    }

    /// Takes in that `sid` lives on the cluster node `node` and is in `room`,
    /// as shared state (a room store's join snapshot) says, ahead of the
    /// membership replica (see [`Adapter::learn_member`]).
    pub fn learn_member(&self, node: &str, sid: Sid, room: &str) {
        self.0.adapter.learn_member(node, sid, room);
    }

    /// Asks every other node of a cluster to run its `on_cluster_request`
    /// handler for `kind` with `data`; false when there is no other node.
    pub fn request_others(&self, kind: &str, data: &str) -> bool {
        self.0.adapter.request_others(kind, data)
    }

    /// Disconnects the socket `sid` wherever it is connected, here or on
    /// another node (the client sees `io server disconnect`); false when it
    /// is connected nowhere.
    pub fn disconnect_socket(&self, sid: Sid) -> bool {
        match self.0.get(sid) {
            Some(socket) => {
                socket.disconnect();
                true
            }
            None => self.0.adapter.disconnect_remote(sid),
        }
    }

    /// The adapter behind this namespace's rooms.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.0.adapter
    }

    /// Everyone in `room`.
    pub fn to(&self, room: &str) -> BroadcastOperator {
        BroadcastOperator::new(self.0.clone()).to(room)
    }

    /// Everyone but the sockets in `room`.
    pub fn except(&self, room: &str) -> BroadcastOperator {
        BroadcastOperator::new(self.0.clone()).except(room)
    }

    /// Sends `event` to every socket of the namespace.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        BroadcastOperator::new(self.0.clone()).emit(event, data)
    }

    /// Sends `event` with any arguments to every socket of the namespace.
    pub fn emit_payload(&self, event: &str, payload: Payload) {
        BroadcastOperator::new(self.0.clone()).emit_payload(event, payload)
    }
}

/// What an adapter holds of its namespace (see [`Adapter::bind`]): a weak
/// handle, so the adapter does not keep a dropped namespace alive.
#[derive(Clone)]
pub struct NamespaceHandle(Weak<NsInner>);

impl NamespaceHandle {
    /// The namespace, while the server runs.
    pub fn namespace(&self) -> Option<Namespace> {
        self.0.upgrade().map(Namespace)
    }

    /// Delivers a packet that came from another node to the sockets `sids`
    /// of this node (a socket away with its state kept gets it on its
    /// return); unknown sids are skipped. Returns how many got it.
    pub fn deliver(&self, sids: &[Sid], packet: &Encoded) -> usize {
        let Some(ns) = self.0.upgrade() else {
            return 0;
        };
        let mut delivered = 0;
        for &sid in sids {
            let sent = match ns.get(sid) {
                Some(socket) => socket.send_encoded(packet).is_ok(),
                None => ns
                    .recovery
                    .as_ref()
                    .is_some_and(|store| !store.is_empty() && store.send(sid, packet)),
            };
            delivered += usize::from(sent);
        }
        delivered
    }

    /// Disconnects the local socket `sid` on another node's request; false if it is not here.
    pub fn disconnect(&self, sid: Sid) -> bool {
        match self.0.upgrade().and_then(|ns| ns.get(sid)) {
            Some(socket) => {
                socket.disconnect();
                true
            }
            None => false,
        }
    }

    /// Runs the `on_cluster_request` handler for `kind` (a request from
    /// another node); false when there is none.
    pub fn request(&self, kind: &str, data: &str) -> bool {
        let Some(ns) = self.0.upgrade() else {
            return false;
        };
        let Some(hook) = ns.handlers.cluster_requests.get(kind).cloned() else {
            return false;
        };
        let handle = Namespace(ns);
        guard("cluster request handler", || hook(&handle, data)).is_some()
    }

    /// Reports that `sid`, a socket of another node, is gone without a
    /// goodbye (its node died), from `rooms`: runs the namespace's
    /// `on_remote_departure` hooks.
    pub fn remote_departure(&self, sid: Sid, rooms: Vec<Room>) {
        let Some(ns) = self.0.upgrade() else {
            return;
        };
        let handle = Namespace(ns.clone());
        for hook in &ns.handlers.remote_departure {
            guard("remote departure handler", || {
                hook(&handle, sid, rooms.clone())
            });
        }
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({})", self.0.name)
    }
}

/// Runs application code so that a panic in it is logged instead of taking
/// the connection's task (and every socket on it) down.
pub(crate) fn guard<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            tracing::error!("{what} panicked; the event was dropped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::adapter::BroadcastOptions;

    /// The in-memory adapter, plus what a cluster adapter would be asked.
    #[derive(Default)]
    struct Recording {
        local: LocalAdapter,
        handle: Mutex<Option<NamespaceHandle>>,
        sent: Mutex<Vec<(Sid, bytes::Bytes)>>,
        kicked: Mutex<Vec<Sid>>,
    }

    impl Adapter for Recording {
        fn add_socket(&self, sid: Sid) {
            self.local.add_socket(sid)
        }
        fn remove_socket(&self, sid: Sid) -> Vec<Room> {
            self.local.remove_socket(sid)
        }
        fn join(&self, sid: Sid, room: &str) -> bool {
            self.local.join(sid, room)
        }
        fn leave(&self, sid: Sid, room: &str) -> bool {
            self.local.leave(sid, room)
        }
        fn rooms_of(&self, sid: Sid) -> Vec<Room> {
            self.local.rooms_of(sid)
        }
        fn is_member(&self, sid: Sid, room: &str) -> bool {
            self.local.is_member(sid, room)
        }
        fn members(&self, room: &str) -> Vec<Sid> {
            self.local.members(room)
        }
        fn room_len(&self, room: &str) -> usize {
            self.local.room_len(room)
        }
        fn rooms(&self) -> Vec<(Room, usize)> {
            self.local.rooms()
        }
        fn recipients(&self, opts: &BroadcastOptions) -> Vec<Sid> {
            self.local.recipients(opts)
        }
        fn bind(&self, ns: NamespaceHandle) {
            *self.handle.lock().unwrap() = Some(ns);
        }
        fn send_to(&self, sid: Sid, packet: &Encoded) -> bool {
            self.sent.lock().unwrap().push((sid, packet.text.clone()));
            true
        }
        fn disconnect_remote(&self, sid: Sid) -> bool {
            self.kicked.lock().unwrap().push(sid);
            true
        }
        fn send_to_node(&self, node: &str, sid: Sid, packet: &Encoded) -> bool {
            node == "n2" && self.send_to(sid, packet)
        }
    }

    #[test]
    fn the_seams_reach_the_adapter_and_back() {
        let adapter = Arc::new(Recording::default());
        let departed = Arc::new(Mutex::new(Vec::new()));
        let mut builder = crate::Server::builder();
        let seen = departed.clone();
        builder
            .namespace("/")
            .adapter(adapter.clone())
            .on_remote_departure(move |ns, sid, rooms| {
                seen.lock()
                    .unwrap()
                    .push((ns.name().to_owned(), sid, rooms));
            });
        let io = builder.build();
        let ns = io.of("/").unwrap();

        // Not here (nor away): the adapter gets it.
        let remote = Sid::random();
        let packet = Encoded::from_text(bytes::Bytes::from_static(b"42[\"x\"]"));
        assert!(ns.send_to(remote, &packet));
        assert_eq!(
            adapter.sent.lock().unwrap().as_slice(),
            &[(remote, packet.text.clone())]
        );
        assert!(ns.send_to_node("n2", remote, &packet));
        assert_eq!(adapter.sent.lock().unwrap().len(), 2);
        assert!(ns.disconnect_socket(remote));
        assert_eq!(adapter.kicked.lock().unwrap().as_slice(), &[remote]);

        // The handle given at build time reports departures to the hooks.
        let handle = adapter.handle.lock().unwrap().clone().expect("bound");
        assert_eq!(handle.namespace().unwrap().name(), "/");
        handle.remote_departure(remote, vec![Room::from("r")]);
        assert_eq!(
            departed.lock().unwrap().as_slice(),
            &[("/".to_owned(), remote, vec![Room::from("r")])]
        );
        assert_eq!(
            handle.deliver(&[remote], &packet),
            0,
            "no such local socket"
        );
        assert!(!handle.disconnect(remote));
    }

    #[test]
    fn a_single_process_has_nowhere_else_to_send() {
        let io = crate::Server::builder().build();
        let ns = io.of("/").unwrap();
        let packet = Encoded::from_text(bytes::Bytes::from_static(b"42[]"));
        assert!(!ns.send_to(Sid::random(), &packet));
        assert!(!ns.disconnect_socket(Sid::random()));
    }
}
