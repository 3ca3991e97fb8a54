//! The bounded outgoing queue of one session.
//!
//! Any task may push (a relay from another socket, a broadcast, a timer);
//! exactly one consumer drains it: the WebSocket writer, or the pending
//! long-polling GET. The queue is bounded in bytes: a consumer that does not
//! keep up is cut off as a slow consumer instead of growing the server's
//! memory without bound (Node buffers without bound; REFERENCE.md measured
//! +361 MB for one paused client). An idle queue holds no allocation.
//!
//! With connection-state recovery on, the queue also stamps each plain event
//! with the session's next offset (under the lock it already takes, so the
//! offsets follow queue order) and keeps the stamped frames it handed to the
//! transport until the client proves it received them by answering a ping
//! queued after them: what was written to a connection that then died can be
//! replayed. That history is bounded like the missed packets of an absent
//! socket, and released once confirmed, so an idle socket keeps nothing.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use crate::eio::Frame;
use crate::sio;

/// Bookkeeping cost of one queued frame on top of its bytes.
const FRAME_OVERHEAD: usize = 64;

/// Why the queue stopped accepting frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The session ended.
    Ended,
    /// The consumer fell behind by more than the limit.
    SlowConsumer,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    waker: Option<Waker>,
    closed: Option<Closed>,
    /// Recovery: the last offset given to a frame.
    seq: u64,
    /// Recovery: the highest offset dropped from `sent` by the limits before
    /// the client confirmed it (a client whose last offset is older may have
    /// missed it, so it cannot be recovered).
    lost: u64,
    /// Recovery: stamped frames (with the attachments behind them) handed to
    /// the transport and not yet confirmed by a pong.
    sent: VecDeque<Frame>,
    sent_bytes: usize,
    sent_packets: usize,
}

/// How much a session keeps for connection-state recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retain {
    pub(crate) max_packets: usize,
    pub(crate) max_bytes: usize,
}

/// What a dead session's queue leaves for recovery: every stamped frame the
/// client may not have received (sent unconfirmed, then never sent), in order.
pub(crate) struct Leftover {
    pub(crate) frames: Vec<Frame>,
    pub(crate) lost: u64,
    pub(crate) seq: u64,
}

impl State {
    /// Keeps the stamped frames of a written batch and their attachments,
    /// within `retain` (moved, not copied: no reference count is taken).
    fn keep(&mut self, written: &mut Vec<Frame>, retain: Retain) {
        let mut keep = false;
        for frame in written.drain(..) {
            keep = match frame {
                Frame::Stamped(..) => true,
                Frame::Text(_) => false,
                Frame::Binary(_) => keep,
            };
            if keep {
                self.sent_bytes += frame.len() + FRAME_OVERHEAD;
                self.sent_packets += usize::from(frame.offset().is_some());
                self.sent.push_back(frame);
            }
        }
        while self.sent_packets > retain.max_packets || self.sent_bytes > retain.max_bytes {
            if let Some(offset) = self.pop_sent_packet() {
                self.lost = self.lost.max(offset);
            } else {
                break;
            }
        }
    }

    /// Drops the oldest kept packet (and its attachments); returns its offset.
    fn pop_sent_packet(&mut self) -> Option<u64> {
        let first = self.sent.pop_front()?;
        self.sent_bytes -= first.len() + FRAME_OVERHEAD;
        let offset = first.offset();
        self.sent_packets -= usize::from(offset.is_some());
        while matches!(self.sent.front(), Some(Frame::Binary(_))) {
            let b = self.sent.pop_front().expect("just checked");
            self.sent_bytes -= b.len() + FRAME_OVERHEAD;
        }
        offset
    }
}

impl Leftover {
    /// The frames of namespace `nsp` (with their attachments).
    pub(crate) fn frames_of(&self, nsp: &str) -> Vec<Frame> {
        let mut keep = false;
        self.frames
            .iter()
            .filter(|frame| {
                keep = match frame.text() {
                    Some(text) => sio::outgoing_header(text).0 == nsp.as_bytes(),
                    None => keep,
                };
                keep
            })
            .cloned()
            .collect()
    }
}

/// A multi-producer, single-consumer queue of frames bounded in bytes.
pub struct Outbox {
    limit: usize,
    retain: Option<Retain>,
    state: Mutex<State>,
}

impl Outbox {
    #[cfg(test)]
    pub fn new(limit: usize) -> Self {
        Self::with_recovery(limit, None)
    }

    /// A queue that stamps offsets and keeps unconfirmed frames within `retain`.
    pub(crate) fn with_recovery(limit: usize, retain: Option<Retain>) -> Self {
        Outbox {
            limit,
            retain,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every update is a single push or drain), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues frames (all or none). Fails when the queue is closed; overflowing
    /// the limit closes it as [`Closed::SlowConsumer`] and wakes the consumer so
    /// it can end the session.
    pub fn push(&self, frames: impl IntoIterator<Item = Frame>) -> Result<(), Closed> {
        let waker = {
            let mut st = self.lock();
            if let Some(closed) = st.closed {
                return Err(closed);
            }
            let before = st.frames.len();
            for frame in frames {
                let frame = match frame {
                    Frame::Text(t) | Frame::Stamped(t, _)
                        if self.retain.is_some() && sio::outgoing_header(&t).1 =>
                    {
                        st.seq += 1;
                        Frame::Stamped(t, st.seq)
                    }
                    frame => frame,
                };
                st.bytes += frame.len() + FRAME_OVERHEAD;
                st.frames.push_back(frame);
            }
            if st.bytes > self.limit && st.frames.len() > 1 {
                st.frames.truncate(before);
                st.closed = Some(Closed::SlowConsumer);
                st.frames.clear();
                st.bytes = 0;
                let waker = st.waker.take();
                drop(st);
                if let Some(w) = waker {
                    w.wake();
                }
                return Err(Closed::SlowConsumer);
            }
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Moves every queued frame into `out`. `Pending` (waker stored) when empty,
    /// `Ready(Err)` once closed and drained.
    pub fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<Frame>,
    ) -> Poll<Result<(), Closed>> {
        let mut st = self.lock();
        if !st.frames.is_empty() {
            out.extend(st.frames.drain(..));
            st.bytes = 0;
            if st.frames.capacity() > 64 {
                // Release a burst's memory once it has gone out.
                st.frames = VecDeque::new();
            }
            return Poll::Ready(Ok(()));
        }
        if let Some(closed) = st.closed {
            return Poll::Ready(Err(closed));
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Whether frames are waiting.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lock().frames.is_empty()
    }

    /// Stops accepting frames; frames already queued can still be drained.
    pub fn close(&self) {
        let waker = {
            let mut st = self.lock();
            st.closed.get_or_insert(Closed::Ended);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Takes back a batch the consumer has written (emptying `written`):
    /// with recovery on, its stamped frames are kept until the client
    /// confirms them. The consumer writes from references and hands the
    /// frames back here, so keeping them costs no copy or reference count.
    pub(crate) fn written(&self, written: &mut Vec<Frame>) {
        match self.retain {
            Some(retain) if !written.is_empty() => self.lock().keep(written, retain),
            _ => written.clear(),
        }
    }

    /// The last offset stamped so far (recovery).
    pub(crate) fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Makes later offsets follow `seq`: a recovered socket's offsets keep
    /// growing across its sessions.
    pub(crate) fn continue_after(&self, seq: u64) {
        let mut st = self.lock();
        st.seq = st.seq.max(seq);
    }

    /// The client answered a ping queued when the last offset was `seq`: it
    /// has every frame up to there, which need not be kept any more.
    pub(crate) fn confirm(&self, seq: u64) {
        let mut st = self.lock();
        while st
            .sent
            .front()
            .and_then(Frame::offset)
            .is_some_and(|o| o <= seq)
        {
            st.pop_sent_packet();
        }
        if st.sent.is_empty() && st.sent.capacity() > 0 {
            st.sent = VecDeque::new();
        }
    }

    /// Closes the queue and takes what recovery needs of it.
    pub(crate) fn take_leftover(&self) -> Leftover {
        let waker = {
            let mut st = self.lock();
            st.closed.get_or_insert(Closed::Ended);
            let mut frames: Vec<Frame> = std::mem::take(&mut st.sent).into();
            let mut keep = false;
            for frame in std::mem::take(&mut st.frames) {
                keep = match frame {
                    Frame::Stamped(..) => true,
                    Frame::Text(_) => false,
                    Frame::Binary(_) => keep,
                };
                if keep {
                    frames.push(frame);
                }
            }
            st.bytes = 0;
            st.sent_bytes = 0;
            st.sent_packets = 0;
            let leftover = Leftover {
                frames,
                lost: st.lost,
                seq: st.seq,
            };
            (leftover, st.waker.take())
        };
        if let Some(w) = waker.1 {
            w.wake();
        }
        waker.0
    }

    /// Why the queue is closed, if it is.
    pub fn closed(&self) -> Option<Closed> {
        self.lock().closed
    }

    /// Wakes the consumer without queueing anything (used to release a pending GET).
    pub fn wake(&self) {
        let waker = self.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::future::poll_fn;

    fn text(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    #[tokio::test]
    async fn frames_come_out_in_order() {
        let q = Outbox::new(1 << 20);
        q.push([text("a"), text("b")]).unwrap();
        q.push([text("c")]).unwrap();
        let mut out = Vec::new();
        poll_fn(|cx| q.poll_drain(cx, &mut out)).await.unwrap();
        assert_eq!(out, vec![text("a"), text("b"), text("c")]);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_push_wakes_the_waiting_consumer() {
        let q = std::sync::Arc::new(Outbox::new(1 << 20));
        let q2 = q.clone();
        let consumer = tokio::spawn(async move {
            let mut out = Vec::new();
            poll_fn(|cx| q2.poll_drain(cx, &mut out)).await.unwrap();
            out
        });
        tokio::task::yield_now().await;
        q.push([text("x")]).unwrap();
        assert_eq!(consumer.await.unwrap(), vec![text("x")]);
    }

    #[tokio::test]
    async fn overflow_cuts_off_the_slow_consumer() {
        let q = Outbox::new(300);
        q.push([text("first")]).unwrap();
        let big = Frame::Binary(Bytes::from(vec![0u8; 400]));
        assert_eq!(q.push([big.clone()]), Err(Closed::SlowConsumer));
        assert_eq!(q.push([text("late")]), Err(Closed::SlowConsumer));
        let mut out = Vec::new();
        assert_eq!(
            poll_fn(|cx| q.poll_drain(cx, &mut out)).await,
            Err(Closed::SlowConsumer)
        );
        // A single frame larger than the limit into an empty queue still passes:
        // the limit bounds backlog, not message size (maxPayload does that).
        let q = Outbox::new(300);
        q.push([big]).unwrap();
    }

    #[tokio::test]
    async fn recovery_stamps_events_and_keeps_them_until_confirmed() {
        let retain = Retain {
            max_packets: 3,
            max_bytes: 1 << 20,
        };
        let q = Outbox::with_recovery(1 << 20, Some(retain));
        q.push([text("42[\"a\"]"), text("2"), text("421[\"ack\"]")])
            .unwrap();
        q.push([
            text("451-[\"b\",{\"_placeholder\":true,\"num\":0}]"),
            Frame::Binary(Bytes::from_static(b"x")),
        ])
        .unwrap();
        let mut out = Vec::new();
        poll_fn(|cx| q.poll_drain(cx, &mut out)).await.unwrap();
        let offsets: Vec<_> = out.iter().map(Frame::offset).collect();
        assert_eq!(offsets, vec![Some(1), None, None, Some(2), None]);
        q.written(&mut out);
        assert!(out.is_empty());
        let ping_mark = q.seq();
        q.push([text("42[\"c\"]")]).unwrap();
        q.confirm(ping_mark);
        let left = q.take_leftover();
        assert_eq!((left.lost, left.seq), (0, 3));
        assert_eq!(
            left.frames,
            vec![Frame::Stamped(Bytes::from_static(b"42[\"c\"]"), 3)]
        );
        assert_eq!(q.push([text("late")]), Err(Closed::Ended));

        // Past the limit the oldest kept packets go, and the queue remembers it.
        let q = Outbox::with_recovery(1 << 20, Some(retain));
        for _ in 0..5 {
            q.push([text("42[\"x\"]")]).unwrap();
            poll_fn(|cx| q.poll_drain(cx, &mut out)).await.unwrap();
            q.written(&mut out);
        }
        let left = q.take_leftover();
        assert_eq!((left.lost, left.seq, left.frames.len()), (2, 5, 3));
    }

    #[tokio::test]
    async fn close_lets_queued_frames_drain_first() {
        let q = Outbox::new(1 << 20);
        q.push([text("last words")]).unwrap();
        q.close();
        assert_eq!(q.push([text("too late")]), Err(Closed::Ended));
        let mut out = Vec::new();
        poll_fn(|cx| q.poll_drain(cx, &mut out)).await.unwrap();
        assert_eq!(out, vec![text("last words")]);
        assert_eq!(
            poll_fn(|cx| q.poll_drain(cx, &mut out)).await,
            Err(Closed::Ended)
        );
    }
}
