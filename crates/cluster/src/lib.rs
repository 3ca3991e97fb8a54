//! rtcio-server across several processes, on Redis.
//!
//! Nothing here is on the path of a single-process server: the binary uses
//! this crate only when `--redis-url` is given.
//!
//! - [`node`]: the node id and the Redis key names.
//! - [`bus`]: the one publisher connection (everything a node sends, in
//!   order) and the message format.
//! - [`adapter`]: [`ClusterAdapter`], the engine adapter as a full replica of
//!   the cluster's membership.
//! - [`liveness`]: heartbeats, dead-node detection and cleanup.
//!
//! [`Cluster::start`] connects lazily: the server starts even while Redis is
//! down, serves its own sockets, answers `/ready` 503 (see [`Cluster::ping`])
//! and joins the cluster when Redis is reachable.

pub mod adapter;
pub mod bus;
pub mod connect;
pub mod liveness;
pub mod node;
pub mod recovery;
pub mod room_store;
pub mod sessions;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

pub use adapter::ClusterAdapter;
pub use bus::{Bus, Header, Op};
pub use node::{Keys, NodeId};
pub use room_store::RedisRoomStore;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type ReconnectHook = Arc<dyn Fn() -> BoxFuture + Send + Sync>;
type NodeHook = Arc<dyn Fn(&str) + Send + Sync>;
type CustomHook = Arc<dyn Fn(&str, serde_json::Value, &[u8]) + Send + Sync>;

/// Cluster settings.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Prefix of every key and channel (`rtcio`).
    pub prefix: String,
    /// How often a node refreshes its liveness key and checks the others'.
    pub heartbeat: Duration,
    /// How long a liveness key lives without a refresh: a node whose key is
    /// gone is dead (so it is noticed within `ttl` + `heartbeat`).
    pub ttl: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            prefix: "rtcio".into(),
            heartbeat: Duration::from_secs(1),
            ttl: Duration::from_secs(5),
        }
    }
}

/// How long `rtcio:leaving:{node}` outlives a node's goodbye (so that a
/// survivor whose subscriber lags reads the goodbye before it may take the
/// missing liveness key for a death).
const LEAVING_AFTER_GOODBYE: Duration = Duration::from_secs(10);

/// A node's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) node: NodeId,
    pub(crate) keys: Keys,
    pub(crate) opts: ClusterOptions,
    pub(crate) commands: ConnectionManager,
    pub(crate) bus: Bus,
    pub(crate) up: Arc<AtomicBool>,
    /// Since when the subscriber connection has been up (liveness checks
    /// wait for `ttl` after a reconnect, so a Redis restart does not make
    /// every other node look dead).
    pub(crate) up_since: Mutex<Option<Instant>>,
    pub(crate) adapters: RwLock<HashMap<String, Arc<ClusterAdapter>>>,
    /// Nodes declared dead (so the departure is reported once).
    pub(crate) dead: Mutex<HashSet<String>>,
    /// Nodes that announced they are stopping, with when their goodbye is
    /// due: not declared dead before then.
    pub(crate) leaving: Mutex<HashMap<String, Instant>>,
    /// Held while a heartbeat is on its way; the goodbye takes it for good
    /// (no heartbeat re-sets the liveness key after the goodbye removed it).
    pub(crate) beating: tokio::sync::Mutex<bool>,
    reconnect_hooks: RwLock<Vec<ReconnectHook>>,
    pub(crate) dead_hooks: RwLock<Vec<NodeHook>>,
    custom: RwLock<HashMap<String, CustomHook>>,
    client: redis::Client,
}

impl Cluster {
    /// Joins the cluster on the Redis at `url` (`redis://[:password@]host:port[/db]`).
    /// Returns at once: the connection is made, and re-made, in the
    /// background. Fails only on a malformed URL; the error never holds it.
    pub fn start(url: &str, opts: ClusterOptions) -> Result<Cluster, String> {
        let client = connect::client(url).map_err(|e| {
            format!(
                "the Redis URL is not valid ({:?}); expected redis://[:password@]host:port[/db] or unix:///path/to/redis.sock",
                e.kind()
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot set up the Redis connection ({:?})", e.kind()))?;
        let up = Arc::new(AtomicBool::new(false));
        let bus = Bus::start(commands.clone(), up.clone());
        let node = NodeId::random();
        let shared = Arc::new(Shared {
            keys: Keys {
                prefix: opts.prefix.clone(),
            },
            node,
            opts,
            commands,
            bus,
            up,
            up_since: Mutex::new(None),
            adapters: RwLock::new(HashMap::new()),
            dead: Mutex::new(HashSet::new()),
            leaving: Mutex::new(HashMap::new()),
            beating: tokio::sync::Mutex::new(true),
            reconnect_hooks: RwLock::new(Vec::new()),
            dead_hooks: RwLock::new(Vec::new()),
            custom: RwLock::new(HashMap::new()),
            client,
        });
        tokio::spawn(subscriber(Arc::downgrade(&shared)));
        tokio::spawn(liveness::run(Arc::downgrade(&shared)));
        Ok(Cluster { shared })
    }

    /// [`start`](Self::start), then waits up to `wait` for the first connection.
    pub async fn connect(
        url: &str,
        opts: ClusterOptions,
        wait: Duration,
    ) -> Result<Cluster, String> {
        let cluster = Cluster::start(url, opts)?;
        let deadline = Instant::now() + wait;
        while !cluster.is_up() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(cluster)
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        self.shared.node.as_str()
    }

    /// The key prefix (`rtcio`).
    pub fn prefix(&self) -> &str {
        &self.shared.keys.prefix
    }

    pub fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// A connection for commands (shared, multiplexed, reconnecting).
    pub fn commands(&self) -> ConnectionManager {
        self.shared.commands.clone()
    }

    /// The publisher: commands and publishes sent in order with this node's others.
    pub fn bus(&self) -> &Bus {
        &self.shared.bus
    }

    /// Whether Redis is reachable (the subscriber connection is up).
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Acquire)
    }

    /// The readiness check: Ok while Redis is reachable and answers PING.
    pub async fn ping(&self) -> Result<(), String> {
        if !self.is_up() {
            return Err("not connected to Redis".into());
        }
        let mut conn = self.commands();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| format!("Redis does not answer ({:?})", e.kind()))
    }

    /// The adapter of namespace `ns` (one per namespace, created on first use).
    pub fn adapter(&self, ns: &str) -> Arc<ClusterAdapter> {
        let mut adapters = self
            .shared
            .adapters
            .write()
            .unwrap_or_else(|e| e.into_inner());
        adapters
            .entry(ns.to_owned())
            .or_insert_with(|| {
                Arc::new(ClusterAdapter::new(
                    ns,
                    self.shared.node.as_str().into(),
                    self.shared.keys.clone(),
                    self.shared.bus.clone(),
                ))
            })
            .clone()
    }

    /// Runs `f` each time the connection to Redis is (re)made, after this
    /// node re-wrote its sockets and published its snapshot: for state kept
    /// in Redis that must be re-written after a Redis restart.
    pub fn on_reconnect<F, Fut>(&self, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared
            .reconnect_hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(move || Box::pin(f())));
    }

    /// Runs `f(node)` on every node when another node is found dead (after
    /// its sockets were dropped from the replica and reported).
    pub fn on_node_dead<F>(&self, f: F)
    where
        F: Fn(&str) + Send + Sync + 'static,
    {
        self.shared
            .dead_hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(f));
    }

    /// Handles messages of `kind` sent with [`send_custom`](Self::send_custom):
    /// `f(from_node, data, body)`, run in arrival order on the subscriber task
    /// (so it must not block).
    pub fn on_custom<F>(&self, kind: &str, f: F)
    where
        F: Fn(&str, serde_json::Value, &[u8]) + Send + Sync + 'static,
    {
        self.shared
            .custom
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind.to_owned(), Arc::new(f));
    }

    /// Sends a message of `kind` to `node` (`None`: to every other node),
    /// in order with everything else this node sends.
    pub fn send_custom(
        &self,
        node: Option<&str>,
        kind: &str,
        data: serde_json::Value,
        body: &[u8],
    ) {
        let header = Header::Custom {
            n: self.node().to_owned(),
            kind: kind.to_owned(),
            data,
        };
        let channel = match node {
            Some(node) => self.shared.keys.to(node),
            None => self.shared.keys.bus(),
        };
        self.shared
            .bus
            .publish(channel, bus::encode(&header, &[body]));
    }

    /// The nodes this one knows to have sockets.
    pub fn known_nodes(&self) -> Vec<String> {
        self.shared.known_nodes().into_iter().collect()
    }

    /// Tells the others this node is stopping and will say goodbye within
    /// `within` (call it before closing the sockets): meanwhile they do not
    /// take a late liveness refresh for a death.
    pub async fn leaving(&self, within: Duration) {
        let s = &self.shared;
        let ms = within.as_millis().min(u64::MAX as u128) as u64;
        // In Redis too, straight on the command connection: a survivor's
        // liveness check reads Redis, and may do so before its subscriber
        // has read the announcement (or after it lost it).
        let mut conn = s.commands.clone();
        let mark = redis::cmd("SET")
            .arg(s.keys.leaving(s.node.as_str()))
            .arg(1)
            .arg("PX")
            .arg(ms.max(1))
            .clone();
        let set = mark.query_async::<()>(&mut conn);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(1), set).await {
            tracing::debug!(kind = ?e.kind(), "could not mark this node as leaving");
        }
        s.bus.send_always(Op::Publish(
            s.keys.bus(),
            bus::encode(
                &Header::Leaving {
                    n: s.node.as_str().to_owned(),
                    ms,
                },
                &[],
            ),
        ));
    }

    /// Leaves the cluster cleanly (after the sockets were closed, so their
    /// departures were announced): removes this node's keys and tells the
    /// others. Waits at most `wait` for Redis.
    pub async fn goodbye(&self, wait: Duration) {
        let s = &self.shared;
        let me = s.node.as_str();
        if let Ok(mut beating) = tokio::time::timeout(wait, s.beating.lock()).await {
            *beating = false;
        }
        for cmd in [
            redis::cmd("DEL").arg(s.keys.node(me)).clone(),
            redis::cmd("DEL").arg(s.keys.sockets(me)).clone(),
            redis::cmd("SREM").arg(s.keys.nodes()).arg(me).clone(),
            // Kept a little for the others to read the goodbye first.
            redis::cmd("PEXPIRE")
                .arg(s.keys.leaving(me))
                .arg(LEAVING_AFTER_GOODBYE.as_millis() as u64)
                .clone(),
        ] {
            s.bus.send_always(Op::Cmd(cmd));
        }
        s.bus.send_always(Op::Publish(
            s.keys.bus(),
            bus::encode(&Header::Goodbye { n: me.to_owned() }, &[]),
        ));
        let _ = tokio::time::timeout(wait, s.bus.flush()).await;
    }
}

impl Shared {
    pub(crate) fn adapters(&self) -> Vec<Arc<ClusterAdapter>> {
        self.adapters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn adapter(&self, ns: &str) -> Option<Arc<ClusterAdapter>> {
        self.adapters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(ns)
            .cloned()
    }

    pub(crate) fn known_nodes(&self) -> HashSet<String> {
        self.adapters()
            .iter()
            .flat_map(|a| a.nodes())
            .map(|n| n.to_string())
            .collect()
    }

    /// Whether the command connection answers PING (a few tries, as it
    /// reconnects after a failure).
    async fn commands_ready(&self) -> bool {
        for _ in 0..5 {
            let mut conn = self.commands.clone();
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<()>(&mut conn);
            if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(1), ping).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// After a (re)connect: re-writes this node's state into Redis, publishes
    /// its snapshots and asks the others for theirs.
    fn resync(&self) {
        let me = self.node.as_str();
        let bus = &self.bus;
        bus.send_always(Op::Cmd(
            redis::cmd("DEL").arg(self.keys.sockets(me)).clone(),
        ));
        liveness::heartbeat_ops(self, true);
        for adapter in self.adapters() {
            adapter.rewrite_sockets();
            adapter.publish_snapshot(self.keys.bus(), true);
        }
        bus.send_always(Op::Publish(
            self.keys.bus(),
            bus::encode(&Header::Hello { n: me.to_owned() }, &[]),
        ));
        let hooks = self
            .reconnect_hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for hook in hooks {
            tokio::spawn(hook());
        }
    }

    /// A message from the subscriber connection, in arrival order.
    fn handle(&self, channel: &str, payload: &[u8]) {
        let Some((header, body)) = bus::decode(payload) else {
            tracing::debug!(channel, "an unreadable cluster message was skipped");
            return;
        };
        let me = self.node.as_str();
        let from_bus = channel == self.keys.bus();
        match header {
            Header::Connect { n, ns, s } => {
                if let (Some(a), Ok(sid)) = (self.membership_of(&n, &ns, me), s.parse()) {
                    a.remote_connect(&n.as_str().into(), sid);
                }
            }
            Header::Disconnect { n, ns, s } => {
                if let (Some(a), Ok(sid)) = (self.membership_of(&n, &ns, me), s.parse()) {
                    a.remote_disconnect(&n, sid);
                }
            }
            Header::Join { n, ns, s, r } => {
                if let (Some(a), Ok(sid)) = (self.membership_of(&n, &ns, me), s.parse()) {
                    a.remote_join(&n.as_str().into(), sid, &r);
                }
            }
            Header::Leave { n, ns, s, r } => {
                if let (Some(a), Ok(sid)) = (self.membership_of(&n, &ns, me), s.parse()) {
                    a.remote_leave(&n, sid, &r);
                }
            }
            Header::Snapshot { n, ns, sockets } => {
                if let Some(a) = self.membership_of(&n, &ns, me) {
                    let sockets = sockets
                        .into_iter()
                        .filter_map(|(s, rooms)| Some((s.parse().ok()?, rooms)))
                        .collect();
                    a.remote_snapshot(&n.as_str().into(), sockets);
                }
            }
            Header::Hello { n } => {
                if n != me {
                    self.alive(&n);
                    for adapter in self.adapters() {
                        adapter.publish_snapshot(self.keys.to(&n), false);
                    }
                }
            }
            Header::Leaving { n, ms } => {
                if n != me {
                    let due = Instant::now() + Duration::from_millis(ms);
                    self.leaving
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(n, due);
                }
            }
            Header::Goodbye { n } => {
                if n != me {
                    self.leaving
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&n);
                    for adapter in self.adapters() {
                        // Sockets whose own departure did not arrive (a full
                        // queue): reported now, as for a dead node.
                        let left = adapter.drop_node(&n);
                        if !left.is_empty() {
                            adapter.report_departures(left);
                        }
                    }
                }
            }
            Header::Deliver { ns, s, l, a } => {
                let (Some(adapter), Some(packet)) =
                    (self.adapter(&ns), adapter::packet_from(body, l, &a))
                else {
                    return;
                };
                let sids: Vec<_> = s.iter().filter_map(|s| s.parse().ok()).collect();
                adapter.deliver(&sids, &packet);
            }
            Header::Request { n, ns, kind, data } => {
                if let Some(a) = self.membership_of(&n, &ns, me) {
                    a.run_request(&kind, &data);
                }
            }
            Header::Kick { ns, s, .. } => {
                if let (Some(adapter), Ok(sid)) = (self.adapter(&ns), s.parse()) {
                    adapter.kick_local(sid);
                }
            }
            Header::Custom { n, kind, data } => {
                if from_bus && n == me {
                    return;
                }
                let hook = self
                    .custom
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&kind)
                    .cloned();
                if let Some(hook) = hook {
                    hook(&n, data, body);
                }
            }
        }
    }

    /// The adapter of `ns` for a membership message of node `n` (not this one).
    fn membership_of(&self, n: &str, ns: &str, me: &str) -> Option<Arc<ClusterAdapter>> {
        if n == me {
            return None;
        }
        self.alive(n);
        self.adapter(ns)
    }

    /// Whether node `n` announced it is stopping and its goodbye is not yet overdue.
    pub(crate) fn is_leaving(&self, n: &str) -> bool {
        let mut leaving = self.leaving.lock().unwrap_or_else(|e| e.into_inner());
        if leaving.is_empty() {
            return false;
        }
        let now = Instant::now();
        leaving.retain(|_, due| *due > now);
        leaving.contains_key(n)
    }

    /// A node that speaks is not dead (it may have been cut off from Redis).
    fn alive(&self, n: &str) {
        let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        if !dead.is_empty() {
            dead.remove(n);
        }
    }
}

/// The subscriber connection: reads `rtcio:bus` and `rtcio:to:{node}`,
/// reconnects with a back-off of at most one second, resynchronises after
/// each (re)connect, and says once that Redis is down and once that it is back.
async fn subscriber(shared: std::sync::Weak<Shared>) {
    let mut backoff = Duration::from_millis(100);
    let mut reported_down = false;
    let mut first = true;
    loop {
        let Some(s) = shared.upgrade() else {
            return;
        };
        let channels = [s.keys.bus(), s.keys.to(s.node.as_str())];
        let connected = async {
            let mut pubsub = s.client.get_async_pubsub().await?;
            pubsub.subscribe(&channels[..]).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(Duration::from_secs(2), connected).await {
            Ok(Ok(pubsub)) => {
                // The command connection may still hold the socket of the
                // Redis that went away: it reconnects on its first failure,
                // so make sure it is through before the resync goes out on it.
                if !s.commands_ready().await {
                    drop(pubsub);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
                backoff = Duration::from_millis(100);
                s.up.store(true, Ordering::Release);
                *s.up_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                if reported_down {
                    tracing::info!(node = %s.node, "Redis is reachable again: cluster membership re-synchronised");
                    reported_down = false;
                } else if first {
                    tracing::info!(node = %s.node, "joined the cluster on Redis");
                }
                first = false;
                s.resync();
                let mut stream = pubsub.into_on_message();
                drop(s);
                while let Some(msg) = stream.next().await {
                    let Some(s) = shared.upgrade() else {
                        return;
                    };
                    s.handle(msg.get_channel_name(), msg.get_payload_bytes());
                }
                let Some(s) = shared.upgrade() else {
                    return;
                };
                s.up.store(false, Ordering::Release);
                *s.up_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
                if !reported_down {
                    tracing::warn!(node = %s.node, "lost the connection to Redis: sockets of this node keep working among themselves, cross-node traffic is paused and /ready answers 503 until it is back");
                    reported_down = true;
                }
            }
            Ok(Err(e)) => {
                if !reported_down {
                    tracing::warn!(node = %s.node, kind = ?e.kind(), "cannot reach Redis: sockets of this node work among themselves, cross-node traffic is paused and /ready answers 503; retrying every second");
                    reported_down = true;
                }
            }
            Err(_) => {
                if !reported_down {
                    tracing::warn!(node = %s.node, "Redis does not answer: cross-node traffic is paused and /ready answers 503; retrying every second");
                    reported_down = true;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopping_node_is_not_dead_until_its_goodbye_or_its_deadline() {
        // Nothing listens there: the connections are made lazily and fail.
        let cluster = Cluster::start("redis://127.0.0.1:1", ClusterOptions::default()).unwrap();
        let s = &cluster.shared;
        let say = |h: Header| s.handle(&s.keys.bus(), &bus::encode(&h, &[]));
        assert!(!s.is_leaving("other"));
        say(Header::Leaving {
            n: "other".into(),
            ms: 60_000,
        });
        say(Header::Leaving {
            n: "brief".into(),
            ms: 0,
        });
        assert!(s.is_leaving("other"));
        assert!(
            !s.is_leaving("brief"),
            "past its deadline it may be declared dead"
        );
        say(Header::Goodbye { n: "other".into() });
        assert!(!s.is_leaving("other"));
        // A node's own announcement is not about another node.
        say(Header::Leaving {
            n: s.node.as_str().to_owned(),
            ms: 60_000,
        });
        assert!(!s.is_leaving(s.node.as_str()));
    }
}
