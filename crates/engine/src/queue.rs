//! The bounded outgoing queue of one session.
//!
//! Any task may push (a relay from another socket, a broadcast, a timer);
//! exactly one consumer drains it: the WebSocket writer, or the pending
//! long-polling GET. The queue is bounded in bytes: a consumer that does not
//! keep up is cut off as a slow consumer instead of growing the server's
//! memory without bound (Node buffers without bound; REFERENCE.md measured
//! +361 MB for one paused client). An idle queue holds no allocation.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use crate::eio::Frame;

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
}

/// A multi-producer, single-consumer queue of frames bounded in bytes.
pub struct Outbox {
    limit: usize,
    state: Mutex<State>,
}

impl Outbox {
    pub fn new(limit: usize) -> Self {
        Outbox {
            limit,
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
