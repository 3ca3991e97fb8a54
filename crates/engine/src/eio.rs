//! Engine.IO 4 packets: the framing under Socket.IO.
//!
//! A packet is one type digit followed by its data. On WebSocket each text
//! frame carries one packet and each binary frame one binary message; on HTTP
//! long-polling several packets share a body, joined by the record separator
//! (0x1e), binary messages written as `b` + base64.
//!
//! Outgoing packets are kept as [`Frame`]s holding the complete wire text
//! (type digit included), so a packet encoded once can be queued to many
//! sockets by reference count and written to either transport unchanged.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

/// The record separator joining packets in a polling body.
pub const SEPARATOR: u8 = 0x1e;

/// An incoming Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Open,
    Close,
    /// Data is `probe` during an upgrade, empty otherwise.
    Ping(Bytes),
    Pong(Bytes),
    /// A text message: the Socket.IO packet text (valid UTF-8).
    Message(Bytes),
    /// A binary message: a Socket.IO attachment.
    Binary(Bytes),
    Upgrade,
    Noop,
}

/// Why bytes could not be read as Engine.IO packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    UnknownType(u8),
    NotUtf8,
    BadBase64,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty packet"),
            DecodeError::UnknownType(t) => write!(f, "unknown packet type {t:#x}"),
            DecodeError::NotUtf8 => f.write_str("text packet is not UTF-8"),
            DecodeError::BadBase64 => f.write_str("binary packet is not base64"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one text packet (a WebSocket text frame, or one part of a polling body).
pub fn decode_text(text: Bytes) -> Result<Packet, DecodeError> {
    if std::str::from_utf8(&text).is_err() {
        return Err(DecodeError::NotUtf8);
    }
    decode_utf8(text)
}

/// Decodes one text packet already known to be UTF-8 (a WebSocket text
/// frame, which the framing layer validated): the check is not done twice.
pub fn decode_utf8(text: Bytes) -> Result<Packet, DecodeError> {
    let Some(&kind) = text.first() else {
        return Err(DecodeError::Empty);
    };
    let data = text.slice(1..);
    Ok(match kind {
        b'0' => Packet::Open,
        b'1' => Packet::Close,
        b'2' => Packet::Ping(data),
        b'3' => Packet::Pong(data),
        b'4' => Packet::Message(data),
        b'5' => Packet::Upgrade,
        b'6' => Packet::Noop,
        other => return Err(DecodeError::UnknownType(other)),
    })
}

/// Decodes a polling request body into its packets.
pub fn decode_payload(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    let mut packets = Vec::new();
    let mut start = 0;
    for end in memchr_all(&body).chain(std::iter::once(body.len())) {
        let part = body.slice(start..end);
        start = end + 1;
        if part.first() == Some(&b'b') {
            let raw = STANDARD
                .decode(&part[1..])
                .map_err(|_| DecodeError::BadBase64)?;
            packets.push(Packet::Binary(Bytes::from(raw)));
        } else {
            packets.push(decode_text(part)?);
        }
    }
    Ok(packets)
}

fn memchr_all(body: &[u8]) -> impl Iterator<Item = usize> + '_ {
    body.iter()
        .enumerate()
        .filter(|(_, b)| **b == SEPARATOR)
        .map(|(i, _)| i)
}

/// An outgoing packet, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete text packet, type digit included (`"2"`, `"42[...]"`).
    Text(Bytes),
    /// A binary message (a Socket.IO attachment).
    Binary(Bytes),
    /// An event text packet (ending in `]`) stamped with its connection-state
    /// recovery offset: written as the text with `,"<offset>"` inserted before
    /// the closing bracket (the extra last argument socket.io's client keeps as
    /// its last offset). The stamp is written straight into the transport's
    /// output buffer, so the shared packet bytes are never copied or re-encoded.
    Stamped(Bytes, u64),
}

impl Frame {
    pub(crate) const PING: Frame = Frame::Text(Bytes::from_static(b"2"));
    pub(crate) const NOOP: Frame = Frame::Text(Bytes::from_static(b"6"));
    pub(crate) const CLOSE: Frame = Frame::Text(Bytes::from_static(b"1"));

    /// A message packet (`4` + text) from Socket.IO packet text.
    pub fn message(sio_text: &[u8]) -> Frame {
        let mut buf = BytesMut::with_capacity(sio_text.len() + 1);
        buf.put_u8(b'4');
        buf.put_slice(sio_text);
        Frame::Text(buf.freeze())
    }

    /// Bytes this frame holds, for queue accounting.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b.len(),
            Frame::Stamped(b, _) => b.len() + STAMP_MAX,
        }
    }

    /// The recovery offset, for a stamped frame.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Frame::Stamped(_, offset) => Some(*offset),
            _ => None,
        }
    }

    /// The text of a text frame (stamped or not), without any stamp.
    pub fn text(&self) -> Option<&Bytes> {
        match self {
            Frame::Text(t) | Frame::Stamped(t, _) => Some(t),
            Frame::Binary(_) => None,
        }
    }

    /// Writes a text frame's wire text (stamp included) to `out`.
    pub(crate) fn write_text(text: &[u8], offset: u64, out: &mut Vec<u8>) {
        let mut digits = [0u8; 20];
        let (body, digits) = Frame::stamp_parts(text, offset, &mut digits);
        out.extend_from_slice(body);
        out.extend_from_slice(b",\"");
        out.extend_from_slice(digits);
        out.extend_from_slice(b"\"]");
    }

    /// A stamped frame's text without its closing `]`, and the offset's digits
    /// (formatted into `buf`): the wire text is `body,"digits"]`.
    pub(crate) fn stamp_parts<'a>(
        text: &'a [u8],
        offset: u64,
        buf: &'a mut [u8; 20],
    ) -> (&'a [u8], &'a [u8]) {
        // Stamped frames are events, whose text always ends with the array's `]`.
        let body = text.strip_suffix(b"]").unwrap_or(text);
        (body, format_u64(offset, buf))
    }

    /// Whether the frame holds no bytes (never true for a valid packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Most bytes a stamp adds: `,"` + 20 digits + `"` (the `]` is already there).
pub(crate) const STAMP_MAX: usize = 23;

/// `n` in decimal, written into `buf` without allocating.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// The open packet that starts every session.
pub fn open_packet(
    sid: &str,
    upgrades: &[&str],
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: usize,
) -> Bytes {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Open<'a> {
        sid: &'a str,
        upgrades: &'a [&'a str],
        ping_interval: u64,
        ping_timeout: u64,
        max_payload: usize,
    }
    let mut out = b"0".to_vec();
    serde_json::to_writer(
        &mut out,
        &Open {
            sid,
            upgrades,
            ping_interval,
            ping_timeout,
            max_payload,
        },
    )
    .expect("serialising plain data cannot fail");
    Bytes::from(out)
}

/// Joins frames into one polling response body.
pub fn encode_payload(frames: &[Frame]) -> Bytes {
    let size: usize = frames
        .iter()
        .map(|f| match f {
            Frame::Text(t) => t.len() + 1,
            Frame::Stamped(t, _) => t.len() + STAMP_MAX + 1,
            Frame::Binary(b) => b.len().div_ceil(3) * 4 + 2,
        })
        .sum();
    let mut out = Vec::with_capacity(size);
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        match frame {
            Frame::Text(t) => out.extend_from_slice(t),
            Frame::Stamped(t, offset) => Frame::write_text(t, *offset, &mut out),
            Frame::Binary(b) => {
                out.push(b'b');
                let start = out.len();
                out.resize(start + b.len().div_ceil(3) * 4, 0);
                let n = STANDARD
                    .encode_slice(b, &mut out[start..])
                    .expect("buffer sized for the encoding");
                out.truncate(start + n);
            }
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_packet_type() {
        let cases: [(&[u8], Packet); 8] = [
            (b"0", Packet::Open),
            (b"1", Packet::Close),
            (b"2", Packet::Ping(Bytes::new())),
            (b"2probe", Packet::Ping(Bytes::from_static(b"probe"))),
            (b"3probe", Packet::Pong(Bytes::from_static(b"probe"))),
            (b"4hello", Packet::Message(Bytes::from_static(b"hello"))),
            (b"5", Packet::Upgrade),
            (b"6", Packet::Noop),
        ];
        for (text, expected) in cases {
            assert_eq!(decode_text(Bytes::from_static(text)).unwrap(), expected);
        }
    }

    #[test]
    fn refuses_malformed_text_packets() {
        assert_eq!(decode_text(Bytes::new()), Err(DecodeError::Empty));
        assert_eq!(
            decode_text(Bytes::from_static(b"7")),
            Err(DecodeError::UnknownType(b'7'))
        );
        assert_eq!(
            decode_text(Bytes::from_static(b"x")),
            Err(DecodeError::UnknownType(b'x'))
        );
        assert_eq!(
            decode_text(Bytes::from_static(b"4\xff\xfe")),
            Err(DecodeError::NotUtf8)
        );
    }

    #[test]
    fn decodes_a_polling_payload_with_binary() {
        let body = Bytes::from_static(b"4hello\x1ebAQID\x1e2");
        assert_eq!(
            decode_payload(body).unwrap(),
            vec![
                Packet::Message(Bytes::from_static(b"hello")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3])),
                Packet::Ping(Bytes::new()),
            ]
        );
    }

    #[test]
    fn refuses_malformed_payloads() {
        assert_eq!(decode_payload(Bytes::new()), Err(DecodeError::Empty));
        assert_eq!(
            decode_payload(Bytes::from_static(b"4a\x1e")),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"b!!!")),
            Err(DecodeError::BadBase64)
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"\x1e\x1e")),
            Err(DecodeError::Empty)
        );
    }

    #[test]
    fn encodes_polling_payloads() {
        let frames = [
            Frame::message(b"2[\"a\"]"),
            Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            Frame::PING,
        ];
        assert_eq!(&encode_payload(&frames)[..], b"42[\"a\"]\x1ebAQIDBA==\x1e2");
        assert_eq!(&encode_payload(&[])[..], b"");
    }

    #[test]
    fn stamped_frames_carry_their_offset_as_the_last_argument() {
        let frames = [
            Frame::Stamped(Bytes::from_static(b"42[\"a\",{\"x\":1}]"), 0),
            Frame::Stamped(Bytes::from_static(b"42/n,[\"b\"]"), u64::MAX),
        ];
        assert_eq!(
            &encode_payload(&frames)[..],
            b"42[\"a\",{\"x\":1},\"0\"]\x1e42/n,[\"b\",\"18446744073709551615\"]"
        );
        assert_eq!(frames[1].len(), 10 + STAMP_MAX);
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let frames = [
            Frame::message(b"0"),
            Frame::Binary(Bytes::from_static(b"\x00\xff")),
        ];
        let decoded = decode_payload(encode_payload(&frames)).unwrap();
        assert_eq!(
            decoded,
            vec![
                Packet::Message(Bytes::from_static(b"0")),
                Packet::Binary(Bytes::from_static(b"\x00\xff"))
            ]
        );
    }

    #[test]
    fn open_packet_has_the_handshake_fields() {
        let open = open_packet("abc", &["websocket"], 25000, 20000, 1_000_000);
        assert_eq!(
            &open[..],
            br#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }
}
