// Server-routed chat with durable history (issue 10, CONTRACT.md "Chat"):
// the same suite against SQLite (a file in a temporary directory) and a real
// PostgreSQL cluster started on loopback; the SIGKILL durability test on
// both; PostgreSQL stopped and started under a running server; --no-history
// and retention.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { ask, modes, next, until, waitConnected, MODES } from "../lib/harness.mjs";
import { startPostgres } from "../lib/postgres.mjs";
import { KIND, assertError, barrier, clientPool, eventually, join, seen, startSignaling, uniqueRoom } from "./server.mjs";

const say = (client, roomId, text) => ask(client.socket, "chat-message", { roomId, text });
const historyOf = (client, payload) => ask(client.socket, "chat-history", payload);
const texts = (messages) => messages.map((m) => m.text);

/** Joins `roomId` and resolves with the `chat-history` that follows: `[messages, roomId]`. */
async function joinWithHistory(client, roomId, name) {
  const history = next(client.socket, "chat-history", 15_000);
  await join(client, roomId, name);
  return history;
}

/** Every stored message of `roomId`, oldest first, paging back 200 at a time. */
async function wholeHistory(client, roomId) {
  const all = [];
  let before;
  for (;;) {
    const { messages } = await historyOf(client, { roomId, before, limit: 200 });
    if (messages.length === 0) return all;
    all.unshift(...messages);
    before = messages[0].id;
  }
}

function assertStamped(message, { roomId, from, name, text }) {
  assert.equal(typeof message.id, "string");
  assert.match(message.id, /^[0-9a-f]{16}$/);
  assert.equal(typeof message.at, "number");
  assert.ok(Math.abs(message.at - Date.now()) < 60_000, "at is ms since the epoch");
  assert.deepEqual({ ...message, id: undefined, at: undefined }, { id: undefined, at: undefined, roomId, from, name, text });
}

const rustOnly = KIND === "rust" ? describe : describe.skip;

for (const backend of ["sqlite", "postgres"]) {
  rustOnly(`chat on ${backend}`, () => {
    let dir;
    let pg;
    let server;
    const databaseUrl = (file = "chat.db") => (backend === "sqlite" ? `sqlite://${path.join(dir, file)}` : pg.url);
    const start = (args = [], env = {}, file) =>
      startSignaling(args, { env: { NO_HISTORY: "0", DATABASE_URL: databaseUrl(file), ...env } });

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), "rtcio-chat-"));
      if (backend === "postgres") pg = await startPostgres();
      server = await start();
    });
    after(async () => {
      await server?.stop();
      await pg?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    for (const [mode] of modes()) {
      describe(`chat (${mode})`, () => {
        const pool = clientPool();
        afterEach(() => pool.closeAll());
        const peer = () => pool.connect(server.url, mode);

        it("a message is stamped, stored, fanned out to the rest of the room (not the sender) and acknowledged", async () => {
          const R = uniqueRoom("chat");
          const elsewhere = uniqueRoom("chat-other");
          const [A, B, C] = [await peer(), await peer(), await peer()];
          await joinWithHistory(A, R, "alice");
          await joinWithHistory(B, R, "bob");
          await joinWithHistory(C, elsewhere, "carol");
          await barrier(A, B, C);
          const marks = [A, B, C].map((x) => x.log.length);

          const delivered = next(B.socket, "chat-message");
          const ack = await say(A, R, "hello");
          assert.equal(ack.ok, true);
          assert.match(ack.id, /^[0-9a-f]{16}$/);
          const message = await delivered;
          assertStamped(message, { roomId: R, from: A.id, name: "alice", text: "hello" });
          assert.equal(message.id, ack.id);
          assert.equal(message.at, ack.at);

          await barrier(A, B, C);
          assert.deepEqual(seen(A, marks[0]), [], "the sender does not get its own message back");
          assert.deepEqual(seen(B, marks[1]), [["chat-message", message]]);
          assert.deepEqual(seen(C, marks[2]), [], "another room hears nothing");
          const { messages } = await historyOf(B, { roomId: R });
          assert.deepEqual(messages, [message], "history equals what people saw");
        });

        it("a newcomer's join shows the history, oldest first; later messages arrive live once", async () => {
          const R = uniqueRoom("chat");
          const A = await peer();
          const [history] = await joinWithHistory(A, R, "alice");
          assert.deepEqual(history, [], "an empty room has an empty history");
          for (const text of ["one", "two", "three"]) assert.equal((await say(A, R, text)).ok, true);

          const D = await peer();
          const [messages, roomId] = await joinWithHistory(D, R, "dave");
          assert.equal(roomId, R);
          assert.deepEqual(texts(messages), ["one", "two", "three"]);
          for (const m of messages) assertStamped(m, { roomId: R, from: A.id, name: "alice", text: m.text });
          assert.ok(messages[0].id < messages[1].id && messages[1].id < messages[2].id, "ids sort in order");

          const mark = D.log.length;
          await say(A, R, "four");
          await barrier(A, D);
          assert.deepEqual(texts(seen(D, mark).map(([, m]) => m)), ["four"]);
        });

        it("messages sent while someone joins reach them exactly once (history or live)", async () => {
          const R = uniqueRoom("chat");
          const A = await peer();
          await joinWithHistory(A, R, "alice");
          const sent = Array.from({ length: 40 }, (_, i) => `m${i}`);
          const acks = Promise.all(sent.map((text) => say(A, R, text)));
          const D = await peer();
          const [history] = await joinWithHistory(D, R, "dave");
          await acks;
          await barrier(A, D);
          const live = seen(D).filter(([event]) => event === "chat-message").map(([, m]) => m.text);
          assert.deepEqual([...texts(history), ...live], sent, "every message once, in order");
        });

        it("chat-history pages back with before and limit (capped at 200), members only", async () => {
          const R = uniqueRoom("chat");
          const [A, outsider] = [await peer(), await peer()];
          await joinWithHistory(A, R, "alice");
          for (let i = 0; i < 7; i++) await say(A, R, `p${i}`);
          const latest = await historyOf(A, { roomId: R, limit: 3 });
          assert.deepEqual(texts(latest.messages), ["p4", "p5", "p6"]);
          const older = await historyOf(A, { roomId: R, before: latest.messages[0].id, limit: 3 });
          assert.deepEqual(texts(older.messages), ["p1", "p2", "p3"]);
          const rest = await historyOf(A, { roomId: R, before: older.messages[0].id, limit: 1000 });
          assert.deepEqual(texts(rest.messages), ["p0"]);
          assert.equal((await historyOf(A, { roomId: R })).messages.length, 7);

          const refused = await historyOf(outsider, { roomId: R });
          assert.equal(refused.ok, false);
          assert.equal(refused.error.code, "not-in-room");
          assert.equal((await historyOf(A, { roomId: R, before: "nope" })).error.code, "bad-request");
          assert.equal((await historyOf(A, { roomId: R, limit: -1 })).error.code, "bad-request");
        });

        it("bad input is refused, nothing is stored or fanned out, and no other room hears anything", async () => {
          const R = uniqueRoom("chat");
          const other = uniqueRoom("chat-other");
          const [A, B, C] = [await peer(), await peer(), await peer()];
          await joinWithHistory(A, R, "alice");
          await joinWithHistory(B, R, "bob");
          await joinWithHistory(C, other, "carol");
          await barrier(A, B, C);
          const marks = [A, B, C].map((x) => x.log.length);

          const cases = [
            [{ roomId: R, text: 42 }, "bad-request"],
            [{ roomId: R, text: ["x"] }, "bad-request"],
            [{ roomId: R }, "bad-request"],
            [{ roomId: R, text: "" }, "bad-request"],
            [{ roomId: R, text: "é".repeat(1001) }, "bad-request"],
            [{ text: "no room" }, "bad-request"],
            [{ roomId: 7, text: "numeric room" }, "bad-request"],
            [{ roomId: other, text: "injected" }, "not-in-room"],
            ["just a string", "bad-request"],
          ];
          for (const [payload, code] of cases) {
            const ack = await ask(A.socket, "chat-message", payload);
            assert.equal(ack.ok, false, JSON.stringify(payload));
            assert.equal(ack.error.code, code, JSON.stringify(payload));
            assert.equal(typeof ack.error.message, "string");
          }
          // Without an acknowledgement, the refusal is the `error` event.
          const refusal = next(A.socket, "error");
          A.socket.emit("chat-message", { roomId: other, text: "injected" });
          assertError(["error", await refusal], "not-in-room", other);

          // 1000 characters (2000 bytes) is the limit, in characters.
          const longest = "é".repeat(1000);
          assert.equal((await say(A, R, longest)).ok, true);
          await barrier(A, B, C);
          assert.deepEqual(seen(B, marks[1]).map(([e, m]) => [e, m.text]), [["chat-message", longest]]);
          assert.deepEqual(seen(C, marks[2]), [], "a member of the other room receives nothing");
          assert.deepEqual(texts(await wholeHistory(A, R)), [longest]);
          assert.deepEqual(await wholeHistory(C, other), [], "nothing was stored in the other room");
        });

        it("one sender's messages are stored and delivered in the order sent", async () => {
          const R = uniqueRoom("chat");
          const [A, B] = [await peer(), await peer()];
          await joinWithHistory(A, R, "alice");
          await joinWithHistory(B, R, "bob");
          const sent = Array.from({ length: 100 }, (_, i) => `o${i}`);
          const acks = await Promise.all(sent.map((text) => say(A, R, text)));
          assert.ok(acks.every((a) => a.ok));
          const ids = acks.map((a) => a.id);
          assert.deepEqual([...ids].sort(), ids, "ids increase in sending order");
          await until(() => seen(B).filter(([e]) => e === "chat-message").length === 100, 15_000, "100 messages");
          assert.deepEqual(seen(B).filter(([e]) => e === "chat-message").map(([, m]) => m.text), sent);
          assert.deepEqual(texts(await wholeHistory(A, R)), sent);
        });
      });
    }

    it("durability: 2,000 acknowledged messages, SIGKILL mid-way, restart on the same database: every acknowledged message once, in order", async () => {
      const R = uniqueRoom("durable");
      let victim = await start([], {}, "durable.db");
      const connect = async (url) => {
        const socket = io(url, { ...MODES.websocket, forceNew: true, reconnection: false, timeout: 5000 });
        await waitConnected(socket, "websocket");
        const client = { socket, id: socket.id, log: [] };
        await join(client, R, "writer");
        return client;
      };
      let client = await connect(victim.url);
      const acked = [];
      let killed = false;
      for (let i = 0; i < 2000; i++) {
        const text = `d${i}`;
        if (i === 1000 && !killed) {
          // Killed while the next messages are on their way.
          killed = true;
          setImmediate(() => victim.proc.kill("SIGKILL"));
        }
        try {
          const ack = await client.socket.timeout(5000).emitWithAck("chat-message", { roomId: R, text });
          if (ack.ok) acked.push({ text, id: ack.id });
        } catch {
          // No acknowledgement: the server died. Restart it on the same database.
          await victim.stop();
          client.socket.disconnect();
          victim = await start([], {}, "durable.db");
          client = await connect(victim.url);
        }
      }
      assert.ok(killed);
      assert.ok(acked.length >= 1990, `most messages were acknowledged (${acked.length})`);
      const stored = await wholeHistory(client, R);
      client.socket.disconnect();
      await victim.stop();

      const ids = stored.map((m) => m.id);
      assert.equal(new Set(ids).size, ids.length, "no duplicate ids");
      assert.deepEqual([...ids].sort(), ids, "history is in id order");
      const storedTexts = texts(stored);
      assert.equal(new Set(storedTexts).size, storedTexts.length, "no message stored twice");
      const index = new Map(stored.map((m, i) => [m.text, i]));
      for (const { text, id } of acked) {
        assert.ok(index.has(text), `acknowledged ${text} is in the history`);
        assert.equal(stored[index.get(text)].id, id, `${text} kept its id`);
      }
      const order = storedTexts.map((t) => Number(t.slice(1)));
      assert.deepEqual([...order].sort((a, b) => a - b), order, "in sending order");
      assert.ok(stored.length - acked.length <= 1, "at most the in-flight message is stored unacknowledged");
    });

    it("retention: --history-max-per-room and --history-max-age are enforced by the periodic task", async () => {
      const R = uniqueRoom("retained");
      const keep = await start(["--history-max-per-room", "3", "--history-prune-interval", "100ms"], {}, "retention.db");
      const pool = clientPool();
      try {
        const A = await pool.connect(keep.url, "websocket");
        await joinWithHistory(A, R, "alice");
        for (let i = 0; i < 6; i++) await say(A, R, `r${i}`);
        await eventually(async () => assert.deepEqual(texts(await wholeHistory(A, R)), ["r3", "r4", "r5"]), 15_000);
      } finally {
        pool.closeAll();
        await keep.stop();
      }
      const young = await start(["--history-max-age", "1s", "--history-prune-interval", "100ms"], {}, "retention.db");
      try {
        const A = await pool.connect(young.url, "websocket");
        await joinWithHistory(A, R, "alice");
        await say(A, R, "short-lived");
        await eventually(async () => assert.deepEqual(await wholeHistory(A, R), []), 15_000);
      } finally {
        pool.closeAll();
        await young.stop();
      }
    });

    if (backend === "postgres") {
      it("PostgreSQL stopped and started: `unavailable` while down, signaling unaffected, chat works again without a restart", async () => {
        const pool = clientPool();
        try {
          const R = uniqueRoom("outage");
          const A = await pool.connect(server.url, "websocket");
          const B = await pool.connect(server.url, "websocket");
          await joinWithHistory(A, R, "alice");
          await joinWithHistory(B, R, "bob");
          assert.equal((await say(A, R, "before")).ok, true);
          await barrier(A, B);

          await pg.stop();
          const mark = B.log.length;
          const pending = say(A, R, "during");
          // The sender's own signaling is not held behind its pending chat message.
          const relayed = next(B.socket, "#rtcio:message");
          A.socket.emit("#rtcio:message", { target: B.id, data: { type: "offer" } });
          assert.deepEqual(await relayed, { source: A.id, target: B.id, data: { type: "offer" } });
          const refused = await pending;
          assert.equal(refused.ok, false);
          assert.equal(refused.error.code, "unavailable");
          // Presence keeps working too.
          const C = await pool.connect(server.url, "websocket");
          await join(C, R, "carol");
          await barrier(A, B);
          assert.deepEqual(
            seen(B, mark).filter(([e]) => e === "chat-message"),
            [],
            "nothing is fanned out when it could not be stored",
          );

          await pg.start();
          await eventually(async () => assert.equal((await say(A, R, "after")).ok, true), 30_000);
          const stored = texts(await wholeHistory(A, R));
          assert.equal(stored[0], "before");
          assert.ok(!stored.includes("during"), "the refused message was not stored");
          assert.equal(stored.at(-1), "after");
        } finally {
          pool.closeAll();
        }
      });
    }
  });
}

rustOnly("chat with --no-history", () => {
  let server;
  before(async () => {
    server = await startSignaling(["--no-history"], { env: { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" } });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("relays with the same validation and stamping, stores nothing, sends no history on join", async () => {
    const R = uniqueRoom("ephemeral");
    const [A, B] = [await pool.connect(server.url, "websocket"), await pool.connect(server.url, "websocket")];
    await join(A, R, "alice");
    await join(B, R, "bob");
    const delivered = next(B.socket, "chat-message");
    const ack = await say(A, R, "not kept");
    assert.equal(ack.ok, true);
    assertStamped(await delivered, { roomId: R, from: A.id, name: "alice", text: "not kept" });
    assert.equal((await say(A, R, "")).error.code, "bad-request");
    assert.equal((await say(A, uniqueRoom(), "x")).error.code, "not-in-room");
    assert.deepEqual(await historyOf(A, { roomId: R }), { messages: [] });
    const C = await pool.connect(server.url, "websocket");
    await join(C, R, "carol");
    await barrier(C);
    assert.deepEqual(seen(C).filter(([e]) => e === "chat-history"), [], "no chat-history without history");
  });
});
