// Readiness: GET /ready is 200 while serving and 503 from the moment
// shutdown starts (draining, for --drain-delay while the server still
// serves), while /health stays a pure liveness check.
import assert from "node:assert/strict";
import { once } from "node:events";
import { afterEach, describe, it } from "node:test";
import { modes } from "../lib/harness.mjs";
import { checkRoom, clientPool, eventually, join, startSignaling, uniqueRoom } from "../server/server.mjs";
import { requireBinary } from "./ops.mjs";

requireBinary();

async function ready(url) {
  const res = await fetch(`${url}/ready`);
  return { status: res.status, body: await res.json() };
}

for (const [mode] of modes()) {
  describe(`readiness (${mode})`, () => {
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    it("/ready flips to 503 when draining starts; the server serves on until the drain delay ends", async () => {
      const server = await startSignaling(["--drain-delay", "5s"]);
      try {
        assert.deepEqual(await ready(server.url), { status: 200, body: { status: "ready" } });
        const A = await pool.connect(server.url, mode);
        await join(A, uniqueRoom(), "alice");
        const disconnected = once(A.socket, "disconnect");
        const exited = once(server.proc, "exit");

        server.proc.kill("SIGTERM");
        await eventually(async () => assert.deepEqual(await ready(server.url), { status: 503, body: { status: "draining" } }));
        // Still serving while draining: liveness, the connected client's events.
        assert.equal(await (await fetch(`${server.url}/health`)).text(), "ok");
        assert.ok(A.socket.connected, "the client is still connected while draining");
        const R = uniqueRoom();
        assert.deepEqual(await checkRoom(A, { roomId: R }), ["room-check-ok", { roomId: R, passwordRequired: false }]);
        assert.equal(server.proc.exitCode, null, "still running during the drain delay");

        await disconnected;
        const [code, signal] = await exited;
        assert.equal(signal, null);
        assert.equal(code, 0);
        assert.match(server.output(), /draining/);
      } finally {
        if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill("SIGKILL");
      }
    });
  });
}
