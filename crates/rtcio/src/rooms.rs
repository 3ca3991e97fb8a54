//! Rooms & presence, as the reference server does them: `join-room` with a
//! snapshot of the room taken before joining (backfill to the newcomer,
//! `user-connected` + `#rtcio:init-offer` to the existing peers, `join-ok`),
//! `leave-room`, presence on disconnect, `check-room` and room passwords,
//! and the per-socket `media-state` cache with `stopScreenShare`.
//!
//! Membership with peer info, caps and passwords live in a [`RoomStore`]:
//! in memory for one process ([`MemoryRoomStore`]), shared (Redis) for a
//! cluster. The store's join is atomic: "check the cap and the password,
//! snapshot the members, add" is one step, so two sockets joining at once
//! each see the other exactly once, and exactly one of them is asked to
//! offer — wherever they are connected. In one process the join also holds
//! a lock until the socket is in the engine's room, as Node's single thread
//! would.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rtcio_engine::{DisconnectReason, Event, NamespaceBuilder, Payload, Room, Socket};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::errors::{send_join_error, ClientError, ErrorCode};
use crate::events::{app, INIT_OFFER};
use crate::identity::Identity;
use crate::policy::{JoinRequest, RoomPolicy};
use crate::presence::Presence;
use crate::room_store::{MemoryRoomStore, PeerInfo, Reply, RoomStore, Snapshot};

/// Longest room id, in characters.
pub const MAX_ROOM_ID: usize = 128;
/// Longest display name, in characters.
pub const MAX_NAME: usize = 64;

/// What the server remembers of a peer (socket.io's `socket.data`).
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The display name given at the last `join-room`.
    pub name: Arc<str>,
    /// The last `media-state` booleans: (mic, cam).
    pub media: Option<(bool, bool)>,
}

impl Peer {
    /// The peer as JSON, for a recovery session kept outside the process.
    pub fn to_json(&self) -> Value {
        json!({ "name": &*self.name, "media": self.media.map(|(mic, cam)| [mic, cam]) })
    }

    /// What [`Peer::to_json`] made; `None` for anything else.
    pub fn from_json(value: &Value) -> Option<Peer> {
        let media = match value.get("media") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_array()?.as_slice() {
                [mic, cam] => Some((mic.as_bool()?, cam.as_bool()?)),
                _ => return None,
            },
        };
        Some(Peer {
            name: value.get("name")?.as_str()?.into(),
            media,
        })
    }
}

/// Runs after a socket newly joined a room (the room's name given), once
/// `join-ok` is on its way: how other building blocks (chat history...) add
/// to a join without touching the join itself.
pub type JoinHook = Arc<dyn Fn(&Socket, &str) + Send + Sync>;

/// Who may join what, and how many: checked on every new join.
#[derive(Clone)]
pub struct RoomRules {
    /// Peers a room holds at most (0: unlimited). Default 8, the seed's full-mesh figure.
    pub max_peers: usize,
    /// Rooms one socket may be in at once (0: unlimited). Default 16.
    pub max_rooms_per_socket: usize,
    /// Asked before each new join (`None`: open).
    pub policy: Option<Arc<dyn RoomPolicy>>,
}

impl Default for RoomRules {
    fn default() -> Self {
        RoomRules {
            max_peers: 8,
            max_rooms_per_socket: 16,
            policy: None,
        }
    }
}

impl RoomRules {
    /// No cap, no per-socket limit, no policy (the reference server's behaviour).
    pub fn unlimited() -> Self {
        RoomRules {
            max_peers: 0,
            max_rooms_per_socket: 0,
            policy: None,
        }
    }
}

/// The rooms building block: state shared by a namespace's handlers.
pub struct Rooms {
    /// Membership, peer info and passwords.
    store: Arc<dyn RoomStore>,
    /// Whether the store answers at once (then the handlers stay synchronous).
    local: bool,
    /// Held, with a local store, from the store's join until the socket is
    /// in the engine's room (and around leaves), so the store and the
    /// engine's rooms never disagree for another join to see.
    join_lock: Mutex<()>,
    /// Called after each new join, in registration order.
    joined: RwLock<Vec<JoinHook>>,
    rules: RoomRules,
    /// Departures of lost sockets held for the presence grace.
    presence: Arc<Presence>,
}

/// Builds [`Rooms`]: rules, presence grace and where room state lives.
pub struct RoomsBuilder {
    rules: RoomRules,
    grace: Duration,
    store: Option<Arc<dyn RoomStore>>,
}

impl RoomsBuilder {
    /// Caps and access policy (default: [`RoomRules::default`]).
    pub fn rules(mut self, rules: RoomRules) -> Self {
        self.rules = rules;
        self
    }

    /// How long `user-disconnected` waits for a lost socket to recover.
    pub fn presence_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Where membership, peer info and passwords live (default: this process's memory).
    pub fn store(mut self, store: Arc<dyn RoomStore>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn build(self) -> Arc<Rooms> {
        let store: Arc<dyn RoomStore> = match self.store {
            Some(store) => store,
            None => MemoryRoomStore::new(),
        };
        Arc::new(Rooms {
            local: store.is_local(),
            store,
            join_lock: Mutex::new(()),
            joined: RwLock::new(Vec::new()),
            rules: self.rules,
            presence: Arc::new(Presence::new(self.grace)),
        })
    }
}

impl Rooms {
    /// Rooms with the default [`RoomRules`]: at most 8 peers a room, 16 rooms a socket, open.
    pub fn new() -> Arc<Self> {
        Rooms::builder().build()
    }

    /// A builder: rules, presence grace, store.
    pub fn builder() -> RoomsBuilder {
        RoomsBuilder {
            rules: RoomRules::default(),
            grace: crate::presence::DEFAULT_GRACE,
            store: None,
        }
    }

    /// Rooms with these caps and access policy.
    pub fn with_rules(rules: RoomRules) -> Arc<Self> {
        Rooms::builder().rules(rules).build()
    }

    /// Rooms whose `user-disconnected` for a socket whose connection was lost
    /// waits `grace` for it to come back (connection-state recovery on; the
    /// default is [`crate::presence::DEFAULT_GRACE`]). Without recovery, or
    /// for a goodbye, departures are announced at once whatever the grace.
    pub fn with_presence_grace(grace: Duration) -> Arc<Self> {
        Rooms::builder().presence_grace(grace).build()
    }

    /// Rooms with caps, access policy and presence grace, in memory.
    pub fn configured(rules: RoomRules, grace: Duration) -> Arc<Self> {
        Rooms::builder().rules(rules).presence_grace(grace).build()
    }

    /// Where this building block keeps room state.
    pub fn store(&self) -> &Arc<dyn RoomStore> {
        &self.store
    }

    /// Writes the rooms and peer info of every socket of `ns` connected to
    /// this process into the store again: for a shared store that lost them
    /// (Redis restarted empty, or writes dropped while it was unreachable).
    /// Join order among them is the order written; passwords are not restored.
    pub fn resync(&self, ns: &rtcio_engine::Namespace) {
        for socket in ns.sockets() {
            let rooms = own_rooms(&socket);
            if rooms.is_empty() {
                continue;
            }
            let peer = socket.get::<Peer>().unwrap_or_default();
            self.store
                .restore(ns.name(), &rooms, socket.id(), &peer_info(&socket, &peer));
        }
    }

    /// Adds a hook that runs after every new join (not after a re-join, which
    /// only answers `join-ok`).
    pub fn on_joined<F>(&self, f: F)
    where
        F: Fn(&Socket, &str) + Send + Sync + 'static,
    {
        self.joined
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(f));
    }

    fn join_lock(&self) -> MutexGuard<'_, ()> {
        self.join_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches every rooms & presence handler to a namespace.
    pub fn attach(self: &Arc<Self>, ns: &mut NamespaceBuilder) {
        // A socket recovered on another node of a cluster keeps its name and media state.
        ns.portable_data::<Peer, _, _>("peer", Peer::to_json, Peer::from_json);
        let (join, check, leave, gone) = (self.clone(), self.clone(), self.clone(), self.clone());
        let (departing, back, media) = (self.clone(), self.clone(), self.clone());
        if self.rules.policy.is_some() || !self.local {
            // The policy or the shared store may wait on a service: the
            // socket's later events wait behind it, so its joins and leaves
            // keep their order.
            ns.on_async(app::JOIN_ROOM, move |socket, event| {
                let join = join.clone();
                async move { join.join_room_checked(&socket, &event).await }
            });
        } else {
            ns.on(app::JOIN_ROOM, move |socket, event| {
                join.join_room(socket, &event)
            });
        }
        if self.local {
            ns.on(app::CHECK_ROOM, move |socket, event| {
                check.check_room(socket, &event)
            });
        } else {
            ns.on_async(app::CHECK_ROOM, move |socket, event| {
                let check = check.clone();
                async move { check.check_room_async(&socket, &event).await }
            });
        }
        ns.on(app::LEAVE_ROOM, move |socket, event| {
            leave.leave_room(socket, &event)
        })
        .on(app::MEDIA_STATE, move |socket, event| {
            if let Some(peer) = media_state_of(socket, event) {
                media.store.update_peer(
                    socket.ns().name(),
                    &own_rooms(socket),
                    socket.id(),
                    &peer_info(socket, &peer),
                );
            }
        })
        .on(app::STOP_SCREEN_SHARE, stop_screen_share)
        .on_disconnecting(move |socket, reason| departing.announce_departure(socket, reason))
        .on_disconnect(move |socket, _| gone.forget_left(socket))
        .on_connect(move |socket| {
            if socket.recovered() {
                back.presence.recovered(socket);
                let peer = socket.get::<Peer>().unwrap_or_default();
                back.store.restore(
                    socket.ns().name(),
                    &own_rooms(socket),
                    socket.id(),
                    &peer_info(socket, &peer),
                );
            }
        });
    }

    /// `join-room { roomId, name?, password? }`, without the access policy
    /// (see [`Rooms::join_room_checked`]); caps still apply. With a shared
    /// store the join completes on a task of its own.
    pub fn join_room(self: &Arc<Self>, socket: &Socket, event: &Event) {
        let Some(request) = object(event) else {
            return send_join_error(socket, ErrorCode::InvalidRoom, None);
        };
        let Some((room, name, password)) = parse_join(socket, &request) else {
            return;
        };
        if self.local {
            return self.admit(socket, room, name, password);
        }
        let (this, socket) = (self.clone(), socket.clone());
        let (room, name, password) = (
            room.to_owned(),
            name.to_owned(),
            password.map(str::to_owned),
        );
        tokio::spawn(async move {
            this.admit_shared(&socket, &room, &name, password.as_deref())
                .await
        });
    }

    /// `join-room`, asking the access policy first (outside the rooms lock,
    /// so a slow policy service holds up only this socket). A member's re-join
    /// is not asked again.
    pub async fn join_room_checked(&self, socket: &Socket, event: &Event) {
        let Some(request) = object(event) else {
            return send_join_error(socket, ErrorCode::InvalidRoom, None);
        };
        let Some((room, name, password)) = parse_join(socket, &request) else {
            return;
        };
        if let (Some(policy), false) = (&self.rules.policy, socket.in_room(room)) {
            let decision = policy.may_join(JoinRequest::of(socket, room, name)).await;
            if let Some(code) = decision.refusal() {
                let message = match code {
                    ErrorCode::Forbidden => "you may not join this room",
                    _ => "the room access service is unavailable; retry later",
                };
                return refuse(socket, code, message, room);
            }
        }
        if self.local {
            self.admit(socket, room, name, password);
        } else {
            self.admit_shared(socket, room, name, password).await;
        }
    }

    /// What is decided before the store: a re-join answers `join-ok`, the
    /// per-socket room limit (local to the socket). The name to join with
    /// when the join goes on.
    fn before_store(&self, socket: &Socket, room: &str, name: &str) -> Option<Arc<str>> {
        if socket.in_room(room) {
            join_ok(socket, room);
            return None;
        }
        let max = self.rules.max_rooms_per_socket;
        // The socket's own-id room is not one of its rooms.
        if max > 0 && socket.rooms().len().saturating_sub(1) >= max {
            refuse(
                socket,
                ErrorCode::TooManyRooms,
                "you are in as many rooms as you may be; leave one first",
                room,
            );
            return None;
        }
        // The credential's display name stands in when the join gives none.
        if name.is_empty() {
            if let Some(name) = Identity::of(socket).and_then(|i| i.name) {
                return Some(name);
            }
        }
        Some(Arc::from(name))
    }

    /// A join with a store that answers at once, under the join lock.
    fn admit(&self, socket: &Socket, room: &str, name: &str, password: Option<&str>) {
        let Some(name) = self.before_store(socket, room, name) else {
            return;
        };
        let existing = {
            let _lock = self.join_lock();
            let peer = Peer {
                name: name.clone(),
                media: socket.get::<Peer>().and_then(|p| p.media),
            };
            let cap = self.rules.max_peers;
            let reply = self.store.join(
                socket.ns().name(),
                room,
                socket.id(),
                &peer_info(socket, &peer),
                cap,
                password,
            );
            let result = match reply {
                Reply::Ready(result) => result,
                // A store that says it is local answers at once.
                Reply::Pending(_) => Err(ErrorCode::Unavailable),
            };
            match self.enter(socket, room, &peer, result) {
                Some(existing) => existing,
                None => return,
            }
        };
        self.announce(socket, room, &name, existing);
    }

    /// A join with a shared store: the store's atomic join decides, then the
    /// socket enters the engine's room.
    async fn admit_shared(&self, socket: &Socket, room: &str, name: &str, password: Option<&str>) {
        let Some(name) = self.before_store(socket, room, name) else {
            return;
        };
        let peer = Peer {
            name: name.clone(),
            media: socket.get::<Peer>().and_then(|p| p.media),
        };
        let ns = socket.ns();
        let result = self
            .store
            .join(
                ns.name(),
                room,
                socket.id(),
                &peer_info(socket, &peer),
                self.rules.max_peers,
                password,
            )
            .get()
            .await;
        if !socket.connected() {
            // Gone while the store answered: it must not keep a place.
            if result.is_ok() {
                self.store
                    .leave(ns.name(), &[Room::from(room)], socket.id(), false);
            }
            return;
        }
        if let Some(existing) = self.enter(socket, room, &peer, result) {
            self.announce(socket, room, &name, existing);
        }
    }

    /// After the store's answer: a refusal is sent, else the socket enters
    /// the engine's room with its name in place. The snapshot when it did.
    fn enter(
        &self,
        socket: &Socket,
        room: &str,
        peer: &Peer,
        result: Result<Snapshot, ErrorCode>,
    ) -> Option<Snapshot> {
        let existing = match result {
            Ok(existing) => existing,
            Err(ErrorCode::RoomFull) => {
                refuse(socket, ErrorCode::RoomFull, "the room is full", room);
                return None;
            }
            Err(ErrorCode::Unavailable) => {
                refuse(
                    socket,
                    ErrorCode::Unavailable,
                    "the room service is unavailable; retry later",
                    room,
                );
                return None;
            }
            Err(code) => {
                send_join_error(socket, code, Some(room));
                return None;
            }
        };
        // The name is in place before anyone can see this socket in the room.
        let renamed = socket.get::<Peer>().is_some_and(|p| p.name != peer.name);
        update_peer(socket, |p| p.name = peer.name.clone());
        if !socket.join(room) {
            // The name is another socket's own-id room.
            self.store
                .leave(socket.ns().name(), &[Room::from(room)], socket.id(), false);
            send_join_error(socket, ErrorCode::InvalidRoom, Some(room));
            return None;
        }
        if renamed {
            // The name is per socket: its other rooms see the new one too.
            let others: Vec<Room> = own_rooms(socket)
                .into_iter()
                .filter(|r| &**r != room)
                .collect();
            if !others.is_empty() {
                let peer = socket.get::<Peer>().unwrap_or_default();
                self.store.update_peer(
                    socket.ns().name(),
                    &others,
                    socket.id(),
                    &peer_info(socket, &peer),
                );
            }
        }
        Some(existing)
    }

    /// The newcomer meets the snapshot (backfill); the snapshot's members
    /// meet the newcomer and are asked to offer; `join-ok`; the join hooks.
    fn announce(&self, socket: &Socket, room: &str, name: &str, existing: Snapshot) {
        let ns = socket.ns();
        for (sid, peer) in &existing {
            // The newcomer may answer at once (a relay, a broadcast to the
            // room): this node's replica must not lag behind the snapshot.
            if let Some(node) = &peer.node {
                ns.learn_member(node, *sid, room);
            }
            let _ = socket.emit(
                app::USER_CONNECTED,
                &presence(*sid, &peer.name, peer.user_id.clone()),
            );
            if let Some((mic, cam)) = peer.media {
                let _ = socket.emit(
                    app::MEDIA_STATE,
                    &json!({ "roomId": room, "mic": mic, "cam": cam, "id": sid }),
                );
            }
        }
        // The existing peers are told from the snapshot, not from the room as it
        // is now: a socket that joined a moment later is already in the room but
        // learns of this one from its own snapshot, and must not be asked to
        // offer as well (both sides offering is glare).
        if !existing.is_empty() {
            let encode = |event: &str, data: &Value| {
                Payload::new()
                    .arg(data)
                    .map(|p| p.into_event(ns.name(), event, None))
            };
            let (Ok(hello), Ok(offer)) = (
                encode(
                    app::USER_CONNECTED,
                    &presence(socket.id(), name, Identity::user_id(socket)),
                ),
                encode(INIT_OFFER, &json!({ "source": socket.id() })),
            ) else {
                return join_ok(socket, room);
            };
            for (sid, peer) in &existing {
                match &peer.node {
                    // Where the shared store says the member lives: its node may
                    // not have told this one of it yet.
                    Some(node) => {
                        ns.send_to_node(node, *sid, &hello);
                        ns.send_to_node(node, *sid, &offer);
                    }
                    None => {
                        ns.to(sid.as_str()).send_encoded(&hello);
                        ns.to(sid.as_str()).send_encoded(&offer);
                    }
                }
            }
        }
        join_ok(socket, room);
        let hooks = self
            .joined
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for hook in hooks {
            hook(socket, room);
        }
    }

    /// The checked `(roomId, password)` of a `check-room`; refusals are sent here.
    fn parse_check<'a>(
        socket: &Socket,
        request: &'a Map<String, Value>,
    ) -> Option<(&'a str, Option<&'a str>)> {
        let room = match room_id(request) {
            Ok(room) => room,
            Err(given) => {
                send_join_error(socket, ErrorCode::InvalidRoom, given.as_deref());
                return None;
            }
        };
        if is_socket_id(socket, room) {
            send_join_error(socket, ErrorCode::InvalidRoom, Some(room));
            return None;
        }
        let given = request
            .get("password")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        Some((room, given))
    }

    /// `check-room { roomId, password? }`: may this client join, and does it need a password?
    pub fn check_room(&self, socket: &Socket, event: &Event) {
        let Some(request) = object(event) else {
            return send_join_error(socket, ErrorCode::InvalidRoom, None);
        };
        let Some((room, given)) = Rooms::parse_check(socket, &request) else {
            return;
        };
        let result = match self.store.check(socket.ns().name(), room, given) {
            Reply::Ready(result) => result,
            Reply::Pending(_) => Err(ErrorCode::Unavailable),
        };
        answer_check(socket, room, result);
    }

    /// `check-room` with a shared store.
    async fn check_room_async(&self, socket: &Socket, event: &Event) {
        let Some(request) = object(event) else {
            return send_join_error(socket, ErrorCode::InvalidRoom, None);
        };
        let Some((room, given)) = Rooms::parse_check(socket, &request) else {
            return;
        };
        let result = self
            .store
            .check(socket.ns().name(), room, given)
            .get()
            .await;
        answer_check(socket, room, result);
    }

    /// `leave-room { roomId }`: presence only; peer connections stay up.
    pub fn leave_room(&self, socket: &Socket, event: &Event) {
        let Some(room) = object(event)
            .as_ref()
            .and_then(|r| room_id(r).ok().map(str::to_owned))
        else {
            return ClientError::new(
                ErrorCode::BadRequest,
                "`roomId` must be a non-empty string of at most 128 characters",
            )
            .send(socket);
        };
        if self.evict(socket, &room) {
            let _ = socket
                .to(&room)
                .emit(app::USER_DISCONNECTED, &json!({ "id": socket.id() }));
        }
    }

    /// Takes `socket` out of `room` on someone else's behalf (an administrator
    /// closing the room), dropping the room's password with its last member
    /// as a leave does. Sends nothing: the caller says what happened.
    pub fn evict(&self, socket: &Socket, room: &str) -> bool {
        let _lock = self.join_lock();
        let left = socket.leave(room);
        if left {
            self.store
                .leave(socket.ns().name(), &[Room::from(room)], socket.id(), false);
        }
        left
    }

    /// Takes a departed socket out of the store's rooms (a goodbye: the
    /// passwords of rooms it left empty go).
    fn forget_left(&self, socket: &Socket) {
        let Some(LeftRooms(rooms)) = socket.remove::<LeftRooms>() else {
            return;
        };
        let _lock = self.join_lock();
        self.store
            .leave(socket.ns().name(), &rooms, socket.id(), false);
    }

    /// `user-disconnected { id }` to every room of a leaving socket (once per
    /// peer). A socket whose connection was lost, with recovery on, is held
    /// for the presence grace instead, its rooms' passwords kept meanwhile.
    fn announce_departure(self: &Arc<Self>, socket: &Socket, _reason: DisconnectReason) {
        let rooms = own_rooms(socket);
        if socket.recoverable() {
            // Out of the store's rooms (no place in a cap, not in a
            // newcomer's snapshot) but its passwords kept until the grace ends.
            self.store
                .leave(socket.ns().name(), &rooms, socket.id(), true);
            let store = self.store.clone();
            self.presence.hold(socket, move |ns, left| {
                store.forget_password_if_empty(ns.name(), left)
            });
            return;
        }
        if let Some(peers) = socket.peers() {
            let _ = peers.emit(app::USER_DISCONNECTED, &json!({ "id": socket.id() }));
        }
        if !rooms.is_empty() {
            socket.insert(LeftRooms(rooms.into()));
        }
    }
}

/// The rooms a socket was in when it started leaving (taken out of the store once it left).
#[derive(Clone)]
struct LeftRooms(Arc<[Room]>);

/// A socket's rooms, without its own-id room.
fn own_rooms(socket: &Socket) -> Vec<Room> {
    let mut rooms = socket.rooms();
    if !rooms.is_empty() {
        rooms.remove(0);
    }
    rooms
}

/// What the store keeps of a socket: its name and media-state, its user id.
fn peer_info(socket: &Socket, peer: &Peer) -> PeerInfo {
    PeerInfo {
        name: peer.name.clone(),
        user_id: Identity::user_id(socket),
        media: peer.media,
        node: None,
    }
}

/// `room-check-ok { roomId, passwordRequired }`, or the refusal.
fn answer_check(socket: &Socket, room: &str, result: Result<bool, ErrorCode>) {
    match result {
        Ok(required) => {
            let _ = socket.emit(
                app::ROOM_CHECK_OK,
                &json!({ "roomId": room, "passwordRequired": required }),
            );
        }
        Err(ErrorCode::Unavailable) => refuse(
            socket,
            ErrorCode::Unavailable,
            "the room service is unavailable; retry later",
            room,
        ),
        Err(code) => send_join_error(socket, code, Some(room)),
    }
}

/// `user-connected { id, name, userId? }`: `userId` when the peer authenticated.
fn presence(id: rtcio_engine::Sid, name: &str, user_id: Option<Arc<str>>) -> Value {
    match user_id {
        Some(user_id) => json!({ "id": id, "name": name, "userId": &*user_id }),
        None => json!({ "id": id, "name": name }),
    }
}

/// A refused join: `join-error { reason, roomId }` and `error { code, message, roomId }`.
fn refuse(socket: &Socket, code: ErrorCode, message: &str, room: &str) {
    send_join_error(socket, code, Some(room));
    ClientError::new(code, message).in_room(room).send(socket);
}

/// The checked `(roomId, name, password)` of a join request; refusals are sent here.
fn parse_join<'a>(
    socket: &Socket,
    request: &'a Map<String, Value>,
) -> Option<(&'a str, &'a str, Option<&'a str>)> {
    let room = match room_id(request) {
        Ok(room) => room,
        Err(given) => {
            send_join_error(socket, ErrorCode::InvalidRoom, given.as_deref());
            return None;
        }
    };
    let name = match request.get("name") {
        None | Some(Value::Null) => "",
        Some(Value::String(name)) if name.chars().count() <= MAX_NAME => name.as_str(),
        Some(_) => {
            ClientError::new(
                ErrorCode::BadRequest,
                "`name` must be a string of at most 64 characters",
            )
            .in_room(room)
            .send(socket);
            return None;
        }
    };
    let password = match request.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()).filter(|p| !p.is_empty()),
        Some(_) => {
            ClientError::new(ErrorCode::BadRequest, "`password` must be a string")
                .in_room(room)
                .send(socket);
            return None;
        }
    };
    if is_socket_id(socket, room) {
        send_join_error(socket, ErrorCode::InvalidRoom, Some(room));
        return None;
    }
    Some((room, name, password))
}

fn join_ok(socket: &Socket, room: &str) {
    let _ = socket.emit(app::JOIN_OK, &json!({ "roomId": room }));
}

/// The event's first argument, if it is an object.
fn object(event: &Event) -> Option<Map<String, Value>> {
    event.arg::<Map<String, Value>>(0).ok()
}

/// Whether `room` is a connected socket's own-id room (the sender's included,
/// and, in a cluster, a socket on another node): such a name can never be
/// joined, or it would capture that socket's messages.
fn is_socket_id(socket: &Socket, room: &str) -> bool {
    room.parse().is_ok_and(|sid| {
        let ns = socket.ns();
        ns.get_socket(sid).is_some() || ns.adapter().is_member(sid, room)
    })
}

/// The valid `roomId` of a request, or what was given instead (if it was a string).
fn room_id(request: &Map<String, Value>) -> Result<&str, Option<String>> {
    match request.get("roomId") {
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_ROOM_ID => Ok(id),
        Some(Value::String(id)) => Err(Some(id.clone())),
        _ => Err(None),
    }
}

fn update_peer(socket: &Socket, f: impl FnOnce(&mut Peer)) -> Peer {
    let mut peer = socket.get::<Peer>().unwrap_or_default();
    f(&mut peer);
    socket.insert(peer.clone());
    peer
}

#[derive(Serialize)]
struct MediaStateOut<'a> {
    #[serde(rename = "roomId")]
    room_id: &'a str,
    mic: bool,
    cam: bool,
    id: rtcio_engine::Sid,
}

/// `media-state { roomId, mic, cam }`: relayed to the room with the sender's
/// id, and cached in the socket's data (a [`Rooms`] also caches it in its store).
pub fn media_state(socket: &Socket, event: Event) {
    media_state_of(socket, event);
}

/// [`media_state`], answering the socket's peer data when it was accepted.
fn media_state_of(socket: &Socket, event: Event) -> Option<Peer> {
    let Some(state) = object(&event) else {
        ClientError::new(
            ErrorCode::BadRequest,
            "media-state needs { roomId, mic, cam }",
        )
        .send(socket);
        return None;
    };
    let Some(room) = state.get("roomId").and_then(Value::as_str) else {
        ClientError::new(ErrorCode::BadRequest, "`roomId` must be a string").send(socket);
        return None;
    };
    let (Some(mic), Some(cam)) = (
        state.get("mic").and_then(Value::as_bool),
        state.get("cam").and_then(Value::as_bool),
    ) else {
        ClientError::new(ErrorCode::BadRequest, "`mic` and `cam` must be booleans")
            .in_room(room)
            .send(socket);
        return None;
    };
    if !socket.in_room(room) || room == socket.id().as_str() {
        ClientError::new(ErrorCode::NotInRoom, "join the room first")
            .in_room(room)
            .send(socket);
        return None;
    }
    let peer = update_peer(socket, |peer| peer.media = Some((mic, cam)));
    let _ = socket.to(room).emit(
        app::MEDIA_STATE,
        &MediaStateOut {
            room_id: room,
            mic,
            cam,
            id: socket.id(),
        },
    );
    Some(peer)
}

/// `stopScreenShare { roomId, ... }`: relayed to the room, every member kept, `id` set to the sender.
pub fn stop_screen_share(socket: &Socket, event: Event) {
    let Ok(mut payload) = event.arg::<Map<String, Value>>(0) else {
        return ClientError::new(ErrorCode::BadRequest, "stopScreenShare needs { roomId }")
            .send(socket);
    };
    let Some(room) = payload
        .get("roomId")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return ClientError::new(ErrorCode::BadRequest, "`roomId` must be a string").send(socket);
    };
    if !socket.in_room(&room) || room == socket.id().as_str() {
        return ClientError::new(ErrorCode::NotInRoom, "join the room first")
            .in_room(room)
            .send(socket);
    }
    payload.insert("id".into(), json!(socket.id()));
    let _ = socket.to(&room).emit(app::STOP_SCREEN_SHARE, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn peers_round_trip_as_json() {
        for peer in [
            Peer {
                name: "Ada".into(),
                media: Some((true, false)),
            },
            Peer::default(),
        ] {
            let back = Peer::from_json(&peer.to_json()).unwrap();
            assert_eq!((back.name, back.media), (peer.name, peer.media));
        }
        assert!(Peer::from_json(&json!({ "media": [true, true] })).is_none());
        assert!(Peer::from_json(&json!({ "name": "a", "media": [true] })).is_none());
    }

    #[test]
    fn room_ids_are_validated() {
        assert_eq!(
            room_id(&req(json!({ "roomId": "stand-up" }))),
            Ok("stand-up")
        );
        assert_eq!(
            room_id(&req(json!({ "roomId": "" }))),
            Err(Some(String::new()))
        );
        let long = "é".repeat(129);
        assert_eq!(
            room_id(&req(json!({ "roomId": long.clone() }))),
            Err(Some(long))
        );
        assert!(
            room_id(&req(json!({ "roomId": "é".repeat(128) }))).is_ok(),
            "counted in characters"
        );
        assert_eq!(room_id(&req(json!({ "roomId": 5 }))), Err(None));
        assert_eq!(room_id(&req(json!({}))), Err(None));
    }
}
