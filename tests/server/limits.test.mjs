// Caps and abuse limits (issue 8): the exact room cap under racing joins,
// rooms per socket, per-socket event rate limits (a flooder is throttled to
// limit × time + burst while a neighbour pair receives every envelope), the
// disconnect of a socket far over its limit, the handshake limit per IP, the
// connection ceiling, and forged server-only events.
import assert from "node:assert/strict";
import http from "node:http";
import { after, afterEach, before, describe, it } from "node:test";
import { until } from "../lib/harness.mjs";
import {
  KIND,
  assertError,
  attempt,
  barrier,
  clientPool,
  floodBesideCalm,
  join,
  joinAtOnce,
  seen,
  startSignaling,
  tryJoin,
  uniqueRoom,
  waitAny,
} from "./server.mjs";

const MSG = "#rtcio:message";
const RUST = { skip: KIND === "node" && "the reference server has no limits" };

/** A raw Engine.IO handshake request: `{ status, headers, body }`. */
function handshake(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/socket.io/?EIO=4&transport=polling`, { headers }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
  });
}

describe("room caps", RUST, () => {
  let server;
  before(async () => {
    server = await startSignaling([], { env: { MAX_ROOMS_PER_SOCKET: "3" } }); // MAX_PEERS: the default 8
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: 30 clients joining a cap-8 room at the same instant → exactly 8 in, 22 room-full`, async () => {
      const clients = await Promise.all(Array.from({ length: 30 }, () => pool.connect(server.url, mode)));
      const R = uniqueRoom("cap");
      const { got, inside, outside } = await joinAtOnce(clients, R);
      assert.equal(inside.length, 8);
      assert.equal(outside.length, 22);
      for (let i = 0; i < 30; i++) if (got[i][0] === "join-error") assert.deepEqual(got[i][1], { reason: "room-full", roomId: R });
      await barrier(...outside);
      for (const c of outside) {
        assertError(seen(c).find(([e]) => e === "error"), "room-full", R);
        assert.equal(seen(c).filter(([e]) => e === "user-connected").length, 0, "a refused client hears of nobody");
      }
      // Each member heard of exactly the 7 others.
      await until(() => inside.every((c) => seen(c).filter(([e]) => e === "user-connected").length === 7), 10_000, "7 peers each");
      await barrier(...inside);
      for (const c of inside) assert.equal(seen(c).filter(([e]) => e === "user-connected").length, 7);

      // A member's re-join is not counted twice; a leave frees exactly one place.
      await join(inside[0], R, "again");
      assert.deepEqual(await tryJoin(outside[0], { roomId: R }), ["join-error", { reason: "room-full", roomId: R }]);
      inside[1].socket.emit("leave-room", { roomId: R });
      await barrier(inside[1]); // the leave has been processed
      await join(outside[1], R, "late");
      assert.deepEqual(await tryJoin(outside[2], { roomId: R }), ["join-error", { reason: "room-full", roomId: R }]);
    });
  }

  it("a socket in as many rooms as it may be gets too-many-rooms until it leaves one", async () => {
    const A = await pool.connect(server.url, "websocket");
    const rooms = [uniqueRoom("r"), uniqueRoom("r"), uniqueRoom("r")];
    for (const R of rooms) await join(A, R, "a");
    const fourth = uniqueRoom("r");
    const from = A.log.length;
    assert.deepEqual(await tryJoin(A, { roomId: fourth }), ["join-error", { reason: "too-many-rooms", roomId: fourth }]);
    await until(() => seen(A, from).some(([e]) => e === "error"));
    assertError(seen(A, from).find(([e]) => e === "error"), "too-many-rooms", fourth);
    await join(A, rooms[0], "a"); // a re-join is not a new room
    A.socket.emit("leave-room", { roomId: rooms[0] });
    await join(A, fourth, "a");
  });
});

describe("event rate limits", RUST, () => {
  let server;
  before(async () => {
    // The defaults except a smaller envelope budget, so the flood is cheap to send.
    server = await startSignaling([], { env: { RATE_LIMIT: "1", MESSAGE_RATE: "50/100", HANDSHAKE_LIMIT: "0" } });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: a flooder's envelopes are bounded by rate × time + burst while a neighbour pair receives all of its own`, async () => {
      const [F, T, A, B] = await Promise.all([0, 1, 2, 3].map(() => pool.connect(server.url, mode)));
      const flood = uniqueRoom("flood");
      const calm = uniqueRoom("calm");
      await join(F, flood, "f");
      await join(T, flood, "t");
      await join(A, calm, "a");
      await join(B, calm, "b");
      const received = (c) => c.log.filter(([e]) => e === MSG).length;
      const errors = () => F.log.filter(([e, p]) => e === "error" && p?.code === "rate-limited");

      const start = Date.now();
      const FLOOD = 3000;
      const CALM = 100;
      // The neighbour sends at 40/s, under its 50/s budget, during the flood.
      await floodBesideCalm({ flooder: F, target: T, flood: FLOOD, calm: A, calmTarget: B, calmCount: CALM });
      await until(() => received(B) === CALM, 20_000, "every calm envelope");
      await barrier(F, T, A, B);
      const elapsed = (Date.now() - start) / 1000;
      const got = received(T);
      assert.ok(got < FLOOD, `the flood was throttled (${got} of ${FLOOD} relayed)`);
      assert.ok(got <= 50 * elapsed + 100 + 1, `${got} relayed in ${elapsed.toFixed(2)} s exceeds 50/s × t + 100`);
      assert.ok(got >= 100, `at least the burst was relayed (${got})`);
      assert.deepEqual(
        B.log.filter(([e]) => e === MSG).map(([, p]) => p.data.n),
        Array.from({ length: CALM }, (_, i) => i),
        "the neighbour received every envelope, in order",
      );
      const errs = errors();
      assert.ok(errs.length >= 1, "the flooder was told");
      assert.ok(errs.length <= Math.ceil(elapsed) + 1, `${errs.length} rate-limited errors in ${elapsed.toFixed(2)} s: more than one a second`);
      assertError(errs[0], "rate-limited");
      assert.equal(errs[0][1].event, MSG);
      assert.ok(F.socket.connected, "3000 at once is not a sustained 10× flood: still connected");
    });
  }

  it("per-event budgets: check-room is limited to 5/s (burst 10), other events keep their own budget", async () => {
    const A = await pool.connect(server.url, "websocket");
    const start = Date.now();
    for (let i = 0; i < 60; i++) A.socket.emit("check-room", { roomId: `c-${i}` });
    // media-state for a room A is not in answers not-in-room: it proves the
    // shared budget still lets application events through.
    const reply = waitAny(A.socket, ["error"], (p) => p?.code === "not-in-room");
    A.socket.emit("media-state", { roomId: "nowhere", mic: true, cam: true });
    await reply;
    const elapsed = (Date.now() - start) / 1000;
    const ok = A.log.filter(([e]) => e === "room-check-ok").length;
    assert.ok(ok >= 10 && ok <= 5 * elapsed + 10 + 1, `${ok} check-room answers in ${elapsed.toFixed(2)} s`);
    const limited = A.log.find(([e, p]) => e === "error" && p?.code === "rate-limited");
    assertError(limited, "rate-limited");
    assert.equal(limited[1].event, "check-room");
  });
});

describe("a socket far over its limit for 5 s is disconnected", RUST, () => {
  let server;
  before(async () => {
    server = await startSignaling([], { env: { RATE_LIMIT: "1", EVENT_RATE: "5/5", HANDSHAKE_LIMIT: "0" } });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: 20× the limit → rate-limited errors, then disconnected; a polite socket stays`, async () => {
      const F = await pool.connect(server.url, mode);
      const P = await pool.connect(server.url, mode);
      const gone = new Promise((resolve) => F.socket.once("disconnect", resolve));
      const timer = setInterval(() => {
        for (let i = 0; i < 10; i++) F.socket.emit("media-state", { roomId: "r", mic: true, cam: true });
      }, 100); // 100/s against 5/s
      const politeTimer = setInterval(() => P.socket.emit("media-state", { roomId: "r", mic: true, cam: true }), 500);
      try {
        const reason = await Promise.race([gone, new Promise((_, rej) => setTimeout(() => rej(new Error("not disconnected in 15 s")), 15_000))]);
        // Over polling the client may still have a batch of events in flight
        // for the namespace it was just removed from; the server then closes
        // the whole connection (as socket.io does), which the client reports
        // as a transport error instead.
        if (mode === "websocket") assert.equal(reason, "io server disconnect");
        else assert.ok(["io server disconnect", "transport error", "transport close"].includes(reason), reason);
        await until(() => server.output().includes("disconnected a socket far over its rate limit"), 5000, "the log line");
      } finally {
        clearInterval(timer);
        clearInterval(politeTimer);
      }
      const errs = F.log.filter(([e, p]) => e === "error" && p?.code === "rate-limited");
      assert.ok(errs.length >= 4, `warned first, at most once a second (${errs.length})`);
      if (mode === "websocket") assert.match(errs.at(-1)[1].message, /disconnected/);
      assert.ok(P.socket.connected, "the polite socket is still connected");
      assert.ok(
        P.log.every(([e, p]) => !(e === "error" && p?.code === "rate-limited")),
        "the polite socket was never limited",
      );
    });
  }
});

describe("handshake limit per IP", RUST, () => {
  let server;
  before(async () => {
    server = await startSignaling(["--trust-proxy"], { env: { RATE_LIMIT: "1", HANDSHAKE_LIMIT: "4" } });
  });
  after(() => server?.stop());

  it("the 5th handshake in a minute from one address is refused with 429 and a JSON message", async () => {
    const ip = { "x-forwarded-for": "203.0.113.7" };
    for (let i = 0; i < 4; i++) assert.equal((await handshake(server.url, ip)).status, 200);
    const refused = await handshake(server.url, ip);
    assert.equal(refused.status, 429);
    assert.match(refused.headers["content-type"], /application\/json/);
    assert.ok(Number(refused.headers["retry-after"]) >= 1);
    const body = JSON.parse(refused.body);
    assert.equal(body.code, "rate-limited");
    assert.match(body.message, /too many connection attempts/);
    // Another address (behind the trusted proxy) has its own budget.
    assert.equal((await handshake(server.url, { "x-forwarded-for": "198.51.100.1, 203.0.113.8" })).status, 200);
  });

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: socket.io-client gets connect_error once the address is over its budget`, async () => {
      const headers = { "x-forwarded-for": `192.0.2.${mode === "websocket" ? 1 : 2}` };
      const results = [];
      for (let i = 0; i < 5; i++) {
        const r = await attempt(server.url, mode, { extraHeaders: headers });
        if (r.ok) r.socket.close();
        results.push(r.ok);
      }
      assert.deepEqual(results, [true, true, true, true, false]);
    });
  }
});

describe("without --trust-proxy, X-Forwarded-For is ignored", RUST, () => {
  let server;
  before(async () => {
    server = await startSignaling([], { env: { RATE_LIMIT: "1", HANDSHAKE_LIMIT: "2" } });
  });
  after(() => server?.stop());

  it("forged addresses share the real one's budget", async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await handshake(server.url, { "x-forwarded-for": `10.0.0.${i}` })).status);
    assert.deepEqual(statuses, [200, 200, 429]);
  });
});

describe("--max-connections", RUST, () => {
  let server;
  before(async () => {
    server = await startSignaling(["--max-connections", "2"]);
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: past the ceiling a handshake gets 503 with a JSON message; a freed place is reusable`, async () => {
      const A = await pool.connect(server.url, mode);
      await pool.connect(server.url, mode);
      const third = await attempt(server.url, mode);
      if (third.ok) third.socket.close();
      assert.equal(third.ok, false, "the third connection is refused");
      const raw = await handshake(server.url);
      assert.equal(raw.status, 503);
      assert.deepEqual(JSON.parse(raw.body), { code: "unavailable", message: "the server is at its connection limit; retry later" });
      A.socket.disconnect();
      let again;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        again = await attempt(server.url, mode);
        if (again.ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(again?.ok, "a place freed by a disconnect is reusable");
      again.socket.close();
    });
  }
});

describe("forged server-only events", () => {
  let server;
  before(async () => {
    server = await startSignaling();
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling", "upgrade"]) {
    it(`${mode}: #rtcio:init-offer, #rtcio:peer-left and the reserved names reach nobody and break nothing`, async () => {
      const A = await pool.connect(server.url, mode);
      const B = await pool.connect(server.url, mode);
      const R = uniqueRoom("forge");
      await join(A, R, "a");
      await join(B, R, "b");
      await barrier(A, B);
      const [a0, b0] = [A.log.length, B.log.length];
      for (const name of [
        "#rtcio:init-offer",
        "#rtcio:peer-left",
        "#rtcio:offer",
        "#rtcio:answer",
        "#rtcio:candidate",
        "#rtcio:stream-meta",
        "#rtcio:made-up",
      ]) {
        A.socket.emit(name, { source: B.id, target: B.id, id: B.id, roomId: R });
      }
      await barrier(A, B);
      assert.deepEqual(seen(B, b0), [], "B received nothing");
      // The connection still works both ways.
      const reply = waitAny(B.socket, [MSG]);
      A.socket.emit(MSG, { target: B.id, data: "still here" });
      assert.deepEqual(await reply, [MSG, { source: A.id, target: B.id, data: "still here" }]);
      assert.ok(A.socket.connected && B.socket.connected);
      assert.deepEqual(
        seen(A, a0).filter(([e]) => e !== "error"),
        [],
        "A got nothing but (possibly) errors",
      );
    });
  }
});
