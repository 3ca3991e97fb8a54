//! `ClusterAdapter`: the engine's `Adapter` for a cluster, as a full
//! replica of the membership of every socket of the cluster.
//!
//! Every node keeps, in memory, which socket of which node is in which room
//! (its own sockets, and the others' fed by the `rtcio:bus` channel). So the
//! engine's synchronous queries (`share_room`, `members`, `room_len`...) are
//! answered locally, a relay between two sockets of one node never touches
//! Redis, and a relay to a socket of another node is one publish to that
//! node's channel only. A broadcast is delivered here and published once to
//! each other node that has recipients, with the list of them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rtcio_engine::{Adapter, BroadcastOptions, Encoded, LocalAdapter, NamespaceHandle, Room, Sid};

use crate::bus::{encode, Bus, Header, Op};
use crate::node::Keys;

/// Which sockets of the replica live on other nodes.
#[derive(Default)]
struct Remote {
    node_of: HashMap<Sid, Arc<str>>,
    of_node: HashMap<Arc<str>, HashSet<Sid>>,
}

impl Remote {
    fn insert(&mut self, sid: Sid, node: &Arc<str>) {
        if let Some(old) = self.node_of.insert(sid, node.clone()) {
            if let Some(set) = self.of_node.get_mut(&old) {
                set.remove(&sid);
            }
        }
        self.of_node.entry(node.clone()).or_default().insert(sid);
    }

    fn remove(&mut self, sid: Sid) -> Option<Arc<str>> {
        let node = self.node_of.remove(&sid)?;
        if let Some(set) = self.of_node.get_mut(&node) {
            set.remove(&sid);
            if set.is_empty() {
                self.of_node.remove(&node);
            }
        }
        Some(node)
    }
}

/// How long a departure reported by another node is remembered (between
/// one and two of these): far longer than a join snapshot can take to come
/// back from the room store.
const DEPARTED_FOR: Duration = Duration::from_secs(15);

/// Departures other nodes reported lately: a socket that left a room
/// (`Some(room)`) or is gone (`None`). A join snapshot from the room store
/// can be older than the replica — the member it names may have left since,
/// and its node said so already — so a member learnt from a snapshot is
/// taken in only if no such departure was seen.
#[derive(Default)]
struct Departed {
    since: Option<Instant>,
    current: HashSet<(Sid, Option<Room>)>,
    previous: HashSet<(Sid, Option<Room>)>,
}

impl Departed {
    fn record(&mut self, sid: Sid, room: Option<Room>) {
        let now = Instant::now();
        match self.since {
            Some(since) if now.duration_since(since) < DEPARTED_FOR => {}
            _ => {
                self.previous = std::mem::take(&mut self.current);
                self.since = Some(now);
            }
        }
        self.current.insert((sid, room));
    }

    fn seen(&self, sid: Sid, room: &Room) -> bool {
        [(sid, None), (sid, Some(room.clone()))]
            .iter()
            .any(|key| self.current.contains(key) || self.previous.contains(key))
    }
}

/// The replicated adapter of one namespace.
pub struct ClusterAdapter {
    ns: String,
    node: Arc<str>,
    keys: Keys,
    bus: Bus,
    /// Every socket of the cluster in this namespace, with its rooms.
    replica: LocalAdapter,
    remote: RwLock<Remote>,
    /// Held while a local change is applied and queued, and while a snapshot
    /// is taken and queued: a snapshot is never overtaken by, nor misses, a
    /// change.
    order: Mutex<()>,
    /// Held while a departure from another node is applied and recorded,
    /// and while a member learnt from a snapshot is checked and taken in.
    departed: Mutex<Departed>,
    handle: OnceLock<NamespaceHandle>,
}

impl ClusterAdapter {
    pub(crate) fn new(ns: &str, node: Arc<str>, keys: Keys, bus: Bus) -> Self {
        ClusterAdapter {
            ns: ns.to_owned(),
            node,
            keys,
            bus,
            replica: LocalAdapter::new(),
            remote: RwLock::new(Remote::default()),
            order: Mutex::new(()),
            departed: Mutex::new(Departed::default()),
            handle: OnceLock::new(),
        }
    }

    fn order(&self) -> std::sync::MutexGuard<'_, ()> {
        self.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn departed(&self) -> std::sync::MutexGuard<'_, Departed> {
        self.departed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remote(&self) -> std::sync::RwLockReadGuard<'_, Remote> {
        self.remote.read().unwrap_or_else(|e| e.into_inner())
    }

    fn remote_mut(&self) -> std::sync::RwLockWriteGuard<'_, Remote> {
        self.remote.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The node a socket lives on, if it is not this one.
    pub fn node_of(&self, sid: Sid) -> Option<Arc<str>> {
        self.remote().node_of.get(&sid).cloned()
    }

    /// How many sockets of the cluster the replica holds, and how many of them are remote.
    pub fn counts(&self) -> (usize, usize) {
        let all = self.replica.recipients(&BroadcastOptions::default()).len();
        (all, self.remote().node_of.len())
    }

    fn field(&self, sid: Sid) -> String {
        format!("{}|{}", self.ns, sid)
    }

    /// Records a local socket's rooms in `rtcio:sockets:{node}`.
    fn write_socket(&self, sid: Sid) {
        let rooms: Vec<Room> = self.replica.rooms_of(sid).into_iter().skip(1).collect();
        let value = serde_json::json!({ "rooms": rooms.iter().map(|r| &**r).collect::<Vec<_>>() });
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.keys.sockets(&self.node))
            .arg(self.field(sid))
            .arg(value.to_string());
        self.bus.send(Op::Cmd(cmd));
    }

    /// A local socket joins (`join`) or leaves `room`: the replica first,
    /// then, if that changed anything, the other nodes and the socket's entry
    /// in Redis, all under the order lock so the announcement keeps its place.
    fn change_room(&self, sid: Sid, room: &str, join: bool) -> bool {
        let _order = self.order();
        let changed = if join {
            self.replica.join(sid, room)
        } else {
            self.replica.leave(sid, room)
        };
        if !changed {
            return false;
        }
        let (n, ns, s, r) = (
            self.node.to_string(),
            self.ns.clone(),
            sid.as_str().to_owned(),
            room.to_owned(),
        );
        self.announce(if join {
            Header::Join { n, ns, s, r }
        } else {
            Header::Leave { n, ns, s, r }
        });
        self.write_socket(sid);
        true
    }

    fn announce(&self, header: Header) {
        self.bus.publish(self.keys.bus(), encode(&header, &[]));
    }

    fn local_sids(&self) -> Vec<Sid> {
        let all = self.replica.recipients(&BroadcastOptions::default());
        let remote = self.remote();
        all.into_iter()
            .filter(|s| !remote.node_of.contains_key(s))
            .collect()
    }

    /// This node's sockets with their rooms, as a snapshot message.
    fn snapshot_header(&self) -> Header {
        let sockets = self
            .local_sids()
            .into_iter()
            .map(|sid| {
                let rooms = self.replica.rooms_of(sid);
                (
                    sid.as_str().to_owned(),
                    rooms.iter().skip(1).map(|r| r.to_string()).collect(),
                )
            })
            .collect();
        Header::Snapshot {
            n: self.node.to_string(),
            ns: self.ns.clone(),
            sockets,
        }
    }

    /// Publishes this node's snapshot to `channel` (the bus, or one node's channel).
    pub(crate) fn publish_snapshot(&self, channel: String, always: bool) {
        let _order = self.order();
        let msg = encode(&self.snapshot_header(), &[]);
        if always {
            self.bus.send_always(Op::Publish(channel, msg));
        } else {
            self.bus.publish(channel, msg);
        }
    }

    /// Re-writes this node's sockets into `rtcio:sockets:{node}` (after a reconnect).
    pub(crate) fn rewrite_sockets(&self) {
        let _order = self.order();
        for sid in self.local_sids() {
            let rooms: Vec<String> = self
                .replica
                .rooms_of(sid)
                .iter()
                .skip(1)
                .map(|r| r.to_string())
                .collect();
            let mut cmd = redis::cmd("HSET");
            cmd.arg(self.keys.sockets(&self.node))
                .arg(self.field(sid))
                .arg(serde_json::json!({ "rooms": rooms }).to_string());
            self.bus.send_always(Op::Cmd(cmd));
        }
    }

    // ---- changes from other nodes (applied by the subscriber task, in order) ----

    pub(crate) fn remote_connect(&self, node: &Arc<str>, sid: Sid) {
        if self.handle_has_local(sid) {
            return;
        }
        self.replica.add_socket(sid);
        self.remote_mut().insert(sid, node);
    }

    pub(crate) fn remote_disconnect(&self, node: &str, sid: Sid) {
        let mut departed = self.departed();
        departed.record(sid, None);
        let mut remote = self.remote_mut();
        if remote.node_of.get(&sid).is_some_and(|n| &**n == node) {
            remote.remove(sid);
            drop(remote);
            self.replica.remove_socket(sid);
        }
    }

    pub(crate) fn remote_join(&self, node: &Arc<str>, sid: Sid, room: &str) {
        if !self.is_remote_of(node, sid) {
            if self.handle_has_local(sid) {
                return;
            }
            self.remote_connect(node, sid);
        }
        self.replica.join(sid, room);
    }

    pub(crate) fn remote_leave(&self, node: &str, sid: Sid, room: &str) {
        let mut departed = self.departed();
        departed.record(sid, Some(Room::from(room)));
        if self.is_remote_of(node, sid) {
            self.replica.leave(sid, room);
        }
    }

    /// Replaces what the replica holds of `node` by `sockets`.
    pub(crate) fn remote_snapshot(&self, node: &Arc<str>, sockets: Vec<(Sid, Vec<String>)>) {
        // Only the sockets the snapshot no longer has are departures (noted
        // before they leave the replica, so no snapshot of the room store
        // can bring one back in between).
        let mut gone = self.sids_of(node);
        for (sid, _) in &sockets {
            gone.remove(sid);
        }
        self.record_gone(gone);
        self.forget_node(node);
        for (sid, rooms) in sockets {
            if self.handle_has_local(sid) {
                continue;
            }
            self.remote_connect(node, sid);
            for room in rooms {
                self.replica.join(sid, &room);
            }
        }
    }

    /// Forgets every socket of `node` (gone: it died or said goodbye);
    /// returns them with the rooms they were in.
    pub(crate) fn drop_node(&self, node: &str) -> Vec<(Sid, Vec<Room>)> {
        self.record_gone(self.sids_of(node));
        self.forget_node(node)
    }

    fn sids_of(&self, node: &str) -> HashSet<Sid> {
        self.remote().of_node.get(node).cloned().unwrap_or_default()
    }

    /// Remembers sockets of another node as gone (see [`Departed`]).
    fn record_gone(&self, sids: impl IntoIterator<Item = Sid>) {
        let mut departed = self.departed();
        for sid in sids {
            departed.record(sid, None);
        }
    }

    /// Removes every socket of `node` from the replica; returns them with
    /// the rooms they were in.
    fn forget_node(&self, node: &str) -> Vec<(Sid, Vec<Room>)> {
        let sids: Vec<Sid> = {
            let mut remote = self.remote_mut();
            let sids: Vec<Sid> = remote
                .of_node
                .remove(node)
                .map(|s| s.into_iter().collect())
                .unwrap_or_default();
            for sid in &sids {
                remote.node_of.remove(sid);
            }
            sids
        };
        sids.into_iter()
            .map(|sid| (sid, self.replica.remove_socket(sid)))
            .collect()
    }

    /// The nodes that have sockets in this namespace's replica.
    pub(crate) fn nodes(&self) -> Vec<Arc<str>> {
        self.remote().of_node.keys().cloned().collect()
    }

    /// Delivers a packet from another node to local sockets.
    pub(crate) fn deliver(&self, sids: &[Sid], packet: &Encoded) {
        if let Some(handle) = self.handle.get() {
            handle.deliver(sids, packet);
        }
    }

    pub(crate) fn run_request(&self, kind: &str, data: &str) {
        if let Some(handle) = self.handle.get() {
            if !handle.request(kind, data) {
                tracing::debug!(kind, "a cluster request nobody handles was skipped");
            }
        }
    }

    pub(crate) fn kick_local(&self, sid: Sid) {
        if let Some(handle) = self.handle.get() {
            handle.disconnect(sid);
        }
    }

    /// Tells the namespace that the sockets of a dead node are gone.
    pub(crate) fn report_departures(&self, gone: Vec<(Sid, Vec<Room>)>) {
        if let Some(handle) = self.handle.get() {
            for (sid, rooms) in gone {
                handle.remote_departure(sid, rooms);
            }
        }
    }

    fn is_remote_of(&self, node: &str, sid: Sid) -> bool {
        self.remote()
            .node_of
            .get(&sid)
            .is_some_and(|n| &**n == node)
    }

    fn handle_has_local(&self, sid: Sid) -> bool {
        !self.replica.rooms_of(sid).is_empty() && !self.remote().node_of.contains_key(&sid)
    }

    /// Sends `packet` to socket `sid` on `node`, whatever the replica says
    /// (recovery: a socket parked there, or just moved there).
    pub fn deliver_to(&self, node: &str, sid: Sid, packet: &Encoded) {
        self.publish_packet(node, vec![sid.as_str().to_owned()], packet);
    }

    fn publish_packet(&self, node: &str, sids: Vec<String>, packet: &Encoded) {
        let header = Header::Deliver {
            ns: self.ns.clone(),
            s: sids,
            l: packet.text.len(),
            a: packet.attachments.iter().map(|a| a.len()).collect(),
        };
        let mut body: Vec<&[u8]> = Vec::with_capacity(1 + packet.attachments.len());
        body.push(&packet.text);
        body.extend(packet.attachments.iter().map(|a| &a[..]));
        self.bus.publish(self.keys.to(node), encode(&header, &body));
    }
}

/// A packet from a `Deliver` body.
pub(crate) fn packet_from(body: &[u8], text_len: usize, attachments: &[usize]) -> Option<Encoded> {
    let body = bytes::Bytes::copy_from_slice(body);
    let total: usize = text_len + attachments.iter().sum::<usize>();
    if total != body.len() {
        return None;
    }
    let text = body.slice(..text_len);
    let mut at = text_len;
    let attachments = attachments
        .iter()
        .map(|&len| {
            let part = body.slice(at..at + len);
            at += len;
            part
        })
        .collect();
    Some(Encoded { text, attachments })
}

impl Adapter for ClusterAdapter {
    fn add_socket(&self, sid: Sid) {
        let _order = self.order();
        // A socket recovered here from another node takes its id back.
        if self.remote_mut().remove(sid).is_some() {
            self.replica.remove_socket(sid);
        }
        self.replica.add_socket(sid);
        self.announce(Header::Connect {
            n: self.node.to_string(),
            ns: self.ns.clone(),
            s: sid.as_str().to_owned(),
        });
        self.write_socket(sid);
    }

    fn remove_socket(&self, sid: Sid) -> Vec<Room> {
        let _order = self.order();
        let rooms = self.replica.remove_socket(sid);
        self.announce(Header::Disconnect {
            n: self.node.to_string(),
            ns: self.ns.clone(),
            s: sid.as_str().to_owned(),
        });
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.keys.sockets(&self.node)).arg(self.field(sid));
        self.bus.send(Op::Cmd(cmd));
        rooms
    }

    fn join(&self, sid: Sid, room: &str) -> bool {
        self.change_room(sid, room, true)
    }

    fn leave(&self, sid: Sid, room: &str) -> bool {
        self.change_room(sid, room, false)
    }

    fn rooms_of(&self, sid: Sid) -> Vec<Room> {
        self.replica.rooms_of(sid)
    }

    fn is_member(&self, sid: Sid, room: &str) -> bool {
        self.replica.is_member(sid, room)
    }

    fn share_room(&self, a: Sid, b: Sid) -> bool {
        self.replica.share_room(a, b)
    }

    fn members(&self, room: &str) -> Vec<Sid> {
        self.replica.members(room)
    }

    fn room_len(&self, room: &str) -> usize {
        self.replica.room_len(room)
    }

    fn rooms(&self) -> Vec<(Room, usize)> {
        self.replica.rooms()
    }

    fn recipients(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        let mut all = self.replica.recipients(opts);
        let remote = self.remote();
        if !remote.node_of.is_empty() {
            all.retain(|s| !remote.node_of.contains_key(s));
        }
        all
    }

    fn broadcast(&self, opts: &BroadcastOptions, packet: &Encoded, deliver: &mut dyn FnMut(Sid)) {
        let all = self.replica.recipients(opts);
        let mut by_node: HashMap<Arc<str>, Vec<String>> = HashMap::new();
        {
            let remote = self.remote();
            for sid in all {
                match remote.node_of.get(&sid) {
                    Some(node) => by_node
                        .entry(node.clone())
                        .or_default()
                        .push(sid.as_str().to_owned()),
                    None => deliver(sid),
                }
            }
        }
        for (node, sids) in by_node {
            self.publish_packet(&node, sids, packet);
        }
    }

    fn bind(&self, ns: NamespaceHandle) {
        let _ = self.handle.set(ns);
    }

    fn send_to(&self, sid: Sid, packet: &Encoded) -> bool {
        let Some(node) = self.node_of(sid) else {
            return false;
        };
        self.publish_packet(&node, vec![sid.as_str().to_owned()], packet);
        true
    }

    fn request_others(&self, kind: &str, data: &str) -> bool {
        self.announce(Header::Request {
            n: self.node.to_string(),
            ns: self.ns.clone(),
            kind: kind.to_owned(),
            data: data.to_owned(),
        });
        true
    }

    fn send_to_node(&self, node: &str, sid: Sid, packet: &Encoded) -> bool {
        if node == &*self.node {
            return false;
        }
        self.publish_packet(node, vec![sid.as_str().to_owned()], packet);
        true
    }

    fn learn_member(&self, node: &str, sid: Sid, room: &str) {
        if node == &*self.node || self.replica.is_member(sid, room) {
            return;
        }
        if self.node_of(sid).is_some_and(|known| &*known != node) {
            // The replica has it on another node: newer than the store's word.
            return;
        }
        let departed = self.departed();
        if departed.seen(sid, &Room::from(room)) {
            return;
        }
        self.remote_join(&Arc::from(node), sid, room);
    }

    fn disconnect_remote(&self, sid: Sid) -> bool {
        let Some(node) = self.node_of(sid) else {
            return false;
        };
        let header = Header::Kick {
            n: self.node.to_string(),
            ns: self.ns.clone(),
            s: sid.as_str().to_owned(),
        };
        self.bus.publish(self.keys.to(&node), encode(&header, &[]));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::decode;
    use tokio::sync::mpsc::UnboundedReceiver;

    fn adapter() -> (ClusterAdapter, UnboundedReceiver<Op>) {
        let (bus, rx) = Bus::detached(true);
        let keys = Keys {
            prefix: "rtcio".into(),
        };
        (ClusterAdapter::new("/", "me".into(), keys, bus), rx)
    }

    /// The publishes queued so far: (channel, header, body).
    fn published(rx: &mut UnboundedReceiver<Op>) -> Vec<(String, Header, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(op) = rx.try_recv() {
            if let Op::Publish(channel, payload) = op {
                let (header, body) = decode(&payload).unwrap();
                out.push((channel, header, body.to_vec()));
            }
        }
        out
    }

    fn packet(text: &'static str) -> Encoded {
        Encoded::from_text(bytes::Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn local_changes_are_applied_at_once_and_announced_in_order() {
        let (a, mut rx) = adapter();
        let s = Sid::random();
        a.add_socket(s);
        assert!(a.join(s, "r"));
        assert!(
            !a.join(s, "r"),
            "a second join changes nothing and says nothing"
        );
        assert!(a.leave(s, "r"));
        a.remove_socket(s);
        let kinds: Vec<&str> = published(&mut rx)
            .iter()
            .map(|(channel, h, _)| {
                assert_eq!(channel, "rtcio:bus");
                match h {
                    Header::Connect { .. } => "connect",
                    Header::Join { .. } => "join",
                    Header::Leave { .. } => "leave",
                    Header::Disconnect { .. } => "disconnect",
                    _ => "other",
                }
            })
            .collect();
        assert_eq!(kinds, ["connect", "join", "leave", "disconnect"]);
    }

    #[test]
    fn relays_go_to_the_target_node_only_and_broadcasts_once_per_node() {
        let (a, mut rx) = adapter();
        let (n2, n3): (Arc<str>, Arc<str>) = ("n2".into(), "n3".into());
        let (local, b, c, d) = (Sid::random(), Sid::random(), Sid::random(), Sid::random());
        a.add_socket(local);
        a.join(local, "r");
        a.remote_join(&n2, b, "r");
        a.remote_join(&n2, c, "r");
        a.remote_join(&n3, d, "r");
        published(&mut rx);

        assert!(a.share_room(local, b), "scope checked on the replica");
        assert_eq!(
            a.members("r"),
            vec![local, b, c, d],
            "join order across nodes"
        );
        assert_eq!(a.recipients(&BroadcastOptions::default()), vec![local]);

        assert!(a.send_to(b, &packet("42[\"x\"]")));
        let sent = published(&mut rx);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "rtcio:to:n2");
        assert!(matches!(&sent[0].1, Header::Deliver { s, .. } if *s == vec![b.to_string()]));
        assert_eq!(sent[0].2, b"42[\"x\"]");
        assert!(!a.send_to(Sid::random(), &packet("42[]")), "nobody has it");
        assert!(
            !a.send_to(local, &packet("42[]")),
            "local sockets are not sent through Redis"
        );
        let unknown = Sid::random();
        assert!(
            a.send_to_node("n3", unknown, &packet("42[\"z\"]")),
            "ahead of the replica"
        );
        assert_eq!(published(&mut rx)[0].0, "rtcio:to:n3");
        assert!(
            !a.send_to_node("me", unknown, &packet("42[]")),
            "not through Redis to itself"
        );

        let mut here = Vec::new();
        let opts = BroadcastOptions {
            rooms: vec![Room::from("r")],
            except_sid: Some(c),
            ..Default::default()
        };
        a.broadcast(&opts, &packet("42[\"y\"]"), &mut |sid| here.push(sid));
        assert_eq!(here, vec![local]);
        let mut sent: Vec<(String, Vec<String>)> = published(&mut rx)
            .into_iter()
            .map(|(channel, h, _)| match h {
                Header::Deliver { s, .. } => (channel, s),
                other => panic!("{other:?}"),
            })
            .collect();
        sent.sort();
        assert_eq!(
            sent,
            vec![
                ("rtcio:to:n2".to_owned(), vec![b.to_string()]),
                ("rtcio:to:n3".to_owned(), vec![d.to_string()]),
            ]
        );
    }

    #[test]
    fn snapshots_replace_and_dead_nodes_are_dropped_with_their_rooms() {
        let (a, _rx) = adapter();
        let n2: Arc<str> = "n2".into();
        let (b, c) = (Sid::random(), Sid::random());
        a.remote_join(&n2, b, "r");
        a.remote_join(&n2, c, "r");
        a.remote_snapshot(&n2, vec![(b, vec!["q".into()])]);
        assert_eq!(a.members("r"), Vec::<Sid>::new());
        assert_eq!(a.members("q"), vec![b]);
        assert!(a.rooms_of(c).is_empty(), "not in the snapshot: gone");
        a.remote_join(&n2, c, "q");
        let mut gone = a.drop_node("n2");
        gone.sort_by_key(|(sid, _)| *sid);
        let mut want = vec![(b, vec![Room::from("q")]), (c, vec![Room::from("q")])];
        want.sort_by_key(|(sid, _)| *sid);
        assert_eq!(gone, want);
        assert_eq!(a.room_len("q"), 0);
        assert!(a.nodes().is_empty());
    }

    #[test]
    fn a_remote_message_never_overrides_a_local_socket() {
        let (a, mut rx) = adapter();
        let s = Sid::random();
        a.add_socket(s);
        a.remote_join(&Arc::from("n2"), s, "r");
        assert!(a.node_of(s).is_none());
        assert!(!a.is_member(s, "r"));
        published(&mut rx);
        // Recovered here from another node: the id becomes local.
        let t = Sid::random();
        a.remote_join(&Arc::from("n2"), t, "r");
        a.add_socket(t);
        assert!(a.node_of(t).is_none());
        assert_eq!(a.recipients(&BroadcastOptions::default()).len(), 2);
    }

    #[test]
    fn a_member_from_a_join_snapshot_is_taken_in_unless_its_departure_was_seen() {
        let (a, _rx) = adapter();
        let n2: Arc<str> = "n2".into();
        let local = Sid::random();
        a.add_socket(local);
        a.join(local, "r");

        // Named by the snapshot before its node's own join arrives.
        let early = Sid::random();
        a.learn_member("n2", early, "r");
        assert!(
            a.share_room(local, early),
            "a relay to it passes the scope check"
        );
        assert_eq!(a.node_of(early).as_deref(), Some("n2"));
        a.remote_join(&n2, early, "r");
        assert_eq!(
            a.members("r"),
            vec![local, early],
            "its join changes nothing"
        );
        a.remote_leave("n2", early, "r");
        assert!(!a.share_room(local, early), "its leave still counts");

        // Its join and leave both arrived before the (older) snapshot.
        let left = Sid::random();
        a.remote_join(&n2, left, "r");
        a.remote_leave("n2", left, "r");
        a.learn_member("n2", left, "r");
        assert!(
            !a.is_member(left, "r"),
            "a stale snapshot does not bring it back"
        );
        // Gone from the cluster, or its node dead: not brought back either.
        let gone = Sid::random();
        a.remote_join(&n2, gone, "q");
        a.remote_disconnect("n2", gone);
        a.learn_member("n2", gone, "r");
        assert!(a.rooms_of(gone).is_empty());
        let dead = Sid::random();
        a.remote_join(&n2, dead, "q");
        a.drop_node("n2");
        a.learn_member("n2", dead, "r");
        assert!(a.rooms_of(dead).is_empty());

        // A node's snapshot (its resync) is a departure only of the sockets
        // it no longer lists.
        let (kept, dropped) = (Sid::random(), Sid::random());
        let n4: Arc<str> = "n4".into();
        a.remote_join(&n4, kept, "q");
        a.remote_join(&n4, dropped, "q");
        a.remote_snapshot(&n4, vec![(kept, vec!["q".into()])]);
        a.learn_member("n4", kept, "r");
        a.learn_member("n4", dropped, "r");
        assert!(a.is_member(kept, "r"), "still on its node: learnt");
        assert!(
            !a.is_member(dropped, "r"),
            "left with the snapshot: not brought back"
        );

        // Never about local sockets, nor against a newer replica.
        let mine = Sid::random();
        a.add_socket(mine);
        a.learn_member("me", mine, "r");
        a.learn_member("n2", mine, "r");
        assert!(!a.is_member(mine, "r"));
        let moved = Sid::random();
        a.remote_join(&Arc::from("n3"), moved, "q");
        a.learn_member("n2", moved, "r");
        assert!(!a.is_member(moved, "r"));
        assert_eq!(a.node_of(moved).as_deref(), Some("n3"));
    }

    #[test]
    fn departures_are_remembered_for_one_to_two_periods() {
        let mut d = Departed::default();
        let (s, room) = (Sid::random(), Room::from("r"));
        d.record(s, Some(room.clone()));
        assert!(d.seen(s, &room));
        assert!(!d.seen(s, &Room::from("q")), "another room");
        // One period later the next record moves it to the previous generation...
        d.since = Some(Instant::now() - DEPARTED_FOR);
        d.record(Sid::random(), None);
        assert!(d.seen(s, &room));
        // ...and one more forgets it.
        d.since = Some(Instant::now() - DEPARTED_FOR);
        d.record(Sid::random(), None);
        assert!(!d.seen(s, &room));
        let g = Sid::random();
        d.record(g, None);
        assert!(d.seen(g, &room), "gone: no room has it");
    }

    #[test]
    fn packets_cross_with_their_attachments_untouched() {
        let body = b"451-[\"b\",{\"_placeholder\":true,\"num\":0}]\x00\x01\x02";
        let p = packet_from(body, body.len() - 3, &[3]).unwrap();
        assert_eq!(&p.text[..], &body[..body.len() - 3]);
        assert_eq!(
            p.attachments,
            vec![bytes::Bytes::from_static(b"\x00\x01\x02")]
        );
        assert!(packet_from(body, 4, &[1]).is_none(), "lengths must add up");
    }
}
