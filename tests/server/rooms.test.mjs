// Room passwords and check-room (CONTRACT.md).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { modes, until } from "../lib/harness.mjs";
import { barrier, checkRoom, clientPool, join, seen, startSignaling, tryJoin, uniqueRoom } from "./server.mjs";

let server;
before(async () => {
  server = await startSignaling();
});
after(() => server?.stop());

for (const [mode] of modes()) {
  describe(`passwords and check-room (${mode})`, () => {
    const pool = clientPool();
    afterEach(() => pool.closeAll());
    const peer = () => pool.connect(server.url, mode);
    const ok = (roomId, passwordRequired) => ["room-check-ok", { roomId, passwordRequired }];
    const refused = (reason, roomId) => ["join-error", { reason, roomId }];

    it("check-room on an unknown room: no password required", async () => {
      const C = await peer();
      const R = uniqueRoom();
      assert.deepEqual(await checkRoom(C, { roomId: R }), ok(R, false));
      assert.deepEqual(await checkRoom(C, { roomId: R, password: "anything" }), ok(R, false));
    });

    it("the first joiner's password protects the room; later joiners must match it", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      const C = await peer();
      await join(A, R, "alice", "s3cret");
      await barrier(A);
      const a0 = A.log.length;

      // check-room answers.
      assert.deepEqual(await checkRoom(C, { roomId: R }), ok(R, true));
      assert.deepEqual(await checkRoom(C, { roomId: R, password: "s3cret" }), ok(R, true));
      assert.deepEqual(await checkRoom(C, { roomId: R, password: "" }), ok(R, true), "an empty password is not a wrong one");
      assert.deepEqual(await checkRoom(C, { roomId: R, password: "nope" }), refused("wrong-password", R));

      // Refused joins.
      assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob" }), refused("password-required", R));
      assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob", password: "" }), refused("password-required", R));
      assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob", password: "nope" }), refused("wrong-password", R));
      assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob", password: "S3CRET" }), refused("wrong-password", R));
      await barrier(B, C, A);
      assert.deepEqual(seen(A, a0), [], "refused joins and room checks are invisible to the room");

      // The right password gets in, with the normal join sequence.
      const b0 = B.log.length;
      await join(B, R, "bob", "s3cret");
      await barrier(B, A);
      assert.deepEqual(seen(B, b0), [
        ["user-connected", { id: A.id, name: "alice" }],
        ["join-ok", { roomId: R }],
      ]);
      assert.deepEqual(seen(A, a0), [
        ["user-connected", { id: B.id, name: "bob" }],
        ["#rtcio:init-offer", { source: B.id }],
      ]);
    });

    it("a refused joiner is not in the room", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      await join(A, R, "alice", "pw");
      assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob", password: "bad" }), refused("wrong-password", R));
      // Not a member: its media-state is refused and its envelopes do not reach A.
      B.socket.emit("media-state", { roomId: R, mic: true, cam: true });
      B.socket.emit("#rtcio:message", { source: B.id, target: A.id, data: {} });
      await until(() => seen(B).filter(([e]) => e === "error").length >= 2, 5000, "two errors");
      assert.deepEqual(
        seen(B).filter(([e]) => e === "error").map(([, p]) => p.code),
        ["not-in-room", "peer-unreachable"],
      );
    });

    it("a password given to a room that already exists without one is ignored", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      const C = await peer();
      await join(A, R, "alice");
      await join(B, R, "bob", "late-password");
      assert.deepEqual(await checkRoom(C, { roomId: R }), ok(R, false));
      await join(C, R, "carol");
    });

    it("an empty password from the first joiner sets no password", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      await join(A, R, "alice", "");
      assert.deepEqual(await checkRoom(B, { roomId: R }), ok(R, false));
      await join(B, R, "bob");
    });

    it("the password is dropped when the room empties (leave-room and disconnect)", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      const C = await peer();
      await join(A, R, "alice", "old");
      await join(B, R, "bob", "old");
      assert.deepEqual(await checkRoom(C, { roomId: R }), ok(R, true));

      A.socket.emit("leave-room", { roomId: R });
      await until(() => seen(B).some(([e]) => e === "user-disconnected"), 5000, "user-disconnected");
      assert.deepEqual(await checkRoom(C, { roomId: R }), ok(R, true), "still one member: password kept");

      // The last member goes. Its departure cannot be observed from inside the
      // (now empty) room, so ask again until the answer changes.
      B.socket.disconnect();
      let answer;
      const deadline = Date.now() + 5000;
      do answer = await checkRoom(C, { roomId: R });
      while (answer[1]?.passwordRequired !== false && Date.now() < deadline);
      assert.deepEqual(answer, ok(R, false), "empty room: password dropped");

      // A new first joiner sets a new password.
      await join(C, R, "carol", "new");
      const D = await peer();
      assert.deepEqual(await tryJoin(D, { roomId: R, name: "dave", password: "old" }), refused("wrong-password", R));
      assert.deepEqual(await checkRoom(D, { roomId: R }), ok(R, true));
      await join(D, R, "dave", "new");
    });

    it("the password is dropped as soon as the last member leaves with leave-room", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const C = await peer();
      await join(A, R, "alice", "pw");
      A.socket.emit("leave-room", { roomId: R });
      await barrier(A); // A's leave has been handled
      assert.deepEqual(await checkRoom(C, { roomId: R, password: "other" }), ok(R, false));
      await join(C, R, "carol");
    });

    it("check-room sends nothing to anyone else", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const C = await peer();
      await join(A, R, "alice", "pw");
      await barrier(A);
      const a0 = A.log.length;
      await checkRoom(C, { roomId: R });
      await checkRoom(C, { roomId: R, password: "pw" });
      await checkRoom(C, { roomId: R, password: "wrong" });
      await barrier(C, A);
      assert.deepEqual(seen(A, a0), []);
      assert.deepEqual(seen(C).map(([e]) => e), ["room-check-ok", "room-check-ok", "join-error"]);
    });
  });
}
