//! Sending one packet to many sockets: `to(room)`, `except(room)`, everyone.
//!
//! The packet is encoded once; each recipient's queue gets a reference to the
//! same bytes.

use std::sync::Arc;

use serde::Serialize;

use crate::adapter::{BroadcastOptions, Room};
use crate::event::{EmitError, Encoded, Payload};
use crate::namespace::NsInner;
use crate::sid::Sid;
use crate::socket::Socket;

/// Selects recipients in a namespace, then emits to them.
pub struct BroadcastOperator {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<NsInner>) -> Self {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::default(),
        }
    }

    /// Adds `room` to the recipients (sockets in any of the rooms are reached).
    pub fn to(mut self, room: &str) -> Self {
        self.opts.rooms.push(Room::from(room));
        self
    }

    /// Skips the sockets in `room` (a socket id skips that socket).
    pub fn except(mut self, room: &str) -> Self {
        self.opts.except.push(Room::from(room));
        self
    }

    pub(crate) fn except_sid(mut self, sid: Sid) -> Self {
        self.opts.except_sid = Some(sid);
        self
    }

    /// The ids of the sockets this broadcast reaches on this node.
    pub fn sids(&self) -> Vec<Sid> {
        self.ns.adapter.recipients(&self.opts)
    }

    /// The sockets this broadcast reaches on this node.
    pub fn sockets(&self) -> Vec<Socket> {
        self.sids()
            .into_iter()
            .filter_map(|sid| self.ns.get(sid))
            .collect()
    }

    /// Sends `event` with one argument.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_payload(event, Payload::new().arg(data)?);
        Ok(())
    }

    /// Sends `event` with any arguments.
    pub fn emit_payload(self, event: &str, payload: Payload) {
        let packet = payload.into_event(&self.ns.name, event, None);
        self.send_encoded(&packet);
    }

    /// Sends a packet already encoded for this namespace.
    pub fn send_encoded(self, packet: &Encoded) {
        let ns = &self.ns;
        ns.adapter.broadcast(&self.opts, packet, &mut |sid| {
            if let Some(socket) = ns.get(sid) {
                // A recipient that is gone or cut off is not the sender's problem.
                socket.send_broadcast(packet);
            }
        });
        // Sockets away with their state kept get it when they come back
        // (one atomic load when none is away).
        if let Some(store) = &ns.recovery {
            if !store.is_empty() {
                store.broadcast(&self.opts, packet);
            }
        }
    }

    /// Disconnects every socket this broadcast reaches on this node.
    pub fn disconnect(self) {
        for socket in self.sockets() {
            socket.disconnect();
        }
    }
}
