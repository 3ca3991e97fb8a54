//! The server side of RFC 6455 WebSocket framing, kept deliberately small.
//!
//! Why our own and not a crate: memory and write batching decide capacity
//! here. An idle connection holds no read or write buffer at all: reads go
//! through a buffer on the stack of the polling function and only the tail
//! of a frame split across reads is kept; writes encode every queued frame
//! into one buffer and hand it to the kernel in one call, keeping only what
//! the kernel did not take. No extensions are negotiated (the client's
//! permessage-deflate offer is declined by not answering it).

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::eio::Frame;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const READ_CHUNK: usize = 16 * 1024;
/// Reads per poll before yielding, so one busy connection cannot starve others.
const READS_PER_POLL: usize = 4;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    STANDARD.encode(sha.finalize())
}

/// A complete message received from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(Bytes),
    Binary(Bytes),
}

/// Why the connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WsClosed {
    /// The peer closed the connection (close frame or end of stream).
    Peer,
    /// The peer broke the protocol or exceeded the payload limit.
    Protocol(&'static str),
    TooLarge,
}

/// A server-side WebSocket connection over any byte stream.
pub struct WsConn<IO> {
    io: IO,
    /// The start of a frame whose end has not arrived yet (empty when idle).
    partial: BytesMut,
    /// A fragmented message being assembled: (is text, data so far).
    fragments: Option<(bool, BytesMut)>,
    /// Bytes the kernel has not accepted yet (empty when idle).
    unwritten: Vec<u8>,
    written: usize,
    max_payload: usize,
    close_sent: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> WsConn<IO> {
    /// Wraps a stream on which the 101 response has been sent. `leftover` holds
    /// bytes already read past the HTTP request.
    pub fn new(io: IO, leftover: Bytes, max_payload: usize) -> Self {
        WsConn {
            io,
            partial: BytesMut::from(&leftover[..]),
            fragments: None,
            unwritten: Vec::new(),
            written: 0,
            max_payload,
            close_sent: false,
        }
    }

    /// Reads what the socket has and appends the complete messages to `out`.
    /// `Ready(Ok)` once some bytes were processed (`out` may stay empty when
    /// only part of a frame arrived); `Ready(Err)` when the connection is over.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Message>,
    ) -> Poll<Result<(), WsClosed>> {
        // Bytes that arrived with the upgrade request are processed first.
        if !self.partial.is_empty() && out.is_empty() && self.parse_partial(out)? {
            return Poll::Ready(Ok(()));
        }
        let mut progressed = false;
        for _ in 0..READS_PER_POLL {
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut stack);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(WsClosed::Peer)),
                Poll::Ready(Ok(())) => {}
            }
            let chunk = buf.filled();
            if chunk.is_empty() {
                return Poll::Ready(Err(WsClosed::Peer));
            }
            progressed = true;
            if self.partial.is_empty() {
                let used = self.parse(chunk, out)?;
                if used < chunk.len() {
                    self.partial.extend_from_slice(&chunk[used..]);
                }
            } else {
                self.partial.extend_from_slice(chunk);
                self.parse_partial(out)?;
            }
            if chunk.len() < READ_CHUNK {
                break;
            }
        }
        if progressed {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn parse_partial(&mut self, out: &mut Vec<Message>) -> Result<bool, WsClosed> {
        let partial = std::mem::take(&mut self.partial);
        let used = self.parse(&partial, out)?;
        if used < partial.len() {
            self.partial = BytesMut::from(&partial[used..]);
        }
        Ok(used > 0)
    }

    /// Parses whole frames from `buf`, returns how many bytes were used.
    fn parse(&mut self, buf: &[u8], out: &mut Vec<Message>) -> Result<usize, WsClosed> {
        let mut pos = 0;
        while let Some(header) = parse_header(&buf[pos..], self.max_payload)? {
            let start = pos + header.header_len;
            let end = start + header.payload_len;
            let mut payload = BytesMut::from(&buf[start..end]);
            unmask(&mut payload, header.mask);
            pos = end;
            self.on_frame(header.fin, header.opcode, payload, out)?;
        }
        Ok(pos)
    }

    fn on_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: BytesMut,
        out: &mut Vec<Message>,
    ) -> Result<(), WsClosed> {
        match opcode {
            OP_TEXT | OP_BINARY => {
                if self.fragments.is_some() {
                    return Err(WsClosed::Protocol("new message inside a fragmented one"));
                }
                if fin {
                    out.push(finish(opcode == OP_TEXT, payload)?);
                } else {
                    self.fragments = Some((opcode == OP_TEXT, payload));
                }
            }
            OP_CONTINUATION => {
                let Some((text, mut data)) = self.fragments.take() else {
                    return Err(WsClosed::Protocol("continuation without a message"));
                };
                if data.len() + payload.len() > self.max_payload {
                    return Err(WsClosed::TooLarge);
                }
                data.extend_from_slice(&payload);
                if fin {
                    out.push(finish(text, data)?);
                } else {
                    self.fragments = Some((text, data));
                }
            }
            OP_PING => self.queue_control(OP_PONG, &payload),
            OP_PONG => {}
            OP_CLOSE => {
                self.queue_control(OP_CLOSE, payload.get(..2).unwrap_or(&[]));
                return Err(WsClosed::Peer);
            }
            _ => return Err(WsClosed::Protocol("unknown opcode")),
        }
        Ok(())
    }

    fn queue_control(&mut self, opcode: u8, payload: &[u8]) {
        if opcode == OP_CLOSE {
            if self.close_sent {
                return;
            }
            self.close_sent = true;
        }
        write_frame_header(&mut self.unwritten, opcode, payload.len());
        self.unwritten.extend_from_slice(payload);
    }

    /// Whether bytes are waiting for the kernel.
    pub fn has_unwritten(&self) -> bool {
        self.written < self.unwritten.len()
    }

    /// Encodes `frames` behind anything still unwritten. Nothing is sent until
    /// [`poll_flush`](Self::poll_flush).
    pub fn queue<F: std::borrow::Borrow<Frame>>(&mut self, frames: impl IntoIterator<Item = F>) {
        for frame in frames {
            let (opcode, data) = match frame.borrow() {
                Frame::Text(t) => (OP_TEXT, t),
                Frame::Binary(b) => (OP_BINARY, b),
                Frame::Stamped(t, offset) => {
                    let (t, offset) = (t, *offset);
                    // The stamp goes straight into the write buffer, behind
                    // the shared packet bytes: nothing is copied or re-encoded.
                    let mut digits = [0u8; 20];
                    let (body, digits) = Frame::stamp_parts(t, offset, &mut digits);
                    let len = body.len() + digits.len() + 4;
                    write_frame_header(&mut self.unwritten, OP_TEXT, len);
                    self.unwritten.extend_from_slice(body);
                    self.unwritten.extend_from_slice(b",\"");
                    self.unwritten.extend_from_slice(digits);
                    self.unwritten.extend_from_slice(b"\"]");
                    continue;
                }
            };
            write_frame_header(&mut self.unwritten, opcode, data.len());
            self.unwritten.extend_from_slice(data);
        }
    }

    /// Queues a close frame with a status code (1000 normal, 1009 too big...).
    pub fn queue_close(&mut self, code: u16) {
        self.queue_control(OP_CLOSE, &code.to_be_bytes());
    }

    /// Writes what is queued, in as few system calls as the kernel allows.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.unwritten.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.unwritten[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        // Everything went out: give the buffer back so an idle socket holds none.
        self.unwritten = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Flushes and shuts the write side down.
    pub async fn close(mut self, code: u16) {
        self.queue_close(code);
        let _ = std::future::poll_fn(|cx| self.poll_flush(cx)).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.io).await;
    }
}

fn finish(text: bool, data: BytesMut) -> Result<Message, WsClosed> {
    let data = data.freeze();
    if text {
        if std::str::from_utf8(&data).is_err() {
            return Err(WsClosed::Protocol("text frame is not UTF-8"));
        }
        Ok(Message::Text(data))
    } else {
        Ok(Message::Binary(data))
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

/// Parses a client frame header; `None` when `buf` does not hold the whole frame yet.
fn parse_header(buf: &[u8], max_payload: usize) -> Result<Option<Header>, WsClosed> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    if buf[0] & 0x70 != 0 {
        return Err(WsClosed::Protocol("reserved bits set"));
    }
    let opcode = buf[0] & 0x0F;
    if buf[1] & 0x80 == 0 {
        return Err(WsClosed::Protocol("client frames must be masked"));
    }
    let (len, mut header_len) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    if opcode >= 0x8 && (!fin || len > 125) {
        return Err(WsClosed::Protocol("bad control frame"));
    }
    if len > max_payload as u64 {
        return Err(WsClosed::TooLarge);
    }
    if buf.len() < header_len + 4 {
        return Ok(None);
    }
    let mask = [
        buf[header_len],
        buf[header_len + 1],
        buf[header_len + 2],
        buf[header_len + 3],
    ];
    header_len += 4;
    let payload_len = len as usize;
    if buf.len() < header_len + payload_len {
        return Ok(None);
    }
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        header_len,
        payload_len,
    }))
}

fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

fn write_frame_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A masked client frame, as a browser would send it.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = Vec::new();
        write_frame_header(&mut out, opcode, payload.len());
        if !fin {
            out[0] &= 0x7F;
        }
        out[1] |= 0x80;
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> (Vec<Message>, Result<(), WsClosed>) {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&bytes).await.unwrap();
        drop(client);
        let mut conn = WsConn::new(server, Bytes::new(), max);
        let mut out = Vec::new();
        loop {
            match std::future::poll_fn(|cx| conn.poll_read(cx, &mut out)).await {
                Ok(()) => continue,
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[tokio::test]
    async fn reads_text_binary_and_fragmented_messages() {
        let mut bytes = client_frame(true, OP_TEXT, b"42[\"hi\"]");
        bytes.extend(client_frame(true, OP_BINARY, &[1, 2, 3]));
        bytes.extend(client_frame(false, OP_TEXT, b"4"));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"2"));
        bytes.extend(client_frame(true, OP_TEXT, &vec![b'x'; 70_000]));
        let (msgs, end) = read_all(bytes, 1 << 20).await;
        assert_eq!(end, Err(WsClosed::Peer));
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0], Message::Text(Bytes::from_static(b"42[\"hi\"]")));
        assert_eq!(msgs[1], Message::Binary(Bytes::from_static(&[1, 2, 3])));
        assert_eq!(msgs[2], Message::Text(Bytes::from_static(b"42")));
        assert!(matches!(&msgs[3], Message::Text(t) if t.len() == 70_000));
    }

    #[tokio::test]
    async fn refuses_protocol_violations() {
        let unmasked = {
            let mut f = Vec::new();
            write_frame_header(&mut f, OP_TEXT, 1);
            f.push(b'a');
            f
        };
        let cases: Vec<(Vec<u8>, WsClosed)> = vec![
            (unmasked, WsClosed::Protocol("client frames must be masked")),
            (
                client_frame(true, OP_TEXT, &[0xff, 0xfe]),
                WsClosed::Protocol("text frame is not UTF-8"),
            ),
            (
                client_frame(true, OP_CONTINUATION, b"x"),
                WsClosed::Protocol("continuation without a message"),
            ),
            (
                client_frame(true, 0x3, b"x"),
                WsClosed::Protocol("unknown opcode"),
            ),
            (
                client_frame(false, OP_PING, b"x"),
                WsClosed::Protocol("bad control frame"),
            ),
            (
                client_frame(true, OP_TEXT, &[b'a'; 200]),
                WsClosed::TooLarge,
            ),
            (
                vec![0xF1, 0x80, 0, 0, 0, 0],
                WsClosed::Protocol("reserved bits set"),
            ),
            (
                vec![0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                WsClosed::TooLarge,
            ),
        ];
        for (bytes, expected) in cases {
            let (msgs, end) = read_all(bytes, 100).await;
            assert!(msgs.is_empty());
            assert_eq!(end, Err(expected));
        }
        // A fragmented message growing past the limit is refused too.
        let mut bytes = client_frame(false, OP_TEXT, &[b'a'; 60]);
        bytes.extend(client_frame(true, OP_CONTINUATION, &[b'a'; 60]));
        assert_eq!(read_all(bytes, 100).await.1, Err(WsClosed::TooLarge));
    }

    #[tokio::test]
    async fn frames_split_across_reads_are_reassembled() {
        let frame = client_frame(true, OP_TEXT, b"4hello");
        let (mut client, server) = tokio::io::duplex(64);
        let mut conn = WsConn::new(server, Bytes::copy_from_slice(&frame[..3]), 1000);
        client.write_all(&frame[3..5]).await.unwrap();
        let mut out = Vec::new();
        std::future::poll_fn(|cx| conn.poll_read(cx, &mut out))
            .await
            .unwrap();
        assert!(out.is_empty());
        client.write_all(&frame[5..]).await.unwrap();
        std::future::poll_fn(|cx| conn.poll_read(cx, &mut out))
            .await
            .unwrap();
        assert_eq!(out, vec![Message::Text(Bytes::from_static(b"4hello"))]);
    }

    #[tokio::test]
    async fn writes_batched_unmasked_frames_and_answers_pings() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut conn = WsConn::new(server, Bytes::new(), 1000);
        client
            .write_all(&client_frame(true, OP_PING, b"hi"))
            .await
            .unwrap();
        let mut out = Vec::new();
        std::future::poll_fn(|cx| conn.poll_read(cx, &mut out))
            .await
            .unwrap();
        conn.queue([
            Frame::Text(Bytes::from_static(b"2")),
            Frame::Binary(Bytes::from(vec![7u8; 300])),
        ]);
        std::future::poll_fn(|cx| conn.poll_flush(cx))
            .await
            .unwrap();
        assert!(!conn.has_unwritten());
        let mut got = vec![0u8; 4 + 3 + 4 + 300];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..4], &[0x8A, 2, b'h', b'i']);
        assert_eq!(&got[4..7], &[0x81, 1, b'2']);
        assert_eq!(&got[7..11], &[0x82, 126, 1, 44]);
        assert!(got[11..].iter().all(|b| *b == 7));
    }
}
