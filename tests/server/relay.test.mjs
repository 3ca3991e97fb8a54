// The `#rtcio:message` relay: transparency, identity, reach, order (CONTRACT.md).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { NodeWebSocket, NodeXHR } from "engine.io-client";
import { io } from "socket.io-client";
import { modes, until } from "../lib/harness.mjs";
import { assertError, barrier, clientPool, eventually, join, request, seen, startSignaling, uniqueRoom, waitAny } from "./server.mjs";

const MSG = "#rtcio:message";

/** Resolves on the next `event` of an engine.io-client socket (rejects on upgradeError or after `ms`). */
function waitEngine(engine, event, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for engine "${event}"`)), ms);
    engine.once(event, () => {
      clearTimeout(timer);
      resolve();
    });
    engine.once("upgradeError", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
const ORDER_COUNT = 5000;

let server; // default --relay-scope room
let anyServer; // --relay-scope any
before(async () => {
  [server, anyServer] = await Promise.all([startSignaling(), startSignaling(["--relay-scope", "any"])]);
});
after(() => Promise.all([server?.stop(), anyServer?.stop()]));

const SDP_OFFER =
  "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
  "a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n" +
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n" +
  "a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Qx7d\r\na=ice-pwd:Ay7vZ3m0bHq4kq1p0Y1n2x3w\r\n" +
  "a=ice-options:trickle\r\na=fingerprint:sha-256 " +
  Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase().padStart(2, "0")).join(":") +
  "\r\na=setup:actpass\r\na=mid:0\r\n" +
  Array.from({ length: 60 }, (_, i) => `a=rtpmap:${96 + i} VP8/90000\r\na=rtcp-fb:${96 + i} nack pli\r\n`).join("");
const SDP_ANSWER = SDP_OFFER.replace("a=setup:actpass", "a=setup:active").replace("Qx7d", "Zr9k");

/** Data variants from PROTOCOL.md, plus a future one the server must not care about. */
const VARIANTS = {
  "description offer": { description: { type: "offer", sdp: SDP_OFFER } },
  "description answer": { description: { type: "answer", sdp: SDP_ANSWER } },
  candidate: {
    candidate: {
      candidate: "candidate:842163049 1 udp 1677729535 192.0.2.10 50123 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag Qx7d network-cost 999",
      sdpMid: "0",
      sdpMLineIndex: 0,
      usernameFragment: "Qx7d",
    },
  },
  "end-of-candidates (empty candidate string)": {
    candidate: { candidate: "", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "Qx7d" },
  },
  "stream-meta answer": { mid: "1", events: { camera: [{ label: "cam", muted: false }, 2, null] } },
  "stream-meta request": { mid: "1" },
  "unknown future variant": { hologram: { frames: [1, 2.5, -3], nested: { deep: [true, false, null, "é✓"] } }, v: 7 },
};

for (const [mode] of modes()) {
  describe(`relay (${mode})`, () => {
    const pool = clientPool();
    afterEach(() => pool.closeAll());
    const peer = (url = server.url) => pool.connect(url, mode);

    /** A and B in one room. */
    async function pair(url = server.url) {
      const R = uniqueRoom();
      const A = await peer(url);
      const B = await peer(url);
      await join(A, R, "alice");
      await join(B, R, "bob");
      await barrier(A, B);
      return { R, A, B, marks: [A.log.length, B.log.length] };
    }

    it("forwards every data variant both ways, unchanged, to the target only", async () => {
      const { A, B, marks } = await pair();
      const C = await peer(); // connected, in no room: must see nothing
      const sent = { A: [], B: [] };
      for (const data of Object.values(VARIANTS)) {
        sent.A.push({ source: A.id, target: B.id, data });
        A.socket.emit(MSG, sent.A.at(-1));
        sent.B.push({ source: B.id, target: A.id, data });
        B.socket.emit(MSG, sent.B.at(-1));
      }
      const n = Object.keys(VARIANTS).length;
      await until(() => seen(A, marks[0]).length >= n && seen(B, marks[1]).length >= n, 5000, "relayed envelopes");
      await barrier(A, B, C);
      assert.deepEqual(seen(B, marks[1]), sent.A.map((env) => [MSG, env]));
      assert.deepEqual(seen(A, marks[0]), sent.B.map((env) => [MSG, env]));
      assert.deepEqual(seen(C), []);
    });

    it("forwards extra top-level envelope members unchanged", async () => {
      const { A, B, marks } = await pair();
      const envelope = {
        source: A.id,
        target: B.id,
        data: { description: { type: "offer", sdp: SDP_OFFER } },
        seq: 42,
        meta: { trace: ["x", 1, null], ok: true },
        note: null,
      };
      A.socket.emit(MSG, envelope);
      await until(() => seen(B, marks[1]).length >= 1, 5000, "relayed envelope");
      await barrier(A, B);
      assert.deepEqual(seen(B, marks[1]), [[MSG, envelope]]);
      assert.deepEqual(seen(A, marks[0]), []);
    });

    it("rewrites a forged, missing or non-string source to the sender's id", async () => {
      const { A, B, marks } = await pair();
      const C = await peer();
      const data = VARIANTS.candidate;
      A.socket.emit(MSG, { source: C.id, target: B.id, data }); // forged: pretends to be C
      A.socket.emit(MSG, { source: B.id, target: B.id, data }); // forged: pretends to be B itself
      A.socket.emit(MSG, { target: B.id, data }); // missing
      A.socket.emit(MSG, { source: 12, target: B.id, data }); // not a string
      await until(() => seen(B, marks[1]).length >= 4, 5000, "relayed envelopes");
      await barrier(A, B, C);
      const expected = { source: A.id, target: B.id, data };
      assert.deepEqual(seen(B, marks[1]), [
        [MSG, expected],
        [MSG, expected],
        [MSG, expected],
        [MSG, expected],
      ]);
      assert.deepEqual(seen(C), []);
    });

    it("refuses a target that shares no room: peer-unreachable, nothing delivered", async () => {
      const { A, B, marks } = await pair();
      const C = await peer(); // in no room
      const D = await peer(); // in another room
      await join(D, uniqueRoom(), "dave");
      await barrier(D);
      const d0 = D.log.length;

      for (const target of [C, D]) {
        const reply = await request(A.socket, ["error"], MSG, { source: A.id, target: target.id, data: VARIANTS.candidate });
        assertError(reply, "peer-unreachable");
      }
      // The other way round: C and D cannot reach A either.
      const refusals = new Map();
      for (const sender of [C, D]) {
        const reply = await request(sender.socket, ["error"], MSG, { source: sender.id, target: A.id, data: {} });
        assertError(reply, "peer-unreachable");
        refusals.set(sender, reply);
      }
      await barrier(A, B, C, D);
      assert.equal(seen(A, marks[0]).length, 2, "A got exactly its two errors and no envelope");
      assert.deepEqual(seen(B, marks[1]), [], "B (A's room mate) got nothing");
      assert.deepEqual(seen(C), [refusals.get(C)], "C got its error and no envelope");
      assert.deepEqual(seen(D, d0), [refusals.get(D)], "D got its error and no envelope");
    });

    it("refuses an unknown target id: peer-unreachable", async () => {
      const { A, B, marks } = await pair();
      const reply = await request(A.socket, ["error"], MSG, { source: A.id, target: "no-such-socket-id", data: {} });
      assertError(reply, "peer-unreachable");
      await barrier(A, B);
      assert.deepEqual(seen(B, marks[1]), []);
    });

    it("a target that left the room, or disconnected, is no longer reachable", async () => {
      const { R, A, B, marks } = await pair();
      B.socket.emit("leave-room", { roomId: R });
      await until(() => seen(A, marks[0]).length >= 1, 5000, "user-disconnected");
      const b0 = B.log.length;
      assertError(await request(A.socket, ["error"], MSG, { source: A.id, target: B.id, data: {} }), "peer-unreachable");
      assertError(await request(B.socket, ["error"], MSG, { source: B.id, target: A.id, data: {} }), "peer-unreachable");
      await barrier(A, B);
      assert.deepEqual(seen(B, b0).map(([e, p]) => [e, p.code]), [["error", "peer-unreachable"]]);

      // Re-joined, then disconnected.
      await join(B, R, "bob");
      const bId = B.id;
      B.socket.disconnect();
      await until(() => seen(A).some(([e, p]) => e === "#rtcio:peer-left" && p.id === bId), 5000, "peer-left");
      // The departure events go out while the socket is still being removed, so retry briefly.
      await eventually(async () => {
        const reply = waitAny(A.socket, ["error"], () => true, 500);
        A.socket.emit(MSG, { source: A.id, target: bId, data: {} });
        assertError(await reply, "peer-unreachable");
      });
    });

    it("--relay-scope any: a socket sharing no room is reachable; unknown ids still are not", async () => {
      const A = await peer(anyServer.url);
      const C = await peer(anyServer.url);
      await join(A, uniqueRoom(), "alice"); // A in a room, C in none
      await barrier(A, C);
      const [a0, c0] = [A.log.length, C.log.length];
      const envelope = { source: "forged", target: C.id, data: VARIANTS["description offer"], extra: [1] };
      A.socket.emit(MSG, envelope);
      C.socket.emit(MSG, { source: C.id, target: A.id, data: VARIANTS["description answer"] });
      await until(() => seen(A, a0).length >= 1 && seen(C, c0).length >= 1, 5000, "relayed envelopes");
      await barrier(A, C);
      assert.deepEqual(seen(C, c0), [[MSG, { ...envelope, source: A.id }]]);
      assert.deepEqual(seen(A, a0), [[MSG, { source: C.id, target: A.id, data: VARIANTS["description answer"] }]]);
      assertError(await request(A.socket, ["error"], MSG, { source: A.id, target: "no-such-socket-id", data: {} }), "peer-unreachable");
    });

    it(`${ORDER_COUNT} envelopes A→B arrive in order`, async () => {
      const { A, B, marks } = await pair();
      for (let i = 0; i < ORDER_COUNT; i++) {
        A.socket.emit(MSG, { source: A.id, target: B.id, data: { candidate: { candidate: `candidate:${i}`, sdpMid: "0", sdpMLineIndex: 0 } }, n: i });
      }
      await until(() => B.log.length - marks[1] >= ORDER_COUNT, 60_000, `${ORDER_COUNT} envelopes`);
      const got = seen(B, marks[1]);
      assert.equal(got.length, ORDER_COUNT);
      const outOfOrder = got.findIndex(([event, env], i) => event !== MSG || env.n !== i || env.source !== A.id);
      assert.equal(outOfOrder, -1, `envelope #${outOfOrder} out of order: ${JSON.stringify(got[outOfOrder])}`);
    });

    it(`${ORDER_COUNT} envelopes both ways at once keep per-direction order`, async () => {
      const { A, B, marks } = await pair();
      for (let i = 0; i < ORDER_COUNT; i++) {
        A.socket.emit(MSG, { source: A.id, target: B.id, data: { seq: i } });
        B.socket.emit(MSG, { source: B.id, target: A.id, data: { seq: i } });
      }
      await until(
        () => A.log.length - marks[0] >= ORDER_COUNT && B.log.length - marks[1] >= ORDER_COUNT,
        60_000,
        `${ORDER_COUNT} envelopes each way`,
      );
      for (const [X, from, sender] of [[A, marks[0], B], [B, marks[1], A]]) {
        const got = seen(X, from);
        assert.equal(got.length, ORDER_COUNT);
        const bad = got.findIndex(([event, env], i) => event !== MSG || env.data.seq !== i || env.source !== sender.id);
        assert.equal(bad, -1, `envelope #${bad} out of order: ${JSON.stringify(got[bad])}`);
      }
    });

    if (mode === "upgrade") {
      it(`${ORDER_COUNT} envelopes sent from the first moment keep their order across the polling→websocket upgrade`, async () => {
        const R = uniqueRoom();
        const B = await peer();
        await join(B, R, "bob");
        await barrier(B);
        const b0 = B.log.length;
        // A joins and starts sending before its upgrade completes (no waiting
        // for join-ok: the server handles A's events in order).
        // The WebSocket probe is held back until half the envelopes are out,
        // and the second half waits for the probe to succeed (the client then
        // buffers until the upgrade), so the stream really starts on polling
        // and ends on WebSocket however fast the server drains the polls.
        let release;
        const gate = new Promise((resolve) => (release = resolve));
        class GatedWebSocket extends NodeWebSocket {
          doOpen() {
            gate.then(() => super.doOpen());
          }
        }
        const socket = io(server.url, { transports: [NodeXHR, GatedWebSocket], upgrade: true, forceNew: true, reconnection: false });
        try {
          await new Promise((resolve, reject) => {
            socket.once("connect", resolve);
            socket.once("connect_error", reject);
          });
          assert.equal(socket.io.engine.transport.name, "polling", "still polling when sending starts");
          socket.emit("join-room", { roomId: R, name: "alice" }); // no waiting: the server handles A's events in order
          for (let i = 0; i < ORDER_COUNT; i++) {
            if (i === ORDER_COUNT / 2) {
              const upgrading = waitEngine(socket.io.engine, "upgrading");
              release();
              await upgrading;
            }
            socket.emit(MSG, { source: socket.id, target: B.id, data: { seq: i } });
            if (i % 250 === 0) await new Promise((r) => setImmediate(r)); // let packets flow mid-stream
          }
          await until(() => seen(B, b0).filter(([e]) => e === MSG).length >= ORDER_COUNT, 60_000, `${ORDER_COUNT} envelopes`);
          assert.equal(socket.io.engine.transport.name, "websocket", "upgraded by the end");
          const got = seen(B, b0).filter(([e]) => e === MSG);
          const bad = got.findIndex(([, env], i) => env.data.seq !== i || env.source !== socket.id);
          assert.equal(bad, -1, `envelope #${bad} out of order: ${JSON.stringify(got[bad])}`);
        } finally {
          socket.disconnect();
        }
      });
    }
  });
}
