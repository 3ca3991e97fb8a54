// Connection lifecycle: handshake auth/query, middleware refusal, namespaces
// (including two over one engine connection), server- and client-initiated
// disconnects.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Manager } from "socket.io-client";
import {
  MODES,
  ask,
  createSocket,
  modes,
  next,
  nextArgs,
  record,
  roundTrip,
  startSocket,
  untilAsync,
  waitConnected,
} from "../lib/harness.mjs";
import { useCleanup, useServer } from "./server.mjs";

/** The query the server reports: ours plus Engine.IO's own parameters. */
function assertQuery(query, ours, mode) {
  assert.equal(typeof query, "object");
  // engine.io-client adds a cache-busting timestamp `t` to polling requests
  const { t, ...rest } = query;
  if (t !== undefined) assert.equal(typeof t, "string");
  assert.deepEqual(rest, { ...ours, EIO: "4", transport: MODES[mode].transports[0] });
}

const srv = useServer();

for (const [mode] of modes()) {
  describe(mode, () => {
    const track = useCleanup();

    it("connects with auth and query; welcome echoes them", async () => {
      const auth = { token: "abc", user: { name: "ada", n: 1 }, list: [1, "two", null] };
      const query = { room: "lobby", lang: "en" };
      const socket = track(createSocket(srv.url, mode, { auth, query }));
      const welcome = next(socket, "welcome");
      await startSocket(socket, mode);
      const w = await welcome;
      assert.deepEqual(Object.keys(w).sort(), ["auth", "id", "query"]);
      assert.equal(w.id, socket.id);
      assert.deepEqual(w.auth, auth);
      assertQuery(w.query, query, mode);
      assert.equal(socket.connected, true);
      assert.equal(await ask(socket, "ping-ack"), "pong");
    });

    it("connects without auth; welcome has auth {}", async () => {
      const socket = track(createSocket(srv.url, mode));
      const welcome = nextArgs(socket, "welcome");
      await startSocket(socket, mode);
      const args = await welcome;
      assert.equal(args.length, 1);
      assert.equal(args[0].id, socket.id);
      assert.deepEqual(args[0].auth, {});
      assertQuery(args[0].query, {}, mode);
    });

    it("socket ids are distinct per connection", async () => {
      const a = track(createSocket(srv.url, mode));
      const b = track(createSocket(srv.url, mode));
      await Promise.all([startSocket(a, mode), startSocket(b, mode)]);
      assert.equal(typeof a.id, "string");
      assert.ok(a.id.length > 0);
      assert.notEqual(a.id, b.id);
      assert.notEqual(a.io.engine.id, b.io.engine.id);
    });

    it("middleware refusal → connect_error 'invalid token' with data", async () => {
      const socket = track(createSocket(srv.url, mode, { auth: { token: "bad" } }));
      const events = record(socket);
      const failed = next(socket, "connect_error");
      socket.connect();
      const err = await failed;
      assert.ok(err instanceof Error);
      assert.equal(err.message, "invalid token");
      assert.deepEqual(err.data, { reason: "bad" });
      assert.equal(socket.connected, false);
      assert.deepEqual(events, []);
    });

    it("a token other than 'bad' is accepted", async () => {
      const socket = track(createSocket(srv.url, mode, { auth: { token: "good" } }));
      const welcome = next(socket, "welcome");
      await startSocket(socket, mode);
      assert.deepEqual((await welcome).auth, { token: "good" });
    });

    it("/admin without admin auth → connect_error 'not admin'", async () => {
      for (const auth of [undefined, { admin: false }, { admin: "true" }, { token: "x" }]) {
        const socket = track(createSocket(srv.url + "/admin", mode, auth ? { auth } : {}));
        const failed = next(socket, "connect_error");
        socket.connect();
        const err = await failed;
        assert.equal(err.message, "not admin", `auth ${JSON.stringify(auth)}`);
        assert.equal(err.data, undefined);
        assert.equal(socket.connected, false);
        socket.disconnect();
      }
    });

    it("/admin with admin auth → welcome-admin and echo", async () => {
      const socket = track(createSocket(srv.url + "/admin", mode, { auth: { admin: true } }));
      const welcome = nextArgs(socket, "welcome-admin");
      await startSocket(socket, mode);
      assert.deepEqual(await welcome, [{ id: socket.id }]);
      const echoed = nextArgs(socket, "echo");
      socket.emit("echo", "admin says", { n: 2 });
      assert.deepEqual(await echoed, ["admin says", { n: 2 }]);
    });

    it("two namespaces share ONE engine connection", async () => {
      const manager = track(
        new Manager(srv.url, { ...MODES[mode], reconnection: false, timeout: 5000, autoConnect: false }),
      );
      const main = manager.socket("/");
      const admin = manager.socket("/admin", { auth: { admin: true } });
      const mainEvents = record(main);
      const adminEvents = record(admin);
      const welcome = next(main, "welcome");
      const welcomeAdmin = next(admin, "welcome-admin");
      main.connect();
      admin.connect();
      await Promise.all([waitConnected(main, mode), waitConnected(admin, mode)]);

      assert.equal(main.io, manager);
      assert.equal(admin.io, manager);
      assert.ok(manager.engine.id);
      assert.equal(main.io.engine.id, manager.engine.id);
      assert.equal(admin.io.engine.id, manager.engine.id);
      assert.notEqual(main.id, admin.id);
      assert.deepEqual(await welcomeAdmin, { id: admin.id });
      assert.equal((await welcome).id, main.id);

      // events stay in their namespace
      const echoMain = nextArgs(main, "echo");
      const echoAdmin = nextArgs(admin, "echo");
      admin.emit("echo", "for admin");
      main.emit("echo", "for main");
      assert.deepEqual(await echoMain, ["for main"]);
      assert.deepEqual(await echoAdmin, ["for admin"]);
      // one round trip over the shared connection: everything sent before is in
      assert.equal(await roundTrip(main), "pong");
      assert.deepEqual(
        mainEvents.map(([e]) => e),
        ["welcome", "echo"],
      );
      assert.deepEqual(adminEvents, [["welcome-admin", { id: admin.id }], ["echo", "for admin"]]);

      // leaving one namespace keeps the other (and the engine connection) alive
      const engineId = manager.engine.id;
      admin.disconnect();
      assert.equal(await ask(main, "ping-ack"), "pong");
      assert.equal(main.connected, true);
      assert.equal(manager.engine.id, engineId);
      main.disconnect();
    });

    it("unknown namespace → connect_error 'Invalid namespace'", async () => {
      const socket = track(createSocket(srv.url + "/nope", mode));
      const failed = next(socket, "connect_error");
      socket.connect();
      const err = await failed;
      assert.equal(err.message, "Invalid namespace");
      assert.equal(socket.connected, false);
    });

    it("a refused namespace does not disturb another on the same connection", async () => {
      const manager = track(
        new Manager(srv.url, { ...MODES[mode], reconnection: false, timeout: 5000, autoConnect: false }),
      );
      const main = manager.socket("/");
      const bogus = manager.socket("/nope");
      const refusedAdmin = manager.socket("/admin", { auth: { admin: false } });
      const failures = Promise.all([next(bogus, "connect_error"), next(refusedAdmin, "connect_error")]);
      main.connect();
      bogus.connect();
      refusedAdmin.connect();
      await waitConnected(main, mode);
      const [e1, e2] = await failures;
      assert.equal(e1.message, "Invalid namespace");
      assert.equal(e2.message, "not admin");
      assert.equal(await ask(main, "ping-ack"), "pong");
      assert.equal(main.connected, true);
      main.disconnect();
    });

    it("server-initiated disconnect → 'io server disconnect'", async () => {
      const socket = track(await connectAndWelcome(srv.url, mode));
      const watcher = track(await connectAndWelcome(srv.url, mode));
      const room = `dm-${mode}`;
      assert.deepEqual(await ask(socket, "join", room), [socket.id, room].sort());
      assert.equal(await ask(watcher, "room-size", room), 1);
      const disconnected = nextArgs(socket, "disconnect");
      socket.emit("disconnect-me");
      const [reason] = await disconnected;
      assert.equal(reason, "io server disconnect");
      assert.equal(socket.connected, false);
      // the server no longer has it in any room
      await untilAsync(async () => (await ask(watcher, "room-size", room)) === 0, 5000, "room to empty");
      assert.equal(await ask(watcher, "room-size", socket.id), 0);
    });

    it("client disconnect: the server forgets the socket", async () => {
      const socket = track(await connectAndWelcome(srv.url, mode));
      const watcher = track(await connectAndWelcome(srv.url, mode));
      const room = `cd-${mode}`;
      const id = socket.id;
      await ask(socket, "join", room);
      await ask(watcher, "join", room);
      assert.equal(await ask(watcher, "room-size", room), 2);
      assert.equal(await ask(watcher, "room-size", id), 1);
      const disconnected = nextArgs(socket, "disconnect");
      socket.disconnect();
      assert.equal((await disconnected)[0], "io client disconnect");
      await untilAsync(async () => (await ask(watcher, "room-size", room)) === 1, 5000, "room to shrink");
      assert.equal(await ask(watcher, "room-size", id), 0);
    });

    it("abruptly closed engine connection: the server forgets the socket", async () => {
      const socket = track(await connectAndWelcome(srv.url, mode));
      const watcher = track(await connectAndWelcome(srv.url, mode));
      const room = `ab-${mode}`;
      await ask(socket, "join", room);
      assert.equal(await ask(watcher, "room-size", room), 1);
      // close the transport without a Socket.IO DISCONNECT packet
      socket.io.engine.close();
      await untilAsync(async () => (await ask(watcher, "room-size", room)) === 0, 5000, "room to empty");
    });
  });
}

async function connectAndWelcome(url, mode, opts = {}) {
  const socket = createSocket(url, mode, opts);
  const welcome = next(socket, "welcome");
  await startSocket(socket, mode);
  await welcome;
  return socket;
}
