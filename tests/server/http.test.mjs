// HTTP endpoints and start-up flags (CONTRACT.md "Start-up").
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { modes, until } from "../lib/harness.mjs";
import { barrier, clientPool, join, seen, startSignaling, uniqueRoom } from "./server.mjs";

/** The Engine.IO open packet of a fresh polling handshake. */
async function handshake(url) {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  const body = await res.text();
  return { res, body, open: body.startsWith("0{") ? JSON.parse(body.slice(1)) : null };
}

describe("http", () => {
  let server;
  before(async () => {
    server = await startSignaling();
  });
  after(() => server?.stop());

  it("logs `rtcio-server listening on 127.0.0.1:PORT`", () => {
    assert.match(server.output(), /rtcio-server listening on 127\.0\.0\.1:\d+/);
    assert.notEqual(new URL(server.url).port, "0");
  });

  it("GET /health → 200 ok", async () => {
    const res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 200);
    assert.equal((await res.text()).trim(), "ok");
  });

  it("GET /socket.io/?EIO=4&transport=polling → 200 with an Engine.IO open packet", async () => {
    const { res, body, open } = await handshake(server.url);
    assert.equal(res.status, 200);
    assert.ok(body.startsWith("0{"), `body starts with 0{: ${body}`);
    assert.equal(typeof open.sid, "string");
    assert.ok(open.sid.length > 0);
    assert.deepEqual(open.upgrades, ["websocket"]);
    assert.equal(open.pingInterval, 25_000, "default --ping-interval 25s");
    assert.equal(open.pingTimeout, 20_000, "default --ping-timeout 20s");
  });
});

describe("durations accept ms, s and m suffixes (a bare number is seconds)", () => {
  for (const [args, pingInterval, pingTimeout] of [
    [["--ping-interval", "1500ms", "--ping-timeout", "2s"], 1500, 2000],
    [["--ping-interval", "1m", "--ping-timeout", "3"], 60_000, 3000],
  ]) {
    it(args.join(" "), async () => {
      const server = await startSignaling(args);
      try {
        const { open } = await handshake(server.url);
        assert.equal(open.pingInterval, pingInterval);
        assert.equal(open.pingTimeout, pingTimeout);
      } finally {
        await server.stop();
      }
    });
  }
});

for (const [mode] of modes()) {
  describe(`--namespace /rtc (${mode})`, () => {
    let server;
    before(async () => {
      server = await startSignaling(["--namespace", "/rtc"]);
    });
    after(() => server?.stop());
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    it("the protocol is served on the configured namespace", async () => {
      const R = uniqueRoom();
      const A = await pool.connect(`${server.url}/rtc`, mode);
      const B = await pool.connect(`${server.url}/rtc`, mode);
      await join(A, R, "alice");
      await join(B, R, "bob");
      const env = { source: B.id, target: A.id, data: { mid: "0" } };
      B.socket.emit("#rtcio:message", env);
      await until(() => seen(A).some(([e]) => e === "#rtcio:message"), 5000, "relayed envelope");
      await barrier(B, A);
      assert.deepEqual(seen(A), [
        ["join-ok", { roomId: R }],
        ["user-connected", { id: B.id, name: "bob" }],
        ["#rtcio:init-offer", { source: B.id }],
        ["#rtcio:message", env],
      ]);
    });
  });
}
