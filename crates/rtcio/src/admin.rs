//! An administration namespace beside the calls (the seed's "Custom
//! namespaces" recipe made useful): an operator's client connects to it with
//! a credential and can see the rooms of a signaling namespace, read figures,
//! kick sockets or users, and close rooms.
//!
//! The admin namespace has no relay: nothing a signaling client does reaches
//! it, and it reaches the signaling namespace only through the four
//! acknowledged events below.
//!
//! | event | payload | acknowledgement |
//! |---|---|---|
//! | `list-rooms` | `{ limit? }` | `{ ok, total, truncated, rooms: [{ roomId, size, members: [{ id, name, userId }] }] }` |
//! | `stats` | none | `{ ok, namespace, sockets, sessions, rooms, socketsInRooms, largestRoom, admins, uptimeSeconds, startedAt, rssBytes }` |
//! | `kick` | `{ socketId \| userId, reason? }` | `{ ok, kicked: [socketId] }` |
//! | `close-room` | `{ roomId, reason? }` | `{ ok, roomId, removed: [socketId] }` |
//!
//! A refused action acknowledges `{ ok: false, error: { code, message, roomId? } }`,
//! the project's one error shape ([`ClientError`]); an event sent without an
//! acknowledgement callback gets that error as the `error` event instead.
//!
//! Who may connect: a client whose socket.io `auth.token` equals the admin
//! token (compared in constant time), or whose token an [`Authenticator`]
//! accepts with [`Identity::admin`] set. Everyone else fails to connect, with
//! `connect_error` `missing token`, `invalid token` or `not an admin`, and
//! `err.data` = `{ code: "forbidden", message }`.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rtcio_engine::{
    AckSender, ConnectError, Event, Namespace, NamespaceBuilder, Server, Sid, Socket,
};
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use crate::errors::{ClientError, ErrorCode};
use crate::events::app;
use crate::identity::{Authenticator, Identity};
use crate::rooms::{Peer, Rooms, MAX_ROOM_ID};

/// The namespace the binary serves the admin events on.
pub const NAMESPACE: &str = "/admin";

/// The admin events (client → server, each with an acknowledgement).
pub mod events {
    pub const LIST_ROOMS: &str = "list-rooms";
    pub const STATS: &str = "stats";
    pub const KICK: &str = "kick";
    pub const CLOSE_ROOM: &str = "close-room";
}

/// Rooms listed by `list-rooms` when the request names no `limit`.
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// Longest `reason` an admin may give, in characters (it is shown to the client).
pub const MAX_REASON: usize = 256;
/// What a kicked client reads when the admin gave no reason.
pub const DEFAULT_KICK_REASON: &str = "removed by an administrator";
/// What the members of a closed room read when the admin gave no reason.
pub const DEFAULT_CLOSE_REASON: &str = "the room was closed by an administrator";

/// Who is connected to the admin namespace, stored in the admin socket's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Presented the configured admin token.
    Token,
    /// Presented a credential the authenticator accepted with `admin: true`.
    User(Identity),
}

impl Principal {
    /// A short label for logs: `admin-token` or `user:<id>`.
    pub fn label(&self) -> String {
        match self {
            Principal::Token => "admin-token".into(),
            Principal::User(identity) => format!("user:{}", identity.user_id),
        }
    }
}

/// The admin building block: who may connect, and the signaling namespace it manages.
pub struct Admin {
    /// The admin token's bytes; never logged, never shown.
    token: Option<Box<[u8]>>,
    authenticator: Option<Arc<dyn Authenticator>>,
    /// The rooms block of the managed namespace, so closing a room also drops its password.
    rooms: Option<Arc<Rooms>>,
    /// Set once the server is built (handlers are registered before it exists).
    managed: OnceLock<Managed>,
    started: Instant,
    started_at_ms: u64,
}

struct Managed {
    server: Server,
    ns: Namespace,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("authenticator", &self.authenticator.is_some())
            .field("rooms", &self.rooms.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin::new()
    }
}

impl Admin {
    /// An admin block that admits nobody until a token or an authenticator is given.
    pub fn new() -> Self {
        Admin {
            token: None,
            authenticator: None,
            rooms: None,
            managed: OnceLock::new(),
            started: Instant::now(),
            started_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// Admits clients presenting exactly this token as `auth.token`.
    pub fn with_token(mut self, token: impl AsRef<str>) -> Self {
        self.token = Some(token.as_ref().as_bytes().into());
        self
    }

    /// Admits clients whose token this authenticator accepts with `admin: true`
    /// (the JWT authenticator of the calls, typically).
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// The managed namespace's rooms block: `close-room` then drops the
    /// room's password with its last member, as a leave does.
    pub fn with_rooms(mut self, rooms: Arc<Rooms>) -> Self {
        self.rooms = Some(rooms);
        self
    }

    /// Whether anyone at all can connect (a token or an authenticator is set).
    pub fn is_enabled(&self) -> bool {
        self.token.is_some() || self.authenticator.is_some()
    }

    /// Registers the connect check and the four admin events on `ns`.
    pub fn attach(self: &Arc<Self>, ns: &mut NamespaceBuilder) {
        let gate = self.clone();
        ns.middleware(move |socket| {
            let gate = gate.clone();
            async move {
                let token = socket
                    .auth::<Value>()
                    .and_then(|auth| auth.get("token").and_then(Value::as_str).map(str::to_owned));
                match gate.authorize(token.as_deref()).await {
                    Ok(principal) => {
                        tracing::info!(admin = %principal.label(), socket = %socket.id(), "admin connected");
                        socket.insert(principal);
                        Ok(())
                    }
                    Err(refusal) => {
                        tracing::warn!(socket = %socket.id(), reason = refusal.reason, "admin connection refused");
                        Err(refusal.into_connect_error())
                    }
                }
            }
        });
        let (list, stats, kick, close) = (self.clone(), self.clone(), self.clone(), self.clone());
        ns.on(events::LIST_ROOMS, move |socket, event| {
            answer(socket, event, |e| list.list_rooms(e))
        })
        .on(events::STATS, move |socket, event| {
            answer(socket, event, |_| stats.stats(socket))
        })
        .on(events::KICK, move |socket, event| {
            answer(socket, event, |e| kick.kick(socket, e))
        })
        .on(events::CLOSE_ROOM, move |socket, event| {
            answer(socket, event, |e| close.close_room(socket, e))
        });
    }

    /// Points the admin events at `namespace` of the built server. Until then
    /// they answer `unavailable`. Only the first call counts.
    pub fn manage(&self, server: &Server, namespace: &str) -> Result<(), String> {
        let ns = server
            .of(namespace)
            .ok_or_else(|| format!("the server has no namespace `{namespace}`"))?;
        let _ = self.managed.set(Managed {
            server: server.clone(),
            ns,
        });
        Ok(())
    }

    /// Decides whether `token` opens the admin namespace.
    pub async fn authorize(&self, token: Option<&str>) -> Result<Principal, Refusal> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(Refusal::MISSING);
        };
        if let Some(expected) = &self.token {
            if bool::from(token.as_bytes().ct_eq(expected)) {
                return Ok(Principal::Token);
            }
        }
        let Some(authenticator) = &self.authenticator else {
            return Err(Refusal::INVALID);
        };
        match authenticator.authenticate(token).await {
            Ok(identity) if identity.admin => Ok(Principal::User(identity)),
            Ok(_) => Err(Refusal::NOT_ADMIN),
            Err(e) => Err(Refusal {
                message: e.client_message(),
                reason: e.reason(),
            }),
        }
    }

    fn managed(&self) -> Result<&Managed, ClientError> {
        self.managed.get().ok_or_else(|| {
            ClientError::new(
                ErrorCode::Unavailable,
                "no signaling namespace is managed yet",
            )
        })
    }

    /// `list-rooms { limit? }`: rooms by id, each with its members in join order.
    fn list_rooms(&self, event: &Event) -> Result<Value, ClientError> {
        let limit = match optional_object(event)?.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIST_LIMIT,
            Some(v) => v
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n.min(usize::MAX as u64) as usize)
                .ok_or_else(|| bad_request("`limit` must be a positive integer"))?,
        };
        let ns = &self.managed()?.ns;
        let mut rooms = ns.rooms();
        rooms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let total = rooms.len();
        let listed: Vec<Value> = rooms
            .iter()
            .take(limit)
            .map(|(room, _)| {
                let members: Vec<Value> = ns
                    .room_members(room)
                    .into_iter()
                    .map(|sid| member(ns, sid))
                    .collect();
                json!({ "roomId": &**room, "size": members.len(), "members": members })
            })
            .collect();
        Ok(json!({
            "total": total,
            "truncated": total > listed.len(),
            "rooms": listed,
        }))
    }

    /// `stats`: what an operator checks first.
    fn stats(&self, admin_socket: &Socket) -> Result<Value, ClientError> {
        let Managed { server, ns } = self.managed()?;
        let rooms = ns.rooms();
        Ok(json!({
            "namespace": ns.name(),
            "sockets": ns.len(),
            "sessions": server.session_count(),
            "rooms": rooms.len(),
            "socketsInRooms": rooms.iter().map(|(_, n)| n).sum::<usize>(),
            "largestRoom": rooms.iter().map(|(_, n)| *n).max().unwrap_or(0),
            "admins": admin_socket.ns().len(),
            "uptimeSeconds": self.started.elapsed().as_secs(),
            "startedAt": self.started_at_ms,
            "rssBytes": rss_bytes(),
        }))
    }

    /// `kick { socketId | userId, reason? }`: each target gets
    /// `error { code: "kicked", message: reason }`, then is disconnected; its
    /// rooms get the usual departure events at once.
    fn kick(&self, admin_socket: &Socket, event: &Event) -> Result<Value, ClientError> {
        let request = object(event, "kick needs { socketId } or { userId }")?;
        let reason = reason(&request, DEFAULT_KICK_REASON)?;
        let ns = &self.managed()?.ns;
        let targets: Vec<Socket> = match (request.get("socketId"), request.get("userId")) {
            (Some(Value::String(id)), None) => {
                let sid = id.parse::<Sid>().ok();
                let socket = sid.and_then(|sid| ns.get_socket(sid));
                if let (None, Some(sid)) = (&socket, sid) {
                    // On another node of a cluster: the notice, then the
                    // disconnect, go to that node in this order.
                    if kick_remote(ns, sid, &reason) {
                        tracing::info!(admin = %principal_label(admin_socket), socket = %sid, "kicked (on another node)");
                        return Ok(json!({ "kicked": [sid] }));
                    }
                }
                socket.into_iter().collect()
            }
            (None, Some(Value::String(user))) => {
                let kicked = kick_user_here(ns, user, &reason);
                for sid in &kicked {
                    tracing::info!(admin = %principal_label(admin_socket), socket = %sid, "kicked");
                }
                // In a cluster the other nodes kick theirs (not listed here).
                let data = json!({ "userId": user, "reason": reason }).to_string();
                let asked = ns.request_others(KICK_USER, &data);
                if kicked.is_empty() && !asked {
                    return Err(ClientError::new(
                        ErrorCode::NotFound,
                        "no connected socket matches",
                    ));
                }
                return Ok(json!({ "kicked": kicked }));
            }
            _ => {
                return Err(bad_request(
                    "kick needs exactly one of `socketId` or `userId`, as a string",
                ))
            }
        };
        if targets.is_empty() {
            return Err(ClientError::new(
                ErrorCode::NotFound,
                "no connected socket matches",
            ));
        }
        let notice = ClientError::new(ErrorCode::Kicked, reason);
        let mut kicked = Vec::with_capacity(targets.len());
        for target in targets {
            // Queued before the disconnect packet, so the client reads why first.
            notice.send(&target);
            target.disconnect();
            tracing::info!(admin = %principal_label(admin_socket), socket = %target.id(), "kicked");
            kicked.push(target.id());
        }
        Ok(json!({ "kicked": kicked }))
    }

    /// `close-room { roomId, reason? }`: every member hears every other member
    /// leave (`user-disconnected`), then gets `error { code: "kicked",
    /// message: reason, roomId }` and is out of the room, still connected.
    fn close_room(&self, admin_socket: &Socket, event: &Event) -> Result<Value, ClientError> {
        let request = object(event, "close-room needs { roomId }")?;
        let room = match request.get("roomId") {
            Some(Value::String(r)) if !r.is_empty() && r.chars().count() <= MAX_ROOM_ID => r,
            _ => {
                return Err(bad_request(
                    "`roomId` must be a non-empty string of at most 128 characters",
                ))
            }
        };
        let reason = reason(&request, DEFAULT_CLOSE_REASON)?;
        let ns = &self.managed()?.ns;
        // A connected socket's own-id room (on any node) is not a room.
        let own_id_room = room
            .parse::<Sid>()
            .is_ok_and(|sid| !ns.adapter().rooms_of(sid).is_empty());
        let members: Vec<Sid> = if own_id_room {
            Vec::new()
        } else {
            ns.room_members(room)
        };
        if members.is_empty() {
            return Err(ClientError::new(ErrorCode::NotFound, "no such room").in_room(room));
        }
        self.close_here(ns, room, &reason, &members);
        if members.iter().any(|&sid| ns.get_socket(sid).is_none()) {
            // Members on other nodes of a cluster: their nodes do the same.
            let data = json!({ "roomId": room, "reason": reason, "members": members }).to_string();
            ns.request_others(CLOSE_ROOM, &data);
        }
        tracing::info!(admin = %principal_label(admin_socket), members = members.len(), "room closed");
        Ok(json!({ "roomId": room, "removed": members }))
    }

    /// `close-room` on this node: each member here hears every other member
    /// of `members` (the whole room, every node) leave, then gets the notice
    /// and is out of the room.
    fn close_here(&self, ns: &Namespace, room: &str, reason: &str, members: &[Sid]) {
        let here: Vec<Socket> = members
            .iter()
            .filter_map(|&sid| ns.get_socket(sid))
            .collect();
        for member in &here {
            for &other in members.iter().filter(|&&other| other != member.id()) {
                let _ = member.emit(app::USER_DISCONNECTED, &json!({ "id": other }));
            }
        }
        let notice = ClientError::new(ErrorCode::Kicked, reason.to_owned()).in_room(room);
        for member in &here {
            notice.send(member);
            match &self.rooms {
                Some(rooms) => rooms.evict(member, room),
                None => member.leave(room),
            };
        }
    }

    /// Handles the requests other nodes of a cluster send for `kick { userId }`
    /// and `close-room` (registered on the managed signaling namespace).
    pub fn attach_cluster_requests(self: &Arc<Self>, signaling: &mut NamespaceBuilder) {
        let close = self.clone();
        signaling
            .on_cluster_request(KICK_USER, |ns, data| {
                let Ok(request) = serde_json::from_str::<Value>(data) else {
                    return;
                };
                if let (Some(user), Some(reason)) =
                    (request["userId"].as_str(), request["reason"].as_str())
                {
                    for sid in kick_user_here(ns, user, reason) {
                        tracing::info!(socket = %sid, "kicked (asked by another node)");
                    }
                }
            })
            .on_cluster_request(CLOSE_ROOM, move |ns, data| {
                #[derive(serde::Deserialize)]
                struct Request {
                    #[serde(rename = "roomId")]
                    room: String,
                    reason: String,
                    members: Vec<Sid>,
                }
                if let Ok(r) = serde_json::from_str::<Request>(data) {
                    close.close_here(ns, &r.room, &r.reason, &r.members);
                }
            });
    }
}

/// Cluster request kinds of the admin actions.
const KICK_USER: &str = "admin:kick-user";
const CLOSE_ROOM: &str = "admin:close-room";

/// Kicks this node's sockets of `user`: the notice, then the disconnect.
fn kick_user_here(ns: &Namespace, user: &str, reason: &str) -> Vec<Sid> {
    let notice = ClientError::new(ErrorCode::Kicked, reason.to_owned());
    ns.sockets()
        .into_iter()
        .filter(|s| Identity::user_id(s).is_some_and(|u| &*u == user))
        .map(|target| {
            // Queued before the disconnect packet, so the client reads why first.
            notice.send(&target);
            target.disconnect();
            target.id()
        })
        .collect()
}

/// Why a client may not open the admin namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// What the client reads in `connect_error` (`err.message`).
    pub message: &'static str,
    /// A token-free reason for the log.
    pub reason: &'static str,
}

impl Refusal {
    const MISSING: Refusal = Refusal {
        message: "missing token",
        reason: "missing",
    };
    const INVALID: Refusal = Refusal {
        message: "invalid token",
        reason: "wrong-admin-token",
    };
    const NOT_ADMIN: Refusal = Refusal {
        message: "not an admin",
        reason: "not-admin",
    };

    fn into_connect_error(self) -> ConnectError {
        let detail = match self.reason {
            "missing" => {
                "the admin namespace needs `auth.token`: the admin token or an admin credential"
            }
            "not-admin" => "this credential does not grant the admin namespace",
            _ => "the token is neither the admin token nor an accepted admin credential",
        };
        let data = ClientError::new(ErrorCode::Forbidden, detail);
        ConnectError::new(self.message).with_data(serde_json::to_value(data).unwrap_or(Value::Null))
    }
}

/// Runs an admin action and answers it: `{ ok: true, ... }` or
/// `{ ok: false, error }` in the acknowledgement, or the `error` event when
/// the client asked for no acknowledgement.
fn answer(
    socket: &Socket,
    mut event: Event,
    action: impl FnOnce(&Event) -> Result<Value, ClientError>,
) {
    let ack = event.take_ack();
    let reply = match action(&event) {
        Ok(mut value) => {
            if let Some(map) = value.as_object_mut() {
                map.insert("ok".into(), Value::Bool(true));
            }
            value
        }
        Err(error) => {
            if ack.is_none() {
                error.send(socket);
                return;
            }
            json!({ "ok": false, "error": error })
        }
    };
    if let Some(ack) = ack {
        send_ack(socket, ack, &reply);
    }
}

fn send_ack(socket: &Socket, ack: AckSender, reply: &Value) {
    if let Err(e) = ack.send(reply) {
        tracing::debug!(socket = %socket.id(), error = %e, "could not deliver an admin acknowledgement");
    }
}

/// Kicks `sid`, a socket on another node of a cluster: false when no node has it.
fn kick_remote(ns: &Namespace, sid: Sid, reason: &str) -> bool {
    // Known to the cluster's replica (a single process knows only its own sockets).
    if ns.adapter().rooms_of(sid).is_empty() {
        return false;
    }
    let notice = ClientError::new(ErrorCode::Kicked, reason.to_owned());
    let Ok(payload) = rtcio_engine::Payload::new().arg(&notice) else {
        return false;
    };
    let packet = payload.into_event(ns.name(), crate::events::app::ERROR, None);
    ns.send_to(sid, &packet) && ns.disconnect_socket(sid)
}

/// One member of a room as `list-rooms` shows it.
fn member(ns: &Namespace, sid: Sid) -> Value {
    let socket = ns.get_socket(sid);
    let identity = socket.as_ref().and_then(Identity::of);
    let name = socket
        .as_ref()
        .and_then(|s| s.get::<Peer>())
        .map(|p| p.name)
        .filter(|n| !n.is_empty())
        .or_else(|| identity.as_ref().and_then(|i| i.name.clone()));
    json!({
        "id": sid,
        "name": name.as_deref(),
        "userId": identity.as_ref().map(|i| &*i.user_id),
    })
}

fn principal_label(socket: &Socket) -> String {
    socket
        .get::<Principal>()
        .map(|p| p.label())
        .unwrap_or_default()
}

fn bad_request(message: &str) -> ClientError {
    ClientError::new(ErrorCode::BadRequest, message)
}

fn object(event: &Event, what: &str) -> Result<Map<String, Value>, ClientError> {
    event
        .arg::<Map<String, Value>>(0)
        .map_err(|_| bad_request(what))
}

/// The first argument as an object; none (or null) counts as `{}`.
fn optional_object(event: &Event) -> Result<Map<String, Value>, ClientError> {
    match event.args().raw(0) {
        None | Some("null") => Ok(Map::new()),
        Some(_) => object(event, "the argument, when given, must be an object"),
    }
}

fn reason(request: &Map<String, Value>, default: &str) -> Result<String, ClientError> {
    match request.get("reason") {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(r)) if r.trim().is_empty() => Ok(default.to_owned()),
        Some(Value::String(r)) if r.chars().count() <= MAX_REASON => Ok(r.clone()),
        Some(_) => Err(bad_request(
            "`reason` must be a string of at most 256 characters",
        )),
    }
}

/// The process's resident memory, where the platform says it cheaply (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AuthError, AuthFuture};

    /// Accepts `alice` (an admin), `bob` (not one); anything else is invalid.
    struct TestAuthenticator;

    impl Authenticator for TestAuthenticator {
        fn authenticate(&self, token: &str) -> AuthFuture {
            let result = match token {
                "alice" | "bob" => Ok(Identity {
                    user_id: token.into(),
                    admin: token == "alice",
                    ..Identity::default()
                }),
                _ => Err(AuthError::Invalid("bad-signature")),
            };
            Box::pin(async move { result })
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_admin_token_admits_and_nothing_else_does() {
        let admin = Admin::new().with_token("s3cret-admin-token");
        assert!(admin.is_enabled());
        assert_eq!(
            block_on(admin.authorize(Some("s3cret-admin-token"))),
            Ok(Principal::Token)
        );
        assert_eq!(
            block_on(admin.authorize(Some("s3cret-admin-tokem"))),
            Err(Refusal::INVALID)
        );
        assert_eq!(
            block_on(admin.authorize(Some("s3cret"))),
            Err(Refusal::INVALID)
        );
        assert_eq!(block_on(admin.authorize(None)), Err(Refusal::MISSING));
        assert_eq!(block_on(admin.authorize(Some(""))), Err(Refusal::MISSING));
    }

    #[test]
    fn an_authenticator_admits_admin_identities_only() {
        let admin = Admin::new().with_authenticator(Arc::new(TestAuthenticator));
        assert!(admin.is_enabled());
        match block_on(admin.authorize(Some("alice"))) {
            Ok(Principal::User(identity)) => {
                assert_eq!(&*identity.user_id, "alice");
                assert!(identity.admin);
            }
            other => panic!("alice is an admin: {other:?}"),
        }
        assert_eq!(
            block_on(admin.authorize(Some("bob"))),
            Err(Refusal::NOT_ADMIN)
        );
        let forged = block_on(admin.authorize(Some("mallory"))).unwrap_err();
        assert_eq!(
            (forged.message, forged.reason),
            ("invalid token", "bad-signature")
        );
        assert_eq!(block_on(admin.authorize(None)), Err(Refusal::MISSING));
    }

    #[test]
    fn token_and_authenticator_together() {
        let admin = Admin::new()
            .with_token("s3cret-admin-token")
            .with_authenticator(Arc::new(TestAuthenticator));
        assert_eq!(
            block_on(admin.authorize(Some("s3cret-admin-token"))),
            Ok(Principal::Token)
        );
        assert!(matches!(
            block_on(admin.authorize(Some("alice"))),
            Ok(Principal::User(_))
        ));
        assert_eq!(
            block_on(admin.authorize(Some("bob"))),
            Err(Refusal::NOT_ADMIN)
        );
    }

    #[test]
    fn off_without_a_token_or_an_authenticator() {
        let admin = Admin::new();
        assert!(!admin.is_enabled());
        assert_eq!(
            block_on(admin.authorize(Some("anything"))),
            Err(Refusal::INVALID)
        );
    }

    #[test]
    fn refusals_carry_the_error_shape_and_never_the_token() {
        let e = Refusal::NOT_ADMIN.into_connect_error();
        assert_eq!(e.message, "not an admin");
        let data = e.data.unwrap();
        assert_eq!(data["code"], "forbidden");
        assert!(data["message"].as_str().is_some_and(|m| !m.is_empty()));
        let debug = format!("{:?}", Admin::new().with_token("s3cret-admin-token"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn reasons_are_bounded_strings_with_a_default() {
        let req = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            reason(&req(json!({})), DEFAULT_KICK_REASON).unwrap(),
            DEFAULT_KICK_REASON
        );
        assert_eq!(reason(&req(json!({ "reason": "  " })), "d").unwrap(), "d");
        assert_eq!(
            reason(&req(json!({ "reason": "spam" })), "d").unwrap(),
            "spam"
        );
        assert!(reason(&req(json!({ "reason": 5 })), "d").is_err());
        assert!(reason(&req(json!({ "reason": "x".repeat(257) })), "d").is_err());
    }
}
