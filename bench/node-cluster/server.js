#!/usr/bin/env node
// Cluster baseline for bench/cluster.sh: the Node baseline's rtc.io server
// logic (bench/baseline/server.js) on `socket.io@4.8` with
// `@socket.io/redis-adapter`, so several processes on one Redis form one
// signaling service — what a Node deployment of the reference does to scale
// out (shared/REFERENCE.md, "Operations facts").
//
// The same semantics as the single-process baseline, written with the
// cluster-wide calls a Node user has to use once sockets live in several
// processes:
//
// - `#rtcio:message` is relayed to `target` with `source` set to the sender's
//   socket id (`socket.to(target).emit`: the adapter publishes it on Redis and
//   every node receives it and looks the id up — the adapter's default);
// - `join-room` snapshots the room before joining with
//   `io.in(room).fetchSockets()` (a request to every node over Redis, so the
//   backfilled `user-connected` names peers on other nodes), backfills
//   `user-connected` to the joiner, sends `user-connected` +
//   `#rtcio:init-offer` to every existing peer, then `join-ok` (a repeated
//   join only answers `join-ok`);
// - `leave-room` tells the rest of the room `user-disconnected`;
// - `disconnecting` tells every room (not the own-id room)
//   `user-disconnected` and `#rtcio:peer-left`.
//
// Usage: node server.js [--host 127.0.0.1] [--port 3001] [--redis-url redis://127.0.0.1:6379]
// (or REDIS_URL). Prints `listening on HOST:PORT` once it accepts connections.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

function parseArgs(argv) {
  const opts = {
    host: "127.0.0.1",
    port: Number(process.env.PORT ?? 3001),
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
  };
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
      case "--redis-url":
        opts.redisUrl = value();
        break;
      case "-h":
      case "--help":
        console.log("usage: node server.js [--host HOST] [--port PORT] [--redis-url URL]   (or REDIS_URL)");
        process.exit(0);
        break;
      default:
        console.error(`unknown argument: ${arg}`);
        process.exit(2);
    }
  }
  return opts;
}

const MESSAGE = "#rtcio:message";
const INIT_OFFER = "#rtcio:init-offer";
const PEER_LEFT = "#rtcio:peer-left";

const validRoom = (roomId) => typeof roomId === "string" && roomId.length > 0 && roomId.length <= 128;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pubClient = createClient({ url: opts.redisUrl });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on("error", (e) => console.error(`redis: ${e.message}`));
  await Promise.all([pubClient.connect(), subClient.connect()]);

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
    adapter: createAdapter(pubClient, subClient),
  });

  io.on("connection", (socket) => {
    socket.data.name = "";

    // The rtc.io package's default listener: relay the envelope to `target`.
    socket.on(MESSAGE, (envelope) => {
      if (envelope === null || typeof envelope !== "object" || typeof envelope.target !== "string") return;
      envelope.source = socket.id;
      socket.to(envelope.target).emit(MESSAGE, envelope);
    });

    // Joins of one socket are handled one after the other (the snapshot is
    // asynchronous now), as the single-process baseline does synchronously.
    let joins = Promise.resolve();
    socket.on("join-room", (payload) => {
      joins = joins.then(() => join(socket, payload)).catch((e) => {
        console.error(`join-room: ${e.message}`);
        socket.emit("join-error", { reason: "internal", roomId: payload?.roomId ?? null });
      });
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

  async function join(socket, payload) {
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
    // Snapshot BEFORE joining, on every node.
    const existing = await io.in(roomId).fetchSockets();
    if (!socket.connected) return;
    for (const peer of existing) {
      socket.emit("user-connected", { id: peer.id, name: peer.data?.name ?? "" });
    }
    socket.join(roomId);
    socket.to(roomId).emit("user-connected", { id: socket.id, name });
    socket.to(roomId).emit(INIT_OFFER, { source: socket.id });
    socket.emit("join-ok", { roomId });
  }

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

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
