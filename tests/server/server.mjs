// Starts the signaling server under test and holds the helpers shared by the
// tests in this folder (see CONTRACT.md).
//   default                        target/debug/rtcio-server (or $RTCIO_SERVER_BIN)
//   RTCIO_SIGNALING_SERVER=node    tests/reference/signaling.mjs on socket.io@4.8
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { io } from "socket.io-client";
import { MODES, ROOT, record, startServer, until, waitConnected } from "../lib/harness.mjs";

export const KIND = process.env.RTCIO_SIGNALING_SERVER === "node" ? "node" : "rust";

/**
 * Environment every Rust server started by the suites gets, before a test's
 * own `env`: features whose defaults would get in the way of suites about
 * something else are set here (each suite about that feature overrides it).
 */
export const SUITE_ENV = {
  // Chat history off, so no suite writes ./rtcio.db and no join is followed
  // by `chat-history` (chat.test.mjs turns it on with its own database).
  NO_HISTORY: "1",
  // Suites about other things send thousands of events and open many
  // connections from one address (limits.test.mjs turns the limits on).
  RATE_LIMIT: "0",
  // Connection-state recovery (on by default, as the reference) stamps every
  // event with an offset, an extra last argument socket.io-client hands to
  // listeners, and holds user-disconnected for the presence grace after an
  // abrupt drop. The suites here pin exact argument lists and immediate
  // presence, so they run with it off; recovery.test.mjs turns it on.
  RECOVERY_WINDOW: "0",
};

/**
 * Starts the server on 127.0.0.1, port 0, with `extraArgs` (and `env` on top
 * of SUITE_ENV); resolves to harness startServer's handle.
 */
export async function startSignaling(extraArgs = [], { env = {} } = {}) {
  const args = ["--host", "127.0.0.1", "--port", "0", ...extraArgs];
  if (KIND === "node") {
    return startServer(process.execPath, [path.join(ROOT, "tests", "reference", "signaling.mjs"), ...args]);
  }
  const bin = process.env.RTCIO_SERVER_BIN ?? path.join(ROOT, "target", "debug", "rtcio-server");
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: run \`cargo build -p rtcio-server\` or set RTCIO_SIGNALING_SERVER=node`);
  }
  return startServer(bin, args, { env: { ...SUITE_ENV, ...env } });
}

/**
 * Opens a socket with `opts` and resolves to `{ ok: true, socket }` or, when
 * the server refuses it, `{ ok: false, message }` (the `connect_error` text).
 */
export function attempt(url, mode, opts = {}) {
  const socket = io(url, { ...MODES[mode], forceNew: true, reconnection: false, timeout: 5000, ...opts });
  return new Promise((resolve) => {
    socket.once("connect", () => resolve({ ok: true, socket }));
    socket.once("connect_error", (err) => {
      socket.close();
      resolve({ ok: false, message: err.message });
    });
  });
}

let seq = 0;
/** A room name no other test uses. */
export const uniqueRoom = (label = "room") => `${label}-${++seq}`;

/**
 * Tracks the clients of a test so `closeAll()` (in afterEach) disconnects them.
 * `connect` returns `{ socket, log, id }` where `log` is the `record()` of every
 * event received since before the connection was opened.
 */
export function clientPool() {
  const sockets = new Set();
  return {
    async connect(url, mode, opts = {}) {
      const socket = io(url, { ...MODES[mode], forceNew: true, reconnection: false, timeout: 5000, autoConnect: false, ...opts });
      sockets.add(socket);
      const log = record(socket);
      socket.connect();
      await waitConnected(socket, mode);
      return { socket, log, id: socket.id };
    },
    closeAll() {
      for (const s of sockets) s.disconnect();
      sockets.clear();
    },
  };
}

/** Resolves with `[event, ...args]` of the first event in `events` that satisfies `match`. */
export function waitAny(socket, events, match = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const handler = (event, ...args) => {
      if (!events.includes(event) || !match(...args)) return;
      clearTimeout(timer);
      socket.offAny(handler);
      resolve([event, ...args]);
    };
    const timer = setTimeout(() => {
      socket.offAny(handler);
      reject(new Error(`timed out waiting for ${events.join(" | ")}`));
    }, ms);
    socket.onAny(handler);
  });
}

/** Emits `event payload...` and resolves with the first reply among `replies` (`[event, ...args]`). */
export function request(socket, replies, event, ...payload) {
  const reply = waitAny(socket, replies);
  socket.emit(event, ...payload);
  return reply;
}

const JOIN_REPLIES = ["join-ok", "join-error", "error"];

/** join-room and resolve with the reply (`["join-ok", {roomId}]` on success). */
export function tryJoin(client, payload) {
  return request(client.socket, JOIN_REPLIES, "join-room", payload);
}

/** join-room that must succeed. */
/**
 * Every client asks to join `roomId` (as "n") at the same instant; resolves with each
 * client's answer (`[event, payload]`, `join-ok` or `join-error`) and the clients let in
 * and kept out.
 */
export async function joinAtOnce(clients, roomId) {
  const replies = clients.map((c) => waitAny(c.socket, ["join-ok", "join-error"], (p) => p?.roomId === roomId, 15_000));
  for (const c of clients) c.socket.emit("join-room", { roomId, name: "n" });
  const got = await Promise.all(replies);
  return {
    got,
    inside: clients.filter((_, i) => got[i][0] === "join-ok"),
    outside: clients.filter((_, i) => got[i][0] === "join-error"),
  };
}

export async function join(client, roomId, name, password) {
  const payload = { roomId, name };
  if (password !== undefined) payload.password = password;
  assert.deepEqual(await tryJoin(client, payload), ["join-ok", { roomId }]);
}

export function checkRoom(client, payload) {
  return request(client.socket, ["room-check-ok", "join-error", "error"], "check-room", payload);
}

let barrierSeq = 0;
const BARRIER = "barrier-";

/**
 * Barrier for negative assertions: each socket in turn (pass the senders first)
 * sends `check-room` and waits for its `room-check-ok`. The server handles a
 * socket's events in order and delivers each socket's outgoing events in order,
 * so once this resolves everything caused earlier has reached these sockets.
 */
export async function barrier(...clients) {
  for (const { socket } of clients) {
    const roomId = `${BARRIER}${++barrierSeq}`;
    const reply = waitAny(socket, ["room-check-ok"], (p) => p?.roomId === roomId);
    socket.emit("check-room", { roomId });
    await reply;
  }
}

/**
 * Sends `flood` envelopes from `flooder` to `target` as fast as the client
 * takes them while `calm` sends `calmCount` to `calmTarget` at 40/s (under a
 * 50/s budget); resolves once both have sent everything. The envelopes carry
 * `data: { n }`, numbered from 0 for each sender.
 */
export async function floodBesideCalm({ flooder, target, flood, calm, calmTarget, calmCount }) {
  const MSG = "#rtcio:message";
  let sent = 0;
  const calmDone = new Promise((resolve) => {
    const timer = setInterval(() => {
      calm.socket.emit(MSG, { target: calmTarget.id, data: { n: sent++ } });
      if (sent === calmCount) {
        clearInterval(timer);
        resolve();
      }
    }, 25);
  });
  for (let i = 0; i < flood; i++) {
    flooder.socket.emit(MSG, { target: target.id, data: { n: i } });
    if (i % 200 === 0) await new Promise((r) => setImmediate(r));
  }
  await calmDone;
}

/** The client's event log without barrier replies (optionally from index `from`). */
export function seen(client, from = 0) {
  return client.log
    .slice(from)
    .filter(([event, p]) => !(event === "room-check-ok" && p?.roomId?.startsWith(BARRIER)));
}

/** Asserts `entry` is `["error", { code, message, roomId? }]`. */
export function assertError(entry, code, roomId) {
  assert.ok(entry, `expected an error ${code}, got nothing`);
  const [event, payload] = entry;
  assert.equal(event, "error", `expected error ${code}, got ${JSON.stringify(entry)}`);
  assert.equal(payload?.code, code, `expected code ${code}, got ${JSON.stringify(payload)}`);
  assert.equal(typeof payload.message, "string", "error.message must be a string");
  assert.ok(payload.message.length > 0, "error.message must not be empty");
  if (roomId !== undefined) assert.equal(payload.roomId, roomId, "error.roomId");
}

/**
 * Asserts `entries` are what a joiner of `roomId` receives on success: for
 * each existing peer, `user-connected { id, name }` immediately followed by
 * `media-state { roomId, mic, cam, id }` when `peer.media` is given; then
 * `join-ok { roomId }` last. CONTRACT.md does not order the peers among
 * themselves, so any order is accepted here (the join-order test pins it).
 * `peers`: `[{ id, name, media?: { mic, cam } }]`.
 */
export function assertJoinSequence(entries, roomId, peers) {
  const show = () => JSON.stringify(entries);
  assert.deepEqual(entries.at(-1), ["join-ok", { roomId }], `join-ok comes last: ${show()}`);
  const groups = [];
  for (const entry of entries.slice(0, -1)) {
    if (entry[0] === "user-connected") groups.push([entry]);
    else if (groups.length) groups.at(-1).push(entry);
    else assert.fail(`${JSON.stringify(entry)} before any user-connected: ${show()}`);
  }
  const expected = peers.map(({ id, name, media }) => [
    ["user-connected", { id, name }],
    ...(media ? [["media-state", { roomId, mic: media.mic, cam: media.cam, id }]] : []),
  ]);
  const byId = (a, b) => (String(a[0][1]?.id) < String(b[0][1]?.id) ? -1 : 1);
  assert.deepEqual(groups.sort(byId), expected.sort(byId), `backfill of ${roomId}: ${show()}`);
}

/**
 * Asserts `entries` are exactly one departure of `id`: `user-disconnected { id }`
 * and `#rtcio:peer-left { id }`, in either order (CONTRACT.md does not order them).
 */
export function assertDeparture(entries, id, message) {
  const key = (entry) => JSON.stringify(entry);
  const expected = [["user-disconnected", { id }], ["#rtcio:peer-left", { id }]];
  assert.deepEqual(entries.map(key).sort(), expected.map(key).sort(), message);
}

/**
 * Runs `leave` (a disconnect, a severed transport...) and asserts that each of
 * `peers` then hears the departure of `leaverId` exactly once:
 * `user-disconnected` and `#rtcio:peer-left`, nothing else (`messages[i]`
 * labels peer i's assertion).
 */
export async function expectDeparture(leaverId, peers, leave, { ms = 5000, messages = [] } = {}) {
  const marks = peers.map((p) => p.log.length);
  await leave();
  await until(() => peers.every((p, i) => seen(p, marks[i]).length >= 2), ms, "departure events");
  await barrier(...peers);
  peers.forEach((p, i) => assertDeparture(seen(p, marks[i]), leaverId, messages[i]));
}

/**
 * Retries the async assertion `fn` until it passes (rejects with its last
 * error after `ms`). For facts that become true just after an observable
 * event, e.g. a departed socket being unreachable once its peer-left arrived.
 */
export async function eventually(fn, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Sends `signal` and resolves with `{ code, signal }` of the exit; rejects if that takes over `ms`. */
export function exitWithin(handle, ms, signal = "SIGTERM") {
  return Promise.race([
    handle.stop(signal),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`server did not exit within ${ms} ms`)), ms).unref()),
  ]);
}

/**
 * A TCP proxy in front of the server to lose a client's connection without it
 * sending anything: `freeze()` stops forwarding in both directions and keeps
 * every connection open (only the server's heartbeat can notice); `sever()`
 * destroys the TCP connections (no Engine.IO close, no Socket.IO disconnect).
 */
export async function startProxy(targetUrl) {
  const { hostname, port } = new URL(targetUrl);
  const conns = new Set();
  let frozen = false;
  const server = net.createServer((client) => {
    client.on("error", () => {});
    conns.add(client);
    if (frozen) return client.pause();
    const upstream = net.connect(Number(port), hostname);
    upstream.on("error", () => {});
    conns.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      if (frozen) return; // a frozen link never tells the other side anything
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    freeze() {
      frozen = true;
      for (const c of conns) {
        c.unpipe();
        c.pause();
      }
    },
    sever() {
      for (const c of conns) c.destroy();
    },
    close() {
      for (const c of conns) c.destroy();
      server.close();
    },
  };
}

/**
 * The contract's three-client scenario: A and B join room R, C joins late.
 * Asserts exactly which events, with which payloads and in which order, each
 * client receives, and that nobody gets a self user-connected or init-offer.
 * `peer()` connects a client (`clientPool().connect`). `settle(joiner,
 * ...others)` runs after each join, before the logs are read: a round trip
 * per client by default, which is enough in one process; a cluster, where
 * the others may be on other nodes, waits for what crosses Redis.
 */
export async function threeClientScenario(peer, { settle = barrier } = {}) {
  const R = uniqueRoom();
  const A = await peer();
  const B = await peer();
  const C = await peer();

  await join(A, R, "alice");
  await settle(A);
  assert.deepEqual(seen(A), [["join-ok", { roomId: R }]]);

  await join(B, R, "bob");
  await settle(B, A);
  assert.deepEqual(seen(B), [
    ["user-connected", { id: A.id, name: "alice" }],
    ["join-ok", { roomId: R }],
  ]);
  assert.deepEqual(seen(A), [
    ["join-ok", { roomId: R }],
    ["user-connected", { id: B.id, name: "bob" }],
    ["#rtcio:init-offer", { source: B.id }],
  ]);

  await join(C, R, "carol");
  await settle(C, A, B);
  // Backfill: one user-connected per existing peer, join-ok last.
  assertJoinSequence(seen(C), R, [
    { id: A.id, name: "alice" },
    { id: B.id, name: "bob" },
  ]);
  assert.deepEqual(seen(A), [
    ["join-ok", { roomId: R }],
    ["user-connected", { id: B.id, name: "bob" }],
    ["#rtcio:init-offer", { source: B.id }],
    ["user-connected", { id: C.id, name: "carol" }],
    ["#rtcio:init-offer", { source: C.id }],
  ]);
  assert.deepEqual(seen(B), [
    ["user-connected", { id: A.id, name: "alice" }],
    ["join-ok", { roomId: R }],
    ["user-connected", { id: C.id, name: "carol" }],
    ["#rtcio:init-offer", { source: C.id }],
  ]);
  // Never a self user-connected nor a self init-offer.
  for (const X of [A, B, C]) {
    for (const [event, p] of seen(X)) {
      if (event === "user-connected") assert.notEqual(p.id, X.id, "self user-connected");
      if (event === "#rtcio:init-offer") assert.notEqual(p.source, X.id, "self init-offer");
    }
  }
}
