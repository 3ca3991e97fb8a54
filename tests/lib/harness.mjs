// Shared helpers for the protocol tests: start a server process, connect the
// real socket.io-client in one of the three transport modes, and wait for
// events without ever sleeping a fixed time for a positive assertion.
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The three ways a browser can reach the server. */
export const MODES = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"] },
  upgrade: { transports: ["polling", "websocket"], upgrade: true },
};

/** Modes selected by RTCIO_TEST_MODES (comma list), all three by default. */
export function modes() {
  const only = process.env.RTCIO_TEST_MODES;
  const names = only ? only.split(",") : Object.keys(MODES);
  return names.map((name) => [name, MODES[name]]);
}

/**
 * Spawns `command args` and resolves once it prints `listening on HOST:PORT`
 * (stdout or stderr). The server must be started on port 0 by the caller.
 */
export async function startServer(command, args = [], { env = {} } = {}) {
  const proc = spawn(command, args, {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn,rtcio=info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk.toString();
      const m = output.match(/listening on (?:http:\/\/)?([\d.]+|\[[^\]]+\]|localhost):(\d+)/);
      if (m) resolve(`http://${m[1]}:${m[2]}`);
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`server exited (${code}) before listening:\n${output}`)));
    setTimeout(() => reject(new Error(`server did not start in 20 s:\n${output}`)), 20_000).unref();
  });
  const exited = once(proc, "exit");
  return {
    url,
    proc,
    output: () => output,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const [code, sig] = await exited;
      return { code, signal: sig };
    },
  };
}

/**
 * Connects a socket.io-client in `mode` and resolves once it is connected
 * (and, in upgrade mode, once the transport really is WebSocket).
 */
export async function connect(url, mode, opts = {}) {
  const socket = io(url, {
    ...MODES[mode],
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    ...opts,
  });
  await waitConnected(socket, mode);
  return socket;
}

/** Resolves when `socket` is connected (upgraded, in upgrade mode); rejects on connect_error. */
export async function waitConnected(socket, mode) {
  if (!socket.connected) {
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
  }
  if (mode === "upgrade") await waitUpgraded(socket);
}

/** Resolves when the engine connection under `socket` runs on WebSocket. */
export async function waitUpgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return;
  await new Promise((resolve, reject) => {
    engine.once("upgrade", resolve);
    engine.once("upgradeError", reject);
  });
}

/** Resolves with the arguments of the next `event` on `socket` (rejects after `ms`). */
export function next(socket, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`timed out waiting for "${event}"`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args.length <= 1 ? args[0] : args);
    };
    socket.once(event, handler);
  });
}

/** Records every event a socket receives, in order, for exact-sequence assertions. */
export function record(socket) {
  const events = [];
  socket.onAny((event, ...args) => events.push([event, ...args]));
  return events;
}

/** Waits until `predicate()` holds, polling every 10 ms (rejects after `ms`). */
export async function until(predicate, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Emits `event` and resolves with the ack's arguments. */
export function ask(socket, event, ...args) {
  return socket.timeout(5000).emitWithAck(event, ...args);
}

/**
 * Lets the server drain: a round trip through an ack-carrying event proves
 * every earlier packet on this connection has been processed.
 */
export async function roundTrip(socket, event = "ping-ack") {
  return ask(socket, event);
}

// ---------------------------------------------------------------------------
// Additional helpers (engine conformance suite). Nothing above depends on them.
// ---------------------------------------------------------------------------

/**
 * Creates a socket.io-client socket for `mode` WITHOUT connecting it, so that
 * listeners (e.g. for an event the server emits on connection) can be attached
 * first. Connect it with `startSocket(socket, mode)`.
 */
export function createSocket(url, mode, opts = {}) {
  return io(url, {
    ...MODES[mode],
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    ...opts,
    autoConnect: false,
  });
}

/** Connects a socket made by `createSocket` and waits as `connect` does. */
export async function startSocket(socket, mode) {
  socket.connect();
  await waitConnected(socket, mode);
  return socket;
}

/** Like `next`, but always resolves with the full argument array. */
export function nextArgs(socket, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`timed out waiting for "${event}"`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    socket.once(event, handler);
  });
}

/** Emits `event` with an ack and resolves with ALL the ack's arguments (an array). */
export function askAll(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(5000).emit(event, ...args, (err, ...res) => (err ? reject(err) : resolve(res)));
  });
}

/** True for every binary type a socket.io client or server may hand out. */
export function isBinary(value) {
  return (
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value) ||
    (typeof Buffer !== "undefined" && Buffer.isBuffer(value))
  );
}

/**
 * Deep copy in which every binary value becomes `{ $binary: [bytes...] }`, so
 * payloads can be compared with `assert.deepStrictEqual` whatever binary type
 * the client decoded them to (Buffer, ArrayBuffer, Uint8Array).
 */
export function plain(value) {
  if (isBinary(value)) {
    const view =
      value instanceof ArrayBuffer
        ? new Uint8Array(value)
        : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return { $binary: Array.from(view) };
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** The `plain()` form of `bytes` (an array of numbers). */
export const bin = (bytes) => ({ $binary: Array.from(bytes) });

/** Resolves when `promise` settles or `ms` elapse, whichever comes first (never rejects). */
export function settleWithin(promise, ms) {
  let timer;
  return Promise.race([
    promise.then(
      (v) => ({ settled: true, value: v }),
      (e) => ({ settled: true, error: e }),
    ),
    new Promise((r) => {
      timer = setTimeout(() => r({ settled: false }), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` (async) every 20 ms until it returns true (rejects after `ms`). */
export async function untilAsync(check, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Engine.IO v4 record separator between packets of a polling payload. */
export const RECORD_SEPARATOR = "\x1e";

/** Splits an Engine.IO v4 polling payload into packets (binary `b...` → Buffer). */
export function decodePollingPayload(text) {
  if (text === "") return [];
  return text.split(RECORD_SEPARATOR).map((p) => (p[0] === "b" ? Buffer.from(p.slice(1), "base64") : p));
}

/**
 * A hand-driven Engine.IO v4 client for tests that need to misbehave (never
 * answer pings, never send a Socket.IO CONNECT, send oversized frames...).
 *
 * mode: "websocket" (WebSocket from the start), "polling" (HTTP long-polling
 * only) or "upgrade" (polling handshake, then the probe/upgrade dance to
 * WebSocket, exactly as engine.io-client does it).
 *
 * Resolves once the session is open (and upgraded) with:
 *   handshake  the parsed open packet, sid its id, transport the current one
 *   packets    every received packet after the open packet, in order (text
 *              packets as strings, binary ones as Buffers; noops "6" skipped)
 *   send(...p) sends packets (one WebSocket message each / one POST)
 *   closed     promise of how the server ended the session:
 *              { how: "ws-close", code } | { how: "close-packet" } |
 *              { how: "http", status, body } | { how: "error", error }
 *              plus `at` (Date.now()) and `packets` (count received before)
 *   waitFor(pred, ms)  resolves with the first packet satisfying pred
 *   close()    tears the client down (the server is not told)
 */
export async function rawEngine(url, mode, { autoPong = false, query = {} } = {}) {
  const { WebSocket } = await import("ws");
  const base = new URL("/socket.io/", url);
  const params = (extra) => new URLSearchParams({ ...query, EIO: "4", ...extra }).toString();
  const httpUrl = (extra) => `${base.origin}${base.pathname}?${params({ transport: "polling", ...extra })}`;
  const wsUrl = (extra) =>
    `${base.origin.replace(/^http/, "ws")}${base.pathname}?${params({ transport: "websocket", ...extra })}`;

  const packets = [];
  const controller = new AbortController();
  let finished = false;
  let resolveClosed;
  const closed = new Promise((r) => (resolveClosed = r));
  const client = { handshake: null, sid: null, transport: null, packets, closed };
  const finish = (result) => {
    if (finished) return;
    finished = true;
    resolveClosed({ ...result, at: Date.now(), packets: packets.length });
  };

  const onPacket = (packet) => {
    if (packet === "6") return; // noop
    packets.push(packet);
    // The pong's POST may still be in flight when the test closes the client
    // (which aborts it): that rejection is expected, not a failure.
    if (packet === "2" && autoPong) client.send("3").catch(() => {});
    if (packet === "1") finish({ how: "close-packet" });
  };

  // ---- polling -----------------------------------------------------------
  let pollPaused = false;
  let currentPoll = null;
  const pollLoop = async () => {
    while (!finished && !pollPaused) {
      let res;
      try {
        res = await fetch(httpUrl({ sid: client.sid }), { signal: controller.signal });
      } catch (error) {
        if (!finished && !controller.signal.aborted) finish({ how: "error", error });
        return;
      }
      const body = await res.text().catch(() => "");
      if (client.transport !== "polling") return; // upgraded meanwhile
      if (res.status !== 200) {
        finish({ how: "http", status: res.status, body });
        return;
      }
      for (const p of decodePollingPayload(body)) onPacket(p);
    }
  };

  // ---- websocket ---------------------------------------------------------
  const openWs = (extra) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(extra));
      const early = [];
      ws.on("message", (data, isBinary) => {
        const packet = isBinary ? Buffer.from(data) : data.toString();
        if (ws.listener) ws.listener(packet);
        else early.push(packet);
      });
      ws.once("open", () => resolve({ ws, early }));
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
      });
      ws.once("error", reject);
    });
  let ws = null;
  const attachWs = (socket) => {
    ws = socket;
    // Lets a test stop reading from the server (a slow consumer): pauses the TCP socket.
    client.pauseReading = () => ws._socket.pause();
    client.resumeReading = () => ws._socket.resume();
    ws.on("close", (code) => finish({ how: "ws-close", code }));
    ws.on("error", () => {});
  };

  client.send = async (...out) => {
    if (client.transport === "websocket") {
      for (const p of out) ws.send(p);
      return;
    }
    const body = out
      .map((p) => (typeof p === "string" ? p : "b" + Buffer.from(p).toString("base64")))
      .join(RECORD_SEPARATOR);
    const res = await fetch(httpUrl({ sid: client.sid }), {
      method: "POST",
      body,
      headers: { "content-type": "text/plain;charset=UTF-8" },
      signal: controller.signal,
    });
    const text = await res.text();
    return { status: res.status, body: text };
  };

  client.waitFor = async (pred, ms = 5000, what = "packet") => {
    await until(() => packets.some(pred), ms, what);
    return packets.find(pred);
  };

  client.close = () => {
    finished = true;
    resolveClosed({ how: "client-closed", at: Date.now(), packets: packets.length });
    controller.abort();
    if (ws) ws.terminate();
  };

  if (mode === "websocket") {
    const { ws: socket, early } = await openWs({});
    const first = early.length
      ? early.shift()
      : await new Promise((r) => {
          socket.listener = (p) => {
            socket.listener = (q) => early.push(q);
            r(p);
          };
        });
    if (typeof first !== "string" || first[0] !== "0") throw new Error(`expected an open packet, got ${first}`);
    client.handshake = JSON.parse(first.slice(1));
    client.sid = client.handshake.sid;
    client.transport = "websocket";
    socket.listener = onPacket;
    for (const p of early) onPacket(p);
    attachWs(socket);
    return client;
  }

  // polling handshake
  const res = await fetch(httpUrl({}), { signal: controller.signal });
  const text = await res.text();
  if (res.status !== 200) throw Object.assign(new Error(`handshake HTTP ${res.status}: ${text}`), { status: res.status, body: text });
  const [open, ...rest] = decodePollingPayload(text);
  if (typeof open !== "string" || open[0] !== "0") throw new Error(`expected an open packet, got ${text}`);
  client.handshake = JSON.parse(open.slice(1));
  client.sid = client.handshake.sid;
  client.transport = "polling";
  for (const p of rest) onPacket(p);
  currentPoll = pollLoop();
  if (mode === "polling") return client;

  // upgrade: probe over a WebSocket carrying the sid, pause polling, upgrade.
  const { ws: socket, early } = await openWs({ sid: client.sid });
  const probe = new Promise((resolve) => {
    const seen = (p) => {
      if (p === "3probe") resolve();
      else probeQueue.push(p);
    };
    const probeQueue = [];
    socket.listener = seen;
    for (const p of early) seen(p);
    client._probeQueue = probeQueue;
  });
  socket.send("2probe");
  await probe;
  pollPaused = true;
  await currentPoll; // the server flushes the pending GET (noop) once probed
  client.transport = "websocket";
  socket.listener = onPacket;
  attachWs(socket);
  socket.send("5");
  for (const p of client._probeQueue) onPacket(p);
  delete client._probeQueue;
  return client;
}
