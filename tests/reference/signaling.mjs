#!/usr/bin/env node
// Reference implementation of tests/server/CONTRACT.md on Node socket.io@4.8.
// The server tests run against it with RTCIO_SIGNALING_SERVER=node, which
// proves they encode socket.io's behaviour and not only the Rust binary's.
import http from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: opt } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "3001" },
    "ping-interval": { type: "string", default: "25s" },
    "ping-timeout": { type: "string", default: "20s" },
    namespace: { type: "string", default: "/" },
    "relay-scope": { type: "string", default: "room" },
    "allowed-origins": { type: "string", default: "*" },
  },
});

/** "300ms" | "20s" | "1m" | "20" (seconds) → milliseconds. */
function duration(text) {
  const m = /^(\d+)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration: ${text}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? "s"];
}

const relayScope = opt["relay-scope"];
if (relayScope !== "room" && relayScope !== "any") throw new Error(`invalid --relay-scope: ${relayScope}`);
const origins = opt["allowed-origins"];

const httpServer = http.createServer((req, res) => {
  if (req.method === "GET" && req.url.split("?")[0] === "/health") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok");
  } else {
    res.writeHead(404).end();
  }
});
const io = new Server(httpServer, {
  pingInterval: duration(opt["ping-interval"]),
  pingTimeout: duration(opt["ping-timeout"]),
  cors: { origin: origins === "*" ? "*" : origins.split(",") },
});
const nsp = io.of(opt.namespace);

// roomId → { password: string|null, members: Set<socketId> } (join order).
// A socket's display name is socket.data.name: one per socket, from its latest join.
const rooms = new Map();
// socketId → { mic, cam }: the last media-state of each socket.
const mediaStates = new Map();

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const chars = (s) => [...s].length;
const validRoomId = (r) => typeof r === "string" && r.length > 0 && chars(r) <= 128;
const roomIdOf = (p) => (isObject(p) && typeof p.roomId === "string" ? p.roomId : null);

function refuse(socket, code, message, roomId) {
  socket.emit("error", roomId == null ? { code, message } : { code, message, roomId });
}

/** Emits to every member of `roomId` except `except`. */
function toRoom(roomId, except, event, payload) {
  for (const id of rooms.get(roomId)?.members ?? []) {
    if (id !== except) nsp.sockets.get(id)?.emit(event, payload);
  }
}

function leave(socket, roomId) {
  const room = rooms.get(roomId);
  room.members.delete(socket.id);
  socket.data.rooms.delete(roomId);
  if (room.members.size === 0) rooms.delete(roomId); // drops the password too
}

nsp.on("connection", (socket) => {
  socket.data.rooms = new Set(); // rooms joined through join-room (never the own-id room)

  socket.on("join-room", (p) => {
    if (!isObject(p) || !validRoomId(p.roomId)) {
      return socket.emit("join-error", { reason: "invalid-room", roomId: roomIdOf(p) });
    }
    const { roomId } = p;
    // A connected socket's id names its own room (socket.io puts every socket
    // in it): joining it would capture that socket's messages.
    if (nsp.sockets.has(roomId)) return socket.emit("join-error", { reason: "invalid-room", roomId });
    if (p.name != null && (typeof p.name !== "string" || chars(p.name) > 64)) {
      return refuse(socket, "bad-request", "name must be a string of at most 64 characters", roomId);
    }
    if (p.password != null && typeof p.password !== "string") {
      return refuse(socket, "bad-request", "password must be a string", roomId);
    }
    if (socket.data.rooms.has(roomId)) return socket.emit("join-ok", { roomId });
    const room = rooms.get(roomId);
    if (room?.password) {
      if (!p.password) return socket.emit("join-error", { reason: "password-required", roomId });
      if (p.password !== room.password) return socket.emit("join-error", { reason: "wrong-password", roomId });
    }
    const name = p.name ?? "";
    socket.data.name = name;
    const members = room?.members ?? new Set();
    for (const id of members) {
      socket.emit("user-connected", { id, name: nsp.sockets.get(id).data.name });
      const media = mediaStates.get(id);
      if (media) socket.emit("media-state", { roomId, mic: media.mic, cam: media.cam, id });
    }
    for (const id of members) {
      const peer = nsp.sockets.get(id);
      peer.emit("user-connected", { id: socket.id, name });
      peer.emit("#rtcio:init-offer", { source: socket.id });
    }
    if (!room) rooms.set(roomId, { password: p.password || null, members });
    members.add(socket.id);
    socket.data.rooms.add(roomId);
    socket.emit("join-ok", { roomId });
  });

  socket.on("leave-room", (p) => {
    if (!isObject(p) || !validRoomId(p.roomId)) {
      return refuse(socket, "bad-request", "leave-room needs { roomId } (a non-empty string of at most 128 characters)");
    }
    if (!socket.data.rooms.has(p.roomId)) return;
    leave(socket, p.roomId);
    toRoom(p.roomId, socket.id, "user-disconnected", { id: socket.id });
  });

  socket.on("check-room", (p) => {
    if (!isObject(p) || !validRoomId(p.roomId) || nsp.sockets.has(p.roomId)) {
      return socket.emit("join-error", { reason: "invalid-room", roomId: roomIdOf(p) });
    }
    const { roomId } = p;
    const password = rooms.get(roomId)?.password ?? null;
    const given = typeof p.password === "string" ? p.password : ""; // anything else counts as not given
    if (password && given && given !== password) {
      return socket.emit("join-error", { reason: "wrong-password", roomId });
    }
    socket.emit("room-check-ok", { roomId, passwordRequired: password !== null });
  });

  socket.on("media-state", (p) => {
    if (!isObject(p) || typeof p.roomId !== "string") {
      return refuse(socket, "bad-request", "media-state needs { roomId, mic, cam }");
    }
    const { roomId, mic, cam } = p;
    if (typeof mic !== "boolean" || typeof cam !== "boolean") {
      return refuse(socket, "bad-request", "mic and cam must be booleans", roomId);
    }
    if (!socket.data.rooms.has(roomId)) return refuse(socket, "not-in-room", "not in this room", roomId);
    mediaStates.set(socket.id, { mic, cam });
    toRoom(roomId, socket.id, "media-state", { roomId, mic, cam, id: socket.id });
  });

  socket.on("stopScreenShare", (p) => {
    if (!isObject(p) || typeof p.roomId !== "string") {
      return refuse(socket, "bad-request", "stopScreenShare needs { roomId }");
    }
    if (!socket.data.rooms.has(p.roomId)) return refuse(socket, "not-in-room", "not in this room", p.roomId);
    toRoom(p.roomId, socket.id, "stopScreenShare", { ...p, id: socket.id });
  });

  socket.on("#rtcio:message", (p) => {
    if (!isObject(p) || typeof p.target !== "string") {
      return refuse(socket, "bad-request", "envelope needs a string target");
    }
    const target = nsp.sockets.get(p.target);
    const reachable =
      target && (relayScope === "any" || [...socket.data.rooms].some((r) => target.data.rooms.has(r)));
    if (!reachable) return refuse(socket, "peer-unreachable", "target is not reachable");
    target.emit("#rtcio:message", { ...p, source: socket.id });
  });

  socket.on("disconnecting", () => {
    // Every peer of every room, once each however many rooms it shares with
    // the leaver (the Node seed loops over the rooms and repeats them).
    const peers = new Set();
    for (const roomId of [...socket.data.rooms]) {
      for (const id of rooms.get(roomId).members) if (id !== socket.id) peers.add(id);
      leave(socket, roomId);
    }
    for (const id of peers) {
      const peer = nsp.sockets.get(id);
      peer?.emit("user-disconnected", { id: socket.id });
      peer?.emit("#rtcio:peer-left", { id: socket.id });
    }
    mediaStates.delete(socket.id);
  });
});

httpServer.listen(Number(opt.port), opt.host, () => {
  const { address, port } = httpServer.address();
  console.error(`rtcio-server listening on ${address}:${port}`);
});

let closing = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(0), 5000).unref(); // never hang on a stuck connection
    await io.close();
    process.exit(0);
  });
}
