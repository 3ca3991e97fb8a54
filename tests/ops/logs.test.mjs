// Logs: --log-format json writes one JSON object per line; connects and
// disconnects (with the reason) are logged at info, each received event at
// debug with socket id, event name and argument size; SDP, candidates,
// tokens and other payload text never appear (here even at debug level).
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { connect, next } from "../lib/harness.mjs";
import { clientPool, join, startSignaling, uniqueRoom } from "../server/server.mjs";
import { requireBinary, waitForOutput } from "./ops.mjs";

requireBinary();

const SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 203.0.113.7\r\ns=SDP-MARKER\r\n";
const CANDIDATE = "candidate:842163049 1 udp 1677729535 198.51.100.23 54321 typ srflx CANDIDATE-MARKER";
const TOKEN = "TOKEN-MARKER-9c1e";

/** Every stderr line of the server as parsed JSON (fails on a line that is not). */
function jsonLines(output) {
  return output
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        assert.fail(`not a JSON log line: ${l}`);
      }
    });
}

describe("logs", () => {
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("--log-format json at debug: connects, events with sizes, disconnects with reasons; no payload text", async () => {
    const server = await startSignaling(["--log-format", "json"], { env: { RUST_LOG: "debug" } });
    try {
      const A = await pool.connect(server.url, "websocket", { auth: { token: TOKEN } });
      const B = await pool.connect(server.url, "polling", { auth: { token: TOKEN } });
      const R = uniqueRoom();
      await join(A, R, "alice");
      await join(B, R, "bob");
      const envelope = { source: B.id, target: A.id, data: { sdp: { type: "offer", sdp: SDP }, candidate: { candidate: CANDIDATE } } };
      const got = next(A.socket, "#rtcio:message");
      B.socket.emit("#rtcio:message", envelope);
      await got;
      B.socket.disconnect();
      await waitForOutput(server, new RegExp(`"socket disconnected".*${B.id}|${B.id}.*"socket disconnected"`));

      const lines = jsonLines(server.output());
      const find = (message, socket) =>
        lines.filter((l) => l.fields?.message === message && l.fields?.socket === socket);

      for (const [client, transport] of [[A, "websocket"], [B, "polling"]]) {
        const [connected] = find("socket connected", client.id);
        assert.ok(connected, `connect of ${client.id} logged`);
        assert.equal(connected.level, "INFO");
        assert.equal(connected.fields.namespace, "/");
        assert.equal(connected.fields.transport, transport);
        assert.ok(connected.timestamp);
      }
      const [left] = find("socket disconnected", B.id);
      assert.equal(left.level, "INFO");
      assert.equal(left.fields.reason, "client namespace disconnect");

      const received = find("event received", B.id);
      const relay = received.find((l) => l.fields.event === "#rtcio:message");
      assert.ok(relay, `the envelope's event line: ${JSON.stringify(received)}`);
      assert.equal(relay.level, "DEBUG");
      assert.equal(relay.fields.bytes, Buffer.byteLength(JSON.stringify(envelope)));
      const joined = received.find((l) => l.fields.event === "join-room");
      assert.equal(joined.fields.bytes, Buffer.byteLength(JSON.stringify({ roomId: R, name: "bob" })));

      for (const marker of ["SDP-MARKER", "203.0.113.7", "CANDIDATE-MARKER", "198.51.100.23", TOKEN]) {
        assert.ok(!server.output().includes(marker), `${marker} leaked into the log`);
      }
    } finally {
      await server.stop();
    }
  });

  it("pretty (the default) at info: readable lines with connects, without per-event lines", async () => {
    const server = await startSignaling([], { env: { RUST_LOG: "info" } });
    try {
      const A = await connect(server.url, "websocket");
      A.emit("check-room", { roomId: "x" });
      await next(A, "room-check-ok");
      const id = A.id;
      A.disconnect();
      await waitForOutput(server, new RegExp(`socket disconnected.*${id}|${id}.*socket disconnected`));
      const out = server.output();
      assert.match(out, new RegExp(`INFO.*socket connected.*socket=${id}`));
      assert.match(out, /reason="?client namespace disconnect/);
      assert.doesNotMatch(out, /event received/);
      assert.throws(() => JSON.parse(out.split("\n")[0]));
    } finally {
      await server.stop();
    }
  });
});
