//! Socket.IO 5 packets, carried in Engine.IO messages.
//!
//! Text form: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`,
//! for example `2/admin,12["event",{"a":1}]`. Binary events and acks
//! (`5`, `6`) are followed by that many binary messages, referenced from the
//! JSON by `{"_placeholder":true,"num":N}` objects.
//!
//! Decoding validates the JSON once and records where each argument of an
//! event or ack sits, so handlers parse only what they use and forwarding can
//! copy an argument's text untouched.

use std::ops::Range;

use bytes::Bytes;
use serde_json::value::RawValue;

/// Event names a client may not emit (socket.io reserves them).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Largest number of attachments one packet may announce (socket.io-parser's `maxAttachments`).
pub const MAX_ATTACHMENTS: usize = 10;

/// The packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl Kind {
    fn digit(self) -> u8 {
        b'0' + self as u8
    }
}

/// A decoded incoming packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: Kind,
    pub nsp: Bytes,
    pub id: Option<u64>,
    pub attachments: usize,
    /// The JSON data (empty when absent).
    pub data: Bytes,
    /// For events and acks: where each array element sits in `data`.
    pub args: Vec<Range<u32>>,
}

impl Packet {
    /// The namespace, `/` when the packet names none.
    pub fn nsp(&self) -> &str {
        if self.nsp.is_empty() {
            "/"
        } else {
            // `decode` only builds packets from valid UTF-8 text and cuts at ASCII bytes.
            std::str::from_utf8(&self.nsp).unwrap_or("/")
        }
    }
}

/// Why a message is not a valid Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes the text of an Engine.IO message (already known to be UTF-8).
pub fn decode(text: Bytes) -> Result<Packet, DecodeError> {
    let s = &text[..];
    let kind = match s.first() {
        Some(b'0') => Kind::Connect,
        Some(b'1') => Kind::Disconnect,
        Some(b'2') => Kind::Event,
        Some(b'3') => Kind::Ack,
        Some(b'4') => Kind::ConnectError,
        Some(b'5') => Kind::BinaryEvent,
        Some(b'6') => Kind::BinaryAck,
        Some(_) => return Err(DecodeError("unknown packet type")),
        None => return Err(DecodeError("empty packet")),
    };
    let mut i = 1;

    let mut attachments = 0;
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i >= s.len() || s[i] != b'-' || i - start > 4 {
            return Err(DecodeError("illegal attachments"));
        }
        attachments = parse_digits(&s[start..i]) as usize;
        if attachments == 0 || attachments > MAX_ATTACHMENTS {
            return Err(DecodeError("illegal attachments"));
        }
        i += 1;
    }

    let mut nsp = Bytes::new();
    if s.get(i) == Some(&b'/') {
        let start = i;
        while i < s.len() && s[i] != b',' {
            i += 1;
        }
        nsp = text.slice(start..i);
        if i < s.len() {
            i += 1; // the comma
        }
    }

    let mut id = None;
    if i < s.len() && s[i].is_ascii_digit() {
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        if i - start > 15 {
            return Err(DecodeError("ack id too large"));
        }
        id = Some(parse_digits(&s[start..i]));
    }

    let data = text.slice(i..);
    let mut args = Vec::new();
    match kind {
        Kind::Connect => {
            if !data.is_empty() && !is_json_object(&data) {
                return Err(DecodeError("invalid CONNECT payload"));
            }
        }
        Kind::Disconnect => {
            if !data.is_empty() {
                return Err(DecodeError("invalid DISCONNECT payload"));
            }
        }
        Kind::Event | Kind::BinaryEvent => {
            args = array_elements(&data).ok_or(DecodeError("invalid EVENT payload"))?;
            let name = args
                .first()
                .and_then(|r| serde_json::from_slice::<std::borrow::Cow<str>>(&data[range(r)]).ok())
                .ok_or(DecodeError("event name must be a string"))?;
            if RESERVED_EVENTS.contains(&name.as_ref()) {
                return Err(DecodeError("reserved event name"));
            }
        }
        Kind::Ack | Kind::BinaryAck => {
            if id.is_none() {
                return Err(DecodeError("ACK without id"));
            }
            args = array_elements(&data).ok_or(DecodeError("invalid ACK payload"))?;
        }
        Kind::ConnectError => return Err(DecodeError("CONNECT_ERROR is server-only")),
    }
    Ok(Packet {
        kind,
        nsp,
        id,
        attachments,
        data,
        args,
    })
}

pub(crate) fn range(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
}

fn parse_digits(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
}

fn is_json_object(data: &[u8]) -> bool {
    serde_json::from_slice::<&RawValue>(data)
        .map(|raw| raw.get().starts_with('{'))
        .unwrap_or(false)
}

/// The byte ranges of the elements of a JSON array, or `None` if `data` is not one.
fn array_elements(data: &[u8]) -> Option<Vec<Range<u32>>> {
    let elements: Vec<&RawValue> = serde_json::from_slice(data).ok()?;
    let base = data.as_ptr() as usize;
    Some(
        elements
            .iter()
            .map(|raw| {
                let start = raw.get().as_ptr() as usize - base;
                (start as u32)..((start + raw.get().len()) as u32)
            })
            .collect(),
    )
}

/// Writes a packet header (`<type>[<n>-][<nsp>,][<id>]`) after the Engine.IO `4`.
pub fn write_header(out: &mut Vec<u8>, kind: Kind, attachments: usize, nsp: &str, id: Option<u64>) {
    out.push(b'4');
    out.push(kind.digit());
    if attachments > 0 {
        out.extend_from_slice(attachments.to_string().as_bytes());
        out.push(b'-');
    }
    if nsp != "/" {
        out.extend_from_slice(nsp.as_bytes());
        out.push(b',');
    }
    if let Some(id) = id {
        out.extend_from_slice(id.to_string().as_bytes());
    }
}

/// The Engine.IO message text of a CONNECT answer (`{ sid }`).
pub fn connect_ok(nsp: &str, sid: &str) -> Bytes {
    let mut out = Vec::with_capacity(40 + nsp.len());
    write_header(&mut out, Kind::Connect, 0, nsp, None);
    serde_json::to_writer(&mut out, &serde_json::json!({ "sid": sid })).expect("plain data");
    Bytes::from(out)
}

/// The Engine.IO message text of a CONNECT answer with a connection-state
/// recovery session id (`{ sid, pid }`, socket.io 4.6+).
pub fn connect_ok_with_pid(nsp: &str, sid: &str, pid: &str) -> Bytes {
    let mut out = Vec::with_capacity(70 + nsp.len());
    write_header(&mut out, Kind::Connect, 0, nsp, None);
    serde_json::to_writer(&mut out, &serde_json::json!({ "sid": sid, "pid": pid }))
        .expect("plain data");
    Bytes::from(out)
}

/// For outgoing Engine.IO message text (`4...`): the namespace it is for and
/// whether it is an event without an ack id, the only packets socket.io
/// stamps with a recovery offset (an ack callback cannot be replayed).
/// Reads only the header bytes.
pub(crate) fn outgoing_header(text: &[u8]) -> (&[u8], bool) {
    let (Some(b'4'), Some(&kind)) = (text.first(), text.get(1)) else {
        return (b"/", false);
    };
    let mut i = 2;
    if matches!(kind, b'5' | b'6') {
        while text.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i += 1; // the `-`
    }
    let mut nsp: &[u8] = b"/";
    if text.get(i) == Some(&b'/') {
        let start = i;
        while text.get(i).is_some_and(|b| *b != b',') {
            i += 1;
        }
        nsp = &text[start..i.min(text.len())];
        i += 1;
    }
    let event = matches!(kind, b'2' | b'5') && text.get(i) == Some(&b'[');
    (nsp, event)
}

/// The Engine.IO message text of a CONNECT_ERROR (`{ message, data? }`).
pub fn connect_error(nsp: &str, message: &str, data: Option<&serde_json::Value>) -> Bytes {
    let mut out = Vec::with_capacity(40 + nsp.len() + message.len());
    write_header(&mut out, Kind::ConnectError, 0, nsp, None);
    let body = match data {
        Some(data) => serde_json::json!({ "message": message, "data": data }),
        None => serde_json::json!({ "message": message }),
    };
    serde_json::to_writer(&mut out, &body).expect("plain data");
    Bytes::from(out)
}

/// The Engine.IO message text of a server-side DISCONNECT.
pub fn disconnect(nsp: &str) -> Bytes {
    let mut out = Vec::with_capacity(4 + nsp.len());
    write_header(&mut out, Kind::Disconnect, 0, nsp, None);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Result<Packet, DecodeError> {
        decode(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn args_of(p: &Packet) -> Vec<&str> {
        p.args
            .iter()
            .map(|r| std::str::from_utf8(&p.data[range(r)]).unwrap())
            .collect()
    }

    #[test]
    fn decodes_connect_with_and_without_auth() {
        let p = d("0").unwrap();
        assert_eq!((p.kind, p.nsp(), p.data.len()), (Kind::Connect, "/", 0));
        let p = d("0/admin,{\"token\":\"x\"}").unwrap();
        assert_eq!(p.nsp(), "/admin");
        assert_eq!(&p.data[..], b"{\"token\":\"x\"}");
        let p = d("0/admin,").unwrap();
        assert_eq!((p.nsp(), p.data.len()), ("/admin", 0));
        let p = d("0/admin").unwrap();
        assert_eq!(p.nsp(), "/admin");
    }

    #[test]
    fn decodes_events_with_ids_and_namespaces() {
        let p = d("2[\"hello\",1,{\"a\":[2]}]").unwrap();
        assert_eq!((p.kind, p.id), (Kind::Event, None));
        assert_eq!(args_of(&p), vec!["\"hello\"", "1", "{\"a\":[2]}"]);
        let p = d("2/chat,42[\"x\"]").unwrap();
        assert_eq!((p.nsp(), p.id), ("/chat", Some(42)));
        let p = d("3/chat,7[\"ok\"]").unwrap();
        assert_eq!((p.kind, p.id), (Kind::Ack, Some(7)));
        assert_eq!(args_of(&p), vec!["\"ok\""]);
        let p = d("3 7[]");
        assert!(p.is_err(), "garbage between parts is refused");
    }

    #[test]
    fn decodes_binary_events() {
        let p =
            d("52-[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]")
                .unwrap();
        assert_eq!((p.kind, p.attachments), (Kind::BinaryEvent, 2));
        let p = d("61-/x,3[{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.nsp(), p.id),
            (Kind::BinaryAck, 1, "/x", Some(3))
        );
    }

    #[test]
    fn refuses_malformed_packets_without_panicking() {
        let bad = [
            "",
            "9",
            "x",
            "2",
            "2{}",
            "2[]",
            "2[1]",
            "2[\"connect\"]",
            "2[\"disconnecting\"]",
            "2[\"a\"",
            "3[]",
            "3x",
            "1{}",
            "0[]",
            "0\"s\"",
            "4{\"message\":\"x\"}",
            "5[\"a\"]",
            "5-[\"a\"]",
            "50-[\"a\"]",
            "5x-[\"a\"]",
            "599999-[\"a\"]",
            "511-[\"a\"]",
            "2/nsp,[\"a\"]]",
            "21234567890123456[\"a\"]",
            "6-",
            "5",
            "2\u{0}",
        ];
        for text in bad {
            assert!(d(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn outgoing_headers_name_the_namespace_and_plain_events() {
        let cases: [(&[u8], &[u8], bool); 8] = [
            (b"42[\"a\"]", b"/", true),
            (b"42/calls,[\"a\"]", b"/calls", true),
            (b"4212[\"a\"]", b"/", false),
            (b"42/calls,3[\"a\"]", b"/calls", false),
            (b"451-[\"a\",{}]", b"/", true),
            (b"451-/x,[\"a\",{}]", b"/x", true),
            (b"43/x,1[]", b"/x", false),
            (b"2", b"/", false),
        ];
        for (text, nsp, event) in cases {
            assert_eq!(outgoing_header(text), (nsp, event), "{text:?}");
        }
    }

    #[test]
    fn encodes_headers() {
        let mut out = Vec::new();
        write_header(&mut out, Kind::Event, 0, "/", None);
        assert_eq!(out, b"42");
        out.clear();
        write_header(&mut out, Kind::BinaryAck, 2, "/admin", Some(12));
        assert_eq!(out, b"462-/admin,12");
        assert_eq!(&connect_ok("/", "abc")[..], b"40{\"sid\":\"abc\"}");
        assert_eq!(
            &connect_error("/a", "nope", Some(&serde_json::json!({"x":1})))[..],
            b"44/a,{\"data\":{\"x\":1},\"message\":\"nope\"}"
        );
        assert_eq!(
            &connect_error("/", "Invalid namespace", None)[..],
            b"44{\"message\":\"Invalid namespace\"}"
        );
        assert_eq!(&disconnect("/")[..], b"41");
        assert_eq!(
            &connect_ok_with_pid("/", "abc", "def")[..],
            b"40{\"pid\":\"def\",\"sid\":\"abc\"}"
        );
        assert_eq!(&disconnect("/b")[..], b"41/b,");
    }
}
