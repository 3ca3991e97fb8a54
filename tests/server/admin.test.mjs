// The /admin namespace (--admin-token / ADMIN_TOKEN) and the admin page at
// /admin/: who may connect, list-rooms, stats, kick and close-room as the
// affected clients and their room peers observe them (README "Admin").
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { MODES, ROOT, modes, startServer, until } from "../lib/harness.mjs";
import { now, sign } from "./tokens.mjs";
import {
  KIND,
  assertDeparture,
  assertError,
  barrier,
  clientPool,
  eventually,
  join,
  seen,
  startSignaling,
  tryJoin,
  uniqueRoom,
} from "./server.mjs";

const TOKEN = "admin-token-for-tests-0123456789";
const skip = KIND === "node" ? "the Node reference has no admin namespace" : false;

/** Connects to `url` and resolves with the `connect_error` (rejects if it connects). */
function refusal(url, mode, opts) {
  const socket = io(url, { ...MODES[mode], forceNew: true, reconnection: false, timeout: 5000, ...opts });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => {
      socket.disconnect();
      reject(new Error("connected, expected a refusal"));
    });
    socket.once("connect_error", (err) => {
      socket.disconnect();
      resolve(err);
    });
  });
}

/** Emits an admin event and resolves with its acknowledgement. */
function ask(admin, event, ...args) {
  return admin.socket.timeout(5000).emitWithAck(event, ...args);
}

function assertAckError(reply, code, roomId) {
  assert.equal(reply?.ok, false, JSON.stringify(reply));
  assertError(["error", reply.error], code, roomId);
}

describe("admin namespace", { skip }, () => {
  let server;
  before(async () => {
    server = await startSignaling([], { env: { ADMIN_TOKEN: TOKEN } });
  });
  after(() => server?.stop());

  for (const [mode] of modes()) {
    describe(`admin (${mode})`, () => {
      const pool = clientPool();
      afterEach(() => pool.closeAll());
      const peer = () => pool.connect(server.url, mode);
      const admin = (token = TOKEN) => pool.connect(`${server.url}/admin`, mode, { auth: { token } });

      it("refuses a client without a token, with a wrong token, or with a non-string token", async () => {
        for (const [opts, message] of [
          [{}, "missing token"],
          [{ auth: {} }, "missing token"],
          [{ auth: { token: 12345 } }, "missing token"],
          [{ auth: { token: "" } }, "missing token"],
          [{ auth: { token: `${TOKEN}x` } }, "invalid token"],
          [{ auth: { token: TOKEN.slice(0, -1) } }, "invalid token"],
          [{ auth: { token: "admin" } }, "invalid token"],
        ]) {
          const err = await refusal(`${server.url}/admin`, mode, opts);
          assert.equal(err.message, message, JSON.stringify(opts));
          assert.equal(err.data?.code, "forbidden", JSON.stringify(err.data));
          assert.ok(err.data.message.length > 0);
        }
        // The signaling namespace needs no admin token.
        const A = await peer();
        assert.ok(A.socket.connected);
      });

      it("list-rooms: rooms with their members' ids, names and user ids, in join order", async () => {
        const [R1, R2] = [uniqueRoom("list"), uniqueRoom("list")];
        const [A, B, C] = [await peer(), await peer(), await peer()];
        await join(A, R1, "alice");
        await join(B, R1, "bob");
        await join(C, R2, "carol");
        await join(A, R2, "alice");
        const X = await admin();
        const reply = await ask(X, "list-rooms");
        assert.equal(reply.ok, true);
        assert.equal(reply.truncated, false);
        assert.ok(reply.total >= 2);
        assert.equal(reply.total, reply.rooms.length);
        const ids = reply.rooms.map((r) => r.roomId);
        assert.deepEqual(ids, [...ids].sort(), "sorted by room id");
        const byId = Object.fromEntries(reply.rooms.map((r) => [r.roomId, r]));
        assert.deepEqual(byId[R1], {
          roomId: R1,
          size: 2,
          members: [
            { id: A.id, name: "alice", userId: null },
            { id: B.id, name: "bob", userId: null },
          ],
        });
        assert.deepEqual(byId[R2], {
          roomId: R2,
          size: 2,
          members: [
            { id: C.id, name: "carol", userId: null },
            { id: A.id, name: "alice", userId: null },
          ],
        });
        for (const r of reply.rooms) assert.ok(![A.id, B.id, C.id].includes(r.roomId), "no own-id rooms");

        const one = await ask(X, "list-rooms", { limit: 1 });
        assert.equal(one.ok, true);
        assert.equal(one.rooms.length, 1);
        assert.equal(one.truncated, true);
        assert.equal(one.total, reply.total);
        assertAckError(await ask(X, "list-rooms", { limit: 0 }), "bad-request");
        assertAckError(await ask(X, "list-rooms", "all"), "bad-request");
      });

      it("stats: sockets, sessions, rooms, sizes, admins, uptime, memory", async () => {
        // A server of its own: no session of another test may still be closing.
        const own = await startSignaling([], { env: { ADMIN_TOKEN: TOKEN } });
        try {
          const [R1, R2] = [uniqueRoom("stats"), uniqueRoom("stats")];
          const [A, B, C] = [await pool.connect(own.url, mode), await pool.connect(own.url, mode), await pool.connect(own.url, mode)];
          await join(A, R1, "a");
          await join(B, R1, "b");
          await join(C, R2, "c");
          const X = await pool.connect(`${own.url}/admin`, mode, { auth: { token: TOKEN } });
          const stats = await eventually(async () => {
            const s = await ask(X, "stats");
            assert.deepEqual(
              {
                ok: s.ok,
                namespace: s.namespace,
                sockets: s.sockets,
                sessions: s.sessions,
                rooms: s.rooms,
                socketsInRooms: s.socketsInRooms,
                largestRoom: s.largestRoom,
                admins: s.admins,
              },
              { ok: true, namespace: "/", sockets: 3, sessions: 4, rooms: 2, socketsInRooms: 3, largestRoom: 2, admins: 1 },
            );
            return s;
          }, 10_000);
          assert.ok(Number.isInteger(stats.uptimeSeconds) && stats.uptimeSeconds >= 0);
          assert.ok(stats.startedAt <= Date.now() && stats.startedAt > Date.now() - 3_600_000, `startedAt ${stats.startedAt}`);
          assert.ok(stats.rssBytes > 1_000_000, `rssBytes ${stats.rssBytes}`);
        } finally {
          pool.closeAll();
          await own.stop();
        }
      });

      it("kick by socket id: the client reads why, is disconnected, and its rooms hear it leave at once", async () => {
        const [R, other] = [uniqueRoom("kick"), uniqueRoom("kick")];
        const [A, B, C, D] = [await peer(), await peer(), await peer(), await peer()];
        await join(A, R, "alice");
        await join(B, R, "bob");
        await join(C, R, "carol");
        await join(D, other, "dave");
        const X = await admin();
        const marks = [A, C, D].map((p) => p.log.length);
        const bMark = B.log.length;
        const gone = new Promise((resolve) => B.socket.once("disconnect", (reason) => resolve({ reason, log: B.log.slice(bMark) })));

        const reply = await ask(X, "kick", { socketId: B.id, reason: "spamming the room" });
        assert.deepEqual(reply, { ok: true, kicked: [B.id] });
        const { reason, log } = await gone;
        assert.equal(reason, "io server disconnect", "a server-side disconnect: the client does not reconnect by itself");
        assert.deepEqual(log, [["error", { code: "kicked", message: "spamming the room" }]], "the error arrives before the disconnect");

        await until(() => seen(A, marks[0]).length >= 2 && seen(C, marks[1]).length >= 2, 5000, "departure events");
        await barrier(A, C, D);
        assertDeparture(seen(A, marks[0]), B.id, "A hears B leave");
        assertDeparture(seen(C, marks[1]), B.id, "C hears B leave");
        assert.deepEqual(seen(D, marks[2]), [], "a bystander hears nothing");
        const rooms = await ask(X, "list-rooms");
        const r = rooms.rooms.find((x) => x.roomId === R);
        assert.deepEqual(r.members.map((m) => m.id), [A.id, C.id]);
        assert.ok(A.socket.connected && C.socket.connected && D.socket.connected);
      });

      it("kick without a reason uses the default one; kicking a socket that is gone answers not-found", async () => {
        const A = await peer();
        const X = await admin();
        const gone = new Promise((resolve) => A.socket.once("disconnect", () => resolve(A.log.slice())));
        assert.deepEqual(await ask(X, "kick", { socketId: A.id }), { ok: true, kicked: [A.id] });
        const log = await gone;
        assert.deepEqual(log, [["error", { code: "kicked", message: "removed by an administrator" }]]);
        assertAckError(await ask(X, "kick", { socketId: A.id }), "not-found");
        assertAckError(await ask(X, "kick", { socketId: "no-such-socket" }), "not-found");
        assertAckError(await ask(X, "kick", { userId: "nobody" }), "not-found", undefined);
      });

      it("kick and close-room refuse bad payloads in the acknowledgement, or as the error event without one", async () => {
        const A = await peer();
        const X = await admin();
        for (const payload of [undefined, "x", {}, { socketId: 5 }, { socketId: A.id, userId: "u" }, { socketId: A.id, reason: 5 }, { socketId: A.id, reason: "x".repeat(257) }]) {
          assertAckError(await ask(X, "kick", payload), "bad-request");
        }
        for (const payload of [undefined, {}, { roomId: "" }, { roomId: 5 }, { roomId: "x".repeat(129) }]) {
          assertAckError(await ask(X, "close-room", payload), "bad-request");
        }
        const mark = X.log.length;
        X.socket.emit("kick", { socketId: 5 });
        await until(() => X.log.length > mark, 5000, "error event");
        assertError(X.log[mark], "bad-request");
        assert.ok(A.socket.connected, "nobody was kicked");
      });

      it("close-room: every member hears the others leave, then reads why; all stay connected; the room is gone", async () => {
        const [R, R2] = [uniqueRoom("close"), uniqueRoom("close")];
        const [A, B, C, D] = [await peer(), await peer(), await peer(), await peer()];
        await join(A, R, "alice", "pw");
        await join(B, R, "bob", "pw");
        await join(C, R, "carol", "pw");
        await join(C, R2, "carol");
        await join(D, R2, "dave");
        const X = await admin();
        const marks = [A, B, C, D].map((p) => p.log.length);

        const reply = await ask(X, "close-room", { roomId: R, reason: "meeting over" });
        assert.deepEqual(reply, { ok: true, roomId: R, removed: [A.id, B.id, C.id] });
        const notice = ["error", { code: "kicked", message: "meeting over", roomId: R }];
        const left = (p) => ["user-disconnected", { id: p.id }];
        await until(() => [A, B, C].every((p, i) => seen(p, marks[i]).length >= 3), 5000, "close-room events");
        await barrier(A, B, C, D);
        assert.deepEqual(seen(A, marks[0]), [left(B), left(C), notice]);
        assert.deepEqual(seen(B, marks[1]), [left(A), left(C), notice]);
        assert.deepEqual(seen(C, marks[2]), [left(A), left(B), notice]);
        assert.deepEqual(seen(D, marks[3]), [], "C's other room hears nothing");
        for (const p of [A, B, C, D]) assert.ok(p.socket.connected);

        const list = await ask(X, "list-rooms");
        assert.ok(!list.rooms.some((r) => r.roomId === R), "the room is gone");
        assert.ok(list.rooms.some((r) => r.roomId === R2), "the other room is not");
        // The room is open again, without its old password.
        assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob" }), ["join-ok", { roomId: R }]);

        assertAckError(await ask(X, "close-room", { roomId: uniqueRoom("never") }), "not-found");
        assertAckError(await ask(X, "close-room", { roomId: D.id }), "not-found");
        assert.ok(D.socket.connected, "an own-id room is not a room to close");
      });
    });
  }
});

describe("admin off without ADMIN_TOKEN", { skip }, () => {
  let server;
  before(async () => {
    server = await startSignaling();
  });
  after(() => server?.stop());

  it("no /admin namespace and no admin page", async () => {
    for (const [mode] of modes()) {
      const err = await refusal(`${server.url}/admin`, mode, { auth: { token: TOKEN } });
      assert.equal(err.message, "Invalid namespace", mode);
    }
    for (const p of ["/admin/", "/admin", "/admin/admin.js", "/admin/sio.js"]) {
      const res = await fetch(`${server.url}${p}`, { redirect: "manual" });
      assert.equal(res.status, 404, p);
    }
  });
});

describe("admin page", { skip }, () => {
  let server;
  before(async () => {
    server = await startSignaling(["--admin-token", TOKEN]);
  });
  after(() => server?.stop());

  it("is served at /admin/ with its script, client and style, from this server only", async () => {
    const res = await fetch(`${server.url}/admin/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/html/);
    const csp = res.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    const html = await res.text();
    assert.match(html, /<script type="module" src="admin.js">/);
    assert.ok(!html.includes(TOKEN), "the page does not carry the token");
    for (const [p, type, marker] of [
      ["/admin/admin.js", /^text\/javascript/, "list-rooms"],
      ["/admin/sio.js", /^text\/javascript/, "EIO=4&transport=websocket"],
      ["/admin/admin.css", /^text\/css/, "body"],
    ]) {
      const r = await fetch(`${server.url}${p}`);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get("content-type"), type, p);
      assert.ok((await r.text()).includes(marker), p);
    }
    const redirect = await fetch(`${server.url}/admin`, { redirect: "manual" });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get("location"), "/admin/");
  });

  it("neither the log nor an error shows the token", async () => {
    const pool = clientPool();
    try {
      await pool.connect(`${server.url}/admin`, "websocket", { auth: { token: TOKEN } });
      await refusal(`${server.url}/admin`, "websocket", { auth: { token: "wrong-token-shown-nowhere" } });
      await until(() => /admin connection refused/.test(server.output()), 5000, "refusal logged");
      assert.match(server.output(), /admin connected/);
      assert.ok(!server.output().includes(TOKEN), "the admin token is not logged");
      assert.ok(!server.output().includes("wrong-token-shown-nowhere"), "a presented token is not logged");
    } finally {
      pool.closeAll();
    }
  });
});

describe("admin token checks at start-up", { skip }, () => {
  const bin = process.env.RTCIO_SERVER_BIN ?? path.join(ROOT, "target", "debug", "rtcio-server");

  it("a token shorter than 16 characters is refused, without echoing it", () => {
    const r = spawnSync(bin, ["--host", "127.0.0.1", "--port", "0"], {
      env: { ...process.env, ADMIN_TOKEN: "hunter2-short" },
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--admin-token must be at least 16 characters/);
    assert.ok(!r.stderr.includes("hunter2-short"));
  });

  it("--help documents ADMIN_TOKEN but never shows its value", () => {
    const r = spawnSync(bin, ["--help"], { env: { ...process.env, ADMIN_TOKEN: TOKEN }, encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /--admin-token/);
    assert.match(r.stdout, /\[env: ADMIN_TOKEN\]/);
    assert.ok(!r.stdout.includes(TOKEN));
  });
});

// The Authenticator path (what JWT authentication plugs into): the rtcio
// test fixture `admin_fixture` maps tokens to identities, on the signaling
// namespace and for /admin.
describe("admin with an authenticator (identities, kick by user)", { skip }, () => {
  const USERS = {
    "tok-root": { userId: "root", name: "Root", admin: true },
    "tok-ann-1": { userId: "ann", name: "Ann" },
    "tok-ann-2": { userId: "ann", name: "Ann" },
    "tok-ben": { userId: "ben", name: "Ben" },
  };
  let server;
  before(async () => {
    const bin = process.env.RTCIO_ADMIN_FIXTURE_BIN ?? path.join(ROOT, "target", "debug", "examples", "admin_fixture");
    server = await startServer(bin, [], { env: { PORT: "0", FIXTURE_USERS: JSON.stringify(USERS) } });
  });
  after(() => server?.stop());

  for (const mode of ["websocket", "polling"]) {
    describe(`authenticator (${mode})`, () => {
      const pool = clientPool();
      afterEach(() => pool.closeAll());
      const user = (token) => pool.connect(server.url, mode, token ? { auth: { token } } : {});

      it("an admin identity opens /admin; a user who is not an admin, or an unknown token, does not", async () => {
        const X = await pool.connect(`${server.url}/admin`, mode, { auth: { token: "tok-root" } });
        assert.ok(X.socket.connected);
        const notAdmin = await refusal(`${server.url}/admin`, mode, { auth: { token: "tok-ben" } });
        assert.equal(notAdmin.message, "not an admin");
        assert.equal(notAdmin.data?.code, "forbidden");
        const unknown = await refusal(`${server.url}/admin`, mode, { auth: { token: "tok-nobody" } });
        assert.equal(unknown.message, "invalid token");
        const none = await refusal(`${server.url}/admin`, mode, {});
        assert.equal(none.message, "missing token");
      });

      it("list-rooms shows user ids; kick by user id disconnects every socket of that user", async () => {
        const [R1, R2] = [uniqueRoom("user"), uniqueRoom("user")];
        const ann1 = await user("tok-ann-1");
        const ann2 = await user("tok-ann-2");
        const ben = await user("tok-ben");
        const guest = await user();
        await join(ann1, R1, "ann (laptop)");
        await join(ben, R1, "ben");
        await join(ann2, R2, "");
        await join(guest, R2, "guest");
        const X = await pool.connect(`${server.url}/admin`, mode, { auth: { token: "tok-root" } });

        const list = await ask(X, "list-rooms");
        const byId = Object.fromEntries(list.rooms.map((r) => [r.roomId, r.members]));
        assert.deepEqual(byId[R1], [
          { id: ann1.id, name: "ann (laptop)", userId: "ann" },
          { id: ben.id, name: "ben", userId: "ben" },
        ]);
        assert.deepEqual(byId[R2], [
          { id: ann2.id, name: "Ann", userId: "ann" },
          { id: guest.id, name: "guest", userId: null },
        ]);

        const marks = [ben, guest].map((p) => p.log.length);
        const gone = [ann1, ann2].map((p) => new Promise((resolve) => p.socket.once("disconnect", (reason) => resolve([reason, p.log.at(-1)]))));
        const reply = await ask(X, "kick", { userId: "ann", reason: "account closed" });
        assert.equal(reply.ok, true);
        assert.deepEqual([...reply.kicked].sort(), [ann1.id, ann2.id].sort());
        for (const [reason, last] of await Promise.all(gone)) {
          assert.equal(reason, "io server disconnect");
          assert.deepEqual(last, ["error", { code: "kicked", message: "account closed" }]);
        }
        await until(() => seen(ben, marks[0]).length >= 2 && seen(guest, marks[1]).length >= 2, 5000, "departures");
        await barrier(ben, guest);
        assertDeparture(seen(ben, marks[0]), ann1.id, "ben hears ann's laptop leave");
        assertDeparture(seen(guest, marks[1]), ann2.id, "guest hears ann's other tab leave");
        assert.ok(ben.socket.connected && guest.socket.connected);
        assertAckError(await ask(X, "kick", { userId: "ann" }), "not-found");
      });
    });
  }
});

// With JWT authentication on, a token with `admin: true` opens /admin (no
// admin token configured at all), and the same token's `sub` shows in
// list-rooms; a valid token without the claim is refused.
describe("admin namespace through JWT admin claims", { skip }, () => {
  const SECRET = "jwt-secret-for-admin-claims-4e9d";
  let server;
  before(async () => {
    server = await startSignaling([], { env: { JWT_SECRET: SECRET } });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());
  const token = (claims) => sign("HS256", { exp: now() + 600, ...claims }, SECRET);

  for (const mode of ["websocket", "polling"]) {
    it(`admin: true connects and lists members with their user ids; no claim is refused (${mode})`, async () => {
      const err = await refusal(`${server.url}/admin`, mode, { auth: { token: token({ sub: "eve" }) } });
      assert.equal(err.data?.code, "forbidden", JSON.stringify(err.data));

      const R = uniqueRoom("jwt-admin");
      const member = await pool.connect(server.url, mode, { auth: { token: token({ sub: "carol", username: "Carol" }) } });
      await join(member, R, "carol");
      const admin = await pool.connect(`${server.url}/admin`, mode, { auth: { token: token({ sub: "root", admin: true }) } });
      const reply = await admin.socket.timeout(5000).emitWithAck("list-rooms");
      assert.equal(reply.ok, true, JSON.stringify(reply));
      const room = reply.rooms.find((r) => r.roomId === R || r.id === R);
      assert.ok(room, JSON.stringify(reply.rooms));
      assert.ok(JSON.stringify(room).includes('"carol"'), JSON.stringify(room));
    });
  }
});
