// Heartbeat (Engine.IO v4: the server pings, the client answers "3"): a client
// that answers stays connected; one that stops answering is closed by the
// server after ping interval + ping timeout. No tight wall-clock bounds: the
// closure must happen eventually (5 s budget) and only after a ping was sent.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ask, createSocket, modes, nextArgs, rawEngine, settleWithin, startSocket, until, untilAsync } from "../lib/harness.mjs";
import { assertServerClosed, assertSessionGone, openWelcomed, useCleanup, useServer } from "./server.mjs";

const PING_INTERVAL = 200;
const PING_TIMEOUT = 200;

let counter = 0;

describe(`ping ${PING_INTERVAL}/${PING_TIMEOUT} ms`, () => {
  const srv = useServer({ "ping-interval": PING_INTERVAL, "ping-timeout": PING_TIMEOUT });

  for (const [mode] of modes()) {
    describe(mode, () => {
      const track = useCleanup();
      const open = () => openWelcomed(track, srv.url, mode);

      it("the handshake announces the configured heartbeat", async () => {
        const raw = track(await rawEngine(srv.url, mode));
        assert.equal(raw.handshake.pingInterval, PING_INTERVAL);
        assert.equal(raw.handshake.pingTimeout, PING_TIMEOUT);
      });

      it("a socket.io-client that answers pings stays connected", async () => {
        const socket = await open();
        const watcher = await open();
        let pings = 0;
        socket.io.on("ping", () => pings++);
        let disconnected = false;
        socket.on("disconnect", () => (disconnected = true));
        await until(() => pings >= 4, 5000, "4 pings");
        assert.equal(disconnected, false);
        assert.equal(socket.connected, true);
        assert.equal(await ask(socket, "ping-ack"), "pong");
        assert.equal(await ask(watcher, "room-size", socket.id), 1);
      });

      it("a raw client that answers pings stays connected", async () => {
        const raw = track(await rawEngine(srv.url, mode, { autoPong: true }));
        await raw.send("40");
        await raw.waitFor((p) => typeof p === "string" && p.startsWith("42"), 5000, "welcome");
        await until(() => raw.packets.filter((p) => p === "2").length >= 4, 5000, "4 pings");
        const state = await settleWithin(raw.closed, 0);
        assert.equal(state.settled, false, `closed: ${JSON.stringify(state.value)}`);
        await raw.send('421["ping-ack"]');
        await raw.waitFor((p) => p === '431["pong"]', 5000, "ack");
      });

      it("a raw client that never answers pings is closed by the server", async () => {
        const watcher = await open();
        const raw = track(await rawEngine(srv.url, mode));
        const room = `hb-${++counter}`;
        await raw.send("40");
        const connect = await raw.waitFor((p) => typeof p === "string" && p.startsWith("40"), 5000, "CONNECT");
        const id = JSON.parse(connect.slice(2)).sid;
        await raw.send(`420["join",${JSON.stringify(room)}]`);
        assert.deepEqual(
          JSON.parse((await raw.waitFor((p) => typeof p === "string" && p.startsWith("430"))).slice(3)),
          [[id, room].sort()],
        );
        assert.equal(await ask(watcher, "room-size", room), 1);

        const closed = assertServerClosed(raw, await settleWithin(raw.closed, 5000));
        // it was a heartbeat closure: a ping was sent (and left unanswered) first
        const before = raw.packets.slice(0, closed.packets);
        assert.ok(before.includes("2"), `no ping before closure: ${JSON.stringify(before)}`);
        await assertSessionGone(srv.url, raw.sid);
        await untilAsync(async () => (await ask(watcher, "room-size", room)) === 0, 5000, "room to empty");
        assert.equal(await ask(watcher, "room-size", id), 0);
      });
    });
  }
});

// The client-side heartbeat check fires ping interval + ping timeout after the
// last ping; with a long interval and a short timeout the server's closure
// comes well before it, so the client observes the server closing.
describe("socket.io-client that stops answering pings (ping 1000/200 ms)", () => {
  const srv = useServer({ "ping-interval": 1000, "ping-timeout": 200 });

  for (const [mode] of modes()) {
    describe(mode, () => {
      const track = useCleanup();

      it("is disconnected by the server", async () => {
        const socket = track(createSocket(srv.url, mode));
        await startSocket(socket, mode);
        const engine = socket.io.engine;
        const sendPacket = engine._sendPacket;
        assert.equal(typeof sendPacket, "function", "engine.io-client internals changed");
        let pingsIgnored = 0;
        engine._sendPacket = function (type, ...rest) {
          if (type === "pong") {
            pingsIgnored++;
            return;
          }
          return sendPacket.call(this, type, ...rest);
        };
        const [reason] = await nextArgs(socket, "disconnect", 5000);
        assert.ok(pingsIgnored >= 1, "closed before any ping");
        assert.equal(reason, "transport close");
      });
    });
  }
});
