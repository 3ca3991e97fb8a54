// The bounded outgoing queue: a client that stops reading is cut off as a
// slow consumer once its backlog passes --max-queue-bytes, instead of the
// server buffering without bound (REFERENCE.md: Node grew by ~361 MB for one
// paused client). Everyone else carries on. Node has no such bound, so this
// suite runs against the Rust engine only.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ask, connect, rawEngine, settleWithin, until } from "../lib/harness.mjs";
import { SERVER_KIND, useCleanup, useServer } from "./server.mjs";

const QUEUE = 256 * 1024;
// Small against the bound: the bystander, read by this same busy process,
// may fall ten blobs behind without being taken for a slow consumer too.
const BLOB = "x".repeat(25_000);
// 40 MB in all: far more than the kernel's socket buffers (a few MB on loopback).
const MAX_BLOBS = 1600;

describe("slow consumer (websocket)", { skip: SERVER_KIND === "node" && "socket.io buffers without bound" }, () => {
  const srv = useServer({ "max-queue-bytes": QUEUE });
  const track = useCleanup();

  it("a client that stops reading is disconnected; the sender and others are not", async () => {
    const slow = track(await rawEngine(srv.url, "websocket", { autoPong: true }));
    await slow.send("40");
    await slow.waitFor((p) => typeof p === "string" && p.startsWith("40{"), 5000, "CONNECT ack");
    await slow.send('420["join","blobs"]');
    await slow.waitFor((p) => typeof p === "string" && p.startsWith("430"), 5000, "join ack");

    const sender = track(await connect(srv.url, "websocket"));
    const bystander = track(await connect(srv.url, "websocket"));
    await ask(sender, "join", "blobs");
    await ask(bystander, "join", "blobs");
    let received = 0;
    bystander.on("blob", () => received++);

    slow.pauseReading();
    // Far more than the kernel's socket buffers (a few MB on loopback) plus the
    // bound, unless the server cuts the paused client off first (it then
    // leaves the room: the room shrinks to the two others).
    let sent = 0;
    while (sent < MAX_BLOBS && (await ask(sender, "room-size", "blobs")) === 3) {
      await ask(sender, "to-room", { room: "blobs", event: "blob", data: BLOB });
      sent++;
    }
    assert.ok(sent < MAX_BLOBS, `the paused client was still connected after ${sent} blobs`);
    assert.equal(await ask(sender, "room-size", "blobs"), 2, "the slow client left the room");
    // The sender and the bystander were not affected.
    assert.equal(await ask(sender, "ping-ack"), "pong");
    await until(() => received === sent, 10_000, "every blob at the bystander");
    // Reading again, the cut-off client sees its connection closed.
    slow.resumeReading();
    const closed = await settleWithin(slow.closed, 10_000);
    assert.equal(closed.settled, true, "the connection was closed");
  });
});
