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

const http = require("node:http");
const { Server } = require("socket.io");

function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: Number(process.env.PORT ?? 3001), recovery: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [key, inline] = arg.includes("=") ? arg.split(/=(.*)/s) : [arg, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (key) {
      case "--host":
        opts.host = value();
        break;
      case "--port":
        opts.port = Number(value());
        break;
      case "--recovery":
        opts.recovery = true;
        break;
      case "-h":
      case "--help":
        console.log("usage: node server.js [--host HOST] [--port PORT] [--recovery]");
        process.exit(0);
        break;
      default:
        console.error(`unknown argument: ${arg}`);
        process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

const httpServer = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, {
  cors: { origin: "*" },
  ...(opts.recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 } } : {}),
});

const MESSAGE = "#rtcio:message";
const INIT_OFFER = "#rtcio:init-offer";
const PEER_LEFT = "#rtcio:peer-left";

const validRoom = (roomId) => typeof roomId === "string" && roomId.length > 0 && roomId.length <= 128;

io.on("connection", (socket) => {
  socket.data.name = "";

  // The rtc.io package's default listener: relay the envelope to `target`.
  socket.on(MESSAGE, (envelope) => {
    if (envelope === null || typeof envelope !== "object" || typeof envelope.target !== "string") return;
    envelope.source = socket.id;
    socket.to(envelope.target).emit(MESSAGE, envelope);
  });

  socket.on("join-room", (payload) => {
    const roomId = payload !== null && typeof payload === "object" ? payload.roomId : undefined;
    if (!validRoom(roomId)) {
      socket.emit("join-error", { reason: "invalid-room", roomId: typeof roomId === "string" ? roomId : null });
      return;
    }
    if (socket.rooms.has(roomId)) {
      socket.emit("join-ok", { roomId });
      return;
    }
    const name = typeof payload.name === "string" ? payload.name : "";
    socket.data.name = name;
    // Snapshot BEFORE joining.
    const existing = [...(io.sockets.adapter.rooms.get(roomId) ?? [])];
    for (const id of existing) {
      const peer = io.sockets.sockets.get(id);
      socket.emit("user-connected", { id, name: peer ? peer.data.name : "" });
    }
    socket.join(roomId);
    socket.to(roomId).emit("user-connected", { id: socket.id, name });
    socket.to(roomId).emit(INIT_OFFER, { source: socket.id });
    socket.emit("join-ok", { roomId });
  });

  socket.on("leave-room", (payload) => {
    const roomId = payload !== null && typeof payload === "object" ? payload.roomId : undefined;
    if (typeof roomId !== "string" || roomId === socket.id || !socket.rooms.has(roomId)) return;
    socket.leave(roomId);
    socket.to(roomId).emit("user-disconnected", { id: socket.id });
  });

  socket.on("disconnecting", () => {
    for (const room of socket.rooms) {
      if (room === socket.id) continue;
      socket.to(room).emit("user-disconnected", { id: socket.id });
      socket.to(room).emit(PEER_LEFT, { id: socket.id });
    }
  });
});

httpServer.listen(opts.port, opts.host, () => {
  const { address, port } = httpServer.address();
  console.log(`listening on ${address}:${port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
