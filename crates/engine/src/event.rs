//! What handlers receive (events, ack answers) and what they send (payloads).
//!
//! Incoming arguments stay as the JSON text they arrived in, with the byte
//! range of each argument known: a handler parses only the arguments it
//! reads, into the type it wants, and can forward an argument's text
//! untouched. Outgoing payloads are encoded once into an [`Encoded`] packet
//! that any number of sockets can queue by reference count.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::eio::Frame;
use crate::sio::{self, Kind};
use crate::socket::Socket;

/// Arguments received with an event (after its name) or with an ack.
#[derive(Clone, Default)]
pub struct Args {
    data: Bytes,
    /// Element ranges of the whole packet array; the first `skip` are not
    /// arguments (an event's name), kept to avoid copying the rest.
    ranges: Vec<Range<u32>>,
    skip: usize,
    attachments: Vec<Bytes>,
}

/// Why an argument could not be read.
#[derive(Debug)]
pub enum ArgError {
    /// There is no argument at that position.
    Missing(usize),
    /// The argument does not have the expected shape.
    Invalid(usize, serde_json::Error),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Missing(i) => write!(f, "argument {i} is missing"),
            ArgError::Invalid(i, e) => write!(f, "argument {i} is invalid: {e}"),
        }
    }
}

impl std::error::Error for ArgError {}

impl Args {
    pub(crate) fn new(data: Bytes, ranges: Vec<Range<u32>>, attachments: Vec<Bytes>) -> Self {
        Self::with_skip(data, ranges, 0, attachments)
    }

    pub(crate) fn with_skip(
        data: Bytes,
        ranges: Vec<Range<u32>>,
        skip: usize,
        attachments: Vec<Bytes>,
    ) -> Self {
        let skip = skip.min(ranges.len());
        Args {
            data,
            ranges,
            skip,
            attachments,
        }
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.ranges.len() - self.skip
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The JSON text of argument `i`.
    pub fn raw(&self, i: usize) -> Option<&str> {
        let r = self.ranges.get(self.skip.checked_add(i)?)?;
        // The whole packet was validated as UTF-8 JSON when it was decoded.
        std::str::from_utf8(&self.data[sio::range(r)]).ok()
    }

    /// Argument `i` parsed as `T`.
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, ArgError> {
        let raw = self.raw(i).ok_or(ArgError::Missing(i))?;
        serde_json::from_str(raw).map_err(|e| ArgError::Invalid(i, e))
    }

    /// Binary attachments, in placeholder order (`{"_placeholder":true,"num":N}`).
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// These arguments as an outgoing payload (to echo or forward them).
    pub fn to_payload(&self) -> Payload {
        let mut payload = Payload::new();
        for i in 0..self.len() {
            payload.push_raw(self.raw(i).unwrap_or("null"));
        }
        payload.attachments = self.attachments.clone();
        payload
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len()).filter_map(|i| self.raw(i)))
            .finish()?;
        if !self.attachments.is_empty() {
            write!(f, " + {} attachment(s)", self.attachments.len())?;
        }
        Ok(())
    }
}

/// An event name: a slice of the packet when it has no escapes (the usual
/// case, no allocation), decoded text otherwise.
pub(crate) enum EventName {
    Raw(Bytes),
    Decoded(String),
}

impl EventName {
    /// The name from the JSON string at `range` of `data`.
    pub(crate) fn parse(data: &Bytes, range: &Range<u32>) -> Option<EventName> {
        let r = sio::range(range);
        let raw = &data[r.clone()];
        let quoted = raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"';
        if quoted && !raw[1..raw.len() - 1].contains(&b'\\') {
            // Valid UTF-8 (the packet was) and no escapes: the bytes between the quotes are the name.
            return Some(EventName::Raw(data.slice(r.start + 1..r.end - 1)));
        }
        serde_json::from_slice(raw).ok().map(EventName::Decoded)
    }

    fn as_str(&self) -> &str {
        match self {
            EventName::Raw(b) => std::str::from_utf8(b).unwrap_or(""),
            EventName::Decoded(s) => s,
        }
    }
}

/// An event received from a client.
pub struct Event {
    pub(crate) name: EventName,
    pub(crate) args: Args,
    pub(crate) ack: Option<AckSender>,
}

impl Event {
    /// The event name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The arguments after the name.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// Argument `i` parsed as `T` (shorthand for `args().get(i)`).
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Result<T, ArgError> {
        self.args.get(i)
    }

    /// Whether the client asked for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Takes the acknowledgement callback, if the client sent one.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }

    /// Splits the event into its arguments and acknowledgement.
    pub fn into_parts(self) -> (String, Args, Option<AckSender>) {
        (self.name.as_str().to_owned(), self.args, self.ack)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event({:?}, {:?})", self.name(), self.args)
    }
}

/// Answers a client's acknowledgement callback (once).
pub struct AckSender {
    pub(crate) socket: Socket,
    pub(crate) id: u64,
}

impl AckSender {
    /// Answers with one argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.send_payload(Payload::new().arg(data)?)
    }

    /// Answers with any arguments (binary included).
    pub fn send_payload(self, payload: Payload) -> Result<(), EmitError> {
        let kind = if payload.attachments.is_empty() {
            Kind::Ack
        } else {
            Kind::BinaryAck
        };
        let encoded = payload.encode(kind, self.socket.ns_name(), None, Some(self.id));
        self.socket.send_encoded(&encoded)
    }
}

/// Why an emit failed.
#[derive(Debug)]
pub enum EmitError {
    /// The data could not be serialised to JSON.
    Serialize(serde_json::Error),
    /// The socket is gone (disconnected, or cut off as a slow consumer).
    Closed,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Serialize(e) => write!(f, "cannot serialise payload: {e}"),
            EmitError::Closed => f.write_str("socket closed"),
        }
    }
}

impl std::error::Error for EmitError {}

impl From<serde_json::Error> for EmitError {
    fn from(e: serde_json::Error) -> Self {
        EmitError::Serialize(e)
    }
}

/// Why an acknowledgement did not come.
#[derive(Debug)]
pub enum AckError {
    /// The client did not answer in time.
    Timeout,
    /// The socket disconnected before answering.
    Disconnected,
    /// The request could not be sent.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckError::Timeout => f.write_str("acknowledgement timed out"),
            AckError::Disconnected => f.write_str("socket disconnected before acknowledging"),
            AckError::Emit(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AckError {}

impl From<EmitError> for AckError {
    fn from(e: EmitError) -> Self {
        AckError::Emit(e)
    }
}

/// Outgoing arguments: JSON values and binary attachments.
#[derive(Clone, Default, Debug)]
pub struct Payload {
    /// The arguments' JSON, comma separated, without brackets.
    json: Vec<u8>,
    count: usize,
    attachments: Vec<Bytes>,
}

/// Stands for an attachment inside a JSON argument; serialises as socket.io's
/// `{"_placeholder":true,"num":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholder(pub usize);

impl Serialize for Placeholder {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("_placeholder", &true)?;
        map.serialize_entry("num", &self.0)?;
        map.end()
    }
}

impl Payload {
    /// No arguments.
    pub fn new() -> Self {
        Payload::default()
    }

    /// Appends an argument.
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, serde_json::Error> {
        let mark = self.json.len();
        if self.count > 0 {
            self.json.push(b',');
        }
        if let Err(e) = serde_json::to_writer(&mut self.json, value) {
            self.json.truncate(mark);
            return Err(e);
        }
        self.count += 1;
        Ok(self)
    }

    /// Appends an argument that is already JSON text.
    pub fn raw_arg(mut self, value: &RawValue) -> Self {
        self.push_raw(value.get());
        self
    }

    fn push_raw(&mut self, json: &str) {
        if self.count > 0 {
            self.json.push(b',');
        }
        self.json.extend_from_slice(json.as_bytes());
        self.count += 1;
    }

    /// Adds a binary attachment; put the returned placeholder where it belongs
    /// in an argument.
    pub fn attach(&mut self, data: impl Into<Bytes>) -> Placeholder {
        self.attachments.push(data.into());
        Placeholder(self.attachments.len() - 1)
    }

    /// Encodes this payload as an event.
    pub fn into_event(self, nsp: &str, name: &str, ack_id: Option<u64>) -> Encoded {
        let kind = if self.attachments.is_empty() {
            Kind::Event
        } else {
            Kind::BinaryEvent
        };
        self.encode(kind, nsp, Some(name), ack_id)
    }

    fn encode(self, kind: Kind, nsp: &str, name: Option<&str>, id: Option<u64>) -> Encoded {
        let mut out =
            Vec::with_capacity(self.json.len() + nsp.len() + name.map_or(0, str::len) + 24);
        sio::write_header(&mut out, kind, self.attachments.len(), nsp, id);
        out.push(b'[');
        if let Some(name) = name {
            serde_json::to_writer(&mut out, name).expect("strings always serialise");
            if self.count > 0 {
                out.push(b',');
            }
        }
        out.extend_from_slice(&self.json);
        out.push(b']');
        Encoded {
            text: Bytes::from(out),
            attachments: self.attachments,
        }
    }
}

/// A packet encoded once, ready to queue to any number of sockets.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The Engine.IO message text (`4` + Socket.IO packet).
    pub text: Bytes,
    pub attachments: Vec<Bytes>,
}

impl Encoded {
    /// A packet with no attachments from complete Engine.IO message text.
    pub fn from_text(text: Bytes) -> Self {
        Encoded {
            text,
            attachments: Vec::new(),
        }
    }

    pub(crate) fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        std::iter::once(Frame::Text(self.text.clone()))
            .chain(self.attachments.iter().cloned().map(Frame::Binary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_events_with_and_without_args() {
        let e = Payload::new().into_event("/", "ping", None);
        assert_eq!(&e.text[..], b"42[\"ping\"]");
        let e = Payload::new()
            .arg(&1)
            .unwrap()
            .arg("two")
            .unwrap()
            .into_event("/chat", "x", Some(5));
        assert_eq!(&e.text[..], b"42/chat,5[\"x\",1,\"two\"]");
    }

    #[test]
    fn encodes_binary_with_placeholders() {
        let mut p = Payload::new();
        let a = p.attach(vec![1u8, 2, 3]);
        let p = p.arg(&serde_json::json!({ "buf": a })).unwrap();
        let e = p.into_event("/", "bin", None);
        assert_eq!(
            &e.text[..],
            b"451-[\"bin\",{\"buf\":{\"_placeholder\":true,\"num\":0}}]"
        );
        assert_eq!(e.frames().count(), 2);
    }

    #[test]
    fn args_round_trip_to_payload() {
        let pkt = sio::decode(Bytes::from_static(b"2[\"e\",{\"a\":1},[true]]")).unwrap();
        let args = Args::with_skip(pkt.data.clone(), pkt.args.clone(), 1, vec![]);
        assert_eq!(args.len(), 2);
        assert_eq!(args.raw(0), Some("{\"a\":1}"));
        assert_eq!(args.get::<Vec<bool>>(1).unwrap(), vec![true]);
        assert!(matches!(args.get::<u32>(0), Err(ArgError::Invalid(0, _))));
        assert!(matches!(args.get::<u32>(2), Err(ArgError::Missing(2))));
        assert_eq!(args.raw(usize::MAX), None);
        let e = args.to_payload().into_event("/", "e", None);
        assert_eq!(&e.text[..], b"42[\"e\",{\"a\":1},[true]]");
    }

    #[test]
    fn event_names_borrow_unless_escaped() {
        let pkt = sio::decode(Bytes::from_static(br#"2["plain",1]"#)).unwrap();
        let name = EventName::parse(&pkt.data, &pkt.args[0]).unwrap();
        assert!(matches!(name, EventName::Raw(_)));
        assert_eq!(name.as_str(), "plain");
        let pkt = sio::decode(Bytes::from_static(br#"2["a\u0062\"c"]"#)).unwrap();
        let name = EventName::parse(&pkt.data, &pkt.args[0]).unwrap();
        assert!(matches!(name, EventName::Decoded(_)));
        assert_eq!(name.as_str(), "ab\"c");
    }

    #[test]
    fn a_failed_arg_leaves_the_payload_unchanged() {
        use std::collections::HashMap;
        let bad: HashMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
        let p = Payload::new().arg(&1).unwrap();
        assert!(p.clone().arg(&bad).is_err());
        assert_eq!(&p.into_event("/", "e", None).text[..], b"42[\"e\",1]");
    }
}
