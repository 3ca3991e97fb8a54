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

const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
const {
  beginJoin,
  finishJoin,
  healthServer,
  listen,
  onRelayLeaveAndDeparture,
  parseArgs,
} = require("../baseline/rtcio.js");

async function main() {
  const opts = parseArgs(
    process.argv.slice(2),
    {
      host: "127.0.0.1",
      port: Number(process.env.PORT ?? 3001),
      redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    },
    { "--redis-url": (o, value) => (o.redisUrl = value()) },
    "usage: node server.js [--host HOST] [--port PORT] [--redis-url URL]   (or REDIS_URL)",
  );
  const pubClient = createClient({ url: opts.redisUrl });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on("error", (e) => console.error(`redis: ${e.message}`));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = healthServer();
  const io = new Server(httpServer, {
    cors: { origin: "*" },
    adapter: createAdapter(pubClient, subClient),
  });

  io.on("connection", (socket) => {
    socket.data.name = "";
    onRelayLeaveAndDeparture(socket);

    // Joins of one socket are handled one after the other (the snapshot is
    // asynchronous now), as the single-process baseline does synchronously.
    let joins = Promise.resolve();
    socket.on("join-room", (payload) => {
      joins = joins.then(() => join(socket, payload)).catch((e) => {
        console.error(`join-room: ${e.message}`);
        socket.emit("join-error", { reason: "internal", roomId: payload?.roomId ?? null });
      });
    });
  });

  async function join(socket, payload) {
    const joining = beginJoin(socket, payload);
    if (!joining) return;
    // Snapshot BEFORE joining, on every node.
    const existing = await io.in(joining.roomId).fetchSockets();
    if (!socket.connected) return;
    for (const peer of existing) {
      socket.emit("user-connected", { id: peer.id, name: peer.data?.name ?? "" });
    }
    finishJoin(socket, joining.roomId, joining.name);
  }

  listen(httpServer, io, opts);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
