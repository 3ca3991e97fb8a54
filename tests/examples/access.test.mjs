// The access-control recipes under examples/ (issue 8): auth middleware, room
// access control, per-room limit, rate limiting and error handling, each
// checked for exactly what its source implements.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { until } from "../lib/harness.mjs";
import { assertError, attempt, barrier, clientPool, join, seen, tryJoin, uniqueRoom, waitAny } from "../server/server.mjs";
import { now, sign } from "../server/tokens.mjs";
import { startExample } from "./example-server.mjs";

const SECRET = "example-secret";
const token = (sub, extra = {}) => sign("HS256", { sub, exp: now() + 600, ...extra }, SECRET);

describe("example auth_middleware", () => {
  let server;
  before(async () => {
    server = await startExample("auth_middleware", { JWT_SECRET: SECRET, RUST_LOG: "info" });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: missing token / invalid token / a valid token with its user id in presence`, async () => {
      const none = await attempt(server.url, mode, {});
      assert.deepEqual(none, { ok: false, message: "missing token" });
      const bad = await attempt(server.url, mode, { auth: { token: sign("HS256", { sub: "x" }, "wrong") } });
      assert.deepEqual(bad, { ok: false, message: "invalid token" });
      const A = await pool.connect(server.url, mode, { auth: { token: token("alice", { username: "Alice" }) } });
      const B = await pool.connect(server.url, mode, { auth: { token: token("bob") } });
      // eslint-disable-next-line no-control-regex
      const log = () => server.output().replace(/\x1b\[[0-9;]*m/g, "");
      await until(() => log().includes("user=alice"), 5000, "the connect log");
      const R = uniqueRoom("ex-auth");
      await join(A, R);
      await join(B, R, "Bob");
      assert.deepEqual(
        seen(B).filter(([e]) => e === "user-connected"),
        [["user-connected", { id: A.id, name: "Alice", userId: "alice" }]],
      );
    });
  }
});

describe("example room_access_control", () => {
  let server;
  before(async () => {
    server = await startExample("room_access_control", { JWT_SECRET: SECRET });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: members join; a non-member gets forbidden and the room hears nothing`, async () => {
      const alice = await pool.connect(server.url, mode, { auth: { token: token("alice") } });
      const bob = await pool.connect(server.url, mode, { auth: { token: token("bob") } });
      const carol = await pool.connect(server.url, mode, { auth: { token: token("carol") } });
      await join(alice, "standup", "a");
      await join(bob, "standup", "b");
      await barrier(bob, alice);
      const heard = alice.log.length;
      assert.deepEqual(await tryJoin(carol, { roomId: "standup" }), ["join-error", { reason: "forbidden", roomId: "standup" }]);
      await until(() => seen(carol).some(([e]) => e === "error"));
      assertError(seen(carol).find(([e]) => e === "error"), "forbidden", "standup");
      await join(carol, "lobby", "c");
      await barrier(carol, alice);
      assert.deepEqual(seen(alice, heard), [], "the room heard nothing of the refused join");
      for (const c of [alice, bob]) c.socket.emit("leave-room", { roomId: "standup" });
      await barrier(alice, bob);
    });
  }
});

describe("example per_room_limit", () => {
  let server;
  before(async () => {
    server = await startExample("per_room_limit");
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: 10 racing joins into a cap-4 room → exactly 4 in, 6 room-full`, async () => {
      const clients = await Promise.all(Array.from({ length: 10 }, () => pool.connect(server.url, mode)));
      const R = uniqueRoom("ex-cap");
      const replies = clients.map((c) => waitAny(c.socket, ["join-ok", "join-error"], (p) => p?.roomId === R, 10_000));
      for (const c of clients) c.socket.emit("join-room", { roomId: R });
      const got = await Promise.all(replies);
      assert.equal(got.filter(([e]) => e === "join-ok").length, 4);
      const refused = got.filter(([e]) => e === "join-error");
      assert.equal(refused.length, 6);
      for (const [, p] of refused) assert.deepEqual(p, { reason: "room-full", roomId: R });
    });
  }
});

describe("example rate_limiting", () => {
  let server;
  before(async () => {
    server = await startExample("rate_limiting");
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: 30 chat messages at once → at most 2/s + 2 relayed, and one rate-limited error naming the event`, async () => {
      const A = await pool.connect(server.url, mode);
      const B = await pool.connect(server.url, mode);
      const R = uniqueRoom("ex-rate");
      await join(A, R, "a");
      await join(B, R, "b");
      const start = Date.now();
      for (let i = 0; i < 30; i++) A.socket.emit("chat-message", { roomId: R, text: `m${i}` });
      await barrier(A, B);
      const elapsed = (Date.now() - start) / 1000;
      const chats = seen(B).filter(([e]) => e === "chat-message");
      assert.ok(chats.length >= 2 && chats.length <= 2 * elapsed + 2 + 1, `${chats.length} relayed in ${elapsed.toFixed(2)} s`);
      assert.deepEqual(chats[0], ["chat-message", { roomId: R, text: "m0" }]);
      const errors = seen(A).filter(([e, p]) => e === "error" && p?.code === "rate-limited");
      assert.ok(errors.length >= 1 && errors.length <= Math.ceil(elapsed), `${errors.length} errors in ${elapsed.toFixed(2)} s: at most one a second`);
      assertError(errors[0], "rate-limited");
      assert.equal(errors[0][1].event, "chat-message");
    });
  }
});

describe("example error_handling", () => {
  let server;
  before(async () => {
    server = await startExample("error_handling");
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: bad-request, not-in-room and a relayed message, each in the one error shape`, async () => {
      const A = await pool.connect(server.url, mode);
      const B = await pool.connect(server.url, mode);
      const R = uniqueRoom("ex-err");
      let reply = waitAny(A.socket, ["error"]);
      A.socket.emit("chat-message", "hello");
      const bad = await reply;
      assertError(bad, "bad-request");
      assert.equal(bad[1].roomId, undefined);
      reply = waitAny(A.socket, ["error"]);
      A.socket.emit("chat-message", { roomId: R, text: "x".repeat(1001) });
      assertError(await reply, "bad-request", R);
      reply = waitAny(A.socket, ["error"]);
      A.socket.emit("chat-message", { roomId: R, text: "hi" });
      assertError(await reply, "not-in-room", R);
      await join(A, R, "a");
      await join(B, R, "b");
      const got = waitAny(B.socket, ["chat-message"]);
      A.socket.emit("chat-message", { roomId: R, text: "hi" });
      assert.deepEqual(await got, ["chat-message", { roomId: R, text: "hi", from: A.id }]);
    });
  }
});
