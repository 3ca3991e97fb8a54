//! Recovery sessions ([`crate::sessions`]) on this cluster's bus: session
//! messages travel as `session` custom messages on the node channels (and on
//! the bus for the ones every node hears), packets forwarded to a socket that
//! moved as the bus's ordinary deliveries, and a dead node's sockets count as
//! away from the moment its death is noticed.

use std::sync::{Arc, Weak};

use rtcio_engine::{Adapter, Encoded, Recovery, Sid};

use crate::sessions::{SessionBus, Sessions};
use crate::Cluster;

/// The custom message kind session messages travel as.
const KIND: &str = "session";

struct ClusterBus {
    cluster: Cluster,
}

impl SessionBus for ClusterBus {
    fn send(&self, node: &str, message: Vec<u8>) {
        self.cluster
            .send_custom(Some(node), KIND, serde_json::Value::Null, &message);
    }

    fn broadcast(&self, message: Vec<u8>) {
        self.cluster
            .send_custom(None, KIND, serde_json::Value::Null, &message);
    }

    fn deliver(&self, node: &str, ns: &str, sid: Sid, packet: &Encoded) {
        self.cluster.adapter(ns).deliver_to(node, sid, packet);
    }

    fn routes(&self, ns: &str, sid: Sid) -> bool {
        !self.cluster.adapter(ns).rooms_of(sid).is_empty()
    }
}

/// This node's recovery sessions, kept in the cluster's Redis and reachable
/// from every node; use `sessions.store(ns)` as each namespace's recovery store.
pub fn sessions(cluster: &Cluster, limits: Recovery) -> Arc<Sessions> {
    let sessions = Sessions::new(cluster.commands(), cluster.prefix(), cluster.node(), limits);
    sessions.set_bus(Arc::new(ClusterBus {
        cluster: cluster.clone(),
    }));
    // The cluster's handler keeps the sessions for as long as the server runs.
    let kept = sessions.clone();
    cluster.on_custom(KIND, move |_from, _data, body| kept.receive(body));
    // A Redis that restarted empty gets the live sockets' records back.
    let weak: Weak<Sessions> = Arc::downgrade(&sessions);
    cluster.on_reconnect(move || {
        if let Some(sessions) = weak.upgrade() {
            sessions.resync();
        }
        async {}
    });
    let weak: Weak<Sessions> = Arc::downgrade(&sessions);
    cluster.on_node_dead(move |node| {
        if let Some(sessions) = weak.upgrade() {
            sessions.node_dead(node);
        }
    });
    sessions
}
