//! One Engine.IO session and the single task that drives it.
//!
//! The task owns everything that must happen in order for one client: it
//! reads the client's packets (from the WebSocket, or as handed over by
//! long-polling POSTs), runs their handlers one at a time in arrival order,
//! answers heartbeats, and, on WebSocket, writes the outgoing queue in
//! batches. One task per connection, no per-socket handler state: this is
//! what keeps per-sender order on a multi-threaded runtime and an idle
//! connection small.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use crate::eio::{self, Frame};
use crate::event::{AckSender, Args, Event, EventName};
use crate::namespace::NsInner;
use crate::namespace::{guard, BoxFuture, Handler};
use crate::queue::{Closed, Outbox, Retain};
use crate::recovery::{self, Claim, Parked};
use crate::server::ServerInner;
use crate::sid::Sid;
use crate::sio::{self, Kind};
use crate::socket::{DisconnectReason, Socket};
use crate::transport::WsIo;
use crate::ws::{self, WsClosed, WsConn};
use crate::Handshake;

pub(crate) const POLLING: u8 = 0;
pub(crate) const UPGRADING: u8 = 1;
pub(crate) const WEBSOCKET: u8 = 2;
pub(crate) const CLOSED: u8 = 3;

/// Events of one socket that may wait behind a running async handler before
/// the reader stops taking more (backpressure instead of buffering).
const MAX_PENDING: usize = 1024;
/// Loop turns per poll before yielding to other tasks.
const TURNS_PER_POLL: usize = 32;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    TransportClose,
    TransportError,
    PingTimeout,
    ParseError,
    SlowConsumer,
    TooLarge,
    ConnectTimeout,
    ServerShutdown,
}

impl CloseReason {
    /// Whether the connection was lost rather than closed on purpose (or for
    /// misbehaving): only then is a socket's state kept for a reconnect.
    fn recoverable(self) -> bool {
        matches!(
            self,
            CloseReason::TransportClose | CloseReason::TransportError | CloseReason::PingTimeout
        )
    }

    fn for_sockets(self) -> DisconnectReason {
        match self {
            CloseReason::TransportClose | CloseReason::ConnectTimeout => {
                DisconnectReason::TransportClose
            }
            CloseReason::TransportError | CloseReason::TooLarge => DisconnectReason::TransportError,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
            CloseReason::ServerShutdown => DisconnectReason::ServerShuttingDown,
        }
    }

    fn ws_code(self) -> u16 {
        match self {
            CloseReason::TooLarge => 1009,
            CloseReason::ParseError => 1002,
            CloseReason::ServerShutdown => 1001,
            _ => 1000,
        }
    }
}

#[derive(Default)]
struct Inbox {
    packets: VecDeque<eio::Packet>,
    /// Boxed: it is there for a moment, once, in the few sessions that upgrade.
    upgrade: Option<Box<WsConn<WsIo>>>,
    close: Option<CloseReason>,
    /// The session task, waiting for packets.
    waker: Option<Waker>,
    /// The POST waiting for its packets to be taken.
    post_waker: Option<Waker>,
}

pub(crate) struct Session {
    pub(crate) id: Sid,
    pub(crate) server: Arc<ServerInner>,
    pub(crate) handshake: Handshake,
    pub(crate) outbox: Outbox,
    inbox: Mutex<Inbox>,
    transport: AtomicU8,
    pub(crate) get_active: AtomicBool,
    pub(crate) post_active: AtomicBool,
    /// The session's sockets, one per connected namespace.
    sockets: Mutex<Vec<Socket>>,
}

impl Session {
    pub(crate) fn new(
        server: Arc<ServerInner>,
        handshake: Handshake,
        transport: u8,
    ) -> Arc<Session> {
        let limit = server.config.max_queue_bytes;
        let retain = server.config.recovery.map(|r| Retain {
            max_packets: r.max_packets,
            max_bytes: r.max_bytes,
        });
        Arc::new(Session {
            id: Sid::random(),
            server,
            handshake,
            outbox: Outbox::with_recovery(limit, retain),
            inbox: Mutex::new(Inbox::default()),
            transport: AtomicU8::new(transport),
            get_active: AtomicBool::new(false),
            post_active: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
        })
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn transport(&self) -> u8 {
        self.transport.load(Ordering::Acquire)
    }

    pub(crate) fn set_transport(&self, t: u8) {
        self.transport.store(t, Ordering::Release);
    }

    /// Queues frames to the client; a slow consumer's session is ended.
    pub(crate) fn push(&self, frames: impl IntoIterator<Item = Frame>) -> Result<(), Closed> {
        let result = self.outbox.push(frames);
        if result == Err(Closed::SlowConsumer) {
            self.kill(CloseReason::SlowConsumer);
        }
        result
    }

    /// Asks the session task to end the session.
    pub(crate) fn kill(&self, reason: CloseReason) {
        let waker = {
            let mut inbox = self.inbox();
            inbox.close.get_or_insert(reason);
            inbox.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Hands packets from a polling POST to the session task; resolves once
    /// the task has taken them, so one client cannot pile up unread bodies.
    pub(crate) async fn deliver(&self, packets: Vec<eio::Packet>) {
        let waker = {
            let mut inbox = self.inbox();
            inbox.packets.extend(packets);
            inbox.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        poll_fn(|cx| {
            let mut inbox = self.inbox();
            if inbox.packets.is_empty() || inbox.close.is_some() || self.transport() == CLOSED {
                Poll::Ready(())
            } else {
                inbox.post_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Hands the upgraded WebSocket to the session task, with the messages
    /// read from it behind the upgrade packet.
    pub(crate) fn hand_over(&self, ws: WsConn<WsIo>, rest: Vec<ws::Message>) {
        let waker = {
            let mut inbox = self.inbox();
            for msg in rest {
                match msg {
                    ws::Message::Text(text) => match eio::decode_utf8(text) {
                        Ok(packet) => inbox.packets.push_back(packet),
                        Err(_) => inbox.close = Some(CloseReason::ParseError),
                    },
                    ws::Message::Binary(data) => inbox.packets.push_back(eio::Packet::Binary(data)),
                }
            }
            inbox.upgrade = Some(Box::new(ws));
            inbox.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn socket(&self, nsp: &str) -> Option<Socket> {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|s| s.ns_name() == nsp)
            .cloned()
    }

    pub(crate) fn forget_socket(&self, nsp: &str) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| s.ns_name() != nsp);
    }

    fn has_sockets(&self) -> bool {
        !self
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

/// Runs a session until it ends. `ws` is set for sessions opened directly on WebSocket.
pub(crate) async fn run(session: Arc<Session>, ws: Option<WsConn<WsIo>>) {
    let config = &session.server.config;
    let mut driver = Driver {
        heartbeat: Box::pin(tokio::time::sleep(config.ping_interval)),
        connect_deadline: Some(Box::pin(tokio::time::sleep(config.connect_timeout))),
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        awaiting_pong: false,
        ping_mark: 0,
        session,
        ws,
        job: None,
        pending: VecDeque::new(),
        partial: None,
        msgs: Vec::new(),
        frames: Vec::new(),
    };
    let reason = poll_fn(|cx| driver.poll(cx)).await;
    // Boxed so that the closing path's state is not part of every live
    // connection's task (it is needed once, at the end).
    Box::pin(driver.finish(reason)).await;
}

type Queued = (sio::Packet, Vec<Bytes>);

struct Driver {
    session: Arc<Session>,
    ws: Option<WsConn<WsIo>>,
    heartbeat: std::pin::Pin<Box<Sleep>>,
    connect_deadline: Option<std::pin::Pin<Box<Sleep>>>,
    ping_interval: Duration,
    ping_timeout: Duration,
    awaiting_pong: bool,
    /// Recovery: the last offset queued before the pending ping.
    ping_mark: u64,
    /// The async handler (or connect middleware) running for this client.
    job: Option<BoxFuture<()>>,
    /// Packets waiting for the job to finish, in arrival order.
    pending: VecDeque<Queued>,
    /// A binary packet waiting for its attachments (boxed: rare, and large).
    partial: Option<Box<Queued>>,
    msgs: Vec<ws::Message>,
    frames: Vec<Frame>,
}

impl Driver {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        for _ in 0..TURNS_PER_POLL {
            match self.turn(cx) {
                Err(reason) => return Poll::Ready(reason),
                Ok(false) => return Poll::Pending,
                Ok(true) => {}
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One pass over every source of work; `Ok(true)` if anything happened.
    fn turn(&mut self, cx: &mut Context<'_>) -> Result<bool, CloseReason> {
        let mut progress = false;

        if self.heartbeat.as_mut().poll(cx).is_ready() {
            if self.awaiting_pong {
                return Err(CloseReason::PingTimeout);
            }
            self.awaiting_pong = true;
            if self.session.server.config.recovery.is_some() {
                self.ping_mark = self.session.outbox.seq();
            }
            let _ = self.session.push([Frame::PING]);
            self.heartbeat
                .as_mut()
                .reset(Instant::now() + self.ping_timeout);
            progress = true;
        }
        if let Some(deadline) = self.connect_deadline.as_mut() {
            if self.session.has_sockets() {
                // Connected: the timer is not needed any more.
                self.connect_deadline = None;
            } else if deadline.as_mut().poll(cx).is_ready() {
                if self.job.is_none() {
                    return Err(CloseReason::ConnectTimeout);
                }
                self.connect_deadline = None;
            }
        }

        if let Some(job) = self.job.as_mut() {
            let done = match guard("async handler", || job.as_mut().poll(cx)) {
                Some(Poll::Pending) => false,
                Some(Poll::Ready(())) | None => true,
            };
            if done {
                self.job = None;
                progress = true;
                self.drain_pending()?;
            }
        }

        // Work handed over by HTTP requests: polling packets, the upgraded socket, a kill.
        let (packets, upgrade) = {
            let mut inbox = self.session.inbox();
            if let Some(reason) = inbox.close {
                return Err(reason);
            }
            let packets = if self.pending.len() < MAX_PENDING {
                if let Some(w) = inbox.post_waker.take() {
                    w.wake();
                }
                std::mem::take(&mut inbox.packets)
            } else {
                VecDeque::new()
            };
            let upgrade = inbox.upgrade.take();
            match &inbox.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inbox.waker = Some(cx.waker().clone()),
            }
            (packets, upgrade)
        };
        if let Some(ws) = upgrade {
            self.ws = Some(*ws);
            self.session.set_transport(WEBSOCKET);
            progress = true;
        }
        if !packets.is_empty() {
            progress = true;
            for packet in packets {
                self.on_engine_packet(packet)?;
            }
        }

        if self.ws.is_some() {
            progress |= self.turn_ws(cx)?;
        }
        Ok(progress)
    }

    fn turn_ws(&mut self, cx: &mut Context<'_>) -> Result<bool, CloseReason> {
        let mut progress = false;
        let ws = self.ws.as_mut().expect("checked by caller");
        let mut ended = None;
        if self.pending.len() < MAX_PENDING {
            match ws.poll_read(cx, &mut self.msgs) {
                Poll::Ready(Ok(())) => progress = true,
                Poll::Ready(Err(WsClosed::TooLarge)) => return Err(CloseReason::TooLarge),
                // The messages read before the close frame count: a client's
                // DISCONNECT right before it closes is its goodbye.
                Poll::Ready(Err(WsClosed::Peer)) => ended = Some(CloseReason::TransportClose),
                Poll::Ready(Err(WsClosed::Protocol(why))) => {
                    tracing::debug!(sid = %self.session.id, why, "websocket protocol error");
                    return Err(CloseReason::TransportError);
                }
                Poll::Pending => {}
            }
        }
        let mut msgs = std::mem::take(&mut self.msgs);
        for msg in msgs.drain(..) {
            let packet = match msg {
                ws::Message::Text(text) => {
                    eio::decode_utf8(text).map_err(|_| CloseReason::ParseError)?
                }
                ws::Message::Binary(data) => eio::Packet::Binary(data),
            };
            self.on_engine_packet(packet)?;
        }
        self.msgs = msgs;
        if let Some(reason) = ended {
            return Err(reason);
        }

        // Frames leave the bounded outbox only once the previous batch is
        // fully written: while the kernel refuses writes they wait there,
        // where the bound applies, and a client that stops reading is cut off
        // as a slow consumer instead of growing the write buffer.
        let ws = self.ws.as_mut().expect("checked by caller");
        loop {
            if ws.has_unwritten() {
                match ws.poll_flush(cx) {
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Ready(Err(_)) => return Err(CloseReason::TransportError),
                    Poll::Pending => break,
                }
            }
            match self.session.outbox.poll_drain(cx, &mut self.frames) {
                Poll::Ready(Ok(())) => {
                    ws.queue(self.frames.iter());
                    self.session.outbox.written(&mut self.frames);
                }
                Poll::Ready(Err(Closed::SlowConsumer)) => return Err(CloseReason::SlowConsumer),
                Poll::Ready(Err(Closed::Ended)) | Poll::Pending => break,
            }
        }
        Ok(progress)
    }

    fn on_engine_packet(&mut self, packet: eio::Packet) -> Result<(), CloseReason> {
        match packet {
            eio::Packet::Pong(_) => {
                if self.awaiting_pong && self.session.server.config.recovery.is_some() {
                    // Everything queued before the ping has reached the client.
                    self.session.outbox.confirm(self.ping_mark);
                }
                self.awaiting_pong = false;
                self.heartbeat
                    .as_mut()
                    .reset(Instant::now() + self.ping_interval);
            }
            eio::Packet::Ping(data) => {
                let mut pong = b"3".to_vec();
                pong.extend_from_slice(&data);
                let _ = self.session.push([Frame::Text(Bytes::from(pong))]);
            }
            eio::Packet::Message(text) => {
                if self.partial.is_some() {
                    return Err(CloseReason::ParseError);
                }
                let packet = sio::decode(text).map_err(|e| {
                    tracing::debug!(sid = %self.session.id, error = %e, "invalid socket.io packet");
                    CloseReason::ParseError
                })?;
                if packet.attachments > 0 {
                    self.partial = Some(Box::new((packet, Vec::with_capacity(1))));
                } else {
                    self.on_packet(packet, Vec::new())?;
                }
            }
            eio::Packet::Binary(data) => {
                let Some((_, attachments)) = self.partial.as_deref_mut() else {
                    return Err(CloseReason::ParseError);
                };
                attachments.push(data);
                if attachments.len() == self.partial.as_deref().map_or(0, |(p, _)| p.attachments) {
                    let (packet, attachments) = *self.partial.take().expect("just checked");
                    self.on_packet(packet, attachments)?;
                }
            }
            eio::Packet::Close => return Err(CloseReason::TransportClose),
            eio::Packet::Open | eio::Packet::Upgrade | eio::Packet::Noop => {}
        }
        Ok(())
    }

    fn on_packet(
        &mut self,
        packet: sio::Packet,
        attachments: Vec<Bytes>,
    ) -> Result<(), CloseReason> {
        if matches!(packet.kind, Kind::Ack | Kind::BinaryAck) {
            // Acks never wait behind a handler: the handler may be the one waiting for it.
            if let Some(socket) = self.session.socket(packet.nsp()) {
                let id = packet.id.expect("decode checks acks carry an id");
                socket.on_ack(id, Args::new(packet.data, packet.args, attachments));
            }
            return Ok(());
        }
        if self.job.is_some() || !self.pending.is_empty() {
            self.pending.push_back((packet, attachments));
            return Ok(());
        }
        self.dispatch(packet, attachments)
    }

    fn drain_pending(&mut self) -> Result<(), CloseReason> {
        while self.job.is_none() {
            let Some((packet, attachments)) = self.pending.pop_front() else {
                break;
            };
            self.dispatch(packet, attachments)?;
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        packet: sio::Packet,
        attachments: Vec<Bytes>,
    ) -> Result<(), CloseReason> {
        match packet.kind {
            Kind::Connect => self.connect(packet),
            Kind::Disconnect => {
                if let Some(socket) = self.session.socket(packet.nsp()) {
                    socket.close(DisconnectReason::ClientNamespaceDisconnect);
                }
                Ok(())
            }
            Kind::Event | Kind::BinaryEvent => {
                // socket.io closes a connection that sends events to a namespace it has not joined.
                let socket = self
                    .session
                    .socket(packet.nsp())
                    .ok_or(CloseReason::ParseError)?;
                let name = EventName::parse(&packet.data, &packet.args[0])
                    .ok_or(CloseReason::ParseError)?;
                let ack = packet.id.map(|id| AckSender {
                    socket: socket.clone(),
                    id,
                });
                let args = Args::with_skip(packet.data, packet.args, 1, attachments);
                self.on_event(socket, Event { name, args, ack });
                Ok(())
            }
            Kind::Ack | Kind::BinaryAck | Kind::ConnectError => Ok(()),
        }
    }

    fn on_event(&mut self, socket: Socket, event: Event) {
        let handlers = &socket.0.ns.handlers;
        for middleware in &handlers.event_middleware {
            match guard("event middleware", || middleware(&socket, &event)) {
                Some(std::ops::ControlFlow::Continue(())) => {}
                _ => return,
            }
        }
        let handler = handlers
            .events
            .get(event.name())
            .or(handlers.fallback.as_ref())
            .cloned();
        match handler {
            Some(Handler::Sync(h)) => {
                guard("event handler", || h(&socket, event));
            }
            Some(Handler::Async(h)) => {
                if let Some(job) = guard("event handler", || h(socket, event)) {
                    self.job = Some(job);
                }
            }
            None => {}
        }
    }

    fn connect(&mut self, packet: sio::Packet) -> Result<(), CloseReason> {
        let nsp = packet.nsp();
        let Some(ns) = self.session.server.namespaces.get(nsp).cloned() else {
            let _ = self.session.push([Frame::Text(sio::connect_error(
                nsp,
                "Invalid namespace",
                None,
            ))]);
            return Ok(());
        };
        if self.session.socket(nsp).is_some() {
            // socket.io closes a connection that connects a namespace twice.
            return Err(CloseReason::ParseError);
        }
        let auth = if packet.data.is_empty() {
            None
        } else {
            serde_json::from_slice(&packet.data).ok()
        };
        let claim = match (&ns.recovery, recovery::resume_request(auth.as_deref())) {
            (Some(store), Some((pid, offset))) => store.clone().claim(pid, offset),
            _ => Claim::Ready(None),
        };
        let session = self.session.clone();
        match claim {
            Claim::Ready(restore) => self.job = start_connect(ns, session, auth, restore),
            // A shared store may ask another node: the client's later packets
            // wait behind the claim like behind connect middleware.
            Claim::Pending(claim) => {
                self.job = Some(Box::pin(async move {
                    let restore = claim.await;
                    if let Some(job) = start_connect(ns, session, auth, restore) {
                        job.await;
                    }
                }))
            }
        }
        Ok(())
    }

    async fn finish(mut self, reason: CloseReason) {
        let session = self.session.clone();
        session.set_transport(CLOSED);
        session.server.remove_session(session.id);
        self.job = None;
        let sockets =
            std::mem::take(&mut *session.sockets.lock().unwrap_or_else(|e| e.into_inner()));
        // A lost connection's sockets are kept for a reconnect, with what
        // their queue held that the client may not have received.
        let leftover = (session.server.config.recovery.is_some()
            && reason.recoverable()
            && !sockets.is_empty())
        .then(|| session.outbox.take_leftover());
        for socket in sockets {
            socket.close_with(reason.for_sockets(), leftover.as_ref());
        }
        if reason == CloseReason::ServerShutdown {
            let _ = session.outbox.push([Frame::CLOSE]);
        }
        session.outbox.close();
        if let Some(post) = session.inbox().post_waker.take() {
            post.wake();
        }
        tracing::debug!(sid = %session.id, ?reason, "session closed");
        if let Some(mut ws) = self.ws.take() {
            if matches!(
                reason,
                CloseReason::TransportClose | CloseReason::TransportError
            ) {
                return;
            }
            // Last words (disconnect packets, the close packet) go out, within a bound.
            let flush = async {
                let mut frames = Vec::new();
                while let Ok(()) = poll_fn(|cx| session.outbox.poll_drain(cx, &mut frames)).await {
                    ws.queue(frames.drain(..));
                }
                let _ = poll_fn(|cx| ws.poll_flush(cx)).await;
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(reason.ws_code())).await;
        }
    }
}

/// Builds the socket (restored, or new) and makes it live, at once or,
/// when connect middleware must run first, in the returned job.
fn start_connect(
    ns: Arc<NsInner>,
    session: Arc<Session>,
    auth: Option<Box<serde_json::value::RawValue>>,
    mut restore: Option<Parked>,
) -> Option<BoxFuture<()>> {
    let socket = match restore.as_mut() {
        Some(parked) => Socket::restored(ns.clone(), session.clone(), auth, parked),
        None => Socket::new(ns.clone(), session.clone(), auth),
    };
    let skip = restore.is_some()
        && session
            .server
            .config
            .recovery
            .is_some_and(|r| r.skip_middleware);
    if ns.handlers.middleware.is_empty() || skip {
        finish_connect(socket, restore);
        return None;
    }
    let middleware = ns.handlers.middleware.clone();
    Some(Box::pin(async move {
        for m in middleware {
            if let Err(refusal) = m(socket.clone()).await {
                let text =
                    sio::connect_error(socket.ns_name(), &refusal.message, refusal.data.as_ref());
                let _ = socket.0.session.push([Frame::Text(text)]);
                return;
            }
        }
        finish_connect(socket, restore);
    }))
}

/// Makes a socket that passed its middleware live, and tells the client; a
/// recovered socket gets its rooms back and then the packets it missed.
fn finish_connect(socket: Socket, restore: Option<Parked>) {
    let session = socket.0.session.clone();
    if session.transport() == CLOSED {
        // The connection went while its session was being claimed (from
        // another node, say): the session is kept again for the next try.
        if let (Some(mut parked), Some(store)) = (restore, &socket.0.ns.recovery) {
            parked.data = socket.data_clone();
            parked.portable = socket.0.ns.shared_store.then(|| socket.portable_data());
            store.park(parked);
        }
        return;
    }
    session
        .sockets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(socket.clone());
    let rooms = restore.map(|parked| {
        // Offsets keep growing across the socket's sessions, so the client's
        // last offset always points into the latest one. The missed packets
        // go first, as socket.io sends them: the client holds them until the
        // CONNECT answer and then delivers them before `connect`, so nothing
        // sent to the socket once it is live can overtake them.
        session.outbox.continue_after(parked.last_offset);
        if !parked.frames.is_empty() {
            let _ = session.push(parked.frames);
        }
        parked.rooms
    });
    let answer = match socket.0.pid {
        Some(pid) => sio::connect_ok_with_pid(socket.ns_name(), socket.id().as_str(), pid.as_str()),
        None => sio::connect_ok(socket.ns_name(), socket.id().as_str()),
    };
    let _ = session.push([Frame::Text(answer)]);
    socket.open();
    for room in rooms.iter().flatten() {
        socket.join(room);
    }
    if let Some(store) = socket.0.ns.shared_store() {
        store.opened(&socket);
    }
    for hook in &socket.0.ns.handlers.connect {
        guard("connect handler", || hook(&socket));
    }
}
