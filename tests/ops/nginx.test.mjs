// The shipped nginx block (docs/nginx.conf) in front of the server: a real
// Debian nginx, started by the test on loopback with that very file (only
// its two ports replaced), carries socket.io-client on websocket, polling
// and polling→websocket upgrade.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { ROOT, modes, next } from "../lib/harness.mjs";
import { clientPool, join, startSignaling, uniqueRoom } from "../server/server.mjs";
import { requireBinary, tempDir } from "./ops.mjs";
import { startNginx } from "../lib/nginx.mjs";

requireBinary();

/** docs/nginx.conf with the upstream and listen ports replaced, and nothing else. */
function shippedBlock(upstreamPort, listenPort) {
  const block = readFileSync(path.join(ROOT, "docs", "nginx.conf"), "utf8");
  assert.ok(block.includes("server 127.0.0.1:3001;") && block.includes("listen 80;"), "the block's ports");
  return block
    .replace("server 127.0.0.1:3001;", `server 127.0.0.1:${upstreamPort};`)
    .replace("listen 80;", `listen 127.0.0.1:${listenPort};`);
}

describe("behind nginx (docs/nginx.conf)", () => {
  const tmp = tempDir("nginx");
  let server;
  let nginx;
  before(async () => {
    server = await startSignaling();
    nginx = await startNginx(tmp, (listen) => shippedBlock(new URL(server.url).port, listen));
  });
  after(async () => {
    await nginx?.stop();
    await server?.stop();
    tmp.cleanup();
  });
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("proxies /health and /ready", async () => {
    assert.equal(await (await fetch(`${nginx.url}/health`)).text(), "ok");
    assert.deepEqual(await (await fetch(`${nginx.url}/ready`)).json(), { status: "ready" });
  });

  for (const [mode] of modes()) {
    it(`socket.io-client through nginx: join, presence, relay (${mode})`, async () => {
      const R = uniqueRoom();
      const A = await pool.connect(nginx.url, mode);
      const B = await pool.connect(nginx.url, mode);
      await join(A, R, "alice");
      const seen = next(A.socket, "user-connected");
      await join(B, R, "bob");
      assert.deepEqual(await seen, { id: B.id, name: "bob" });
      const envelope = { source: B.id, target: A.id, data: { sdp: "v=0" } };
      const got = next(A.socket, "#rtcio:message");
      B.socket.emit("#rtcio:message", envelope);
      assert.deepEqual(await got, envelope);
      const expected = mode === "polling" ? "polling" : "websocket";
      assert.equal(A.socket.io.engine.transport.name, expected);
      assert.equal(B.socket.io.engine.transport.name, expected);
    });
  }
});
