// Events and acknowledgements in both directions (text payloads).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ask, askAll, modes, nextArgs, record, roundTrip, until } from "../lib/harness.mjs";
import { openWelcomed, useCleanup, useServer } from "./server.mjs";

const srv = useServer();

const PAYLOADS = [
  "hello",
  "",
  "unicode: héllo wörld ✓ 日本語 😀",
  'quotes " and \\ backslash and \n newline and \u001e record separator',
  0,
  42,
  -7,
  1.5,
  Number.MAX_SAFE_INTEGER,
  true,
  false,
  null,
  [],
  {},
  [1, "two", [3, [4]], { five: 5 }],
  { a: 1, b: { c: [true, null, "x"] }, "key with space": "v", "": "empty key" },
];

for (const [mode] of modes()) {
  describe(mode, () => {
    const track = useCleanup();
    const open = (opts) => openWelcomed(track, srv.url, mode, opts);

    it("echo: each JSON payload comes back unchanged", async () => {
      const socket = await open();
      for (const payload of PAYLOADS) {
        const echoed = nextArgs(socket, "echo");
        socket.emit("echo", payload);
        assert.deepEqual(await echoed, [payload], JSON.stringify(payload));
      }
    });

    it("echo: many arguments, and none", async () => {
      const socket = await open();
      let echoed = nextArgs(socket, "echo");
      socket.emit("echo", ...PAYLOADS);
      assert.deepEqual(await echoed, PAYLOADS);
      echoed = nextArgs(socket, "echo");
      socket.emit("echo");
      assert.deepEqual(await echoed, []);
    });

    it("echo: events arrive exactly once and in order", async () => {
      const socket = await open();
      const events = record(socket);
      const n = 100;
      for (let i = 0; i < n; i++) socket.emit("echo", i, `msg-${i}`);
      await until(() => events.length >= n, 10_000, `${n} echoes`);
      assert.equal(await roundTrip(socket), "pong");
      assert.deepEqual(
        events,
        Array.from({ length: n }, (_, i) => ["echo", i, `msg-${i}`]),
      );
    });

    it("ping-ack acks 'pong'", async () => {
      const socket = await open();
      assert.deepEqual(await askAll(socket, "ping-ack"), ["pong"]);
      assert.deepEqual(await askAll(socket, "ping-ack", "ignored", 1), ["pong"]);
    });

    it("echo-ack acks the same arguments", async () => {
      const socket = await open();
      for (const payload of PAYLOADS) {
        assert.deepEqual(await askAll(socket, "echo-ack", payload), [payload], JSON.stringify(payload));
      }
      assert.deepEqual(await askAll(socket, "echo-ack", ...PAYLOADS), PAYLOADS);
      assert.deepEqual(await askAll(socket, "echo-ack"), []);
    });

    it("concurrent acks are matched to their requests", async () => {
      const socket = await open();
      const n = 50;
      const answers = await Promise.all(
        Array.from({ length: n }, (_, i) => (i % 2 ? askAll(socket, "echo-ack", { i }) : askAll(socket, "ping-ack"))),
      );
      assert.deepEqual(
        answers,
        Array.from({ length: n }, (_, i) => (i % 2 ? [{ i }] : ["pong"])),
      );
    });

    it("acks via callback (without client-side timeout)", async () => {
      const socket = await open();
      const args = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no ack within 5 s")), 5000);
        socket.emit("echo-ack", "a", { b: 2 }, (...res) => {
          clearTimeout(timer);
          resolve(res);
        });
      });
      assert.deepEqual(args, ["a", { b: 2 }]);
    });

    it("server→client ack: the client's answer reaches the server", async () => {
      const socket = await open();
      const received = [];
      socket.on("question-1", (arg, ack) => {
        received.push(arg);
        ack("answer to " + arg);
      });
      const res = await ask(socket, "ask-client", { event: "question-1", timeoutMs: 3000 });
      assert.deepEqual(res, { ok: true, answer: "answer to question" });
      assert.deepEqual(received, ["question"]);
    });

    it("server→client ack: structured answer; only the first ack argument counts", async () => {
      const socket = await open();
      socket.on("question-2", (arg, ack) => ack({ list: [1, 2, { x: null }], s: "é" }, "second"));
      const res = await ask(socket, "ask-client", { event: "question-2", timeoutMs: 3000 });
      assert.deepEqual(res, { ok: true, answer: { list: [1, 2, { x: null }], s: "é" } });
    });

    it("server→client ack: several outstanding at once", async () => {
      const socket = await open();
      const pending = [];
      socket.on("q-a", (arg, ack) => pending.push(() => ack("A")));
      socket.on("q-b", (arg, ack) => pending.push(() => ack("B")));
      const ra = ask(socket, "ask-client", { event: "q-a", timeoutMs: 3000 });
      const rb = ask(socket, "ask-client", { event: "q-b", timeoutMs: 3000 });
      await until(() => pending.length === 2, 5000, "both questions");
      // answer in reverse order
      pending[1]();
      pending[0]();
      assert.deepEqual(await Promise.all([ra, rb]), [
        { ok: true, answer: "A" },
        { ok: true, answer: "B" },
      ]);
    });

    it("server→client ack: timeout when the client does not ack", async () => {
      const socket = await open();
      const received = [];
      socket.on("silent-question", (...args) => received.push(args.length));
      const started = Date.now();
      const res = await ask(socket, "ask-client", { event: "silent-question", timeoutMs: 300 });
      assert.deepEqual(res, { ok: false, error: "timeout" });
      // the question carried an ack callback (2 args) and was delivered once
      assert.deepEqual(received, [2]);
      assert.ok(Date.now() - started >= 250, "the server waited for the ack timeout");
      // a late ack after the timeout is harmless
      assert.equal(await roundTrip(socket), "pong");
    });

    it("server→client ack: a late ack after the timeout is ignored", async () => {
      const socket = await open();
      let late;
      socket.on("late-question", (arg, ack) => (late = ack));
      const res = await ask(socket, "ask-client", { event: "late-question", timeoutMs: 200 });
      assert.deepEqual(res, { ok: false, error: "timeout" });
      assert.equal(typeof late, "function");
      const events = record(socket);
      late("too late");
      assert.equal(await roundTrip(socket), "pong");
      assert.equal(socket.connected, true);
      assert.deepEqual(events, []);
    });

    it("unknown events are ignored; the connection stays usable", async () => {
      const socket = await open();
      const events = record(socket);
      socket.emit("no-such-event", 1, 2, 3);
      socket.emit("another-unknown", { x: 1 });
      assert.equal(await roundTrip(socket), "pong");
      assert.equal(socket.connected, true);
      assert.deepEqual(events, []);
    });

    it("events from one client never reach another", async () => {
      const a = await open();
      const b = await open();
      const bEvents = record(b);
      const echoed = nextArgs(a, "echo");
      a.emit("echo", "private");
      assert.deepEqual(await echoed, ["private"]);
      assert.equal(await roundTrip(a), "pong");
      assert.equal(await roundTrip(b), "pong");
      assert.deepEqual(bEvents, []);
    });
  });
}
