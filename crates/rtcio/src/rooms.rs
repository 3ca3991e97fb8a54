//! Rooms & presence, as the reference server does them: `join-room` with a
//! snapshot of the room taken before joining (backfill to the newcomer,
//! `user-connected` + `#rtcio:init-offer` to the existing peers, `join-ok`),
//! `leave-room`, presence on disconnect, `check-room` and room passwords,
//! and the per-socket `media-state` cache with `stopScreenShare`.
//!
//! Joins are serialised by one lock held across "check the password,
//! snapshot the members, join": two sockets joining at once each see the
//! other exactly once, which Node gets for free from its single thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rtcio_engine::{DisconnectReason, Event, NamespaceBuilder, Room, Socket};
use serde::Serialize;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use crate::errors::{send_join_error, ClientError, ErrorCode};
use crate::events::{app, INIT_OFFER};
use crate::identity::Identity;
use crate::policy::{JoinRequest, RoomPolicy};
use crate::presence::Presence;

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
#[derive(Default)]
pub struct Rooms {
    /// Passwords of the rooms that have one; dropped when the room empties.
    passwords: Mutex<HashMap<Room, String>>,
    /// Called after each new join, in registration order.
    joined: RwLock<Vec<JoinHook>>,
    rules: RoomRules,
    /// Departures of lost sockets held for the presence grace.
    presence: Arc<Presence>,
}

/// The rooms a socket was in when it started leaving (kept for the cleanup after it left).
#[derive(Clone)]
struct LeftRooms(Arc<[Room]>);

impl Rooms {
    /// Rooms with the default [`RoomRules`]: at most 8 peers a room, 16 rooms a socket, open.
    pub fn new() -> Arc<Self> {
        Arc::new(Rooms::default())
    }

    /// Rooms with these caps and access policy.
    pub fn with_rules(rules: RoomRules) -> Arc<Self> {
        Rooms::configured(rules, crate::presence::DEFAULT_GRACE)
    }

    /// Rooms whose `user-disconnected` for a socket whose connection was lost
    /// waits `grace` for it to come back (connection-state recovery on; the
    /// default is [`crate::presence::DEFAULT_GRACE`]). Without recovery, or
    /// for a goodbye, departures are announced at once whatever the grace.
    pub fn with_presence_grace(grace: std::time::Duration) -> Arc<Self> {
        Rooms::configured(RoomRules::default(), grace)
    }

    /// Rooms with caps, access policy and presence grace.
    pub fn configured(rules: RoomRules, grace: std::time::Duration) -> Arc<Self> {
        Arc::new(Rooms {
            rules,
            presence: Arc::new(Presence::new(grace)),
            ..Rooms::default()
        })
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

    fn passwords(&self) -> MutexGuard<'_, HashMap<Room, String>> {
        self.passwords.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches every rooms & presence handler to a namespace.
    pub fn attach(self: &Arc<Self>, ns: &mut NamespaceBuilder) {
        // A socket recovered on another node of a cluster keeps its name and media state.
        ns.portable_data::<Peer, _, _>("peer", Peer::to_json, Peer::from_json);
        let (join, check, leave, gone) = (self.clone(), self.clone(), self.clone(), self.clone());
        let (departing, back) = (self.clone(), self.presence.clone());
        if self.rules.policy.is_some() {
            // The policy may wait on a service: the socket's later events wait
            // behind it, so its joins and leaves keep their order.
            ns.on_async(app::JOIN_ROOM, move |socket, event| {
                let join = join.clone();
                async move { join.join_room_checked(&socket, &event).await }
            });
        } else {
            ns.on(app::JOIN_ROOM, move |socket, event| {
                join.join_room(socket, &event)
            });
        }
        ns.on(app::CHECK_ROOM, move |socket, event| {
            check.check_room(socket, &event)
        })
        .on(app::LEAVE_ROOM, move |socket, event| {
            leave.leave_room(socket, &event)
        })
        .on(app::MEDIA_STATE, media_state)
        .on(app::STOP_SCREEN_SHARE, stop_screen_share)
        .on_disconnecting(move |socket, reason| departing.announce_departure(socket, reason))
        .on_disconnect(move |socket, _| gone.forget_empty_rooms(socket))
        .on_connect(move |socket| {
            if socket.recovered() {
                back.recovered(socket);
            }
        });
    }

    /// `join-room { roomId, name?, password? }`, without the access policy
    /// (see [`Rooms::join_room_checked`]); caps still apply.
    pub fn join_room(&self, socket: &Socket, event: &Event) {
        let Some(request) = object(event) else {
            return send_join_error(socket, ErrorCode::InvalidRoom, None);
        };
        let Some((room, name, password)) = parse_join(socket, &request) else {
            return;
        };
        self.admit(socket, room, name, password);
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
        self.admit(socket, room, name, password);
    }

    /// The locked part of a join: caps, password, snapshot, join, announcements.
    fn admit(&self, socket: &Socket, room: &str, name: &str, password: Option<&str>) {
        // The credential's display name stands in when the join gives none.
        let from_identity = if name.is_empty() {
            Identity::of(socket).and_then(|i| i.name)
        } else {
            None
        };
        let name = from_identity.as_deref().unwrap_or(name);
        let ns = socket.ns();
        let existing = {
            let mut passwords = self.passwords();
            if socket.in_room(room) {
                drop(passwords);
                return join_ok(socket, room);
            }
            // Checked under the join lock, against the adapter's room size:
            // two joins racing for the last place cannot both get it.
            let max = self.rules.max_peers;
            if max > 0 && ns.room_len(room) >= max {
                drop(passwords);
                return refuse(socket, ErrorCode::RoomFull, "the room is full", room);
            }
            let max = self.rules.max_rooms_per_socket;
            // The socket's own-id room is not one of its rooms.
            if max > 0 && socket.rooms().len().saturating_sub(1) >= max {
                drop(passwords);
                return refuse(
                    socket,
                    ErrorCode::TooManyRooms,
                    "you are in as many rooms as you may be; leave one first",
                    room,
                );
            }
            if ns.room_len(room) == 0 {
                passwords.remove(room);
                if let Some(p) = password {
                    passwords.insert(Room::from(room), p.to_owned());
                }
            } else if let Some(stored) = passwords.get(room) {
                let refusal = match password {
                    None => Some(ErrorCode::PasswordRequired),
                    Some(p) if !bool::from(p.as_bytes().ct_eq(stored.as_bytes())) => {
                        Some(ErrorCode::WrongPassword)
                    }
                    Some(_) => None,
                };
                if let Some(reason) = refusal {
                    drop(passwords);
                    return send_join_error(socket, reason, Some(room));
                }
            }
            let existing = ns.room_members(room);
            // The name is in place before anyone can see this socket in the room.
            update_peer(socket, |peer| peer.name = Arc::from(name));
            if !socket.join(room) {
                // The name is another socket's own-id room.
                drop(passwords);
                return send_join_error(socket, ErrorCode::InvalidRoom, Some(room));
            }
            existing
        };

        for &sid in &existing {
            let Some(peer_socket) = ns.get_socket(sid) else {
                continue;
            };
            let peer = peer_socket.get::<Peer>().unwrap_or_default();
            let _ = socket.emit(
                app::USER_CONNECTED,
                &presence(sid, &peer.name, Identity::user_id(&peer_socket)),
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
        if let Some((first, rest)) = existing.split_first() {
            let peers = || {
                rest.iter()
                    .fold(ns.to(first.as_str()), |op, sid| op.to(sid.as_str()))
            };
            let _ = peers().emit(
                app::USER_CONNECTED,
                &presence(socket.id(), name, Identity::user_id(socket)),
            );
            let _ = peers().emit(INIT_OFFER, &json!({ "source": socket.id() }));
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

    /// `check-room { roomId, password? }`: may this client join, and does it need a password?
    pub fn check_room(&self, socket: &Socket, event: &Event) {
        let Some(request) = object(event) else {
            return send_join_error(socket, ErrorCode::InvalidRoom, None);
        };
        let room = match room_id(&request) {
            Ok(room) => room,
            Err(given) => return send_join_error(socket, ErrorCode::InvalidRoom, given.as_deref()),
        };
        if is_socket_id(socket, room) {
            return send_join_error(socket, ErrorCode::InvalidRoom, Some(room));
        }
        let given = request
            .get("password")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        let stored = if socket.ns().room_len(room) > 0 {
            self.passwords().get(room).cloned()
        } else {
            None
        };
        if let (Some(given), Some(stored)) = (given, &stored) {
            if !bool::from(given.as_bytes().ct_eq(stored.as_bytes())) {
                return send_join_error(socket, ErrorCode::WrongPassword, Some(room));
            }
        }
        let _ = socket.emit(
            app::ROOM_CHECK_OK,
            &json!({ "roomId": room, "passwordRequired": stored.is_some() }),
        );
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
        let left = {
            let mut passwords = self.passwords();
            let left = socket.leave(&room);
            if left && socket.ns().room_len(&room) == 0 {
                passwords.remove(room.as_str());
            }
            left
        };
        if left {
            let _ = socket
                .to(&room)
                .emit(app::USER_DISCONNECTED, &json!({ "id": socket.id() }));
        }
    }

    /// Takes `socket` out of `room` on someone else's behalf (an administrator
    /// closing the room), dropping the room's password with its last member
    /// as a leave does. Sends nothing: the caller says what happened.
    pub fn evict(&self, socket: &Socket, room: &str) -> bool {
        let mut passwords = self.passwords();
        let left = socket.leave(room);
        if left && socket.ns().room_len(room) == 0 {
            passwords.remove(room);
        }
        left
    }

    /// Drops the passwords of rooms a departed socket left empty.
    fn forget_empty_rooms(&self, socket: &Socket) {
        let Some(LeftRooms(rooms)) = socket.remove::<LeftRooms>() else {
            return;
        };
        self.forget_passwords_of_empty(&socket.ns(), &rooms);
    }

    fn forget_passwords_of_empty(&self, ns: &rtcio_engine::Namespace, rooms: &[Room]) {
        let mut passwords = self.passwords();
        for room in rooms.iter() {
            if ns.room_len(room) == 0 {
                passwords.remove(room);
            }
        }
    }

    /// `user-disconnected { id }` to every room of a leaving socket (once per
    /// peer). A socket whose connection was lost, with recovery on, is held
    /// for the presence grace instead, its rooms' passwords kept meanwhile.
    fn announce_departure(self: &Arc<Self>, socket: &Socket, _reason: DisconnectReason) {
        if socket.recoverable() {
            let rooms = self.clone();
            self.presence.hold(socket, move |ns, left| {
                rooms.forget_passwords_of_empty(ns, left)
            });
            return;
        }
        if let Some(peers) = socket.peers() {
            let _ = peers.emit(app::USER_DISCONNECTED, &json!({ "id": socket.id() }));
            socket.insert(LeftRooms(
                socket.rooms().get(1..).unwrap_or_default().into(),
            ));
        }
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

/// Whether `room` is a connected socket's own-id room (the sender's included):
/// such a name can never be joined, or it would capture that socket's messages.
fn is_socket_id(socket: &Socket, room: &str) -> bool {
    room.parse()
        .is_ok_and(|sid| socket.ns().get_socket(sid).is_some())
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

/// `media-state { roomId, mic, cam }`: relayed to the room with the sender's id, and cached.
pub fn media_state(socket: &Socket, event: Event) {
    let Some(state) = object(&event) else {
        return ClientError::new(
            ErrorCode::BadRequest,
            "media-state needs { roomId, mic, cam }",
        )
        .send(socket);
    };
    let Some(room) = state.get("roomId").and_then(Value::as_str) else {
        return ClientError::new(ErrorCode::BadRequest, "`roomId` must be a string").send(socket);
    };
    let (Some(mic), Some(cam)) = (
        state.get("mic").and_then(Value::as_bool),
        state.get("cam").and_then(Value::as_bool),
    ) else {
        return ClientError::new(ErrorCode::BadRequest, "`mic` and `cam` must be booleans")
            .in_room(room)
            .send(socket);
    };
    if !socket.in_room(room) || room == socket.id().as_str() {
        return ClientError::new(ErrorCode::NotInRoom, "join the room first")
            .in_room(room)
            .send(socket);
    }
    update_peer(socket, |peer| peer.media = Some((mic, cam)));
    let _ = socket.to(room).emit(
        app::MEDIA_STATE,
        &MediaStateOut {
            room_id: room,
            mic,
            cam,
            id: socket.id(),
        },
    );
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
