//! Room membership and broadcast routing, behind a trait.
//!
//! The namespace asks its adapter who is in a room and whom a broadcast
//! reaches; it never keeps membership itself. [`LocalAdapter`] keeps it in
//! memory for one process; a cluster adapter (Redis) implements the same
//! trait, publishing broadcasts to the other nodes and answering
//! cluster-wide queries, so code written against the trait moves from one
//! process to a cluster by configuration.
//!
//! Every socket is in the room named after its own id. That room is virtual
//! here: it costs no map entry, yet `to(id)`, `except(id)`, `members(id)` and
//! `rooms_of` behave as if it were a real room.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::event::Encoded;
use crate::namespace::NamespaceHandle;
use crate::sid::Sid;

/// A room name.
pub type Room = Arc<str>;

/// Who a broadcast reaches.
#[derive(Debug, Clone, Default)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Sockets in any of these rooms are skipped.
    pub except: Vec<Room>,
    /// This socket is skipped (the sender, for `socket.to(room)`).
    pub except_sid: Option<Sid>,
}

/// Room membership and broadcast routing for one namespace.
pub trait Adapter: Send + Sync + 'static {
    /// A socket connected to the namespace.
    fn add_socket(&self, sid: Sid);
    /// A socket left the namespace: removes it from every room, returns the rooms it was in
    /// (its own-id room not included).
    fn remove_socket(&self, sid: Sid) -> Vec<Room>;
    /// Adds `sid` to `room`; false if it was already there.
    fn join(&self, sid: Sid, room: &str) -> bool;
    /// Removes `sid` from `room`; false if it was not there.
    fn leave(&self, sid: Sid, room: &str) -> bool;
    /// The rooms of `sid`, its own-id room first.
    fn rooms_of(&self, sid: Sid) -> Vec<Room>;
    /// Whether `sid` is in `room`.
    fn is_member(&self, sid: Sid, room: &str) -> bool;
    /// Whether `a` and `b` share a room other than their own-id rooms.
    fn share_room(&self, a: Sid, b: Sid) -> bool {
        self.rooms_of(a)
            .iter()
            .skip(1)
            .any(|room| self.is_member(b, room))
    }
    /// The sockets in `room`, in the order they joined.
    fn members(&self, room: &str) -> Vec<Sid>;
    /// How many sockets are in `room`.
    fn room_len(&self, room: &str) -> usize;
    /// Every room with at least one member (own-id rooms not included), with its size.
    fn rooms(&self) -> Vec<(Room, usize)>;
    /// The sockets of this node a broadcast reaches.
    fn recipients(&self, opts: &BroadcastOptions) -> Vec<Sid>;
    /// Routes a broadcast: calls `deliver` for each recipient on this node. A
    /// cluster adapter also publishes `packet` to the other nodes.
    fn broadcast(&self, opts: &BroadcastOptions, packet: &Encoded, deliver: &mut dyn FnMut(Sid)) {
        let _ = packet;
        for sid in self.recipients(opts) {
            deliver(sid);
        }
    }

    /// Called once, when the namespace is built: a cluster adapter keeps the
    /// handle to deliver packets arriving from other nodes to local sockets,
    /// to disconnect a local socket on another node's request, and to report
    /// the sockets of a node that died. The in-memory adapter ignores it.
    fn bind(&self, ns: NamespaceHandle) {
        let _ = ns;
    }

    /// Sends `packet` to `sid`, a socket on another node; false when no
    /// other node has it (always, for a single process).
    fn send_to(&self, sid: Sid, packet: &Encoded) -> bool {
        let _ = (sid, packet);
        false
    }

    /// Sends `packet` to `sid` on the node named `node` (a cluster's node id),
    /// even if this adapter does not know that socket yet: for senders that
    /// learnt where a socket lives from shared state that can be ahead of
    /// the membership replica (a room store's join snapshot). False when
    /// there is no such node (always, for a single process).
    fn send_to_node(&self, node: &str, sid: Sid, packet: &Encoded) -> bool {
        let _ = (node, sid, packet);
        false
    }

    /// Takes in that `sid`, a socket of the node `node`, is in `room`, as
    /// shared state (a room store's join snapshot) says, before that node's
    /// own announcement arrives: a newcomer may relay to, or broadcast at, a
    /// member it was just told of. Skipped when this adapter has seen that
    /// socket leave the room, or go, since. Nothing for a single process.
    fn learn_member(&self, node: &str, sid: Sid, room: &str) {
        let _ = (node, sid, room);
    }

    /// Asks every other node to run this namespace's `on_cluster_request`
    /// handler for `kind` with `data`; false when there is no other node
    /// (always, for a single process).
    fn request_others(&self, kind: &str, data: &str) -> bool {
        let _ = (kind, data);
        false
    }

    /// Asks the node of `sid`, a socket on another node, to disconnect it
    /// (as [`Socket::disconnect`](crate::Socket::disconnect) does); false when
    /// no other node has it.
    fn disconnect_remote(&self, sid: Sid) -> bool {
        let _ = sid;
        false
    }
}

#[derive(Default)]
struct State {
    /// Members of each room, with the order in which they joined (socket.io's
    /// rooms are insertion-ordered sets; clients see rosters in join order).
    rooms: HashMap<Room, HashMap<Sid, u64>>,
    joins: u64,
    /// The joined rooms of each connected socket.
    sockets: HashMap<Sid, Vec<Room>>,
}

/// In-memory rooms for a single process. Queries (the relay asks one per
/// envelope) share a read lock; joins and leaves take the write lock.
#[derive(Default)]
pub struct LocalAdapter {
    state: RwLock<State>,
}

impl LocalAdapter {
    pub fn new() -> Self {
        Self::default()
    }

    // Every update below leaves both maps consistent before it can panic,
    // so a poisoned lock is still good to use.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// `room` as a socket id, if it is the own-id room of a connected socket.
fn own_room(st: &State, room: &str) -> Option<Sid> {
    let sid: Sid = room.parse().ok()?;
    st.sockets.contains_key(&sid).then_some(sid)
}

impl Adapter for LocalAdapter {
    fn add_socket(&self, sid: Sid) {
        self.write().sockets.entry(sid).or_default();
    }

    fn remove_socket(&self, sid: Sid) -> Vec<Room> {
        let mut st = self.write();
        let rooms = st.sockets.remove(&sid).unwrap_or_default();
        for room in &rooms {
            if let Some(members) = st.rooms.get_mut(room) {
                members.remove(&sid);
                if members.is_empty() {
                    st.rooms.remove(room);
                }
            }
        }
        rooms
    }

    fn join(&self, sid: Sid, room: &str) -> bool {
        let mut st = self.write();
        // A socket's own-id room is virtual; no room may take a connected socket's id,
        // or joining it would capture that socket's messages.
        if !st.sockets.contains_key(&sid) || own_room(&st, room).is_some() {
            return false;
        }
        let key: Room = match st.rooms.get_key_value(room) {
            Some((k, _)) => k.clone(),
            None => Room::from(room),
        };
        st.joins += 1;
        let order = st.joins;
        let members = st.rooms.entry(key.clone()).or_default();
        if members.contains_key(&sid) {
            return false;
        }
        members.insert(sid, order);
        st.sockets.get_mut(&sid).expect("checked above").push(key);
        true
    }

    fn leave(&self, sid: Sid, room: &str) -> bool {
        let mut st = self.write();
        let Some(members) = st.rooms.get_mut(room) else {
            return false;
        };
        if members.remove(&sid).is_none() {
            return false;
        }
        if members.is_empty() {
            st.rooms.remove(room);
        }
        if let Some(rooms) = st.sockets.get_mut(&sid) {
            rooms.retain(|r| &**r != room);
        }
        true
    }

    fn rooms_of(&self, sid: Sid) -> Vec<Room> {
        let st = self.read();
        match st.sockets.get(&sid) {
            Some(rooms) => std::iter::once(Room::from(sid.as_str()))
                .chain(rooms.iter().cloned())
                .collect(),
            None => Vec::new(),
        }
    }

    fn is_member(&self, sid: Sid, room: &str) -> bool {
        let st = self.read();
        st.rooms.get(room).is_some_and(|m| m.contains_key(&sid)) || own_room(&st, room) == Some(sid)
    }

    fn share_room(&self, a: Sid, b: Sid) -> bool {
        let st = self.read();
        st.sockets.get(&a).is_some_and(|rooms| {
            rooms
                .iter()
                .any(|r| st.rooms.get(r).is_some_and(|m| m.contains_key(&b)))
        })
    }

    fn members(&self, room: &str) -> Vec<Sid> {
        let st = self.read();
        match st.rooms.get(room) {
            Some(members) => {
                let mut ordered: Vec<(u64, Sid)> =
                    members.iter().map(|(sid, order)| (*order, *sid)).collect();
                ordered.sort_unstable();
                ordered.into_iter().map(|(_, sid)| sid).collect()
            }
            None => own_room(&st, room).into_iter().collect(),
        }
    }

    fn room_len(&self, room: &str) -> usize {
        let st = self.read();
        match st.rooms.get(room) {
            Some(members) => members.len(),
            None => usize::from(own_room(&st, room).is_some()),
        }
    }

    fn rooms(&self) -> Vec<(Room, usize)> {
        self.read()
            .rooms
            .iter()
            .map(|(r, m)| (r.clone(), m.len()))
            .collect()
    }

    fn recipients(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        let st = self.read();
        let excluded = |sid: &Sid| -> bool {
            opts.except_sid == Some(*sid)
                || opts.except.iter().any(|room| {
                    &**room == sid.as_str()
                        || st.rooms.get(room).is_some_and(|m| m.contains_key(sid))
                })
        };
        if opts.rooms.is_empty() {
            return st
                .sockets
                .keys()
                .filter(|s| !excluded(s))
                .copied()
                .collect();
        }
        let mut out: Vec<Sid> = Vec::new();
        let mut seen: Option<HashSet<Sid>> = (opts.rooms.len() > 1).then(HashSet::new);
        for room in &opts.rooms {
            let members: Box<dyn Iterator<Item = Sid>> = match st.rooms.get(room) {
                Some(m) => Box::new(m.keys().copied()),
                None => Box::new(own_room(&st, room).into_iter()),
            };
            for sid in members {
                if excluded(&sid) {
                    continue;
                }
                if let Some(seen) = seen.as_mut() {
                    if !seen.insert(sid) {
                        continue;
                    }
                }
                out.push(sid);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<Sid>) -> Vec<Sid> {
        v.sort();
        v
    }

    fn opts(rooms: &[&str], except: &[&str], except_sid: Option<Sid>) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
            except: except.iter().map(|r| Room::from(*r)).collect(),
            except_sid,
        }
    }

    #[test]
    fn join_leave_and_queries() {
        let a = LocalAdapter::new();
        let (s1, s2) = (Sid::random(), Sid::random());
        a.add_socket(s1);
        a.add_socket(s2);
        assert!(a.join(s1, "r"));
        assert!(!a.join(s1, "r"), "joining twice is a no-op");
        assert!(
            !a.join(s1, s2.as_str()),
            "no room may take another socket's id"
        );
        assert!(a.join(s2, "r"));
        assert_eq!(a.room_len("r"), 2);
        assert_eq!(a.members("r"), vec![s1, s2], "join order");
        assert_eq!(
            a.rooms_of(s1),
            vec![Room::from(s1.as_str()), Room::from("r")]
        );
        assert!(a.is_member(s1, s1.as_str()), "own-id room");
        assert!(!a.is_member(s1, s2.as_str()));
        assert!(a.share_room(s1, s2) && a.share_room(s2, s1));
        assert!(a.leave(s1, "r"));
        assert!(!a.share_room(s1, s2), "own-id rooms do not count");
        assert!(!a.leave(s1, "r"));
        assert_eq!(a.members("r"), vec![s2]);
        assert_eq!(a.remove_socket(s2), vec![Room::from("r")]);
        assert_eq!(a.room_len("r"), 0);
        assert!(a.rooms().is_empty(), "empty rooms are dropped");
    }

    #[test]
    fn unknown_sockets_cannot_join() {
        let a = LocalAdapter::new();
        assert!(!a.join(Sid::random(), "r"));
        assert_eq!(a.room_len("r"), 0);
    }

    #[test]
    fn recipients_honour_rooms_and_exceptions() {
        let a = LocalAdapter::new();
        let (s1, s2, s3) = (Sid::random(), Sid::random(), Sid::random());
        for s in [s1, s2, s3] {
            a.add_socket(s);
        }
        a.join(s1, "r");
        a.join(s2, "r");
        a.join(s3, "q");
        a.join(s2, "q");
        assert_eq!(
            sorted(a.recipients(&opts(&["r"], &[], None))),
            sorted(vec![s1, s2])
        );
        assert_eq!(a.recipients(&opts(&["r"], &[], Some(s1))), vec![s2]);
        assert_eq!(
            sorted(a.recipients(&opts(&["r", "q"], &[], None))),
            sorted(vec![s1, s2, s3]),
            "no duplicates"
        );
        assert_eq!(a.recipients(&opts(&["r"], &["q"], None)), vec![s1]);
        assert_eq!(
            a.recipients(&opts(&["r"], &[s2.as_str()], None)),
            vec![s1],
            "except an own-id room"
        );
        assert_eq!(
            a.recipients(&opts(&[s3.as_str()], &[], None)),
            vec![s3],
            "to an own-id room"
        );
        assert_eq!(
            sorted(a.recipients(&opts(&[], &["r"], None))),
            vec![s3],
            "everyone except a room"
        );
        assert!(a.recipients(&opts(&["nobody"], &[], None)).is_empty());
    }
}
