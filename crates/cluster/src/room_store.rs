//! Room state shared by every node of a cluster, in Redis: the
//! [`RoomStore`] behind `join-room`, `check-room`, caps, passwords and the
//! peer info (names, user ids, media-state) a newcomer's snapshot shows.
//!
//! Keys (prefix `rtcio`, `{ns}` the namespace name):
//! - `rtcio:room:{ns}:{room}` — hash sid → `{"node","name","userId"?,"mic"?,"cam"?,"seq"}`;
//!   `seq` gives the join order. `PEXPIRE` 24 h, refreshed at each join, so
//!   a room no node cleans up (all of them gone at once) still goes away.
//! - `rtcio:roompw:{ns}:{room}` — `salt:sha256(salt ‖ password)` in hex, never
//!   the password itself; set by the first joiner of an empty room, deleted
//!   with its last member.
//!
//! A join is one Lua script (`lua/join.lua`): cap, password, snapshot in join
//! order and the new member, atomically, so the cap is exact under joins
//! racing from several nodes and of two racing joiners exactly one sees the
//! other (and only the other is asked to offer).
//!
//! Every command of a node goes through one writer task that sends whatever
//! is queued as one pipeline, in order: a leave, a media-state or a name
//! change are fire-and-forget yet reach Redis after the joins made before
//! them. A join waits at most [`RedisRoomStore::timeout`] (2 s by default)
//! and is then refused `unavailable`; it never hangs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Value};
use rtcio::errors::ErrorCode;
use rtcio::room_store::{PeerInfo, Reply, RoomStore, Snapshot};
use rtcio_engine::{Room, Sid};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

const JOIN: &str = include_str!("lua/join.lua");
const LEAVE: &str = include_str!("lua/leave.lua");
const UPDATE: &str = include_str!("lua/update.lua");

/// The scripts' SHA-1s (EVALSHA), in the order of [`SCRIPTS`].
static HASHES: LazyLock<[String; 3]> =
    LazyLock::new(|| SCRIPTS.map(|text| redis::Script::new(text).get_hash().to_owned()));
/// Every script the writer runs by EVALSHA (loaded on each new connection).
const SCRIPTS: [&str; 3] = [JOIN, LEAVE, UPDATE];

/// `EVALSHA` of script `which` (an index in [`SCRIPTS`]), or `EVAL` with its
/// text when `inline` (outside the writer, which alone loads the scripts).
fn script(which: usize, inline: bool) -> Cmd {
    if inline {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SCRIPTS[which]);
        cmd
    } else {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(HASHES[which].as_str());
        cmd
    }
}

/// How long a room hash and a password outlive their last join (GC).
pub const ROOM_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a join or a check waits for Redis before answering `unavailable`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Commands queued for Redis at most; past it, writes are dropped and joins refused.
const QUEUE: usize = 65_536;
/// Commands sent in one pipeline at most.
const BATCH: usize = 512;
/// How soon writes that could not be sent are tried again.
const RETRY: Duration = Duration::from_millis(500);

/// A member as the room hash stores it.
#[derive(Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct MemberRecord {
    /// The node the member's socket is connected to.
    pub node: String,
    pub name: String,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none", default)]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mic: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cam: Option<bool>,
    /// Join order within the room (set by the script).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seq: Option<u64>,
}

impl MemberRecord {
    fn of(node: &str, peer: &PeerInfo) -> Self {
        MemberRecord {
            node: node.to_owned(),
            name: peer.name.to_string(),
            user_id: peer.user_id.as_deref().map(str::to_owned),
            mic: peer.media.map(|(mic, _)| mic),
            cam: peer.media.map(|(_, cam)| cam),
            seq: None,
        }
    }

    /// What the rooms layer shows of this member.
    pub fn peer(&self) -> PeerInfo {
        PeerInfo {
            name: Arc::from(self.name.as_str()),
            user_id: self.user_id.as_deref().map(Arc::from),
            media: match (self.mic, self.cam) {
                (Some(mic), Some(cam)) => Some((mic, cam)),
                _ => None,
            },
            node: Some(Arc::from(self.node.as_str())),
        }
    }
}

/// The key of a room's member hash.
pub fn room_key(prefix: &str, ns: &str, room: &str) -> String {
    format!("{prefix}:room:{ns}:{room}")
}

/// The key of a room's password hash.
pub fn password_key(prefix: &str, ns: &str, room: &str) -> String {
    format!("{prefix}:roompw:{ns}:{room}")
}

/// The command that takes `sid`, a socket of the dead node `node`, out of
/// `room` — unless its entry now names another node (the socket recovered
/// there before the dead node was cleaned up) — and drops the room's
/// password when the room is left empty. For the reaper of a dead node,
/// instead of a plain `HDEL`.
pub fn reap_member(prefix: &str, ns: &str, room: &str, sid: &str, node: &str) -> Cmd {
    // Sent on another connection than the writer's: with the script's text.
    leave_cmd_with(prefix, ns, &[Room::from(room)], sid, false, node, true)
}

/// `salt:sha256(salt ‖ password)`, hex.
fn hash_password(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(password.as_bytes());
    format!("{salt}:{}", hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A fresh random salt (20 URL-safe characters, the engine's random ids).
fn fresh_salt() -> String {
    Sid::random().as_str().to_owned()
}

/// Commands for the writer, answered (or not) once Redis replied.
struct Op {
    cmds: Vec<Cmd>,
    reply: Option<oneshot::Sender<Vec<Value>>>,
}

/// The Redis [`RoomStore`] of one node.
pub struct RedisRoomStore {
    ops: mpsc::Sender<Op>,
    node: Arc<str>,
    prefix: Arc<str>,
    timeout: Duration,
    ttl_ms: u64,
    /// Whether "the queue is full" was logged (once per episode).
    overflowing: AtomicBool,
}

impl RedisRoomStore {
    /// A store on an existing connection (the cluster's command connection).
    /// Spawns its writer task: call within a Tokio runtime.
    pub fn new(conn: ConnectionManager, prefix: &str, node: &str) -> Arc<Self> {
        RedisRoomStore::start(conn, prefix, node, DEFAULT_TIMEOUT)
    }

    /// A store that connects to `url` itself, on first use, and reconnects
    /// on its own. Fails only on a malformed URL (the message names no secret).
    pub fn open(url: &str, prefix: &str, node: &str) -> Result<Arc<Self>, String> {
        let client = crate::connect::client(url)
            .map_err(|e| format!("invalid Redis URL: {}", e.kind_name()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot use the Redis URL: {}", e.kind_name()))?;
        Ok(RedisRoomStore::start(conn, prefix, node, DEFAULT_TIMEOUT))
    }

    /// A store with another join/check timeout.
    pub fn start(
        conn: ConnectionManager,
        prefix: &str,
        node: &str,
        timeout: Duration,
    ) -> Arc<Self> {
        let (ops, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(conn, rx, timeout));
        Arc::new(RedisRoomStore {
            ops,
            node: Arc::from(node),
            prefix: Arc::from(prefix),
            timeout,
            ttl_ms: ROOM_TTL.as_millis() as u64,
            overflowing: AtomicBool::new(false),
        })
    }

    /// How long a join or a check waits for Redis.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// This node's id, as the room hashes record it.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn queue(&self, op: Op) -> bool {
        match self.ops.try_send(op) {
            Ok(()) => {
                if self.overflowing.swap(false, Ordering::Relaxed) {
                    tracing::info!("room store: the Redis queue drains again");
                }
                true
            }
            Err(_) => {
                if !self.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "room store: Redis is not keeping up; room updates are dropped and joins refused until it does"
                    );
                }
                false
            }
        }
    }

    /// Sends `cmds` (fire-and-forget, in order).
    fn send(&self, cmds: Vec<Cmd>) {
        self.queue(Op { cmds, reply: None });
    }

    /// Sends `cmds` and waits for their replies, at most the timeout.
    async fn ask(
        ops: &mpsc::Sender<Op>,
        cmds: Vec<Cmd>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ErrorCode> {
        let (tx, rx) = oneshot::channel();
        let op = Op {
            cmds,
            reply: Some(tx),
        };
        ops.try_send(op).map_err(|_| ErrorCode::Unavailable)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(replies)) => Ok(replies),
            _ => Err(ErrorCode::Unavailable),
        }
    }

    fn join_cmd(
        &self,
        at: (&str, &str),
        sid: Sid,
        record: &str,
        given: &str,
        cap: usize,
        mode: &str,
    ) -> Cmd {
        join_cmd(&self.prefix, self.ttl_ms, at, sid, record, given, cap, mode)
    }

    fn record(&self, peer: &PeerInfo) -> String {
        serde_json::to_string(&MemberRecord::of(&self.node, peer)).unwrap_or_default()
    }

    /// The members of a room hash, in join order.
    fn parse_members(flat: &[Value]) -> Snapshot {
        let mut members: Vec<(u64, Sid, PeerInfo)> = flat
            .chunks_exact(2)
            .filter_map(|pair| {
                let sid: Sid = text(&pair[0])?.parse().ok()?;
                let record: MemberRecord = serde_json::from_str(&text(&pair[1])?).ok()?;
                Some((record.seq.unwrap_or(0), sid, record.peer()))
            })
            .collect();
        members.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
        members
            .into_iter()
            .map(|(_, sid, peer)| (sid, peer))
            .collect()
    }
}

/// The join script for `sid` in `(ns, room)`; `given` is the hashed password or "".
#[allow(clippy::too_many_arguments)]
fn join_cmd(
    prefix: &str,
    ttl_ms: u64,
    (ns, room): (&str, &str),
    sid: Sid,
    record: &str,
    given: &str,
    cap: usize,
    mode: &str,
) -> Cmd {
    let mut cmd = script(0, false);
    cmd.arg(2)
        .arg(room_key(prefix, ns, room))
        .arg(password_key(prefix, ns, room))
        .arg(sid.as_str())
        .arg(record)
        .arg(cap)
        .arg(given)
        .arg(ttl_ms)
        .arg(mode);
    cmd
}

/// The leave script: `sid` ("" for none) out of `rooms` while its entries
/// name `node`, their passwords dropped when they are left empty unless `keep`.
fn leave_cmd(prefix: &str, ns: &str, rooms: &[Room], sid: &str, keep: bool, node: &str) -> Cmd {
    leave_cmd_with(prefix, ns, rooms, sid, keep, node, false)
}

/// [`leave_cmd`], by `EVAL` when `inline`.
fn leave_cmd_with(
    prefix: &str,
    ns: &str,
    rooms: &[Room],
    sid: &str,
    keep: bool,
    node: &str,
    inline: bool,
) -> Cmd {
    let mut cmd = script(1, inline);
    cmd.arg(rooms.len() * 2);
    for room in rooms {
        cmd.arg(room_key(prefix, ns, room))
            .arg(password_key(prefix, ns, room));
    }
    cmd.arg(sid).arg(if keep { "1" } else { "0" }).arg(node);
    cmd
}

/// A bulk or simple string reply as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// The writer: everything queued goes out as one pipeline, in order; the
/// replies go back to whoever waits. One warning when Redis becomes
/// unreachable, one line when it is back. Writes nobody waits for (leaves,
/// peer updates, restores) that could not be sent are kept, in order, and
/// sent again before anything newer once Redis answers (they are
/// idempotent): a socket that left during an outage does not stay in its
/// room's hash. Joins and checks are not retried: they were answered
/// `unavailable`.
async fn write(mut conn: ConnectionManager, mut rx: mpsc::Receiver<Op>, timeout: Duration) {
    let mut down = false;
    let mut batch: Vec<Op> = Vec::new();
    let mut backlog: VecDeque<Cmd> = VecDeque::new();
    let mut overflowed = false;
    // Whether the scripts were loaded on this connection (the first batch
    // after a start or a failure loads them first, so EVALSHA never runs
    // ahead of its script and the order of the writes holds).
    let mut loaded = false;
    loop {
        if backlog.is_empty() {
            match rx.recv().await {
                Some(op) => batch.push(op),
                None => return,
            }
        } else {
            tokio::select! {
                op = rx.recv() => match op {
                    Some(op) => batch.push(op),
                    None => return,
                },
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
        let mut count = backlog.len() + batch.iter().map(|op| op.cmds.len()).sum::<usize>();
        while count < BATCH {
            match rx.try_recv() {
                Ok(op) => {
                    count += op.cmds.len();
                    batch.push(op);
                }
                Err(_) => break,
            }
        }
        let replayed: Vec<Cmd> = backlog.drain(..).collect();
        let all: Vec<&Cmd> = replayed
            .iter()
            .chain(batch.iter().flat_map(|op| op.cmds.iter()))
            .collect();
        let sent = tokio::time::timeout(timeout, run(&mut conn, &all, !loaded)).await;
        drop(all);
        match sent {
            Ok(Ok(replies)) if replies.len() == count => {
                loaded = true;
                if down {
                    down = false;
                    tracing::info!("room store: Redis is reachable again");
                }
                let mut replies = replies.into_iter().skip(replayed.len());
                for op in batch.drain(..) {
                    let mine: Vec<Value> = replies.by_ref().take(op.cmds.len()).collect();
                    if let Some(reply) = op.reply {
                        let _ = reply.send(mine);
                    }
                }
            }
            other => {
                // Perhaps another connection, to another Redis: load again.
                loaded = false;
                if !down {
                    down = true;
                    let why = match other {
                        Ok(Err(e)) => e.kind_name().to_owned(),
                        Ok(Ok(_)) => "unexpected reply".to_owned(),
                        Err(_) => "timed out".to_owned(),
                    };
                    tracing::warn!(error = %why, "room store: Redis is unreachable; joins are refused `unavailable` until it is back");
                }
                // Kept for later, in order; dropping the senders answers the
                // waiting joins `unavailable`.
                backlog.extend(replayed);
                for op in batch.drain(..) {
                    if op.reply.is_none() {
                        backlog.extend(op.cmds);
                    }
                }
                if backlog.len() > QUEUE {
                    backlog.drain(..backlog.len() - QUEUE);
                    if !overflowed {
                        overflowed = true;
                        tracing::warn!("room store: too many room updates waiting for Redis; the oldest are dropped");
                    }
                }
            }
        }
    }
}

/// Sends `cmds` as one pipeline, after a `SCRIPT LOAD` of every script when
/// `preload`. Commands answered `NOSCRIPT` (the script cache was emptied
/// under a live connection: `SCRIPT FLUSH`, a failover) did not run: they
/// are sent again, in their order, after a `SCRIPT LOAD`, and their replies
/// take their places.
async fn run(
    conn: &mut ConnectionManager,
    cmds: &[&Cmd],
    preload: bool,
) -> redis::RedisResult<Vec<Value>> {
    let mut replies = pipeline(conn, cmds, preload).await?;
    let missing: Vec<usize> = replies
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(v, Value::ServerError(e) if e.code() == "NOSCRIPT"))
        .map(|(i, _)| i)
        .collect();
    if !missing.is_empty() {
        tracing::debug!(
            commands = missing.len(),
            "room store: Redis lost its scripts; loaded again"
        );
        let again: Vec<&Cmd> = missing.iter().map(|&i| cmds[i]).collect();
        let second = pipeline(conn, &again, true).await?;
        for (i, reply) in missing.into_iter().zip(second) {
            replies[i] = reply;
        }
    }
    Ok(replies)
}

async fn pipeline(
    conn: &mut ConnectionManager,
    cmds: &[&Cmd],
    preload: bool,
) -> redis::RedisResult<Vec<Value>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    if preload {
        for text in SCRIPTS {
            pipe.cmd("SCRIPT").arg("LOAD").arg(text).ignore();
        }
    }
    for cmd in cmds {
        pipe.add_command((*cmd).clone());
    }
    pipe.query_async::<Vec<Value>>(conn).await
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for redis::RedisError {
    /// A short, secret-free description (a URL or a password never appears).
    fn kind_name(&self) -> &'static str {
        if self.is_timeout() {
            "timed out"
        } else if self.is_connection_refusal() {
            "connection refused"
        } else if self.is_connection_dropped() || self.is_io_error() {
            "connection lost"
        } else {
            "Redis error"
        }
    }
}

impl RoomStore for RedisRoomStore {
    fn is_local(&self) -> bool {
        false
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
        let record = self.record(peer);
        let password = password.map(str::to_owned);
        let (ops, timeout) = (self.ops.clone(), self.timeout);
        let given = password
            .as_deref()
            .map(|p| hash_password(&fresh_salt(), p))
            .unwrap_or_default();
        let first = self.join_cmd((ns, room), sid, &record, &given, cap, "join");
        let (prefix, ttl_ms, node) = (self.prefix.clone(), self.ttl_ms, self.node.clone());
        let (ns, room) = (ns.to_owned(), room.to_owned());
        Reply::Pending(Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut cmd = first;
            // At most a few rounds: a password hashed with the stored salt.
            for _ in 0..3 {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let result = RedisRoomStore::ask(&ops, vec![cmd], left).await;
                let reply = match result {
                    Ok(mut replies) => replies.pop(),
                    Err(code) => {
                        // The script may still run: take the member out again.
                        let undo = leave_cmd(
                            &prefix,
                            &ns,
                            &[Room::from(room.as_str())],
                            sid.as_str(),
                            false,
                            &node,
                        );
                        let _ = ops.try_send(Op {
                            cmds: vec![undo],
                            reply: None,
                        });
                        return Err(code);
                    }
                };
                let Some(Value::Array(items)) = reply else {
                    return Err(ErrorCode::Unavailable);
                };
                match items.first().and_then(text).as_deref() {
                    Some("ok") => return Ok(RedisRoomStore::parse_members(&items[1..])),
                    Some("room-full") => return Err(ErrorCode::RoomFull),
                    Some("password-required") => return Err(ErrorCode::PasswordRequired),
                    Some("wrong-password") => return Err(ErrorCode::WrongPassword),
                    Some("salt") => {
                        let salt = items.get(1).and_then(text).unwrap_or_default();
                        let given = password
                            .as_deref()
                            .map(|p| hash_password(&salt, p))
                            .unwrap_or_default();
                        let at = (ns.as_str(), room.as_str());
                        cmd = join_cmd(&prefix, ttl_ms, at, sid, &record, &given, cap, "join");
                    }
                    _ => return Err(ErrorCode::Unavailable),
                }
            }
            Err(ErrorCode::Unavailable)
        }))
    }

    fn restore(&self, ns: &str, rooms: &[Room], sid: Sid, peer: &PeerInfo) {
        let record = self.record(peer);
        let cmds = rooms
            .iter()
            .map(|room| self.join_cmd((ns, room), sid, &record, "", 0, "restore"))
            .collect::<Vec<_>>();
        if !cmds.is_empty() {
            self.send(cmds);
        }
    }

    fn leave(&self, ns: &str, rooms: &[Room], sid: Sid, keep_password: bool) {
        if !rooms.is_empty() {
            self.send(vec![leave_cmd(
                &self.prefix,
                ns,
                rooms,
                sid.as_str(),
                keep_password,
                &self.node,
            )]);
        }
    }

    fn forget_password_if_empty(&self, ns: &str, rooms: &[Room]) {
        if !rooms.is_empty() {
            self.send(vec![leave_cmd(
                &self.prefix,
                ns,
                rooms,
                "",
                false,
                &self.node,
            )]);
        }
    }

    fn check(
        &self,
        ns: &str,
        room: &str,
        password: Option<&str>,
    ) -> Reply<Result<bool, ErrorCode>> {
        let mut len = redis::cmd("HLEN");
        len.arg(room_key(&self.prefix, ns, room));
        let mut get = redis::cmd("GET");
        get.arg(password_key(&self.prefix, ns, room));
        let (ops, timeout) = (self.ops.clone(), self.timeout);
        let password = password.map(str::to_owned);
        Reply::Pending(Box::pin(async move {
            let replies = RedisRoomStore::ask(&ops, vec![len, get], timeout).await?;
            let members = match replies.first() {
                Some(Value::Int(n)) => *n,
                _ => return Err(ErrorCode::Unavailable),
            };
            let stored = replies.get(1).and_then(text).filter(|_| members > 0);
            let Some(stored) = stored else {
                return Ok(false);
            };
            if let Some(given) = password {
                let salt = stored.split(':').next().unwrap_or_default();
                let candidate = hash_password(salt, &given);
                // Hashes of secrets compared in constant time all the same.
                let same = candidate.len() == stored.len()
                    && candidate
                        .bytes()
                        .zip(stored.bytes())
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0;
                if !same {
                    return Err(ErrorCode::WrongPassword);
                }
            }
            Ok(true)
        }))
    }

    fn update_peer(&self, ns: &str, rooms: &[Room], sid: Sid, peer: &PeerInfo) {
        if rooms.is_empty() {
            return;
        }
        let mut cmd = script(2, false);
        cmd.arg(rooms.len());
        for room in rooms {
            cmd.arg(room_key(&self.prefix, ns, room));
        }
        cmd.arg(sid.as_str()).arg(self.record(peer));
        self.send(vec![cmd]);
    }

    fn members(&self, ns: &str, room: &str) -> Reply<Result<Snapshot, ErrorCode>> {
        let mut all = redis::cmd("HGETALL");
        all.arg(room_key(&self.prefix, ns, room));
        let (ops, timeout) = (self.ops.clone(), self.timeout);
        Reply::Pending(Box::pin(async move {
            let mut replies = RedisRoomStore::ask(&ops, vec![all], timeout).await?;
            match replies.pop() {
                Some(Value::Array(flat)) => Ok(RedisRoomStore::parse_members(&flat)),
                Some(Value::Map(pairs)) => {
                    let flat: Vec<Value> = pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
                    Ok(RedisRoomStore::parse_members(&flat))
                }
                _ => Err(ErrorCode::Unavailable),
            }
        }))
    }
}
