#!/usr/bin/env node
// Baseline for the performance comparison: a minimal Node `socket.io@4.8`
// signaling server with the rtc.io reference semantics (see
// shared/PROTOCOL.md and tests/server/CONTRACT.md):
//
// - `#rtcio:message` is relayed to `target` with `source` set to the sender's
//   socket id (the rtc.io package relays to any socket id: no room check);
// - `join-room` snapshots the room before joining, backfills `user-connected`
//   to the joiner, sends `user-connected` + `#rtcio:init-offer` to every
//   existing peer, then `join-ok` to the joiner (a repeated join only answers
//   `join-ok`);
// - `leave-room` tells the rest of the room `user-disconnected`;
// - `disconnecting` tells every room (not the own-id room)
//   `user-disconnected` and `#rtcio:peer-left`.
//
// Usage: node server.js [--host 127.0.0.1] [--port 3001] [--recovery]
// Prints `listening on HOST:PORT` once it accepts connections.
"use strict";

const { Server } = require("socket.io");
const { beginJoin, finishJoin, healthServer, listen, onRelayLeaveAndDeparture, parseArgs } = require("./rtcio.js");

const opts = parseArgs(
  process.argv.slice(2),
  { host: "127.0.0.1", port: Number(process.env.PORT ?? 3001), recovery: false },
  { "--recovery": (o) => (o.recovery = true) },
  "usage: node server.js [--host HOST] [--port PORT] [--recovery]",
);

const httpServer = healthServer();

const io = new Server(httpServer, {
  cors: { origin: "*" },
  ...(opts.recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 } } : {}),
});

io.on("connection", (socket) => {
  socket.data.name = "";
  onRelayLeaveAndDeparture(socket);

  socket.on("join-room", (payload) => {
    const joining = beginJoin(socket, payload);
    if (!joining) return;
    // Snapshot BEFORE joining.
    const existing = [...(io.sockets.adapter.rooms.get(joining.roomId) ?? [])];
    for (const id of existing) {
      const peer = io.sockets.sockets.get(id);
      socket.emit("user-connected", { id, name: peer ? peer.data.name : "" });
    }
    finishJoin(socket, joining.roomId, joining.name);
  });
});

listen(httpServer, io, opts);
