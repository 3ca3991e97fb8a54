// Graceful shutdown: SIGTERM → connected clients are disconnected and the
// process exits 0.
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { modes, until } from "../lib/harness.mjs";
import { clientPool, exitWithin, join, startSignaling, uniqueRoom } from "./server.mjs";

for (const [mode] of modes()) {
  describe(`shutdown (${mode})`, () => {
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    it("SIGTERM: clients are disconnected and the process exits 0", async () => {
      const server = await startSignaling();
      try {
        const R = uniqueRoom();
        const A = await pool.connect(server.url, mode);
        const B = await pool.connect(server.url, mode);
        const C = await pool.connect(server.url, mode); // in no room
        await join(A, R, "alice");
        await join(B, R, "bob");
        const disconnected = [A, B, C].map(({ socket }) => new Promise((resolve) => socket.once("disconnect", resolve)));

        const { code, signal } = await exitWithin(server, 10_000);
        assert.equal(signal, null, "exited by itself, not killed by the signal");
        assert.equal(code, 0);
        const reasons = await Promise.all(disconnected);
        for (const reason of reasons) assert.equal(typeof reason, "string");
        await until(() => [A, B, C].every(({ socket }) => !socket.connected), 5000, "all clients disconnected");
      } finally {
        if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill("SIGKILL");
      }
    });
  });
}
