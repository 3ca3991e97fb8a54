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

/// Runs after a socket newly joined a room (the room's name given), once
/// `join-ok` is on its way: how other building blocks (chat history...) add
/// to a join without touching the join itself.
pub type JoinHook = Arc<dyn Fn(&Socket, &str) + Send + Sync>;

/// The rooms building block: state shared by a namespace's handlers.
#[derive(Default)]
pub struct Rooms {
    /// Passwords of the rooms that have one; dropped when the room empties.
    passwords: Mutex<HashMap<Room, String>>,
    /// Called after each new join, in registration order.
    joined: RwLock<Vec<JoinHook>>,
    /// Departures of lost sockets held for the presence grace.
    presence: Arc<Presence>,
}

/// The rooms a socket was in when it started leaving (kept for the cleanup after it left).
#[derive(Clone)]
struct LeftRooms(Arc<[Room]>);

impl Rooms {
    pub fn new() -> Arc<Self> {
        Arc::new(Rooms::default())
    }

    /// Rooms whose `user-disconnected` for a socket whose connection was lost
    /// waits `grace` for it to come back (connection-state recovery on; the
    /// default is [`crate::presence::DEFAULT_GRACE`]). Without recovery, or
    /// for a goodbye, departures are announced at once whatever the grace.
    pub fn with_presence_grace(grace: std::time::Duration) -> Arc<Self> {
        Arc::new(Rooms {
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
        let (join, check, leave, gone) = (self.clone(), self.clone(), self.clone(), self.clone());
        let (departing, back) = (self.clone(), self.presence.clone());
        ns.on(app::JOIN_ROOM, move |socket, event| {
            join.join_room(socket, &event)
        })
        .on(app::CHECK_ROOM, move |socket, event| {
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

    /// `join-room { roomId, name?, password? }`.
    pub fn join_room(&self, socket: &Socket, event: &Event) {
        let Some(request) = object(event) else {
            return send_join_error(socket, ErrorCode::InvalidRoom, None);
        };
        let room = match room_id(&request) {
            Ok(room) => room,
            Err(given) => return send_join_error(socket, ErrorCode::InvalidRoom, given.as_deref()),
        };
        let name = match request.get("name") {
            None | Some(Value::Null) => "",
            Some(Value::String(name)) if name.chars().count() <= MAX_NAME => name.as_str(),
            Some(_) => {
                return ClientError::new(
                    ErrorCode::BadRequest,
                    "`name` must be a string of at most 64 characters",
                )
                .in_room(room)
                .send(socket)
            }
        };
        let password = match request.get("password") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.as_str()).filter(|p| !p.is_empty()),
            Some(_) => {
                return ClientError::new(ErrorCode::BadRequest, "`password` must be a string")
                    .in_room(room)
                    .send(socket)
            }
        };

        let ns = socket.ns();
        if is_socket_id(socket, room) {
            return send_join_error(socket, ErrorCode::InvalidRoom, Some(room));
        }
        let existing = {
            let mut passwords = self.passwords();
            if socket.in_room(room) {
                drop(passwords);
                return join_ok(socket, room);
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
                &json!({ "id": sid, "name": &*peer.name }),
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
                &json!({ "id": socket.id(), "name": name }),
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
