// Malformed payloads: each gets the documented refusal, the connection stays
// up, nobody else notices anything, and valid actions still work (CONTRACT.md).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { modes, until } from "../lib/harness.mjs";
import { assertError, barrier, clientPool, join, request, seen, startSignaling, tryJoin, uniqueRoom } from "./server.mjs";

const NONE = Symbol("no payload"); // emit the event without any argument
const REPLIES = ["error", "join-error", "join-ok", "room-check-ok", "#rtcio:message"];
const LONG_ROOM = "r".repeat(129);

let server;
before(async () => {
  server = await startSignaling();
});
after(() => server?.stop());

for (const [mode] of modes()) {
  describe(`bad input (${mode})`, () => {
    const pool = clientPool();
    afterEach(() => pool.closeAll());
    const peer = () => pool.connect(server.url, mode);

    /**
     * A (the sender of bad input) and B share room R; W is alone in room Q,
     * which A has not joined. `send(event, payload)` resolves with A's reply,
     * `quiet()` asserts nobody else noticed anything, `stillWorks()` proves
     * valid actions still succeed afterwards.
     */
    async function setup() {
      const R = uniqueRoom();
      const Q = uniqueRoom("watched");
      const [A, B, W] = [await peer(), await peer(), await peer()];
      await join(A, R, "alice");
      await join(B, R, "bob");
      await join(W, Q, "walter");
      await barrier(A, B, W);
      const marks = new Map([A, B, W].map((x) => [x, x.log.length]));
      const replies = [];
      const send = async (event, payload) => {
        const args = payload === NONE ? [] : [payload];
        const reply = await request(A.socket, REPLIES, event, ...args);
        replies.push(reply);
        return reply;
      };
      const quiet = async () => {
        await barrier(A, B, W);
        assert.ok(A.socket.connected, "the connection stays up");
        assert.deepEqual(seen(A, marks.get(A)), replies, "A got exactly one reply per bad input, nothing else");
        assert.deepEqual(seen(B, marks.get(B)), [], "B noticed nothing");
        assert.deepEqual(seen(W, marks.get(W)), [], "W noticed nothing");
      };
      /** After the bad input, valid actions still work. */
      const stillWorks = async () => {
        const b0 = B.log.length;
        const env = { source: A.id, target: B.id, data: { candidate: { candidate: "", sdpMid: "0", sdpMLineIndex: 0 } } };
        A.socket.emit("#rtcio:message", env);
        await until(() => seen(B, b0).length >= 1, 5000, "relayed envelope");
        assert.deepEqual(seen(B, b0), [["#rtcio:message", env]]);
        const w0 = W.log.length;
        await join(A, Q, "alice");
        await barrier(W);
        assert.deepEqual(seen(W, w0), [
          ["user-connected", { id: A.id, name: "alice" }],
          ["#rtcio:init-offer", { source: A.id }],
        ]);
      };
      return { R, Q, A, B, W, marks, send, quiet, stillWorks };
    }

    it("join-room with an invalid payload or roomId: join-error invalid-room", async () => {
      const { Q, send, quiet, stillWorks } = await setup();
      const cases = [
        [NONE, null],
        [null, null],
        [Q, null], // a bare string, not an object
        [42, null],
        [[Q, "alice"], null], // an array is not an object
        [{}, null],
        [{ name: "alice" }, null],
        [{ roomId: 42, name: "alice" }, null],
        [{ roomId: null, name: "alice" }, null],
        [{ roomId: [Q], name: "alice" }, null],
        [{ roomId: { id: Q }, name: "alice" }, null],
        [{ roomId: "", name: "alice" }, ""],
        [{ roomId: LONG_ROOM, name: "alice" }, LONG_ROOM],
      ];
      for (const [payload, roomId] of cases) {
        assert.deepEqual(await send("join-room", payload), ["join-error", { reason: "invalid-room", roomId }], JSON.stringify(payload ?? String(payload)));
      }
      await quiet();
      await stillWorks();
    });

    it("join-room named after another connected socket's id: join-error invalid-room, not joined", async () => {
      const { A, B, W, send, quiet, stillWorks } = await setup();
      // B shares a room with A, W does not; either id names that socket's own room.
      for (const other of [B, W]) {
        assert.deepEqual(
          await send("join-room", { roomId: other.id, name: "alice" }),
          ["join-error", { reason: "invalid-room", roomId: other.id }],
          other === B ? "B's id" : "W's id",
        );
      }
      // A did not end up in W's room: W is still out of A's reach.
      assertError(await send("#rtcio:message", { source: A.id, target: W.id, data: {} }), "peer-unreachable");
      await quiet();
      await stillWorks();
    });

    it("join-room named after the sender's own socket id: join-error invalid-room", async () => {
      const { A, W, send, quiet, stillWorks } = await setup();
      assert.deepEqual(await send("join-room", { roomId: A.id, name: "alice" }), [
        "join-error",
        { reason: "invalid-room", roomId: A.id },
      ]);
      // check-room agrees: a socket id is never a joinable room.
      for (const id of [A.id, W.id]) {
        assert.deepEqual(await send("check-room", { roomId: id }), ["join-error", { reason: "invalid-room", roomId: id }]);
      }
      await quiet();
      await stillWorks();
    });

    it("join-room with an invalid name: error bad-request with the roomId, not joined", async () => {
      const { Q, send, quiet, stillWorks } = await setup();
      for (const name of [42, true, { first: "alice" }, ["alice"], "n".repeat(65)]) {
        assertError(await send("join-room", { roomId: Q, name }), "bad-request", Q);
      }
      await quiet(); // W (in Q) heard of no join
      await stillWorks(); // and A's first real join of Q is a fresh one
    });

    it("limits are inclusive: a 128-character roomId and a 64-character name are fine", async () => {
      const A = await peer();
      const B = await peer();
      const roomId = `${uniqueRoom("max")}-`.padEnd(128, "x");
      assert.equal(roomId.length, 128);
      assert.deepEqual(await tryJoin(A, { roomId, name: "a".repeat(64) }), ["join-ok", { roomId }]);
      await join(B, roomId, "bob");
      await barrier(B);
      assert.deepEqual(seen(B)[0], ["user-connected", { id: A.id, name: "a".repeat(64) }]);
    });

    it("leave-room with an invalid payload: error bad-request, still in the room", async () => {
      const { R, send, quiet, stillWorks } = await setup();
      const invalid = [NONE, null, R, 7, [R], {}, { roomId: 5 }, { roomId: null }, { roomId: [R] }, { roomId: "" }, { roomId: LONG_ROOM }];
      for (const payload of invalid) {
        assertError(await send("leave-room", payload), "bad-request");
      }
      await quiet(); // B (in R) heard no user-disconnected
      await stillWorks(); // and the relay A→B still finds A in R
    });

    it("check-room with an invalid payload or roomId: join-error invalid-room", async () => {
      const { R, send, quiet, stillWorks } = await setup();
      const cases = [
        [NONE, null],
        [null, null],
        [R, null],
        [[R], null],
        [{}, null],
        [{ roomId: 5 }, null],
        [{ roomId: "" }, ""],
        [{ roomId: LONG_ROOM }, LONG_ROOM],
      ];
      for (const [payload, roomId] of cases) {
        assert.deepEqual(await send("check-room", payload), ["join-error", { reason: "invalid-room", roomId }], JSON.stringify(payload ?? String(payload)));
      }
      await quiet();
      await stillWorks();
    });

    it("media-state with an invalid payload: error bad-request", async () => {
      const { R, send, quiet, stillWorks } = await setup();
      for (const payload of [NONE, null, R, [R, true, true], { mic: true, cam: true }, { roomId: 5, mic: true, cam: true }]) {
        assertError(await send("media-state", payload), "bad-request");
      }
      assertError(await send("media-state", { roomId: R, mic: "on", cam: "off" }), "bad-request", R);
      await quiet();
      await stillWorks();
    });

    it("stopScreenShare with an invalid payload: error bad-request", async () => {
      const { R, send, quiet, stillWorks } = await setup();
      for (const payload of [NONE, null, R, [R], {}, { roomId: 5 }, { streamId: "s" }]) {
        assertError(await send("stopScreenShare", payload), "bad-request");
      }
      await quiet();
      await stillWorks();
    });

    it("#rtcio:message with an invalid envelope: error bad-request, nothing relayed", async () => {
      const { B, A, send, quiet, stillWorks } = await setup();
      for (const payload of [
        NONE,
        null,
        B.id, // a bare string
        [{ source: A.id, target: B.id, data: {} }],
        {},
        { source: A.id, data: {} },
        { source: A.id, target: 5, data: {} },
        { source: A.id, target: null, data: {} },
        { source: A.id, target: [B.id], data: {} },
        { source: A.id, target: { id: B.id }, data: {} },
      ]) {
        assertError(await send("#rtcio:message", payload), "bad-request");
      }
      await quiet();
      await stillWorks();
    });

    it("a burst of every kind of bad input at once: replies in order, connection stays up", async () => {
      const { R, B, A, W, marks, stillWorks } = await setup();
      const sent = [
        ["join-room", null],
        ["leave-room", null],
        ["check-room", null],
        ["media-state", null],
        ["stopScreenShare", null],
        ["#rtcio:message", null],
        ["media-state", { roomId: R, mic: 1, cam: 0 }],
        ["#rtcio:message", { source: A.id, target: B.id.slice(1), data: {} }], // an unknown id
      ];
      for (const [event, payload] of sent) A.socket.emit(event, payload);
      await until(() => seen(A, marks.get(A)).length >= sent.length, 5000, "one reply per bad input");
      const got = seen(A, marks.get(A));
      assert.deepEqual(got[0], ["join-error", { reason: "invalid-room", roomId: null }]);
      assertError(got[1], "bad-request");
      assert.deepEqual(got[2], ["join-error", { reason: "invalid-room", roomId: null }]);
      assertError(got[3], "bad-request");
      assertError(got[4], "bad-request");
      assertError(got[5], "bad-request");
      assertError(got[6], "bad-request", R);
      assertError(got[7], "peer-unreachable");
      await barrier(A, B, W);
      assert.ok(A.socket.connected, "the connection stays up");
      assert.deepEqual(seen(A, marks.get(A)), got, "nothing but the replies");
      assert.deepEqual(seen(B, marks.get(B)), [], "B noticed nothing");
      assert.deepEqual(seen(W, marks.get(W)), [], "W noticed nothing");
      await stillWorks();
    });
  });
}
