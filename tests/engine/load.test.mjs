// Load: many concurrent clients, each joins a room, exchanges acked events
// and receives a room broadcast. Every client must get everything, exactly.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { askAll, createSocket, next, roundTrip, startSocket, until } from "../lib/harness.mjs";
import { useCleanup, useServer } from "./server.mjs";

const SIZES = { websocket: 1000, polling: 100, upgrade: 100 };
const ROOMS = 20;
const ECHOES = 3;
const BATCH = 200;

const srv = useServer();

/** Runs `fn(i)` for 0..n-1 with at most `limit` in flight. */
async function pool(n, limit, fn) {
  const results = new Array(n);
  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < n) {
      const i = nextIndex++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return results;
}

const selected = (process.env.RTCIO_TEST_MODES ?? Object.keys(SIZES).join(",")).split(",");

for (const [mode, n] of Object.entries(SIZES)) {
  if (!selected.includes(mode)) continue;
  describe(mode, () => {
    const track = useCleanup();

    it(`${n} concurrent clients: join, acked echoes, room broadcast`, { timeout: 60_000 }, async () => {
      const tag = `${mode}-${Date.now()}`;
      const roomOf = (i) => `load-${tag}-${i % ROOMS}`;

      // connect everyone (bounded concurrency so the listen backlog never overflows)
      const sockets = await pool(n, BATCH, async (i) => {
        const socket = track(createSocket(srv.url, mode, { timeout: 20_000, query: { i: String(i) } }));
        const welcome = next(socket, "welcome", 20_000);
        await startSocket(socket, mode);
        const w = await welcome;
        assert.equal(w.id, socket.id);
        assert.equal(w.query.i, String(i));
        return socket;
      });
      assert.equal(new Set(sockets.map((s) => s.id)).size, n, "socket ids are unique");

      const inbox = sockets.map(() => []);
      sockets.forEach((s, i) => s.on("room-news", (...args) => inbox[i].push(args)));

      // everyone joins its room and echoes a few acked messages, all at once
      await Promise.all(
        sockets.map(async (s, i) => {
          const [rooms] = await askAll(s, "join", roomOf(i));
          assert.deepEqual(rooms, [s.id, roomOf(i)].sort());
          for (let k = 0; k < ECHOES; k++) {
            const payload = { i, k, text: `client ${i} message ${k}` };
            assert.deepEqual(await askAll(s, "echo-ack", payload, k), [payload, k]);
          }
        }),
      );

      const perRoom = Array.from({ length: ROOMS }, (_, r) => sockets.filter((_, i) => i % ROOMS === r).length);
      const [size0] = await askAll(sockets[0], "room-size", roomOf(0));
      assert.equal(size0, perRoom[0]);

      // the first member of each room broadcasts to the rest of its room
      await Promise.all(
        Array.from({ length: Math.min(ROOMS, n) }, async (_, r) => {
          const [ok] = await askAll(sockets[r], "to-room", {
            room: roomOf(r),
            event: "room-news",
            data: { room: r, from: sockets[r].id },
          });
          assert.equal(ok, true);
        }),
      );

      const expected = sockets.map((_, i) =>
        i < ROOMS ? [] : [[{ room: i % ROOMS, from: sockets[i % ROOMS].id }]],
      );
      await until(
        () => inbox.every((got, i) => got.length >= expected[i].length),
        30_000,
        "every room member to get the broadcast",
      );
      // senders (and everyone else) got nothing extra
      await Promise.all(sockets.map((s) => roundTrip(s)));
      assert.deepEqual(inbox, expected);
    });
  });
}
