// Rooms & presence: join order, backfill, init-offer, re-join, leave-room,
// multi-room sockets, clean and abrupt disconnects (CONTRACT.md).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { modes, until } from "../lib/harness.mjs";
import { assertDeparture, assertJoinSequence, barrier, clientPool, expectDeparture, join, seen, startProxy, startSignaling, threeClientScenario, tryJoin, uniqueRoom } from "./server.mjs";

let server;
before(async () => {
  // Short heartbeat so a silent client is dropped quickly (no test relies on
  // its exact timing; positive waits are bounded generously).
  server = await startSignaling(["--ping-interval", "300ms", "--ping-timeout", "300ms"]);
});
after(() => server?.stop());

/**
 * X in two rooms: Y in R1 ("main") and Z in R2 ("breakout") joined first, then
 * X joined both; everything delivered (barrier) before the test goes on.
 */
async function multiRoom(peer) {
  const R1 = uniqueRoom("main");
  const R2 = uniqueRoom("breakout");
  const X = await peer();
  const Y = await peer();
  const Z = await peer();
  await join(Y, R1, "yara");
  await join(Z, R2, "zoe");
  await join(X, R1, "xavier");
  await join(X, R2, "xavier");
  await barrier(X, Y, Z);
  return { R1, R2, X, Y, Z };
}

for (const [mode] of modes()) {
  describe(`presence (${mode})`, () => {
    const pool = clientPool();
    afterEach(() => pool.closeAll());
    const peer = (url = server.url) => pool.connect(url, mode);

    it("three clients: exact events, in order, for everyone", async () => {
      await threeClientScenario(peer);
    });

    it("backfill lists the existing peers in the order they joined (as socket.io's rooms do)", async () => {
      // CONTRACT.md says "for each existing peer" without an order; Node
      // socket.io iterates a room in join order, so clients of the reference
      // server always see that order. This test pins it separately.
      const R = uniqueRoom();
      const peers = [];
      for (const name of ["p0", "p1", "p2", "p3", "p4", "p5"]) {
        const X = await peer();
        await join(X, R, name);
        peers.push(X);
      }
      const N = await peer();
      await join(N, R, "newcomer");
      await barrier(N);
      assert.deepEqual(seen(N), [
        ...peers.map((X, i) => ["user-connected", { id: X.id, name: `p${i}` }]),
        ["join-ok", { roomId: R }],
      ]);
    });

    it("a join sent the moment a connection is ready is answered (30 fresh connections)", async () => {
      // In upgrade mode the join is the first packet on the new WebSocket.
      for (let i = 0; i < 30; i++) {
        const X = await peer();
        const R = uniqueRoom("fresh");
        assert.deepEqual(await tryJoin(X, { roomId: R, name: `x${i}` }), ["join-ok", { roomId: R }], `connection #${i}`);
        X.socket.disconnect();
      }
    });

    it("a missing name is shown as an empty string", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      assert.deepEqual(await tryJoin(A, { roomId: R }), ["join-ok", { roomId: R }]);
      await join(B, R, "bob");
      await barrier(B, A);
      assert.deepEqual(seen(B), [
        ["user-connected", { id: A.id, name: "" }],
        ["join-ok", { roomId: R }],
      ]);
    });

    it("re-joining a room is idempotent: join-ok again and nothing else", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      await join(A, R, "alice");
      await join(B, R, "bob");
      await barrier(B, A);
      const [a0, b0] = [A.log.length, B.log.length];

      await join(B, R, "bob");
      await join(A, R, "alice");
      await barrier(B, A);
      assert.deepEqual(seen(B, b0), [["join-ok", { roomId: R }]]);
      assert.deepEqual(seen(A, a0), [["join-ok", { roomId: R }]]);

      // Still exactly one membership each: a newcomer sees each of them once.
      const C = await peer();
      await join(C, R, "carol");
      await barrier(C);
      assertJoinSequence(seen(C), R, [
        { id: A.id, name: "alice" },
        { id: B.id, name: "bob" },
      ]);
    });

    it("leave-room: the room gets user-disconnected only, no peer-left", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      const C = await peer();
      await join(A, R, "alice");
      await join(B, R, "bob");
      await join(C, R, "carol");
      await barrier(A, B, C);
      const marks = [A, B, C].map((x) => x.log.length);

      B.socket.emit("leave-room", { roomId: R });
      await until(() => seen(A, marks[0]).length >= 1, 5000, "user-disconnected on A");
      await barrier(B, A, C);
      assert.deepEqual(seen(A, marks[0]), [["user-disconnected", { id: B.id }]]);
      assert.deepEqual(seen(C, marks[2]), [["user-disconnected", { id: B.id }]]);
      assert.deepEqual(seen(B, marks[1]), [], "the leaver gets nothing");

      // B really left: a newcomer is not told about B, and B hears nothing of it.
      const D = await peer();
      await join(D, R, "dave");
      await barrier(D, A, B, C);
      assertJoinSequence(seen(D), R, [
        { id: A.id, name: "alice" },
        { id: C.id, name: "carol" },
      ]);
      assert.deepEqual(seen(B, marks[1]), []);
    });

    it("leave-room for a room not joined: nothing at all, to anyone", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      await join(A, R, "alice");
      await join(B, R, "bob");
      await barrier(A, B);
      const [a0, b0] = [A.log.length, B.log.length];

      B.socket.emit("leave-room", { roomId: uniqueRoom("never-joined") });
      B.socket.emit("leave-room", { roomId: uniqueRoom("does-not-exist") });
      await barrier(B, A);
      assert.deepEqual(seen(A, a0), []);
      assert.deepEqual(seen(B, b0), []);

      // Leaving a room twice: the second leave is a no-op as well.
      B.socket.emit("leave-room", { roomId: R });
      B.socket.emit("leave-room", { roomId: R });
      await until(() => seen(A, a0).length >= 1, 5000, "user-disconnected");
      await barrier(B, A);
      assert.deepEqual(seen(A, a0), [["user-disconnected", { id: B.id }]]);
      assert.deepEqual(seen(B, b0), []);
    });

    it("clean disconnect: the room gets user-disconnected and peer-left", async () => {
      const R = uniqueRoom();
      const A = await peer();
      const B = await peer();
      const C = await peer();
      await join(A, R, "alice");
      await join(B, R, "bob");
      await join(C, R, "carol");
      await barrier(A, C);
      await expectDeparture(B.id, [A, C], () => B.socket.disconnect());
    });

    for (const how of ["freeze", "sever"]) {
      const what =
        how === "freeze"
          ? "transport goes silent (no close, no FIN): dropped by the heartbeat"
          : "TCP connection destroyed without a disconnect packet";
      it(`abrupt disconnect, ${what}`, async () => {
        const proxy = await startProxy(server.url);
        try {
          const R = uniqueRoom();
          const A = await peer();
          const B = await peer(proxy.url); // B reaches the server through the proxy
          const C = await peer();
          await join(A, R, "alice");
          await join(B, R, "bob");
          await join(C, R, "carol");
          await barrier(A, C);
          await expectDeparture(B.id, [A, C], () => proxy[how](), { ms: 10_000 });

          // The departed socket is gone from the room for newcomers too.
          const D = await peer();
          await join(D, R, "dave");
          await barrier(D);
          assertJoinSequence(seen(D), R, [
            { id: A.id, name: "alice" },
            { id: C.id, name: "carol" },
          ]);
        } finally {
          proxy.close();
        }
      });
    }

    it("multi-room socket: each room hears its own events, a disconnect reaches both rooms once each", async () => {
      const { R1, R2, X, Y, Z } = await multiRoom(peer);
      assert.deepEqual(seen(X), [
        ["user-connected", { id: Y.id, name: "yara" }],
        ["join-ok", { roomId: R1 }],
        ["user-connected", { id: Z.id, name: "zoe" }],
        ["join-ok", { roomId: R2 }],
      ]);
      assert.deepEqual(seen(Y), [
        ["join-ok", { roomId: R1 }],
        ["user-connected", { id: X.id, name: "xavier" }],
        ["#rtcio:init-offer", { source: X.id }],
      ]);
      assert.deepEqual(seen(Z), [
        ["join-ok", { roomId: R2 }],
        ["user-connected", { id: X.id, name: "xavier" }],
        ["#rtcio:init-offer", { source: X.id }],
      ]);
      await expectDeparture(X.id, [Y, Z], () => X.socket.disconnect());
    });

    for (const how of ["disconnect", "sever"]) {
      const what = how === "disconnect" ? "clean disconnect" : "TCP connection destroyed";
      it(`multi-room socket, ${what}: a peer sharing several rooms with the leaver hears its departure once`, async () => {
        const proxy = how === "sever" ? await startProxy(server.url) : null;
        try {
          const [R1, R2, R3] = [uniqueRoom("main"), uniqueRoom("breakout"), uniqueRoom("side")];
          const X = await peer(proxy?.url); // the leaver
          const Y = await peer(); // shares R1, R2 and R3 with X
          const Z = await peer(); // shares R2 only
          const W = await peer(); // shares R3 only
          for (const R of [R1, R2, R3]) await join(Y, R, "yara");
          await join(Z, R2, "zoe");
          await join(W, R3, "walter");
          for (const R of [R1, R2, R3]) await join(X, R, "xavier");
          await barrier(X, Y, Z, W);
          await expectDeparture(X.id, [Y, Z, W], () => (how === "disconnect" ? X.socket.disconnect() : proxy.sever()), {
            ms: 10_000,
            messages: [
              "Y shares three rooms with X: one departure",
              "Z shares one room with X: one departure",
              "W shares one room with X: one departure",
            ],
          });

          // X is gone from all three rooms, and Y is still in each of them.
          for (const R of [R1, R2, R3]) {
            const N = await peer();
            await join(N, R, "newcomer");
            await barrier(N);
            const yara = { id: Y.id, name: "yara" };
            const others = { [R1]: [], [R2]: [{ id: Z.id, name: "zoe" }], [R3]: [{ id: W.id, name: "walter" }] }[R];
            assertJoinSequence(seen(N), R, [yara, ...others]);
          }
        } finally {
          proxy?.close();
        }
      });
    }

    it("one display name per socket: later joiners see its latest name in every room", async () => {
      const [R1, R2, R3] = [uniqueRoom("main"), uniqueRoom("breakout"), uniqueRoom("side")];
      const X = await peer();
      const Y = await peer();
      await join(Y, R1, "yara");
      await join(X, R1, "xavier");
      await join(X, R2, "xena");
      await barrier(X, Y);
      const y0 = Y.log.length;

      // X's latest join named it "xena": that is its name in R1 as well.
      const N1 = await peer();
      await join(N1, R1, "n1");
      await barrier(N1);
      assertJoinSequence(seen(N1), R1, [
        { id: Y.id, name: "yara" },
        { id: X.id, name: "xena" },
      ]);
      const N2 = await peer();
      await join(N2, R2, "n2");
      await barrier(N2);
      assertJoinSequence(seen(N2), R2, [{ id: X.id, name: "xena" }]);

      // Another join renames it again, everywhere; a room's existing peers are
      // told nothing about it (the join only reaches the joined room).
      await join(X, R3, "xander");
      await barrier(X, Y);
      assert.deepEqual(
        seen(Y, y0),
        [
          ["user-connected", { id: N1.id, name: "n1" }],
          ["#rtcio:init-offer", { source: N1.id }],
        ],
        "Y (in R1 only) hears nothing of X's joins elsewhere",
      );
      for (const [R, others] of [
        [R1, [{ id: Y.id, name: "yara" }, { id: N1.id, name: "n1" }]],
        [R2, [{ id: N2.id, name: "n2" }]],
        [R3, []],
      ]) {
        const N = await peer();
        await join(N, R, "late");
        await barrier(N);
        assertJoinSequence(seen(N), R, [...others, { id: X.id, name: "xander" }]);
      }
    });

    it("multi-room socket: leave-room leaves only that room", async () => {
      const { R1, R2, X, Y, Z } = await multiRoom(peer);
      const [x0, y0, z0] = [X.log.length, Y.log.length, Z.log.length];

      X.socket.emit("leave-room", { roomId: R1 });
      await until(() => seen(Y, y0).length >= 1, 5000, "user-disconnected on Y");
      await barrier(X, Y, Z);
      assert.deepEqual(seen(Y, y0), [["user-disconnected", { id: X.id }]]);
      assert.deepEqual(seen(Z, z0), []);
      assert.deepEqual(seen(X, x0), []);

      // X is still in R2: its disconnect reaches R2 only.
      X.socket.disconnect();
      await until(() => seen(Z, z0).length >= 2, 5000, "departure events on Z");
      await barrier(Y, Z);
      assertDeparture(seen(Z, z0), X.id);
      assert.deepEqual(seen(Y, y0), [["user-disconnected", { id: X.id }]]);
    });
  });
}
