// The rtc.io server logic both Node baselines share (bench/baseline/server.js
// in one process, bench/node-cluster/server.js on Redis): arguments, the
// health route, the relay, leave-room, departures and the parts of join-room
// that do not depend on where the room's members live. Only the join's
// snapshot differs between the two (a local room lookup, or
// `fetchSockets()` across the cluster), so each server writes that itself.
"use strict";

const http = require("node:http");

const MESSAGE = "#rtcio:message";
const INIT_OFFER = "#rtcio:init-offer";
const PEER_LEFT = "#rtcio:peer-left";

const validRoom = (roomId) => typeof roomId === "string" && roomId.length > 0 && roomId.length <= 128;

/**
 * `--host` and `--port` (both servers), plus `flags`: `{ "--name": (opts, value) => ... }`,
 * where `value()` reads the flag's value (`--name=v` or `--name v`). Exits on `--help` or
 * an unknown argument.
 */
function parseArgs(argv, opts, flags, usage) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [key, inline] = arg.includes("=") ? arg.split(/=(.*)/s) : [arg, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (key === "--host") opts.host = value();
    else if (key === "--port") opts.port = Number(value());
    else if (flags[key]) flags[key](opts, value);
    else if (key === "-h" || key === "--help") {
      console.log(usage);
      process.exit(0);
    } else {
      console.error(`unknown argument: ${arg}`);
      process.exit(2);
    }
  }
  return opts;
}

/** An HTTP server answering `/health` (socket.io attaches to it). */
function healthServer() {
  return http.createServer((req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    res.writeHead(404);
    res.end();
  });
}

/** The relay, `leave-room` and the departure announcements of one socket. */
function onRelayLeaveAndDeparture(socket) {
  // The rtc.io package's default listener: relay the envelope to `target`.
  socket.on(MESSAGE, (envelope) => {
    if (envelope === null || typeof envelope !== "object" || typeof envelope.target !== "string") return;
    envelope.source = socket.id;
    socket.to(envelope.target).emit(MESSAGE, envelope);
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
}

/**
 * The start of `join-room`: answers an invalid room (`join-error`) or a repeated join
 * (`join-ok`) and returns null; else records the name and returns `{ roomId, name }`.
 */
function beginJoin(socket, payload) {
  const roomId = payload !== null && typeof payload === "object" ? payload.roomId : undefined;
  if (!validRoom(roomId)) {
    socket.emit("join-error", { reason: "invalid-room", roomId: typeof roomId === "string" ? roomId : null });
    return null;
  }
  if (socket.rooms.has(roomId)) {
    socket.emit("join-ok", { roomId });
    return null;
  }
  const name = typeof payload.name === "string" ? payload.name : "";
  socket.data.name = name;
  return { roomId, name };
}

/** The end of `join-room`, once the joiner got the snapshot: join, announce, `join-ok`. */
function finishJoin(socket, roomId, name) {
  socket.join(roomId);
  socket.to(roomId).emit("user-connected", { id: socket.id, name });
  socket.to(roomId).emit(INIT_OFFER, { source: socket.id });
  socket.emit("join-ok", { roomId });
}

/** Listens, prints `listening on HOST:PORT`, and closes `io` on SIGINT/SIGTERM. */
function listen(httpServer, io, opts) {
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
}

module.exports = { beginJoin, finishJoin, healthServer, listen, onRelayLeaveAndDeparture, parseArgs };
