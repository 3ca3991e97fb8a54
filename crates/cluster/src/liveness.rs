//! Node liveness: each node refreshes `rtcio:node:{node}` (`SET .. PX ttl`)
//! every heartbeat; a node whose key is gone is dead. Checked every
//! heartbeat, but only once this node has itself been connected to Redis for
//! a whole `ttl` (after a Redis restart every key is gone until each node
//! re-sets its own: no node is declared dead for that).
//!
//! A dead node's sockets are dropped from every survivor's replica and
//! reported to the namespace (`on_remote_departure`: rtcio sends
//! `#rtcio:peer-left` at once, `user-disconnected` after the presence grace).
//! One survivor, the one that takes the `rtcio:reaper:{node}` lock, removes
//! them from the room hashes (`rtcio:room:{ns}:{room}`, freeing their places
//! under the caps) using `rtcio:sockets:{node}`, then deletes that hash.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::bus::Op;
use crate::Shared;

/// Queues this node's heartbeat (liveness key and membership of `rtcio:nodes`).
pub(crate) fn heartbeat_ops(s: &Shared, always: bool) {
    let me = s.node.as_str();
    let ttl = s.opts.ttl.as_millis().max(1) as u64;
    let set = redis::cmd("SET")
        .arg(s.keys.node(me))
        .arg(1)
        .arg("PX")
        .arg(ttl)
        .clone();
    let add = redis::cmd("SADD").arg(s.keys.nodes()).arg(me).clone();
    for cmd in [set, add] {
        if always {
            s.bus.send_always(Op::Cmd(cmd));
        } else {
            s.bus.send(Op::Cmd(cmd));
        }
    }
}

/// The periodic heartbeat, straight on the command connection rather than
/// behind the publisher queue: a node busy sending (closing thousands of
/// sockets, a slow Redis) still refreshes its key on time.
async fn beat(s: &Shared) {
    let beating = s.beating.lock().await;
    if !*beating {
        return;
    }
    let me = s.node.as_str();
    let ttl = s.opts.ttl.as_millis().max(1) as u64;
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(s.keys.node(me))
        .arg(1)
        .arg("PX")
        .arg(ttl)
        .ignore()
        .cmd("SADD")
        .arg(s.keys.nodes())
        .arg(me)
        .ignore();
    let mut conn = s.commands.clone();
    let sent = tokio::time::timeout(s.opts.heartbeat, pipe.query_async::<()>(&mut conn)).await;
    if let Ok(Err(e)) = sent {
        tracing::debug!(kind = ?e.kind(), "heartbeat failed");
    }
    drop(beating);
}

/// The heartbeat and the liveness checks, every `heartbeat`.
pub(crate) async fn run(shared: Weak<Shared>) {
    let period = match shared.upgrade() {
        Some(s) => s.opts.heartbeat,
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        if !s.bus.is_up() {
            continue;
        }
        beat(&s).await;
        let settled = s
            .up_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|since| since.elapsed() >= s.opts.ttl);
        if settled {
            if let Err(e) = check(&s).await {
                tracing::debug!(kind = ?e.kind(), "liveness check failed");
            }
        }
    }
}

/// Finds the nodes whose liveness key is gone and declares them dead.
async fn check(s: &Arc<Shared>) -> redis::RedisResult<()> {
    let me = s.node.as_str();
    let mut conn = s.commands.clone();
    let listed: Vec<String> = redis::cmd("SMEMBERS")
        .arg(s.keys.nodes())
        .query_async(&mut conn)
        .await?;
    let mut candidates = s.known_nodes();
    candidates.extend(listed);
    candidates.remove(me);
    {
        let dead = s.dead.lock().unwrap_or_else(|e| e.into_inner());
        candidates.retain(|n| !dead.contains(n));
    }
    // A stopping node may be slow to refresh its key while it closes its
    // sockets: its goodbye (or its deadline) decides.
    candidates.retain(|n| !s.is_leaving(n));
    if candidates.is_empty() {
        return Ok(());
    }
    let candidates: Vec<String> = candidates.into_iter().collect();
    let mut pipe = redis::pipe();
    for node in &candidates {
        // Alive, or stopping (its goodbye is due).
        pipe.cmd("EXISTS")
            .arg(s.keys.node(node))
            .arg(s.keys.leaving(node));
    }
    let alive: Vec<i64> = pipe.query_async(&mut conn).await?;
    // Redis may have gone away while we asked: only a live connection's
    // answer counts.
    if !s.bus.is_up() {
        return Ok(());
    }
    for (node, alive) in candidates.into_iter().zip(alive) {
        if alive == 0 {
            declare_dead(s, &node).await;
        }
    }
    Ok(())
}

async fn declare_dead(s: &Arc<Shared>, node: &str) {
    if !s
        .dead
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(node.to_owned())
    {
        return;
    }
    let mut sockets = 0;
    for adapter in s.adapters() {
        let gone = adapter.drop_node(node);
        sockets += gone.len();
        adapter.report_departures(gone);
    }
    tracing::warn!(
        dead = node,
        sockets,
        "a cluster node stopped answering: its sockets are gone"
    );
    let hooks = s
        .dead_hooks
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for hook in hooks {
        hook(node);
    }
    if let Err(e) = reap(s, node).await {
        tracing::debug!(kind = ?e.kind(), dead = node, "cleanup after a dead node failed");
    }
}

/// Removes a dead node's sockets from Redis, if this node takes the lock.
async fn reap(s: &Arc<Shared>, node: &str) -> redis::RedisResult<()> {
    let mut conn = s.commands.clone();
    let locked: Option<String> = redis::cmd("SET")
        .arg(s.keys.reaper(node))
        .arg(s.node.as_str())
        .arg("NX")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await?;
    if locked.is_none() {
        return Ok(());
    }
    let sockets_key = s.keys.sockets(node);
    let sockets: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&sockets_key)
        .query_async(&mut conn)
        .await?;
    let mut pipe = redis::pipe();
    for (field, value) in &sockets {
        let Some((ns, sid)) = field.rsplit_once('|') else {
            continue;
        };
        for room in rooms_of(value) {
            // Spares a socket recovered on another node meanwhile.
            let reap = crate::room_store::reap_member(&s.keys.prefix, ns, &room, sid, node);
            pipe.add_command(reap).ignore();
        }
    }
    pipe.cmd("DEL").arg(&sockets_key).ignore();
    pipe.cmd("SREM").arg(s.keys.nodes()).arg(node).ignore();
    pipe.query_async::<()>(&mut conn).await?;
    tracing::info!(
        dead = node,
        sockets = sockets.len(),
        "removed a dead node's sockets from Redis"
    );
    Ok(())
}

/// The rooms in a `rtcio:sockets:{node}` value (`{"rooms":[..]}`).
pub(crate) fn rooms_of(value: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        rooms: Vec<String>,
    }
    serde_json::from_str::<Entry>(value)
        .map(|e| e.rooms)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn socket_entries_parse() {
        assert_eq!(super::rooms_of(r#"{"rooms":["a","b"]}"#), vec!["a", "b"]);
        assert!(super::rooms_of("nonsense").is_empty());
    }
}
