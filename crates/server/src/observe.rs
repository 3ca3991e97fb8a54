//! What the server records of each socket of a namespace: connects and
//! disconnects (with the reason) at info, one debug line per received event
//! (socket id, event name, argument size in bytes: the seed's logging
//! middleware), and the counters behind `rtcio_events_received_total`,
//! `rtcio_slow_consumers_total` and `rtcio_joins_total`.
//!
//! Payloads are never logged: envelopes carry SDP and ICE candidates (IP
//! addresses), the `auth` object carries tokens, chat carries private words.
//! Only sizes and names are.
//!
//! The event counter runs for every event, the relay's included, so its
//! handles are registered once and picked by name from a short fixed list;
//! any other name counts as `other`, which keeps the label set bounded
//! whatever clients send.

use std::ops::ControlFlow;
use std::sync::Arc;

use metrics::Counter;
use rtcio::events::{app, MESSAGE};
use rtcio::Rooms;
use rtcio_engine::{DisconnectReason, Event, NamespaceBuilder, Socket};

/// Event names counted under their own label (the signaling namespace's
/// events); every other name is counted as `other`.
pub const KNOWN_EVENTS: &[&str] = &[
    MESSAGE,
    app::JOIN_ROOM,
    app::LEAVE_ROOM,
    app::CHECK_ROOM,
    app::MEDIA_STATE,
    app::STOP_SCREEN_SHARE,
    app::CHAT_MESSAGE,
    app::CHAT_HISTORY,
    app::ASK_ICE,
];

struct EventCounters {
    /// In the order of [`KNOWN_EVENTS`]: the relay's event is first, found in one comparison.
    known: Vec<(&'static str, Counter)>,
    other: Counter,
}

impl EventCounters {
    fn new() -> Self {
        EventCounters {
            known: KNOWN_EVENTS
                .iter()
                .map(|&name| {
                    (
                        name,
                        metrics::counter!("rtcio_events_received_total", "event" => name),
                    )
                })
                .collect(),
            other: metrics::counter!("rtcio_events_received_total", "event" => "other"),
        }
    }

    fn get(&self, name: &str) -> &Counter {
        self.known
            .iter()
            .find(|(known, _)| *known == name)
            .map_or(&self.other, |(_, counter)| counter)
    }
}

/// Logs and counts the sockets and events of `ns`. Attach it before other
/// event middleware, so refused events are counted as received too.
pub fn attach(ns: &mut NamespaceBuilder) -> &mut NamespaceBuilder {
    let counters = Arc::new(EventCounters::new());
    let slow = metrics::counter!("rtcio_slow_consumers_total");
    ns.event_middleware(move |socket, event| {
        counters.get(event.name()).increment(1);
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                socket = %socket.id(),
                event = %event.name().escape_debug(),
                bytes = argument_bytes(event),
                "event received"
            );
        }
        ControlFlow::Continue(())
    })
    .on_connect(|socket| {
        tracing::info!(
            socket = %socket.id(),
            namespace = socket.ns().name(),
            transport = socket.transport(),
            "socket connected"
        );
    })
    .on_disconnect(move |socket: &Socket, reason| {
        if reason == DisconnectReason::SlowConsumer {
            slow.increment(1);
        }
        tracing::info!(
            socket = %socket.id(),
            namespace = socket.ns().name(),
            reason = reason.as_str(),
            "socket disconnected"
        );
    })
}

/// Counts successful joins (`rtcio_joins_total`) through the rooms' join hook.
pub fn count_joins(rooms: &Rooms) {
    let joins = metrics::counter!("rtcio_joins_total");
    rooms.on_joined(move |_, _| joins.increment(1));
}

/// The size of an event's arguments: their JSON text plus binary attachments.
fn argument_bytes(event: &Event) -> usize {
    let args = event.args();
    let text: usize = (0..args.len())
        .filter_map(|i| args.raw(i))
        .map(str::len)
        .sum();
    text + args.attachments().iter().map(|a| a.len()).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_share_one_counter() {
        let c = EventCounters::new();
        assert_eq!(c.known.len(), KNOWN_EVENTS.len());
        assert_eq!(
            c.known[0].0, MESSAGE,
            "the relay's event is looked up first"
        );
        assert!(std::ptr::eq(c.get("anything"), &c.other));
        assert!(std::ptr::eq(c.get("whatever else"), &c.other));
        assert!(std::ptr::eq(c.get(app::JOIN_ROOM), &c.known[1].1));
    }
}
