//! Where room state lives: membership in join order with each member's peer
//! info (display name, user id, last media-state), and room passwords.
//!
//! [`Rooms`](crate::Rooms) asks a [`RoomStore`] for every decision that must
//! be exact across all the sockets of a room: the cap, the password, and the
//! snapshot of the members a newcomer meets. In one process that is
//! [`MemoryRoomStore`], which answers at once (no task hop, no allocation of a
//! future); a cluster of processes plugs in a shared store (Redis, in the
//! `rtcio-cluster` crate) whose answers arrive later ([`Reply::Pending`]).
//!
//! The engine's adapter still routes packets; the store only says who is in
//! a room and what is known about them, so a member on another server process
//! appears in a newcomer's snapshot with its name and media-state.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use rtcio_engine::{Room, Sid};
use subtle::ConstantTimeEq;

use crate::errors::ErrorCode;

/// What a room knows of one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// The display name given at the join (or the credential's).
    pub name: Arc<str>,
    /// The authenticated user id, when the member has one.
    pub user_id: Option<Arc<str>>,
    /// The last `media-state` booleans: (mic, cam).
    pub media: Option<(bool, bool)>,
    /// The cluster node the member is connected to, when a shared store
    /// knows it: a newcomer's announcements go straight there, even before
    /// the membership replica has heard of the member (`None` in one process).
    pub node: Option<Arc<str>>,
}

/// The members a newcomer meets, in join order, without the newcomer.
pub type Snapshot = Vec<(Sid, PeerInfo)>;

/// A boxed future a shared store answers with.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A store's answer: at once (memory), or later (a shared store).
pub enum Reply<T> {
    Ready(T),
    Pending(StoreFuture<T>),
}

impl<T> Reply<T> {
    /// Waits for the answer (no wait for a ready one).
    pub async fn get(self) -> T {
        match self {
            Reply::Ready(value) => value,
            Reply::Pending(future) => future.await,
        }
    }
}

/// Room membership, peer info and passwords, shared by everything that joins.
///
/// Refusals are [`ErrorCode`]s: `room-full`, `password-required`,
/// `wrong-password`, and `unavailable` when a shared store cannot be reached
/// in time. Writes that answer nothing (`leave`, `update_peer`...) are
/// applied in the order they are made, after any join made before them.
pub trait RoomStore: Send + Sync + 'static {
    /// Whether every answer is [`Reply::Ready`]: the rooms' handlers then
    /// stay synchronous.
    fn is_local(&self) -> bool;

    /// Atomically: unless `sid` is already a member, refuse when the room
    /// holds `cap` members (`cap` 0: no cap); set the password when the room
    /// is empty (`None` clears it), else check it; add `sid` with `peer`; and
    /// answer the members that were there before, in join order.
    fn join(
        &self,
        ns: &str,
        room: &str,
        sid: Sid,
        peer: &PeerInfo,
        cap: usize,
        password: Option<&str>,
    ) -> Reply<Result<Snapshot, ErrorCode>>;

    /// Puts a recovered socket back in its rooms (no cap, no password: it
    /// never left them as far as its peers know).
    fn restore(&self, ns: &str, rooms: &[Room], sid: Sid, peer: &PeerInfo);

    /// Takes `sid` out of `rooms`. A room left empty loses its password,
    /// unless `keep_password` (a lost socket that may still recover: see
    /// [`RoomStore::forget_password_if_empty`]).
    fn leave(&self, ns: &str, rooms: &[Room], sid: Sid, keep_password: bool);

    /// Drops the passwords of those `rooms` that are empty.
    fn forget_password_if_empty(&self, ns: &str, rooms: &[Room]);

    /// `check-room`: whether the room needs a password (`Ok(true)`), or
    /// `wrong-password` when the one given does not match. An empty room has
    /// no password.
    fn check(&self, ns: &str, room: &str, password: Option<&str>)
        -> Reply<Result<bool, ErrorCode>>;

    /// Replaces what the rooms know of member `sid` (a new name, a
    /// media-state) in each of `rooms` it is a member of.
    fn update_peer(&self, ns: &str, rooms: &[Room], sid: Sid, peer: &PeerInfo);

    /// The members of a room in join order (admin `list-rooms`).
    fn members(&self, ns: &str, room: &str) -> Reply<Result<Snapshot, ErrorCode>>;
}

#[derive(Default)]
struct MemRoom {
    password: Option<String>,
    /// In join order.
    members: Vec<(Sid, PeerInfo)>,
}

/// Rooms of one process, in memory: the behaviour of the reference server.
#[derive(Default)]
pub struct MemoryRoomStore {
    /// Namespace → room → state.
    rooms: Mutex<HashMap<String, HashMap<Room, MemRoom>>>,
}

impl MemoryRoomStore {
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryRoomStore::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<Room, MemRoom>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_ns<R>(&self, ns: &str, f: impl FnOnce(&mut HashMap<Room, MemRoom>) -> R) -> R {
        let mut all = self.lock();
        if let Some(rooms) = all.get_mut(ns) {
            return f(rooms);
        }
        f(all.entry(ns.to_owned()).or_default())
    }

    fn add(room: &mut MemRoom, sid: Sid, peer: &PeerInfo) -> Snapshot {
        match room.members.iter().position(|(s, _)| *s == sid) {
            Some(i) => {
                room.members[i].1 = peer.clone();
                room.members
                    .iter()
                    .filter(|(s, _)| *s != sid)
                    .cloned()
                    .collect()
            }
            None => {
                let existing = room.members.clone();
                room.members.push((sid, peer.clone()));
                existing
            }
        }
    }
}

fn same_password(given: &str, stored: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(stored.as_bytes()))
}

impl RoomStore for MemoryRoomStore {
    fn is_local(&self) -> bool {
        true
    }

    fn join(
        &self,
        ns: &str,
        room: &str,
        sid: Sid,
        peer: &PeerInfo,
        cap: usize,
        password: Option<&str>,
    ) -> Reply<Result<Snapshot, ErrorCode>> {
        Reply::Ready(self.with_ns(ns, |rooms| {
            let Some(state) = rooms.get_mut(room) else {
                // A new room: its first member sets its password.
                rooms.insert(
                    Room::from(room),
                    MemRoom {
                        password: password.map(str::to_owned),
                        members: vec![(sid, peer.clone())],
                    },
                );
                return Ok(Vec::new());
            };
            if state.members.iter().any(|(s, _)| *s == sid) {
                return Ok(MemoryRoomStore::add(state, sid, peer));
            }
            if cap > 0 && state.members.len() >= cap {
                return Err(ErrorCode::RoomFull);
            }
            if state.members.is_empty() {
                state.password = password.map(str::to_owned);
            } else if let Some(stored) = &state.password {
                match password {
                    None => return Err(ErrorCode::PasswordRequired),
                    Some(p) if !same_password(p, stored) => return Err(ErrorCode::WrongPassword),
                    Some(_) => {}
                }
            }
            Ok(MemoryRoomStore::add(state, sid, peer))
        }))
    }

    fn restore(&self, ns: &str, rooms: &[Room], sid: Sid, peer: &PeerInfo) {
        self.with_ns(ns, |all| {
            for room in rooms {
                let state = all.entry(room.clone()).or_default();
                MemoryRoomStore::add(state, sid, peer);
            }
        });
    }

    fn leave(&self, ns: &str, rooms: &[Room], sid: Sid, keep_password: bool) {
        self.with_ns(ns, |all| {
            for room in rooms {
                let Some(state) = all.get_mut(room) else {
                    continue;
                };
                state.members.retain(|(s, _)| *s != sid);
                if state.members.is_empty() && (!keep_password || state.password.is_none()) {
                    all.remove(room);
                }
            }
        });
    }

    fn forget_password_if_empty(&self, ns: &str, rooms: &[Room]) {
        self.with_ns(ns, |all| {
            for room in rooms {
                if all.get(room).is_some_and(|s| s.members.is_empty()) {
                    all.remove(room);
                }
            }
        });
    }

    fn check(
        &self,
        ns: &str,
        room: &str,
        password: Option<&str>,
    ) -> Reply<Result<bool, ErrorCode>> {
        Reply::Ready(self.with_ns(ns, |all| {
            let stored = all
                .get(room)
                .filter(|s| !s.members.is_empty())
                .and_then(|s| s.password.as_deref());
            match (password, stored) {
                (Some(given), Some(stored)) if !same_password(given, stored) => {
                    Err(ErrorCode::WrongPassword)
                }
                _ => Ok(stored.is_some()),
            }
        }))
    }

    fn update_peer(&self, ns: &str, rooms: &[Room], sid: Sid, peer: &PeerInfo) {
        self.with_ns(ns, |all| {
            for room in rooms {
                if let Some(member) = all
                    .get_mut(room)
                    .and_then(|s| s.members.iter_mut().find(|(s, _)| *s == sid))
                {
                    member.1 = peer.clone();
                }
            }
        });
    }

    fn members(&self, ns: &str, room: &str) -> Reply<Result<Snapshot, ErrorCode>> {
        Reply::Ready(Ok(self.with_ns(ns, |all| {
            all.get(room).map(|s| s.members.clone()).unwrap_or_default()
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> Sid {
        format!("{:0>20}", n).parse().expect("a valid sid")
    }

    fn peer(name: &str) -> PeerInfo {
        PeerInfo {
            name: Arc::from(name),
            ..PeerInfo::default()
        }
    }

    fn ready<T>(reply: Reply<T>) -> T {
        match reply {
            Reply::Ready(v) => v,
            Reply::Pending(_) => panic!("the memory store answers at once"),
        }
    }

    #[test]
    fn joins_snapshot_in_join_order_and_cap() {
        let store = MemoryRoomStore::new();
        for n in 0..3 {
            let got = ready(store.join("/", "r", sid(n), &peer(&n.to_string()), 3, None)).unwrap();
            assert_eq!(got.len(), n as usize);
            assert!(got.iter().enumerate().all(|(i, (s, _))| *s == sid(i as u8)));
        }
        assert_eq!(
            ready(store.join("/", "r", sid(9), &peer("x"), 3, None)),
            Err(ErrorCode::RoomFull)
        );
        // A member's re-join is not refused by the cap.
        assert_eq!(
            ready(store.join("/", "r", sid(1), &peer("one"), 3, None))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn passwords_live_with_the_room() {
        let store = MemoryRoomStore::new();
        ready(store.join("/", "r", sid(1), &peer("a"), 0, Some("pw"))).unwrap();
        assert_eq!(
            ready(store.join("/", "r", sid(2), &peer("b"), 0, None)),
            Err(ErrorCode::PasswordRequired)
        );
        assert_eq!(
            ready(store.join("/", "r", sid(2), &peer("b"), 0, Some("no"))),
            Err(ErrorCode::WrongPassword)
        );
        assert_eq!(ready(store.check("/", "r", None)), Ok(true));
        assert_eq!(
            ready(store.check("/", "r", Some("no"))),
            Err(ErrorCode::WrongPassword)
        );
        ready(store.join("/", "r", sid(2), &peer("b"), 0, Some("pw"))).unwrap();
        store.leave("/", &[Room::from("r")], sid(1), false);
        store.leave("/", &[Room::from("r")], sid(2), true);
        // Kept for a socket that may recover, but an empty room shows none.
        assert_eq!(ready(store.check("/", "r", None)), Ok(false));
        store.restore("/", &[Room::from("r")], sid(2), &peer("b"));
        assert_eq!(ready(store.check("/", "r", None)), Ok(true));
        store.leave("/", &[Room::from("r")], sid(2), false);
        assert_eq!(ready(store.check("/", "r", None)), Ok(false));
        ready(store.join("/", "r", sid(3), &peer("c"), 0, None)).unwrap();
        assert_eq!(ready(store.check("/", "r", None)), Ok(false));
    }

    #[test]
    fn peer_updates_reach_the_next_snapshot() {
        let store = MemoryRoomStore::new();
        ready(store.join("/", "r", sid(1), &peer("a"), 0, None)).unwrap();
        let mut info = peer("alice");
        info.media = Some((true, false));
        store.update_peer("/", &[Room::from("r")], sid(1), &info);
        let got = ready(store.join("/", "r", sid(2), &peer("b"), 0, None)).unwrap();
        assert_eq!(got, vec![(sid(1), info)]);
        // Namespaces are apart.
        assert!(ready(store.members("/other", "r")).unwrap().is_empty());
    }
}
