// Capacity: started with the soft open-file limit most systems give (1024)
// and a higher hard limit, the server raises its soft limit, says so, and
// takes more than 1,024 clients. When descriptors do run out (hard limit
// 64), failed accepts are logged and counted, and the connected sockets
// carry on.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { after, describe, it } from "node:test";
import { connect, next, startServer } from "../lib/harness.mjs";
import { SUITE_ENV, eventually } from "../server/server.mjs";
import { BIN, metric, rawSocket, requireBinary, scrape, waitForOutput } from "./ops.mjs";

requireBinary();

const CLIENTS = 1100;

/** This process's hard open-file limit (Linux /proc). */
function hardLimit() {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  const hard = line.trim().split(/\s+/)[4];
  return hard === "unlimited" ? Infinity : Number(hard);
}

const isRoot = process.getuid?.() === 0;
// Root may raise the hard limit for the child; others need one above the clients.
const HARD = Math.max(Math.min(hardLimit(), 65536), isRoot ? 8192 : 0);
const canRun = HARD > CLIENTS + 200;

function startLimited(soft, hard, args = []) {
  return startServer("prlimit", [`--nofile=${soft}:${hard}`, "--", BIN, "--host", "127.0.0.1", "--port", "0", ...args], {
    env: SUITE_ENV,
  });
}

describe("capacity", () => {
  const cleanups = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it(`soft limit 1024, hard ${HARD}: the limit is raised and logged, and ${CLIENTS} + 1 clients connect`, {
    skip: !canRun && `the hard open-file limit (${HARD}) is too low to run ${CLIENTS} clients`,
  }, async () => {
    const { WebSocket } = await import("ws");
    const server = await startLimited(1024, HARD);
    cleanups.push(() => server.stop());
    assert.match(server.output(), new RegExp(`open-file limit raised from 1024 to \\d+: room for about \\d+ sockets`));

    const raw = [];
    cleanups.push(() => raw.forEach((ws) => ws.terminate()));
    for (let i = 0; i < CLIENTS; i += 100) {
      const batch = Array.from({ length: Math.min(100, CLIENTS - i) }, () => rawSocket(server.url, WebSocket));
      raw.push(...(await Promise.all(batch)));
    }
    assert.equal(raw.length, CLIENTS);

    // A real client on top of them, doing real work.
    const client = await connect(server.url, "websocket");
    cleanups.push(() => client.disconnect());
    client.emit("join-room", { roomId: "capacity", name: "last" });
    assert.deepEqual(await next(client, "join-ok"), { roomId: "capacity" });

    const m = await scrape(server.url);
    assert.equal(metric(m, 'rtcio_sockets_connected{namespace="/",transport="websocket"}'), CLIENTS + 1);
    assert.ok(metric(m, "process_max_fds") > 1024, "the soft limit was raised");
    assert.ok(metric(m, "process_open_fds") > CLIENTS);
    assert.equal(metric(m, "rtcio_accept_failures_total"), 0);
  });

  it("out of descriptors: accept failures are logged (rate-limited) and counted; connected sockets carry on", async () => {
    const server = await startLimited(64, 64);
    cleanups.push(() => server.stop());
    assert.match(server.output(), /caps this server at about \d+ sockets/, "a small limit is warned about");
    const client = await connect(server.url, "websocket");
    cleanups.push(() => client.disconnect());

    // Idle TCP connections until the server has no descriptor left.
    const { port } = new URL(server.url);
    const conns = [];
    const closeConns = () => conns.forEach((c) => c.destroy());
    cleanups.push(closeConns);
    for (let i = 0; i < 100; i++) {
      const c = net.connect(Number(port), "127.0.0.1");
      c.on("error", () => {});
      conns.push(c);
    }
    await waitForOutput(server, /cannot accept new connections: .*EMFILE/, 10_000, "the accept failure line");
    const failureLines = () => server.output().match(/cannot accept new connections/g).length;

    // The connected client is still served.
    client.emit("check-room", { roomId: "still-here" });
    assert.deepEqual(await next(client, "room-check-ok"), { roomId: "still-here", passwordRequired: false });

    closeConns();
    // Descriptors free again: the server accepts, says so, and counted the failures.
    const m = await eventually(() => scrape(server.url), 10_000);
    const failures = metric(m, "rtcio_accept_failures_total");
    assert.ok(failures >= 1, `failures counted: ${failures}`);
    const [, streak] = await waitForOutput(server, /accepting connections again after (\d+) failed accept/);
    assert.ok(Number(streak) >= 1);
    assert.ok(failureLines() <= failures, "never more than one line per failure");
    assert.match(server.output(), new RegExp(`\\d+ failed accept\\(s\\) since the last report`));
  });
});
