//! The default listeners: the `#rtcio:message` relay and the
//! `#rtcio:peer-left` departure hint (the Node package's `addDefaultListeners`).
//!
//! The relay never looks inside `data`: it reads the envelope's members as
//! raw JSON, replaces `source` with the sender's real socket id (the Node
//! server trusts the client's value; ours cannot be forged), and writes the
//! other members back byte for byte. It runs inline in the sender's reader,
//! so envelopes from one sender reach each target in the order sent.

use std::borrow::Cow;
use std::fmt;

use rtcio_engine::sio::{self, Kind};
use rtcio_engine::{DisconnectReason, Encoded, Event, NamespaceBuilder, Sid, Socket};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::errors::{ClientError, ErrorCode};
use crate::events::{MESSAGE, PEER_LEFT};

/// Whom a client may relay to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RelayScope {
    /// Only sockets that share a room with the sender (other than the own-id
    /// rooms). The safe default: strangers cannot be reached.
    #[default]
    SharedRoom,
    /// Any connected socket of the namespace, as the Node package does.
    Any,
}

impl std::str::FromStr for RelayScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "room" => Ok(RelayScope::SharedRoom),
            "any" => Ok(RelayScope::Any),
            other => Err(format!(
                "relay scope must be `room` or `any`, not `{other}`"
            )),
        }
    }
}

/// Attaches the relay and the peer-left hint to a namespace.
pub fn add_default_listeners(
    ns: &mut NamespaceBuilder,
    scope: RelayScope,
) -> &mut NamespaceBuilder {
    ns.on(MESSAGE, move |socket, event| relay(socket, &event, scope))
        .on_disconnecting(announce_departure)
}

/// Relays one envelope, or tells the sender why not.
pub fn relay(socket: &Socket, event: &Event, scope: RelayScope) {
    match route(socket, event, scope) {
        Ok(Some((target, packet))) => {
            if target.send_encoded(&packet).is_err() {
                tracing::debug!(from = %socket.id(), to = %target.id(), "relay target went away");
            } else {
                let counters = crate::counters::relay();
                counters.envelopes.increment(1);
                counters.bytes.increment(packet.text.len() as u64);
            }
        }
        Ok(None) => {}
        Err(e) => e.send(socket),
    }
}

/// The target and the packet for it; `None` when the target's connection was
/// lost and the packet is kept for its recovery instead.
fn route(
    socket: &Socket,
    event: &Event,
    scope: RelayScope,
) -> Result<Option<(Socket, Encoded)>, ClientError> {
    let bad = || {
        ClientError::new(
            ErrorCode::BadRequest,
            "the envelope must be an object with a string `target`",
        )
    };
    let raw = event.args().raw(0).ok_or_else(bad)?;
    let envelope: Envelope = serde_json::from_str(raw).map_err(|_| bad())?;
    let target_raw = envelope.member("target").ok_or_else(bad)?;
    let target_id: Cow<str> = serde_json::from_str(target_raw.get()).map_err(|_| bad())?;

    let unreachable = || {
        ClientError::new(
            ErrorCode::PeerUnreachable,
            "the target is not connected to any of your rooms",
        )
    };
    let target_sid: Sid = target_id.parse().map_err(|_| unreachable())?;
    let ns = socket.ns();
    let Some(target) = ns.get_socket(target_sid) else {
        return to_absent(socket, &ns, target_sid, scope, &envelope)
            .or_else(|| to_remote(socket, &ns, target_sid, scope, &envelope))
            .ok_or_else(unreachable);
    };
    if scope == RelayScope::SharedRoom && !ns.adapter().share_room(socket.id(), target_sid) {
        return Err(unreachable());
    }
    Ok(Some((target, envelope.rewrite(ns.name(), socket.id()))))
}

/// Keeps an envelope for a target whose connection was lost and whose state
/// waits for its reconnect (connection-state recovery): it gets it, in
/// order, if it comes back. `None` if no such target is away (or, with the
/// room scope, it shared no room with the sender when it left).
fn to_absent(
    socket: &Socket,
    ns: &rtcio_engine::Namespace,
    target: Sid,
    scope: RelayScope,
    envelope: &Envelope,
) -> Option<Option<(Socket, Encoded)>> {
    let rooms = ns.absent_rooms(target)?;
    if scope == RelayScope::SharedRoom && !rooms.iter().any(|room| socket.in_room(room)) {
        return None;
    }
    ns.send_to_absent(target, &envelope.rewrite(ns.name(), socket.id()))
        .then_some(None)
}

/// Sends an envelope to a target on another node of a cluster: one message
/// to that node only, after the scope check on this node's replica of the
/// cluster's rooms. `None` if no node has the target (or, with the room
/// scope, it shares no room with the sender).
fn to_remote(
    socket: &Socket,
    ns: &rtcio_engine::Namespace,
    target: Sid,
    scope: RelayScope,
    envelope: &Envelope,
) -> Option<Option<(Socket, Encoded)>> {
    if scope == RelayScope::SharedRoom && !ns.adapter().share_room(socket.id(), target) {
        return None;
    }
    let packet = envelope.rewrite(ns.name(), socket.id());
    if !ns.adapter().send_to(target, &packet) {
        return None;
    }
    let counters = crate::counters::relay();
    counters.envelopes.increment(1);
    counters.bytes.increment(packet.text.len() as u64);
    Some(None)
}

/// The envelope's members, in order, as raw JSON.
struct Envelope<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Envelope<'a> {
    fn member(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// The relayed packet: `source` first, set to the sender, every other member as it came.
    fn rewrite(&self, nsp: &str, source: Sid) -> Encoded {
        let size: usize = self
            .0
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(size + nsp.len() + 64);
        sio::write_header(&mut out, Kind::Event, 0, nsp, None);
        out.extend_from_slice(b"[\"#rtcio:message\",{\"source\":\"");
        out.extend_from_slice(source.as_str().as_bytes());
        out.push(b'"');
        for (key, value) in &self.0 {
            if key == "source" {
                continue;
            }
            out.push(b',');
            serde_json::to_writer(&mut out, key.as_ref()).expect("strings always serialise");
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.extend_from_slice(b"}]");
        Encoded::from_text(out.into())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Members<'a> {
            type Value = Envelope<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(4);
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key.0, value));
                }
                Ok(Envelope(members))
            }
        }
        deserializer.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// A member name, borrowed from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Sends `#rtcio:peer-left { id }` to every room of a leaving socket (once
/// per peer, however many rooms they share), while its rooms are still known.
pub fn announce_departure(socket: &Socket, _reason: DisconnectReason) {
    if let Some(peers) = socket.peers() {
        let _ = peers.emit(PEER_LEFT, &serde_json::json!({ "id": socket.id() }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(envelope: &str, nsp: &str, source: Sid) -> String {
        let e: Envelope = serde_json::from_str(envelope).unwrap();
        String::from_utf8(e.rewrite(nsp, source).text.to_vec()).unwrap()
    }

    #[test]
    fn rewrites_source_and_keeps_everything_else_byte_for_byte() {
        let me = Sid::random();
        let out = rewritten(
            r#"{"source":"forged","target":"t","data":{"candidate":{"candidate":"","sdpMid":"0"}},"extra":[1, 2]}"#,
            "/",
            me,
        );
        assert_eq!(
            out,
            format!(
                r##"42["#rtcio:message",{{"source":"{me}","target":"t","data":{{"candidate":{{"candidate":"","sdpMid":"0"}}}},"extra":[1, 2]}}]"##
            )
        );
    }

    #[test]
    fn adds_a_missing_source_and_keeps_escaped_keys() {
        let me = Sid::random();
        let out = rewritten(r#"{"target":"t","we\"ird":1}"#, "/calls", me);
        assert_eq!(
            out,
            format!(
                r##"42/calls,["#rtcio:message",{{"source":"{me}","target":"t","we\"ird":1}}]"##
            )
        );
        let v: serde_json::Value = serde_json::from_str(&out[out.find('[').unwrap()..]).unwrap();
        assert_eq!(v[1]["we\"ird"], 1);
    }

    #[test]
    fn non_objects_are_not_envelopes() {
        for bad in ["[]", "\"x\"", "1", "null", "{\"a\":}"] {
            assert!(serde_json::from_str::<Envelope>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_parses_from_text() {
        assert_eq!(
            "room".parse::<RelayScope>().unwrap(),
            RelayScope::SharedRoom
        );
        assert_eq!("any".parse::<RelayScope>().unwrap(), RelayScope::Any);
        assert!("all".parse::<RelayScope>().is_err());
    }
}
