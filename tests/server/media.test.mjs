// media-state and stopScreenShare (CONTRACT.md).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { modes, until } from "../lib/harness.mjs";
import { assertError, assertJoinSequence, barrier, clientPool, join, request, seen, startSignaling, uniqueRoom } from "./server.mjs";

let server;
before(async () => {
  server = await startSignaling();
});
after(() => server?.stop());

for (const [mode] of modes()) {
  describe(`media-state and stopScreenShare (${mode})`, () => {
    const pool = clientPool();
    afterEach(() => pool.closeAll());
    const peer = () => pool.connect(server.url, mode);

    /** A, B and C in one room, D in another; logs marked after setup. */
    async function room() {
      const R = uniqueRoom();
      const [A, B, C, D] = [await peer(), await peer(), await peer(), await peer()];
      await join(A, R, "alice");
      await join(B, R, "bob");
      await join(C, R, "carol");
      await join(D, uniqueRoom("other"), "dave");
      await barrier(A, B, C, D);
      const marks = new Map([A, B, C, D].map((x) => [x, x.log.length]));
      const after = (x) => seen(x, marks.get(x));
      return { R, A, B, C, D, after };
    }

    it("media-state is relayed to the rest of the room with the sender's id stamped", async () => {
      const { R, A, B, C, D, after } = await room();
      A.socket.emit("media-state", { roomId: R, mic: true, cam: false });
      A.socket.emit("media-state", { roomId: R, mic: false, cam: true, id: D.id }); // forged id
      await until(() => after(B).length >= 2 && after(C).length >= 2, 5000, "relayed media-state");
      await barrier(A, B, C, D);
      const expected = [
        ["media-state", { roomId: R, mic: true, cam: false, id: A.id }],
        ["media-state", { roomId: R, mic: false, cam: true, id: A.id }],
      ];
      assert.deepEqual(after(B), expected);
      assert.deepEqual(after(C), expected);
      assert.deepEqual(after(A), [], "not echoed to the sender");
      assert.deepEqual(after(D), [], "not sent outside the room");
    });

    it("a late joiner gets each peer's last media-state right after that peer's user-connected", async () => {
      const R = uniqueRoom();
      const [A, B, C] = [await peer(), await peer(), await peer()];
      await join(A, R, "alice");
      await join(B, R, "bob");
      await join(C, R, "carol");
      A.socket.emit("media-state", { roomId: R, mic: true, cam: true });
      A.socket.emit("media-state", { roomId: R, mic: false, cam: true }); // the last one counts
      C.socket.emit("media-state", { roomId: R, mic: true, cam: false });
      // B never sends one.
      await barrier(A, C);

      const N = await peer();
      await join(N, R, "nina");
      await barrier(N);
      assertJoinSequence(seen(N), R, [
        { id: A.id, name: "alice", media: { mic: false, cam: true } },
        { id: B.id, name: "bob" },
        { id: C.id, name: "carol", media: { mic: true, cam: false } },
      ]);
    });

    it("media-state for a room the sender has not joined: not-in-room, nothing relayed", async () => {
      const { R, A, B, C, D, after } = await room();
      // D is in another room; it names A's room.
      const reply = await request(D.socket, ["error"], "media-state", { roomId: R, mic: true, cam: true });
      assertError(reply, "not-in-room", R);
      // A names a room it is not in (D's room is not A's).
      const other = uniqueRoom("nobody");
      assertError(await request(A.socket, ["error"], "media-state", { roomId: other, mic: true, cam: true }), "not-in-room", other);
      await barrier(D, A, B, C);
      assert.deepEqual(after(B), []);
      assert.deepEqual(after(C), []);
      assert.deepEqual(after(D), [reply]);
      // A refused media-state is not cached either: a newcomer to R sees no media-state from D or A.
      const N = await peer();
      await join(N, R, "nina");
      await barrier(N);
      assert.deepEqual(seen(N).filter(([e]) => e === "media-state"), []);
    });

    for (const [label, payload] of [
      ["mic as a string", { mic: "true", cam: false }],
      ["cam as a number", { mic: true, cam: 1 }],
      ["mic missing", { cam: true }],
      ["cam null", { mic: true, cam: null }],
    ]) {
      it(`media-state with ${label}: bad-request, nothing relayed or cached`, async () => {
        const { R, A, B, C, after } = await room();
        const reply = await request(A.socket, ["error"], "media-state", { roomId: R, ...payload });
        assertError(reply, "bad-request", R);
        await barrier(A, B, C);
        assert.deepEqual(after(B), []);
        assert.deepEqual(after(C), []);
        const N = await peer();
        await join(N, R, "nina");
        await barrier(N);
        assert.deepEqual(seen(N).filter(([e]) => e === "media-state"), []);
      });
    }

    it("the cache is dropped on disconnect: a new joiner gets no media-state of a departed peer", async () => {
      const R = uniqueRoom();
      const [A, B] = [await peer(), await peer()];
      await join(A, R, "alice");
      await join(B, R, "bob");
      A.socket.emit("media-state", { roomId: R, mic: true, cam: true });
      B.socket.emit("media-state", { roomId: R, mic: false, cam: false });
      await barrier(A, B);
      A.socket.disconnect();
      await until(() => seen(B).some(([e, p]) => e === "#rtcio:peer-left" && p.id === A.id), 5000, "peer-left");

      const N = await peer();
      await join(N, R, "nina");
      await barrier(N);
      assert.deepEqual(seen(N), [
        ["user-connected", { id: B.id, name: "bob" }],
        ["media-state", { roomId: R, mic: false, cam: false, id: B.id }],
        ["join-ok", { roomId: R }],
      ]);
    });

    it("stopScreenShare is relayed to the rest of the room with every member kept and id set", async () => {
      const { R, A, B, C, D, after } = await room();
      const payload = { roomId: R, streamId: "screen-1", trackIds: ["t1", "t2"], meta: { reason: "user" }, id: "forged" };
      A.socket.emit("stopScreenShare", payload);
      await until(() => after(B).length >= 1 && after(C).length >= 1, 5000, "relayed stopScreenShare");
      await barrier(A, B, C, D);
      const expected = [["stopScreenShare", { ...payload, id: A.id }]];
      assert.deepEqual(after(B), expected);
      assert.deepEqual(after(C), expected);
      assert.deepEqual(after(A), []);
      assert.deepEqual(after(D), []);
    });

    it("stopScreenShare from a socket not in the room: not-in-room, nothing relayed", async () => {
      const { R, A, B, C, D, after } = await room();
      const reply = await request(D.socket, ["error"], "stopScreenShare", { roomId: R, streamId: "s" });
      assertError(reply, "not-in-room", R);
      await barrier(D, A, B, C);
      for (const X of [A, B, C]) assert.deepEqual(after(X), []);
      assert.deepEqual(after(D), [reply]);
    });
  });
}
