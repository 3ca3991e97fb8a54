//! The two transports: HTTP long-polling requests, and WebSocket connections
//! (opened directly or upgraded from polling).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::eio::{self, Frame};
use crate::queue::Closed;
use crate::session::{self, Session, CLOSED, POLLING, UPGRADING};
use crate::ws::{self, WsConn};

/// The byte stream under a WebSocket: the accepted TCP stream itself when
/// hyper gives it back (no extra buffering or boxing), any upgraded stream otherwise.
pub(crate) enum WsIo {
    Tcp(TcpStream),
    Upgraded(TokioIo<Upgraded>),
}

impl WsIo {
    /// Takes the upgraded connection apart; `leftover` is what hyper read past the request.
    pub(crate) fn from_upgraded(upgraded: Upgraded) -> (WsIo, Bytes) {
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => (WsIo::Tcp(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => (WsIo::Upgraded(TokioIo::new(upgraded)), Bytes::new()),
        }
    }
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            WsIo::Upgraded(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            WsIo::Upgraded(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_flush(cx),
            WsIo::Upgraded(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            WsIo::Upgraded(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Waits for the HTTP upgrade to finish and wraps the stream.
pub(crate) async fn accept_ws(on_upgrade: OnUpgrade, max_payload: usize) -> Option<WsConn<WsIo>> {
    let upgraded = on_upgrade.await.ok()?;
    let (io, leftover) = WsIo::from_upgraded(upgraded);
    if let WsIo::Tcp(tcp) = &io {
        // Small frames must not wait for Nagle's algorithm (measured: 4x lower relay rate).
        let _ = tcp.set_nodelay(true);
    }
    Some(WsConn::new(io, leftover, max_payload))
}

/// A WebSocket that opens a new session: the open packet is its first frame.
pub(crate) async fn run_new_ws(session: Arc<Session>, on_upgrade: OnUpgrade, open: Bytes) {
    let Some(ws) = accept_ws(on_upgrade, session.server.config.max_payload).await else {
        session.server.remove_session(session.id);
        return;
    };
    let _ = session.push([Frame::Text(open)]);
    session::run(session, Some(ws)).await;
}

/// A WebSocket upgrading a polling session: probe, then hand the socket to the session task.
pub(crate) async fn run_upgrade(session: Arc<Session>, on_upgrade: OnUpgrade) {
    let config = &session.server.config;
    let Some(mut ws) = accept_ws(on_upgrade, config.max_payload).await else {
        return;
    };
    let probe = async {
        let mut msgs = Vec::new();
        // 1. The client probes with `2probe`; we answer `3probe`.
        expect(&mut ws, &mut msgs, b"2probe").await?;
        ws.queue([Frame::Text(Bytes::from_static(b"3probe"))]);
        poll_fn(|cx| ws.poll_flush(cx)).await.ok()?;
        // 2. Release the pending GET so the client can pause polling.
        session.set_transport(UPGRADING);
        session.outbox.wake();
        // 3. The client switches with `5`. Whatever it sent right behind it
        //    (often in the same read) goes to the session, in order.
        expect(&mut ws, &mut msgs, b"5").await?;
        Some(msgs)
    };
    match tokio::time::timeout(config.upgrade_timeout, probe).await {
        Ok(Some(rest)) if session.transport() != CLOSED => session.hand_over(ws, rest),
        _ => {
            if session.transport() == UPGRADING {
                session.set_transport(POLLING);
            }
            ws.close(1000).await;
        }
    }
}

/// Reads the next message and checks it is the text `expected`.
async fn expect(ws: &mut WsConn<WsIo>, msgs: &mut Vec<ws::Message>, expected: &[u8]) -> Option<()> {
    while msgs.is_empty() {
        poll_fn(|cx| ws.poll_read(cx, msgs)).await.ok()?;
        if ws.has_unwritten() {
            poll_fn(|cx| ws.poll_flush(cx)).await.ok()?;
        }
    }
    match msgs.remove(0) {
        ws::Message::Text(t) if &t[..] == expected => Some(()),
        _ => None,
    }
}

/// Why a polling request failed.
pub(crate) enum PollError {
    /// Another request of the same kind is in flight (socket.io closes the
    /// session: "overlap from client").
    Overlap,
    /// The body is not an Engine.IO payload.
    BadPayload,
}

/// A polling GET: waits for frames and returns them as one body.
pub(crate) async fn poll_get(session: &Arc<Session>) -> Result<Bytes, PollError> {
    if session.get_active.swap(true, Ordering::AcqRel) {
        session.kill(session::CloseReason::TransportError);
        return Err(PollError::Overlap);
    }
    /// Ends the GET. Dropped unanswered means hyper gave the request up: its
    /// connection closed while the GET was pending. That is how a polling
    /// client's departure shows (a closed tab, a killed process), as Engine.IO
    /// treats it: the session ends at once, as for a WebSocket whose TCP
    /// connection drops, instead of when the heartbeat gives up. A GET that
    /// was answered is not a departure, however long the client takes to send
    /// the next one (the heartbeat covers that gap).
    struct Release<'a> {
        session: &'a Session,
        answered: bool,
    }
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.session.get_active.store(false, Ordering::Release);
            if !self.answered && self.session.transport() == POLLING {
                self.session.kill(session::CloseReason::TransportClose);
            }
        }
    }
    let mut release = Release {
        session,
        answered: false,
    };
    let mut frames = Vec::new();
    let closed = poll_fn(|cx| match session.outbox.poll_drain(cx, &mut frames) {
        Poll::Ready(Ok(())) => Poll::Ready(session.outbox.closed().is_some()),
        Poll::Ready(Err(Closed::Ended | Closed::SlowConsumer)) => Poll::Ready(true),
        Poll::Pending if session.transport() != POLLING => {
            // Upgrading: release the client with a noop so it can pause polling.
            frames.push(Frame::NOOP);
            Poll::Ready(false)
        }
        Poll::Pending => Poll::Pending,
    })
    .await;
    release.answered = true;
    if closed {
        frames.push(Frame::CLOSE);
    }
    let body = eio::encode_payload(&frames);
    session.outbox.written(&mut frames);
    Ok(body)
}

/// A polling POST: hands the body's packets to the session task.
pub(crate) async fn poll_post(session: &Arc<Session>, body: Bytes) -> Result<(), PollError> {
    if session.post_active.swap(true, Ordering::AcqRel) {
        session.kill(session::CloseReason::TransportError);
        return Err(PollError::Overlap);
    }
    let result = match eio::decode_payload(body) {
        Ok(packets) => {
            session.deliver(packets).await;
            Ok(())
        }
        Err(_) => {
            session.kill(session::CloseReason::ParseError);
            Err(PollError::BadPayload)
        }
    };
    session.post_active.store(false, Ordering::Release);
    result
}
