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
//!
//! The history is a [`SentLog`]: the kept frames' bytes are copied, in
//! order, into a few blocks of up to 16 KiB, and the frames themselves are
//! dropped at once, while their memory is still in cache. Keeping the frames
//! instead (as the first version did) held one or two small allocations per
//! frame for up to a ping interval, so every envelope of a busy socket
//! freed, and then allocated again, memory gone cold a thousand frames
//! earlier: several cache misses per envelope. Dropping confirmed (or
//! over-limit) frames from the log only moves an index; a block is freed
//! once all of it is gone.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::eio::{Frame, STAMP_MAX};
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
    sent: SentLog,
}

/// Bytes of a full block of the [`SentLog`] (a larger frame makes a larger one).
const LOG_BLOCK: usize = 16 * 1024;

/// One frame kept in the [`SentLog`].
#[derive(Debug, Clone, Copy)]
struct Kept {
    len: usize,
    /// The offset of a stamped frame; `None` for an attachment.
    offset: Option<u64>,
}

/// The frames written to the transport and not yet confirmed, oldest first,
/// as copies of their bytes in blocks: a frame never spans two blocks, so
/// each is one slice; popping one moves `head` along the first block.
#[derive(Default)]
struct SentLog {
    blocks: VecDeque<Vec<u8>>,
    /// Where the oldest kept frame starts in the first block.
    head: usize,
    kept: VecDeque<Kept>,
    /// Counted like the queue: the frames' lengths plus [`FRAME_OVERHEAD`] each.
    bytes: usize,
    /// Kept stamped frames (attachments not counted).
    packets: usize,
}

impl SentLog {
    fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Copies a written frame in (the caller drops the frame).
    fn push(&mut self, frame: &Frame) {
        let (data, offset) = match frame {
            Frame::Stamped(t, offset) => (t, Some(*offset)),
            Frame::Binary(b) | Frame::Text(b) => (b, None),
        };
        // The first block starts at the frame's size and grows like a vector
        // up to LOG_BLOCK (a socket that keeps a few frames holds a small
        // block); then a frame that does not fit starts the next block.
        let fits = self
            .blocks
            .back()
            .is_some_and(|block| block.len() + data.len() <= block.capacity().max(LOG_BLOCK));
        if !fits {
            let capacity = if self.blocks.is_empty() {
                data.len()
            } else {
                data.len().max(LOG_BLOCK)
            };
            self.blocks.push_back(Vec::with_capacity(capacity));
        }
        let block = self.blocks.back_mut().expect("ensured above");
        let needed = block.len() + data.len();
        if needed > block.capacity() {
            let grown = (block.capacity() * 2).clamp(needed, LOG_BLOCK.max(needed));
            block.reserve_exact(grown - block.len());
        }
        block.extend_from_slice(data);
        self.kept.push_back(Kept {
            len: data.len(),
            offset,
        });
        self.bytes += frame.len() + FRAME_OVERHEAD;
        self.packets += usize::from(offset.is_some());
    }

    /// Whether the oldest kept frame is an attachment.
    fn front_is_attachment(&self) -> bool {
        self.kept.front().is_some_and(|k| k.offset.is_none())
    }

    /// The oldest kept frame's offset (`None` for an attachment or when empty).
    fn front_offset(&self) -> Option<u64> {
        self.kept.front().and_then(|k| k.offset)
    }

    /// Removes the oldest kept frame; returns it and its bytes.
    fn pop(&mut self) -> Option<(Kept, &[u8])> {
        let kept = self.kept.pop_front()?;
        if self.head + kept.len > self.blocks.front().map_or(0, Vec::len) {
            // The frame did not fit behind the previous ones: it starts the next block.
            self.blocks.pop_front();
            self.head = 0;
        }
        let start = self.head;
        self.head += kept.len;
        self.bytes -= kept.len + kept.offset.map_or(0, |_| STAMP_MAX) + FRAME_OVERHEAD;
        self.packets -= usize::from(kept.offset.is_some());
        let data = self
            .blocks
            .front()
            .map_or(&[][..], |block| &block[start..self.head]);
        Some((kept, data))
    }

    /// Drops the oldest kept packet (and its attachments); returns its offset.
    fn pop_packet(&mut self) -> Option<u64> {
        let offset = self.pop()?.0.offset;
        while self.front_is_attachment() {
            self.pop();
        }
        self.release_if_empty();
        offset
    }

    /// Gives the blocks back once nothing is kept: an idle socket holds none.
    fn release_if_empty(&mut self) {
        if self.is_empty() && !self.blocks.is_empty() {
            *self = SentLog::default();
        }
    }

    /// Empties the log into frames (copies), oldest first.
    fn take_frames(&mut self) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(self.kept.len());
        while let Some((kept, data)) = self.pop() {
            let data = Bytes::copy_from_slice(data);
            frames.push(match kept.offset {
                Some(offset) => Frame::Stamped(data, offset),
                None => Frame::Binary(data),
            });
        }
        *self = SentLog::default();
        frames
    }
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
    /// within `retain` (copied into the log; the frames are dropped here).
    fn keep(&mut self, written: &mut Vec<Frame>, retain: Retain) {
        let mut keep = false;
        for frame in written.drain(..) {
            keep = match frame {
                Frame::Stamped(..) => true,
                Frame::Text(_) => false,
                Frame::Binary(_) => keep,
            };
            if keep {
                self.sent.push(&frame);
            }
        }
        while self.sent.packets > retain.max_packets || self.sent.bytes > retain.max_bytes {
            match self.sent.pop_packet() {
                Some(offset) => self.lost = self.lost.max(offset),
                None => break,
            }
        }
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
    /// confirms them (their bytes copied into the sent log, see the module
    /// documentation), and the frames are dropped here.
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
        while st.sent.front_offset().is_some_and(|o| o <= seq) {
            st.sent.pop_packet();
        }
    }

    /// Closes the queue and takes what recovery needs of it.
    pub(crate) fn take_leftover(&self) -> Leftover {
        let waker = {
            let mut st = self.lock();
            st.closed.get_or_insert(Closed::Ended);
            let mut frames = st.sent.take_frames();
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
    use std::future::poll_fn;

    fn text(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    fn text_frame(s: &str) -> Frame {
        Frame::Text(Bytes::copy_from_slice(s.as_bytes()))
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
    async fn the_sent_log_gives_back_what_it_kept_across_blocks() {
        let retain = Retain {
            max_packets: 10_000,
            max_bytes: 64 << 20,
        };
        let q = Outbox::with_recovery(64 << 20, Some(retain));
        let mut expected = Vec::new();
        let mut out = Vec::new();
        for i in 0..400u64 {
            // Sizes that straddle the blocks, one frame larger than a block,
            // an attachment now and then, and frames that are not kept.
            let size = if i == 150 {
                3 * LOG_BLOCK
            } else {
                (i as usize * 37) % 900
            };
            let text = format!("42[\"e\",\"{}\"]", "x".repeat(size));
            let mut batch = vec![Frame::Text(Bytes::from(text.clone()))];
            expected.push(Frame::Stamped(Bytes::from(text), i + 1));
            if i % 7 == 0 {
                let data = Bytes::from(vec![i as u8; size / 2]);
                batch[0] = Frame::Text(Bytes::from(format!(
                    "451-[\"b\",{{\"_placeholder\":true,\"num\":0}},\"{}\"]",
                    "y".repeat(size)
                )));
                expected.pop();
                expected.push(Frame::Stamped(batch[0].text().unwrap().clone(), i + 1));
                batch.push(Frame::Binary(data.clone()));
                expected.push(Frame::Binary(data));
            }
            if i % 5 == 0 {
                batch.push(text_frame("3"));
            }
            q.push(batch).unwrap();
            poll_fn(|cx| q.poll_drain(cx, &mut out)).await.unwrap();
            q.written(&mut out);
        }
        assert!(q.lock().sent.blocks.len() > 3, "several blocks in use");
        // The client confirms up to offset 100: the rest comes back, in order.
        q.confirm(100);
        let rest: Vec<Frame> = expected
            .into_iter()
            .skip_while(|f| f.offset().is_none_or(|o| o <= 100))
            .collect();
        let left = q.take_leftover();
        assert_eq!((left.lost, left.seq), (0, 400));
        assert_eq!(left.frames.len(), rest.len());
        assert!(left.frames == rest, "the kept frames come back unchanged");

        // Confirming everything gives every block back.
        let q = Outbox::with_recovery(64 << 20, Some(retain));
        for _ in 0..100 {
            q.push([text("42[\"z\"]")]).unwrap();
            poll_fn(|cx| q.poll_drain(cx, &mut out)).await.unwrap();
            q.written(&mut out);
        }
        q.confirm(q.seq());
        let st = q.lock();
        assert!(st.sent.is_empty() && st.sent.blocks.is_empty());
        assert_eq!((st.sent.bytes, st.sent.packets), (0, 0));
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
