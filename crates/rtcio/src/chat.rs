//! Server-routed chat with durable history: `chat-message { roomId, text }`
//! is validated, stamped (`id`, `from`, `name`, `at`), stored, and only then
//! fanned out to the rest of the room and acknowledged; a joiner receives the
//! room's recent messages as `chat-history`, and `chat-history { roomId,
//! before?, limit? }` pages further back.
//!
//! **Signaling never waits on the database.** The handlers are synchronous:
//! a message is validated in the sender's reader and queued to one writer
//! task, which stores whatever has queued up in one multi-row INSERT (one
//! commit for the batch), then fans each message out and answers its
//! acknowledgement, in queue order. The queue is FIFO, so one sender's
//! messages are stored and delivered in the order it sent them; a slow or
//! unreachable database delays chat acknowledgements and nothing else, and
//! a full queue refuses at once (`unavailable`) instead of blocking.
//!
//! **A joiner sees each message once.** Its history request goes through the
//! same queue: when the writer reaches it, every earlier message has been
//! stored and fanned out, so the history is cut at the last id assigned so
//! far and the socket receives live only the messages after that cut (kept
//! per room in the socket's data). Until its cut is known, a joiner receives
//! nothing live; those messages are in its history instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtcio_engine::{AckSender, Event, NamespaceBuilder, Payload, Socket};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::errors::{ClientError, ErrorCode};
use crate::history::{parse_id, ChatMessage, ChatStore, HistoryQuery, Retention};
use crate::identity::Identity;
use crate::rooms::{Peer, Rooms};

pub use crate::events::app::{CHAT_HISTORY, CHAT_MESSAGE};
/// Longest message, in characters (not bytes).
pub const MAX_TEXT: usize = 1000;
/// Most messages one `chat-history` request returns.
pub const MAX_PAGE: u32 = 200;
/// Messages a `chat-history` request returns when it gives no `limit`.
pub const DEFAULT_PAGE: u32 = 50;

/// How the chat building block behaves.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Recent messages sent to a joiner as `chat-history` (0: none, and no
    /// `chat-history` event on join).
    pub history_on_join: u32,
    /// Most messages stored in one INSERT.
    pub batch_max: usize,
    /// Messages that may wait for the database before new ones are refused.
    pub queue_max: usize,
    /// What the periodic task removes, and how often it runs.
    pub retention: Retention,
    pub prune_interval: Duration,
    /// How long one write may take before its messages are refused as
    /// `unavailable` (a database that hangs instead of refusing connections).
    pub write_timeout: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            history_on_join: 50,
            batch_max: 128,
            queue_max: 10_000,
            retention: Retention::default(),
            prune_interval: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// The chat building block; [`Chat::attach`] it to a namespace that has [`Rooms`].
pub struct Chat {
    store: Option<Arc<dyn ChatStore>>,
    config: ChatConfig,
    ids: Arc<Ids>,
    queue: Option<mpsc::Sender<Job>>,
    /// Whether the last write succeeded (a free readiness hint; see [`Chat::ready`]).
    writing: Arc<AtomicBool>,
}

enum Job {
    Message {
        message: ChatMessage,
        sender: Socket,
        ack: Option<AckSender>,
    },
    History {
        socket: Socket,
        room: String,
    },
}

impl Chat {
    /// Chat storing into `store`, or relaying only (nothing stored, no
    /// history) with `None`. Spawns the writer and retention tasks, so it must
    /// be called inside a Tokio runtime; they end when the `Chat` is dropped.
    pub fn new(store: Option<Arc<dyn ChatStore>>, config: ChatConfig) -> Arc<Chat> {
        let ids = Arc::new(Ids::default());
        let writing = Arc::new(AtomicBool::new(true));
        let queue = store.as_ref().map(|store| {
            let (tx, rx) = mpsc::channel(config.queue_max.max(1));
            let writer = Writer {
                store: store.clone(),
                config: config.clone(),
                ids: ids.clone(),
                writing: writing.clone(),
                failed_at: None,
            };
            tokio::spawn(writer.run(rx));
            tx
        });
        if let (Some(store), Some(queue)) = (&store, &queue) {
            let retention = config.retention;
            if retention != Retention::default() {
                tokio::spawn(prune(
                    store.clone(),
                    retention,
                    config.prune_interval,
                    queue.downgrade(),
                ));
            }
        }
        Arc::new(Chat {
            store,
            config,
            ids,
            queue,
            writing,
        })
    }

    /// The store, when history is on (to check it from `/ready`, say).
    pub fn store(&self) -> Option<&Arc<dyn ChatStore>> {
        self.store.as_ref()
    }

    /// Whether chat can store messages right now: `true` without a store,
    /// else whether the database answers (one cheap query).
    pub async fn ready(&self) -> bool {
        match &self.store {
            None => true,
            Some(store) => store.ping().await.is_ok(),
        }
    }

    /// Whether the last write to the database succeeded (no query; `true` before any).
    pub fn last_write_ok(&self) -> bool {
        self.writing.load(Ordering::Relaxed)
    }

    /// Attaches `chat-message` and `chat-history` to a namespace, and the
    /// history on join to its `rooms`.
    pub fn attach(self: &Arc<Self>, ns: &mut NamespaceBuilder, rooms: &Rooms) {
        let (message, history) = (self.clone(), self.clone());
        ns.on(CHAT_MESSAGE, move |socket, event| {
            message.chat_message(socket, event)
        })
        .on(CHAT_HISTORY, move |socket, event| {
            history.chat_history(socket, event)
        });
        if self.store.is_some() && self.config.history_on_join > 0 {
            let joined = self.clone();
            rooms.on_joined(move |socket, room| joined.joined(socket, room));
        }
    }

    /// `chat-message { roomId, text }`, acknowledged or not.
    pub fn chat_message(&self, socket: &Socket, mut event: Event) {
        let ack = event.take_ack();
        let (room, text) = match validate(socket, &event) {
            Ok(valid) => valid,
            Err(e) => return refuse(socket, ack, &e, "refused"),
        };
        let message = ChatMessage {
            id: 0,
            room_id: room,
            from: Identity::user_id(socket)
                .map(|id| id.to_string())
                .unwrap_or_else(|| socket.id().to_string()),
            name: socket
                .get::<Peer>()
                .map(|p| p.name.to_string())
                .unwrap_or_default(),
            text,
            at: 0,
        };
        let Some(queue) = &self.queue else {
            // History off: the same validation and stamping, nothing stored.
            let mut message = message;
            (message.id, message.at) = self.ids.next();
            fan_out(&message, socket, false);
            return accept(&message, ack);
        };
        match queue.try_reserve() {
            Ok(slot) => slot.send(Job::Message {
                message,
                sender: socket.clone(),
                ack,
            }),
            Err(_) => {
                let e = ClientError::new(
                    ErrorCode::Unavailable,
                    "chat is busy storing messages; try again shortly",
                )
                .in_room(message.room_id);
                refuse(socket, ack, &e, "unavailable");
            }
        }
    }

    /// `chat-history { roomId, before?, limit? }` with an acknowledgement:
    /// answers `{ messages }`, oldest first.
    pub fn chat_history(&self, socket: &Socket, mut event: Event) {
        let Some(ack) = event.take_ack() else {
            return ClientError::new(
                ErrorCode::BadRequest,
                "chat-history needs an acknowledgement callback",
            )
            .send(socket);
        };
        let request = match history_request(socket, &event) {
            Ok(request) => request,
            Err(e) => return refuse(socket, Some(ack), &e, "refused"),
        };
        let Some(store) = self.store.clone() else {
            let _ = ack.send(&json!({ "messages": [] }));
            return;
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            let (room, before, limit) = request;
            let query = HistoryQuery {
                room_id: &room,
                before,
                up_to: None,
                limit,
            };
            match store.recent(query).await {
                Ok(messages) => {
                    let _ = ack.send(&json!({ "messages": messages }));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "chat history read failed");
                    refuse(
                        &socket,
                        Some(ack),
                        &history_unavailable(&room),
                        "unavailable",
                    );
                }
            }
        });
    }

    /// After a join: queue the joiner's history behind the messages already queued.
    fn joined(&self, socket: &Socket, room: &str) {
        let marks = socket.get::<Marks>().unwrap_or_else(|| {
            let marks = Marks::default();
            socket.insert(marks.clone());
            marks
        });
        marks.set(room, PENDING);
        let job = Job::History {
            socket: socket.clone(),
            room: room.to_owned(),
        };
        if self
            .queue
            .as_ref()
            .is_some_and(|q| q.try_send(job).is_err())
        {
            // Without a history the live messages must flow: no cut.
            marks.set(room, i64::MIN);
            history_unavailable(room).send(socket);
        }
    }
}

/// A joiner whose history cut is not known yet receives nothing live.
const PENDING: i64 = i64::MAX;

/// Per room, the last message id a socket's join history covers: it receives
/// live only the messages after it.
#[derive(Clone, Default)]
struct Marks(Arc<Mutex<HashMap<String, i64>>>);

impl Marks {
    fn set(&self, room: &str, id: i64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(room.to_owned(), id);
    }

    fn get(&self, room: &str) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(room)
            .copied()
    }
}

/// Sortable, server-generated ids: milliseconds since the epoch shifted left
/// 16 bits, plus a sequence; strictly increasing even if the clock steps back.
#[derive(Default)]
struct Ids(Mutex<i64>);

impl Ids {
    /// The next `(id, at)`.
    fn next(&self) -> (i64, i64) {
        let at = now_ms();
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *last = (at << 16).max(*last + 1);
        (*last, at)
    }

    fn last(&self) -> i64 {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Never issue an id at or below `id` (the largest one stored before a restart).
    fn bump(&self, id: i64) {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last).max(id);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The one task that stores messages, fans them out and answers their acks.
struct Writer {
    store: Arc<dyn ChatStore>,
    config: ChatConfig,
    ids: Arc<Ids>,
    writing: Arc<AtomicBool>,
    /// When the last write failed: for [`RETRY_AFTER`] after a failure,
    /// messages are refused at once instead of each batch waiting out the
    /// connection timeout again, so a queue that built up during an outage
    /// drains in milliseconds, not minutes.
    failed_at: Option<Instant>,
}

/// How long after a failed write the database is assumed to be still down.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let max = self.config.batch_max.max(1);
        let mut jobs = Vec::with_capacity(max);
        let mut seeded = false;
        let mut batch = Batch::default();
        while rx.recv_many(&mut jobs, max).await > 0 {
            if !seeded {
                // Ids keep increasing across restarts even if the clock went back.
                if let Ok(last) = self.store.last_id().await {
                    self.ids.bump(last.unwrap_or(0));
                    seeded = true;
                }
            }
            for job in jobs.drain(..) {
                match job {
                    Job::Message {
                        mut message,
                        sender,
                        ack,
                    } => {
                        (message.id, message.at) = self.ids.next();
                        batch.messages.push(message);
                        batch.senders.push((sender, ack));
                    }
                    Job::History { socket, room } => {
                        self.flush(&mut batch).await;
                        self.history(socket, room);
                    }
                }
            }
            self.flush(&mut batch).await;
        }
    }

    async fn flush(&mut self, batch: &mut Batch) {
        if batch.messages.is_empty() {
            return;
        }
        let n = batch.messages.len();
        let result = if self.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            Err("the database was unreachable a moment ago".to_owned())
        } else {
            let mut result = self.write(batch).await;
            if matches!(result, Err((_, true))) {
                // Another node of a cluster sharing the database issued the
                // same id for this room: stamp the batch again past every id
                // stored (nothing of it was stored, acked or fanned out yet).
                if let Ok(last) = self.store.last_id().await {
                    self.ids.bump(last.unwrap_or(0));
                }
                for message in &mut batch.messages {
                    (message.id, message.at) = self.ids.next();
                }
                result = self.write(batch).await;
            }
            let result = result.map_err(|(e, _)| e);
            self.failed_at = result.is_err().then(Instant::now);
            result
        };
        self.writing.store(result.is_ok(), Ordering::Relaxed);
        metrics::histogram!("rtcio_chat_batch_size").record(n as f64);
        match result {
            Ok(()) => {
                metrics::counter!("rtcio_chat_messages_total", "result" => "stored")
                    .increment(n as u64);
                for (message, (sender, ack)) in
                    batch.messages.drain(..).zip(batch.senders.drain(..))
                {
                    fan_out(&message, &sender, true);
                    accept(&message, ack);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = n, "chat messages could not be stored");
                for (message, (sender, ack)) in
                    batch.messages.drain(..).zip(batch.senders.drain(..))
                {
                    let e = ClientError::new(
                        ErrorCode::Unavailable,
                        "the chat database is unavailable; the message was not sent",
                    )
                    .in_room(message.room_id);
                    refuse(&sender, ack, &e, "unavailable");
                }
            }
        }
    }

    /// One INSERT of the batch, within the write timeout; the error says
    /// whether it was an id collision.
    async fn write(&self, batch: &Batch) -> Result<(), (String, bool)> {
        let write = self.store.insert(&batch.messages);
        match tokio::time::timeout(self.config.write_timeout, write).await {
            Ok(result) => result.map_err(|e| (e.to_string(), e.conflict)),
            Err(_) => Err(("the write timed out".to_owned(), false)),
        }
    }

    /// Cuts the joiner's history at the last id assigned (everything up to it
    /// is stored or refused by now) and reads it without holding the queue up.
    fn history(&self, socket: Socket, room: String) {
        let up_to = self.ids.last();
        if let Some(marks) = socket.get::<Marks>() {
            marks.set(&room, up_to);
        }
        let store = self.store.clone();
        let limit = self.config.history_on_join;
        tokio::spawn(async move {
            let query = HistoryQuery {
                room_id: &room,
                before: None,
                up_to: Some(up_to),
                limit,
            };
            match store.recent(query).await {
                Ok(messages) => {
                    let payload = Payload::new().arg(&messages).and_then(|p| p.arg(&room));
                    if let Ok(payload) = payload {
                        let _ = socket.emit_payload(CHAT_HISTORY, payload);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "chat history read failed");
                    history_unavailable(&room).send(&socket);
                }
            }
        });
    }
}

#[derive(Default)]
struct Batch {
    messages: Vec<ChatMessage>,
    senders: Vec<(Socket, Option<AckSender>)>,
}

/// Runs retention every `every` until the chat (its queue) is gone.
async fn prune(
    store: Arc<dyn ChatStore>,
    retention: Retention,
    every: Duration,
    alive: mpsc::WeakSender<Job>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        match store.prune(retention, now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "chat retention"),
            Err(e) => tracing::warn!(error = %e, "chat retention failed"),
        }
    }
}

/// `chat-message` to the room's other members (those whose join history
/// does not already hold it, when `cut` is on).
fn fan_out(message: &ChatMessage, sender: &Socket, cut: bool) {
    let ns = sender.ns();
    let Ok(payload) = Payload::new().arg(message) else {
        return;
    };
    let packet = payload.into_event(ns.name(), CHAT_MESSAGE, None);
    for sid in ns.room_members(&message.room_id) {
        if sid == sender.id() {
            continue;
        }
        let Some(member) = ns.get_socket(sid) else {
            // A member on another node of a cluster (its join-history mark is
            // on that node: the message goes as it is).
            ns.adapter().send_to(sid, &packet);
            continue;
        };
        if cut {
            let covered = member.get::<Marks>().and_then(|m| m.get(&message.room_id));
            if covered.is_none_or(|up_to| message.id <= up_to) {
                continue;
            }
        }
        let _ = member.send_encoded(&packet);
    }
}

fn accept(message: &ChatMessage, ack: Option<AckSender>) {
    if let Some(ack) = ack {
        let _ = ack.send(&json!({ "ok": true, "id": message.id_text(), "at": message.at }));
    }
}

/// Answers the acknowledgement with `{ ok: false, error }`, or sends `error` without one.
fn refuse(socket: &Socket, ack: Option<AckSender>, error: &ClientError, result: &'static str) {
    metrics::counter!("rtcio_chat_messages_total", "result" => result).increment(1);
    match ack {
        Some(ack) => {
            let _ = ack.send(&json!({ "ok": false, "error": error }));
        }
        None => error.send(socket),
    }
}

fn history_unavailable(room: &str) -> ClientError {
    ClientError::new(
        ErrorCode::Unavailable,
        "the chat history is unavailable right now",
    )
    .in_room(room)
}

/// The request's object, its room (which the sender must be in), or the refusal.
fn member_room(
    socket: &Socket,
    event: &Event,
    what: &str,
) -> Result<(Map<String, Value>, String), ClientError> {
    let Ok(request) = event.arg::<Map<String, Value>>(0) else {
        return Err(ClientError::new(
            ErrorCode::BadRequest,
            format!("{what} needs an object with a string `roomId`"),
        ));
    };
    let room = match request.get("roomId") {
        Some(Value::String(room)) if !room.is_empty() => room.clone(),
        _ => {
            return Err(ClientError::new(
                ErrorCode::BadRequest,
                "`roomId` must be a non-empty string",
            ))
        }
    };
    if room == socket.id().as_str() || !socket.in_room(&room) {
        return Err(ClientError::new(ErrorCode::NotInRoom, "join the room first").in_room(room));
    }
    Ok((request, room))
}

fn validate(socket: &Socket, event: &Event) -> Result<(String, String), ClientError> {
    let (mut request, room) = member_room(socket, event, CHAT_MESSAGE)?;
    match request.remove("text") {
        Some(Value::String(text)) if (1..=MAX_TEXT).contains(&text.chars().count()) => {
            Ok((room, text))
        }
        _ => Err(ClientError::new(
            ErrorCode::BadRequest,
            "`text` must be a string of 1 to 1000 characters",
        )
        .in_room(room)),
    }
}

fn history_request(
    socket: &Socket,
    event: &Event,
) -> Result<(String, Option<i64>, u32), ClientError> {
    let (request, room) = member_room(socket, event, CHAT_HISTORY)?;
    let before = match request.get("before") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(parse_id(id).ok_or_else(|| {
            ClientError::new(ErrorCode::BadRequest, "`before` must be a message id").in_room(&room)
        })?),
        Some(_) => {
            return Err(
                ClientError::new(ErrorCode::BadRequest, "`before` must be a message id")
                    .in_room(room),
            )
        }
    };
    let limit = match request.get("limit") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => n
            .as_u64()
            .map_or(MAX_PAGE, |n| n.min(u64::from(MAX_PAGE)) as u32),
        Some(_) => {
            return Err(ClientError::new(
                ErrorCode::BadRequest,
                "`limit` must be a positive integer (at most 200 are returned)",
            )
            .in_room(room))
        }
    };
    Ok((room, before, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_the_time() {
        let ids = Ids::default();
        let (a, at) = ids.next();
        let (b, _) = ids.next();
        assert!(b > a);
        assert!(a >> 16 >= at - 1 && a >> 16 <= at + 1000);
        ids.bump(i64::MAX / 2);
        assert!(ids.next().0 > i64::MAX / 2, "never below a stored id");
    }
}
