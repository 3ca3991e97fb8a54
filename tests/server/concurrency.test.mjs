// Joins that race each other. Node is single-threaded, so two joins never
// interleave there; the Rust server runs sockets on several threads, so two
// sockets joining one room at the same instant must still end up with exactly
// one side told to offer (both offering is "glare", and the call may fail).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { until } from "../lib/harness.mjs";
import { clientPool, startSignaling, uniqueRoom, waitAny } from "./server.mjs";

const PAIRS = 150;

describe("simultaneous joins (websocket)", () => {
  let server;
  before(async () => {
    server = await startSignaling();
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it(`${PAIRS} pairs joining their room at the same instant: exactly one init-offer and one user-connected each way per pair`, async () => {
    const pairs = [];
    for (let i = 0; i < PAIRS; i++) {
      const [a, b] = await Promise.all([pool.connect(server.url, "websocket"), pool.connect(server.url, "websocket")]);
      pairs.push({ room: uniqueRoom("race"), a, b });
    }
    // Both joins of a pair leave in the same tick, on different connections.
    const joined = [];
    for (const { room, a, b } of pairs) {
      joined.push(waitAny(a.socket, ["join-ok"]), waitAny(b.socket, ["join-ok"]));
      a.socket.emit("join-room", { roomId: room, name: "a" });
      b.socket.emit("join-room", { roomId: room, name: "b" });
    }
    await Promise.all(joined);
    // Whoever joined second is backfilled with the first and the first is told
    // to offer; wait until every pair has its one init-offer, then let any
    // stray second one arrive through a barrier on both sides.
    const offers = (c) => c.log.filter(([e]) => e === "#rtcio:init-offer");
    await until(() => pairs.every(({ a, b }) => offers(a).length + offers(b).length >= 1), 10_000, "an init-offer per pair");
    await Promise.all(
      pairs.flatMap(({ room, a, b }) =>
        [a, b].map((c) => {
          const reply = waitAny(c.socket, ["room-check-ok"]);
          c.socket.emit("check-room", { roomId: room });
          return reply;
        }),
      ),
    );
    let glare = 0;
    for (const { a, b } of pairs) {
      const [offersA, offersB] = [offers(a), offers(b)];
      if (offersA.length + offersB.length !== 1) glare++;
      // The one offer goes to the side that was there first, naming the other.
      for (const [me, other, mine] of [[a, b, offersA], [b, a, offersB]]) {
        for (const [, payload] of mine) assert.deepEqual(payload, { source: other.id });
        const connected = me.log.filter(([e]) => e === "user-connected");
        assert.deepEqual(connected, [["user-connected", { id: other.id, name: other === a ? "a" : "b" }]]);
      }
    }
    assert.equal(glare, 0, `${glare} of ${PAIRS} pairs were both told to offer (or neither)`);
  });
});
