// Limits and misbehaving clients: max payload (polling 413, WebSocket close),
// connect timeout for sessions that never join a namespace, and protocol
// violations that make the server drop the connection.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import { ask, createSocket, modes, nextArgs, rawEngine, settleWithin, startSocket } from "../lib/harness.mjs";
import { assertServerClosed, assertSessionGone, openWelcomed, useCleanup, useServer } from "./server.mjs";

const MAX_PAYLOAD = 2000;
const CONNECT_TIMEOUT = 300;

const isText = (p) => typeof p === "string";

describe(`max payload ${MAX_PAYLOAD}`, () => {
  const srv = useServer({ "max-payload": MAX_PAYLOAD });

  it("the handshake announces maxPayload", async () => {
    const res = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    const body = await res.text();
    assert.equal(JSON.parse(body.slice(1)).maxPayload, MAX_PAYLOAD);
  });

  it("polling: a POST body over the limit → 413; at the limit → 200 ok", async () => {
    const raw = await rawEngine(srv.url, "polling");
    try {
      const url = `${srv.url}/socket.io/?EIO=4&transport=polling&sid=${raw.sid}`;
      const post = (body) =>
        fetch(url, { method: "POST", body, headers: { "content-type": "text/plain;charset=UTF-8" } });
      // a Socket.IO CONNECT (auth padded) of exactly MAX_PAYLOAD bytes
      const fits = `40{"pad":"${"x".repeat(MAX_PAYLOAD - 12)}"}`;
      assert.equal(Buffer.byteLength(fits), MAX_PAYLOAD);
      let res = await post(fits);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "ok");
      await raw.waitFor((p) => isText(p) && p.startsWith("40{"), 5000, "CONNECT ack");

      res = await post(`42["echo","${"y".repeat(MAX_PAYLOAD)}"]`);
      assert.equal(res.status, 413);
      await res.arrayBuffer();
      // multi-byte characters count in bytes, not characters
      const wide = `42["echo","${"é".repeat(MAX_PAYLOAD / 2)}"]`;
      assert.ok(wide.length < MAX_PAYLOAD && Buffer.byteLength(wide) > MAX_PAYLOAD);
      res = await post(wide);
      assert.equal(res.status, 413);
      await res.arrayBuffer();
    } finally {
      raw.close();
    }
  });

  it("websocket: a message over the limit closes the connection", async () => {
    for (const kind of ["text", "binary"]) {
      const raw = await rawEngine(srv.url, "websocket");
      try {
        await raw.send("40");
        await raw.waitFor((p) => isText(p) && p.startsWith("42"), 5000, "welcome");
        // a message under the limit is fine
        await raw.send(`421["echo-ack","${"a".repeat(MAX_PAYLOAD - 100)}"]`);
        await raw.waitFor((p) => isText(p) && p.startsWith("431["), 5000, "ack");
        if (kind === "text") await raw.send(`42["echo","${"z".repeat(MAX_PAYLOAD + 10)}"]`);
        else await raw.send(Buffer.alloc(MAX_PAYLOAD + 10, 1));
        assertServerClosed(raw, await settleWithin(raw.closed, 5000));
      } finally {
        raw.close();
      }
    }
  });

  for (const [mode] of modes()) {
    describe(mode, () => {
      const track = useCleanup();
      const open = () => openWelcomed(track, srv.url, mode);

      it("a message under the limit is echoed", async () => {
        const socket = await open();
        const text = "u".repeat(MAX_PAYLOAD - 100);
        const echoed = nextArgs(socket, "echo");
        socket.emit("echo", text);
        assert.deepEqual(await echoed, [text]);
      });

      it("the server may send more than maxPayload (the limit is on input)", async () => {
        const socket = await open();
        // 5 echoes of just under the limit, back to back: the replies may be
        // batched into one polling response larger than maxPayload
        const text = "v".repeat(MAX_PAYLOAD - 100);
        const got = [];
        socket.on("echo", (t) => got.push(t));
        for (let i = 0; i < 5; i++) socket.emit("echo", text);
        assert.equal(await ask(socket, "ping-ack"), "pong");
        assert.equal(got.length, 5);
        assert.ok(got.every((t) => t === text));
      });

      it("a message over the limit disconnects the client", async () => {
        const socket = await open();
        const disconnected = nextArgs(socket, "disconnect");
        socket.emit("echo", "w".repeat(MAX_PAYLOAD * 2));
        const [reason] = await disconnected;
        // WebSocket: the server closes the connection; polling: the POST is
        // refused with 413, which the client treats as a transport error
        assert.ok(["transport close", "transport error"].includes(reason), `reason ${reason}`);
        assert.equal(socket.connected, false);
      });
    });
  }
});

describe(`connect timeout ${CONNECT_TIMEOUT} ms`, () => {
  const srv = useServer({ "connect-timeout": CONNECT_TIMEOUT });

  for (const [mode] of modes()) {
    describe(mode, () => {
      const track = useCleanup();

      it("an engine session that never sends CONNECT is closed", async () => {
        // connected first, so its own connect timeout would expire first too
        const socket = track(createSocket(srv.url, mode));
        await startSocket(socket, mode);
        const raw = track(await rawEngine(srv.url, mode));
        const closed = assertServerClosed(raw, await settleWithin(raw.closed, 5000));
        // nothing but (at most) the close packet was sent to it
        assert.deepEqual(raw.packets.slice(0, closed.packets).filter((p) => p !== "1"), []);
        await assertSessionGone(srv.url, raw.sid);
        // a session that did join a namespace in time is not affected
        assert.equal(socket.connected, true);
        assert.equal(await ask(socket, "ping-ack"), "pong");
      });

      it("a raw session that sends CONNECT in time stays open", async () => {
        const raw = track(await rawEngine(srv.url, mode));
        await raw.send("40");
        await raw.waitFor((p) => isText(p) && p.startsWith("40{"), 5000, "CONNECT ack");
        // a second raw session that never connects: once it is closed, the
        // first one's timeout (armed earlier) has long expired
        const idle = track(await rawEngine(srv.url, mode));
        assertServerClosed(idle, await settleWithin(idle.closed, 5000));
        assert.equal((await settleWithin(raw.closed, 0)).settled, false);
        await raw.send('421["ping-ack"]');
        await raw.waitFor((p) => p === '431["pong"]', 5000, "ack");
      });
    });
  }
});

describe("protocol violations close the connection", () => {
  const srv = useServer();

  for (const [mode] of modes()) {
    describe(mode, () => {
      const track = useCleanup();
      const connected = async () => {
        const raw = track(await rawEngine(srv.url, mode));
        await raw.send("40");
        await raw.waitFor((p) => isText(p) && p.startsWith("42"), 5000, "welcome");
        return raw;
      };
      const cases = {
        "malformed Socket.IO JSON": '42["echo",',
        "unknown Engine.IO packet type": "9hello",
        "unknown Socket.IO packet type": '49["echo"]',
        "an event for a namespace never joined": '42/admin,["echo","x"]',
        "a second CONNECT to the same namespace": "40",
      };
      for (const [name, packet] of Object.entries(cases)) {
        it(name, async () => {
          const raw = await connected();
          await raw.send(packet);
          assertServerClosed(raw, await settleWithin(raw.closed, 5000));
          await assertSessionGone(srv.url, raw.sid);
        });
      }

      it("well-formed packets after the same steps keep the connection (control)", async () => {
        const raw = await connected();
        await raw.send('42["no-such-event"]', '421["ping-ack"]');
        await raw.waitFor((p) => p === '431["pong"]', 5000, "ack");
        assert.equal((await settleWithin(raw.closed, 0)).settled, false);
      });
    });
  }

  it("a WebSocket upgrade for an unknown sid is refused", async () => {
    const ws = new WebSocket(`${srv.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket&sid=nope`);
    const status = await new Promise((resolve, reject) => {
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode));
      ws.once("open", () => reject(new Error("upgrade accepted")));
      ws.once("error", () => {});
    });
    ws.terminate();
    assert.equal(status, 400);
  });
});
