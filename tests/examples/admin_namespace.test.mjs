// The admin_namespace example (the "Custom namespaces" recipe with its admin
// panel filled in): /calls carries the relay and rooms, /admin needs
// ADMIN_TOKEN and has no relay, and an admin on /admin manages /calls.
import assert from "node:assert/strict";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { MODES, ROOT, startServer, until } from "../lib/harness.mjs";
import { assertDeparture, barrier, clientPool, join, seen, uniqueRoom } from "../server/server.mjs";

const DIR = process.env.RTCIO_EXAMPLES_DIR ?? path.join(ROOT, "target", "debug", "examples");
const TOKEN = "example-admin-token-0123456789";

describe("example admin_namespace", () => {
  let server;
  before(async () => {
    // The example logs `listening on 0.0.0.0:PORT`; PORT=0 picks a free port.
    const started = await startServer(path.join(DIR, "admin_namespace"), [], {
      env: { PORT: "0", ADMIN_TOKEN: TOKEN, RUST_LOG: "info" },
    });
    server = { ...started, url: started.url.replace("0.0.0.0", "127.0.0.1") };
  });
  after(() => server?.stop());

  for (const mode of ["websocket", "polling"]) {
    describe(`admin_namespace (${mode})`, () => {
      const pool = clientPool();
      afterEach(() => pool.closeAll());
      const calls = () => pool.connect(`${server.url}/calls`, mode);

      it("/admin refuses a client without the token", async () => {
        const socket = io(`${server.url}/admin`, { ...MODES[mode], forceNew: true, reconnection: false, auth: { token: "guess" } });
        const err = await new Promise((resolve, reject) => {
          socket.once("connect", () => reject(new Error("connected without the token")));
          socket.once("connect_error", resolve);
        });
        socket.disconnect();
        assert.equal(err.message, "invalid token");
      });

      it("an admin lists the calls' rooms, kicks one caller and closes the room", async () => {
        const R = uniqueRoom("example-admin");
        const [A, B, C] = [await calls(), await calls(), await calls()];
        await join(A, R, "alice");
        await join(B, R, "bob");
        await join(C, R, "carol");
        const X = await pool.connect(`${server.url}/admin`, mode, { auth: { token: TOKEN } });
        const ask = (event, arg) => X.socket.timeout(5000).emitWithAck(event, arg);

        const list = await ask("list-rooms");
        const room = list.rooms.find((r) => r.roomId === R);
        assert.deepEqual(room.members.map((m) => [m.id, m.name]), [[A.id, "alice"], [B.id, "bob"], [C.id, "carol"]]);
        const stats = await ask("stats");
        assert.equal(stats.namespace, "/calls");
        assert.ok(stats.sockets >= 3);

        const marks = [A, C].map((p) => p.log.length);
        const kicked = new Promise((resolve) => B.socket.once("disconnect", (reason) => resolve([reason, B.log.at(-1)])));
        assert.deepEqual(await ask("kick", { socketId: B.id, reason: "bye" }), { ok: true, kicked: [B.id] });
        assert.deepEqual(await kicked, ["io server disconnect", ["error", { code: "kicked", message: "bye" }]]);
        await until(() => seen(A, marks[0]).length >= 2 && seen(C, marks[1]).length >= 2, 5000, "departures");
        await barrier(A, C);
        assertDeparture(seen(A, marks[0]), B.id);
        assertDeparture(seen(C, marks[1]), B.id);

        const before = [A, C].map((p) => p.log.length);
        assert.deepEqual(await ask("close-room", { roomId: R }), { ok: true, roomId: R, removed: [A.id, C.id] });
        const notice = ["error", { code: "kicked", message: "the room was closed by an administrator", roomId: R }];
        await until(() => seen(A, before[0]).length >= 2 && seen(C, before[1]).length >= 2, 5000, "close-room events");
        await barrier(A, C);
        assert.deepEqual(seen(A, before[0]), [["user-disconnected", { id: C.id }], notice]);
        assert.deepEqual(seen(C, before[1]), [["user-disconnected", { id: A.id }], notice]);
        assert.ok(!(await ask("list-rooms")).rooms.some((r) => r.roomId === R));
      });
    });
  }
});
