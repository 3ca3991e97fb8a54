//! Presence across a lost connection (with connection-state recovery on).
//!
//! A socket whose connection was lost may come back within the recovery
//! window with the same id, rooms and data. Its peers get `#rtcio:peer-left`
//! at once (a hint: they check their WebRTC state, and a healthy call
//! survives it), but `user-disconnected` waits for the grace: a socket that
//! recovers within it was never gone, and its peers see no presence churn at
//! all. One that recovers later was announced gone, so it is announced again
//! like a newcomer (`user-connected`, then `#rtcio:init-offer` so the peers
//! offer). A goodbye (the client's own disconnect, `leave-room`, a kick) is
//! never held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rtcio_engine::{Namespace, Room, Sid, Socket};
use serde_json::json;

use crate::events::{app, INIT_OFFER};
use crate::rooms::Peer;

/// How long `user-disconnected` waits for a lost socket by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The departures held for their grace.
pub(crate) struct Presence {
    grace: Duration,
    /// Lost sockets whose `user-disconnected` is not sent yet, with their rooms.
    held: Mutex<HashMap<Sid, Held>>,
    next_hold: AtomicU64,
}

struct Held {
    rooms: Arc<[Room]>,
    /// Tells this hold from a later one of the same socket (lost, recovered, lost again).
    hold: u64,
}

impl Default for Presence {
    fn default() -> Self {
        Presence::new(DEFAULT_GRACE)
    }
}

impl Presence {
    pub(crate) fn new(grace: Duration) -> Self {
        Presence {
            grace,
            held: Mutex::new(HashMap::new()),
            next_hold: AtomicU64::new(0),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<Sid, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds the `user-disconnected` of a lost socket for the grace; when it
    /// ends without the socket back, `gone(namespace, rooms)` runs after the
    /// peers were told. Called while the socket's rooms are still known.
    pub(crate) fn hold<F>(self: &Arc<Self>, socket: &Socket, gone: F)
    where
        F: FnOnce(&Namespace, &[Room]) + Send + 'static,
    {
        let rooms: Arc<[Room]> = socket.rooms().get(1..).unwrap_or_default().into();
        if rooms.is_empty() {
            return;
        }
        let sid = socket.id();
        let hold = self.next_hold.fetch_add(1, Ordering::Relaxed);
        self.held().insert(
            sid,
            Held {
                rooms: rooms.clone(),
                hold,
            },
        );
        let (this, ns, grace) = (self.clone(), socket.ns(), self.grace);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let still_away = {
                let mut held = this.held();
                match held.get(&sid) {
                    Some(h) if h.hold == hold => held.remove(&sid),
                    _ => None,
                }
            };
            if let Some(Held { rooms, .. }) = still_away {
                // In a cluster it may have come back on another node.
                if ns.adapter().rooms_of(sid).is_empty() {
                    announce_gone(&ns, sid, &rooms);
                }
                gone(&ns, &rooms);
            }
        });
    }

    /// A socket came back through recovery: within the grace nothing is
    /// announced; after it, the peers meet it again like a newcomer.
    pub(crate) fn recovered(&self, socket: &Socket) {
        if self.held().remove(&socket.id()).is_some() || remote_hold_ends(socket.id()) {
            return;
        }
        let Some(peers) = socket.peers() else {
            return;
        };
        let name = socket.get::<Peer>().map(|p| p.name).unwrap_or_default();
        let _ = peers.emit(
            app::USER_CONNECTED,
            &json!({ "id": socket.id(), "name": &*name }),
        );
        if let Some(peers) = socket.peers() {
            let _ = peers.emit(INIT_OFFER, &json!({ "source": socket.id() }));
        }
    }
}

/// `user-disconnected { id }` to the rooms a socket was in, each peer once
/// (the socket itself, away with its state kept, is not told).
fn announce_gone(ns: &Namespace, sid: Sid, rooms: &[Room]) {
    let Some((first, rest)) = rooms.split_first() else {
        return;
    };
    let peers = rest
        .iter()
        .fold(ns.to(first), |op, room| op.to(room))
        .except(sid.as_str());
    let _ = peers.emit(app::USER_DISCONNECTED, &json!({ "id": sid }));
}

/// Presence for the sockets of a cluster node that died (no goodbye): each
/// surviving node tells its own sockets (so every peer hears it once)
/// `#rtcio:peer-left` at once, and `user-disconnected` after `grace` unless
/// the socket is back by then, recovered on any node. A zero grace (recovery
/// off: nobody can come back) announces both at once.
pub fn attach_remote_departures(ns: &mut rtcio_engine::NamespaceBuilder, grace: Duration) {
    ns.on_remote_departure(move |ns, sid, rooms| {
        let left = json!({ "id": sid });
        emit_local(ns, sid, &rooms, crate::events::PEER_LEFT, &left);
        if grace.is_zero() {
            emit_local(ns, sid, &rooms, app::USER_DISCONNECTED, &left);
            return;
        }
        let hold = NEXT_REMOTE_HOLD.fetch_add(1, Ordering::Relaxed);
        remote_holds().insert(sid, hold);
        let ns = ns.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let ours = {
                let mut holds = remote_holds();
                match holds.get(&sid) {
                    Some(&h) if h == hold => holds.remove(&sid).is_some(),
                    _ => false,
                }
            };
            // Recovered on some node: it is in the cluster's rooms again.
            let back = ns.get_socket(sid).is_some() || ns.adapter().rooms_of(sid).len() > 1;
            if ours && !back {
                emit_local(&ns, sid, &rooms, app::USER_DISCONNECTED, &left);
            }
        });
    });
}

static NEXT_REMOTE_HOLD: AtomicU64 = AtomicU64::new(0);

/// Sockets of dead nodes whose `user-disconnected` waits for the grace on this node.
fn remote_holds() -> MutexGuard<'static, HashMap<Sid, u64>> {
    static HOLDS: std::sync::OnceLock<Mutex<HashMap<Sid, u64>>> = std::sync::OnceLock::new();
    HOLDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A socket of a dead node recovered here within the grace: its peers were
/// told nothing but the `#rtcio:peer-left` hint, and hear nothing more.
fn remote_hold_ends(sid: Sid) -> bool {
    remote_holds().remove(&sid).is_some()
}

/// Sends `event` to the sockets of this node in any of `rooms` (each once), but `sid`.
fn emit_local(ns: &Namespace, sid: Sid, rooms: &[Room], event: &str, data: &serde_json::Value) {
    let mut seen = std::collections::HashSet::new();
    let Ok(payload) = rtcio_engine::Payload::new().arg(data) else {
        return;
    };
    let packet = payload.into_event(ns.name(), event, None);
    for room in rooms {
        for member in ns.room_members(room) {
            if member == sid || !seen.insert(member) {
                continue;
            }
            if let Some(socket) = ns.get_socket(member) {
                let _ = socket.send_encoded(&packet);
            }
        }
    }
}
