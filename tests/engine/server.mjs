// Picks the conformance server under test (see CONTRACT.md):
// - default: the Rust example `target/debug/examples/conformance`
//   (override the path with RTCIO_CONFORMANCE_BIN);
// - RTCIO_CONFORMANCE_SERVER=node: the socket.io@4.8 reference
//   `tests/reference/conformance.mjs`.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, afterEach, before } from "node:test";
import { ROOT, createSocket, next, startSocket, startServer } from "../lib/harness.mjs";

export const SERVER_KIND = process.env.RTCIO_CONFORMANCE_SERVER === "node" ? "node" : "rust";

/** `[command, args]` that runs the conformance server under test. */
export function serverCommand() {
  if (SERVER_KIND === "node") {
    return [process.execPath, [path.join(ROOT, "tests", "reference", "conformance.mjs")]];
  }
  const bin = process.env.RTCIO_CONFORMANCE_BIN ?? path.join(ROOT, "target", "debug", "examples", "conformance");
  if (!existsSync(bin)) {
    throw new Error(
      `conformance binary not found at ${bin}: build it with ` +
        "`cargo build -p rtcio-engine --example conformance`, set RTCIO_CONFORMANCE_BIN, " +
        "or run against the reference with RTCIO_CONFORMANCE_SERVER=node",
    );
  }
  return [bin, []];
}

/**
 * Starts a conformance server on an ephemeral port of 127.0.0.1. `flags` is an
 * object of CLI options, e.g. `{ "ping-interval": 200, transports: "websocket" }`.
 * Resolves with the harness handle (`url`, `stop()`, ...).
 */
export async function startConformance(flags = {}) {
  const [command, base] = serverCommand();
  const args = [...base, "--port", "0", "--host", "127.0.0.1"];
  for (const [name, value] of Object.entries(flags)) args.push(`--${name}`, String(value));
  return startServer(command, args);
}

/**
 * Registers `before`/`after` hooks on the enclosing suite that start a
 * conformance server with `flags` and stop it. Returns a context whose `url`
 * is set once the server listens.
 */
export function useServer(flags = {}) {
  const ctx = { url: null, server: null };
  before(async () => {
    ctx.server = await startConformance(flags);
    ctx.url = ctx.server.url;
  });
  after(async () => {
    await ctx.server?.stop();
  });
  return ctx;
}

/**
 * Returns `track(client)`: everything tracked (socket.io sockets, Managers,
 * raw engine clients, WebSockets) is torn down after each test.
 */
export function useCleanup() {
  const items = new Set();
  afterEach(() => {
    for (const item of items) {
      try {
        if (typeof item.disconnect === "function") item.disconnect();
        else if (typeof item._close === "function") item._close(); // Manager
        else if (typeof item.terminate === "function") item.terminate(); // ws
        else if (typeof item.close === "function") item.close();
      } catch {
        // already gone
      }
    }
    items.clear();
  });
  return (item) => {
    items.add(item);
    return item;
  };
}

/**
 * Connects a client in `mode` (torn down by `track`) and resolves once its
 * namespace's welcome event has arrived, so the server side is set up.
 */
export async function openWelcomed(track, url, mode, opts, welcomeEvent = "welcome") {
  const socket = track(createSocket(url, mode, opts));
  const welcome = next(socket, welcomeEvent);
  await startSocket(socket, mode);
  await welcome;
  return socket;
}

/** The session is over: the closure as the raw client saw it is a real one. */
export function assertServerClosed(raw, result) {
  assert.equal(result.settled, true, "the server did not close the session within 5 s");
  const closed = result.value;
  if (raw.transport === "websocket") {
    assert.equal(closed.how, "ws-close", JSON.stringify(closed));
  } else {
    assert.ok(
      closed.how === "close-packet" || (closed.how === "http" && closed.status === 400),
      JSON.stringify(closed),
    );
  }
  return closed;
}

/** GET on the polling transport with `sid`: the session must be gone. */
export async function assertSessionGone(url, sid) {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`);
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { code: 1, message: "Session ID unknown" });
}
