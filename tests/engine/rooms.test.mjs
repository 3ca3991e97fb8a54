// Rooms: join/leave, room-scoped emits excluding the sender, namespace
// broadcasts with `except`, room sizes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ask, createSocket, modes, next, nextArgs, plain, bin, record, roundTrip, startSocket } from "../lib/harness.mjs";
import { openWelcomed, useCleanup, useServer } from "./server.mjs";

const srv = useServer();

let counter = 0;
const roomName = (what) => `${what}-${++counter}`;

for (const [mode] of modes()) {
  describe(mode, () => {
    const track = useCleanup();
    const open = () => openWelcomed(track, srv.url, mode);
    const openMany = (n) => Promise.all(Array.from({ length: n }, () => open()));
    /** Round trips on every socket, so every packet the server sent them has arrived. */
    const drain = (...sockets) => Promise.all(sockets.map((s) => roundTrip(s)));

    it("join/leave ack the sorted rooms, own id included", async () => {
      const socket = await open();
      const [r1, r2] = ["zeta-" + ++counter, "alpha-" + ++counter];
      assert.deepEqual(await ask(socket, "join", r1), [socket.id, r1].sort());
      assert.deepEqual(await ask(socket, "join", r2), [socket.id, r1, r2].sort());
      // joining twice changes nothing
      assert.deepEqual(await ask(socket, "join", r2), [socket.id, r1, r2].sort());
      assert.deepEqual(await ask(socket, "leave", r1), [socket.id, r2].sort());
      // leaving a room one is not in changes nothing
      assert.deepEqual(await ask(socket, "leave", "never-joined"), [socket.id, r2].sort());
      assert.deepEqual(await ask(socket, "leave", r2), [socket.id]);
    });

    it("room names are arbitrary strings", async () => {
      const socket = await open();
      const room = "ünïcødé room / with spaces #" + ++counter;
      assert.deepEqual(await ask(socket, "join", room), [socket.id, room].sort());
      assert.equal(await ask(socket, "room-size", room), 1);
    });

    it("room-size counts members", async () => {
      const [a, b, c] = await openMany(3);
      const room = roomName("size");
      assert.equal(await ask(a, "room-size", room), 0);
      await ask(a, "join", room);
      assert.equal(await ask(c, "room-size", room), 1);
      await ask(b, "join", room);
      assert.equal(await ask(c, "room-size", room), 2);
      await ask(a, "leave", room);
      assert.equal(await ask(c, "room-size", room), 1);
      // every socket is alone in the room named by its id
      assert.equal(await ask(c, "room-size", a.id), 1);
      assert.equal(await ask(c, "room-size", "no-such-room"), 0);
    });

    it("to-room reaches the other members, not the sender, not outsiders", async () => {
      const [a, b, c, outsider] = await openMany(4);
      const room = roomName("to");
      for (const s of [a, b, c]) await ask(s, "join", room);
      const logs = [a, b, c, outsider].map(record);
      const gotB = nextArgs(b, "news");
      const gotC = nextArgs(c, "news");
      assert.equal(await ask(a, "to-room", { room, event: "news", data: { n: 1, s: "é" } }), true);
      assert.deepEqual(await gotB, [{ n: 1, s: "é" }]);
      assert.deepEqual(await gotC, [{ n: 1, s: "é" }]);
      await drain(a, b, c, outsider);
      assert.deepEqual(logs, [[], [["news", { n: 1, s: "é" }]], [["news", { n: 1, s: "é" }]], []]);
    });

    it("to-room with binary data", async () => {
      const [a, b] = await openMany(2);
      const room = roomName("tobin");
      await ask(a, "join", room);
      await ask(b, "join", room);
      const got = nextArgs(b, "blob");
      assert.equal(await ask(a, "to-room", { room, event: "blob", data: { b: Buffer.from([1, 2]), t: "x" } }), true);
      assert.deepEqual(plain(await got), [{ b: bin([1, 2]), t: "x" }]);
    });

    it("to-room from a non-member reaches every member", async () => {
      const [a, b, outsider] = await openMany(3);
      const room = roomName("from-outside");
      await ask(a, "join", room);
      await ask(b, "join", room);
      const logs = [a, b, outsider].map(record);
      const got = [next(a, "hi"), next(b, "hi")];
      assert.equal(await ask(outsider, "to-room", { room, event: "hi", data: "there" }), true);
      await Promise.all(got);
      await drain(a, b, outsider);
      assert.deepEqual(logs, [[["hi", "there"]], [["hi", "there"]], []]);
    });

    it("to-room with a socket id as room is a private message", async () => {
      const [a, b, c] = await openMany(3);
      const logs = [a, b, c].map(record);
      const got = next(b, "dm");
      assert.equal(await ask(a, "to-room", { room: b.id, event: "dm", data: "psst" }), true);
      assert.equal(await got, "psst");
      await drain(a, b, c);
      assert.deepEqual(logs, [[], [["dm", "psst"]], []]);
    });

    it("to-room to an empty room reaches nobody", async () => {
      const [a, b] = await openMany(2);
      const logs = [a, b].map(record);
      assert.equal(await ask(a, "to-room", { room: roomName("empty"), event: "void", data: 1 }), true);
      await drain(a, b);
      assert.deepEqual(logs, [[], []]);
    });

    it("after leave, a socket no longer receives the room's messages", async () => {
      const [a, b, c] = await openMany(3);
      const room = roomName("left");
      for (const s of [a, b, c]) await ask(s, "join", room);
      await ask(c, "leave", room);
      const logs = [a, b, c].map(record);
      const got = next(b, "after-leave");
      assert.equal(await ask(a, "to-room", { room, event: "after-leave", data: null }), true);
      assert.equal(await got, null);
      await drain(a, b, c);
      assert.deepEqual(logs, [[], [["after-leave", null]], []]);
    });

    it("broadcast includes the sender unless excepted", async () => {
      const [a, b, outsider] = await openMany(3);
      const room = roomName("bc");
      await ask(a, "join", room);
      await ask(b, "join", room);
      const logs = [a, b, outsider].map(record);
      const gotA = next(a, "bc");
      const gotB = next(b, "bc");
      assert.equal(await ask(a, "broadcast", { room, event: "bc", data: [1, 2] }), true);
      assert.deepEqual(await gotA, [1, 2]);
      assert.deepEqual(await gotB, [1, 2]);
      await drain(a, b, outsider);
      assert.deepEqual(logs, [[["bc", [1, 2]]], [["bc", [1, 2]]], []]);
    });

    it("broadcast with except: a single room", async () => {
      const [a, b, c, d] = await openMany(4);
      const room = roomName("all");
      const vip = roomName("vip");
      for (const s of [a, b, c, d]) await ask(s, "join", room);
      await ask(b, "join", vip);
      await ask(d, "join", vip);
      const logs = [a, b, c, d].map(record);
      const got = [next(a, "ann"), next(c, "ann")];
      assert.equal(await ask(a, "broadcast", { room, except: vip, event: "ann", data: "not for vips" }), true);
      assert.deepEqual(await Promise.all(got), ["not for vips", "not for vips"]);
      await drain(a, b, c, d);
      assert.deepEqual(logs, [[["ann", "not for vips"]], [], [["ann", "not for vips"]], []]);
    });

    it("broadcast with except: an array of rooms (the sender's own id included)", async () => {
      const [a, b, c, d] = await openMany(4);
      const room = roomName("all");
      const x1 = roomName("x1");
      const x2 = roomName("x2");
      for (const s of [a, b, c, d]) await ask(s, "join", room);
      await ask(b, "join", x1);
      await ask(c, "join", x2);
      const logs = [a, b, c, d].map(record);
      const e1 = Promise.all([next(a, "e1"), next(d, "e1")]);
      assert.equal(await ask(a, "broadcast", { room, except: [x1, x2], event: "e1", data: { k: 1 } }), true);
      assert.deepEqual(await e1, [{ k: 1 }, { k: 1 }]);
      // excepting the sender's own room (its id) excludes the sender
      const e2 = Promise.all([next(b, "e2"), next(d, "e2")]);
      assert.equal(await ask(a, "broadcast", { room, except: [a.id, x2], event: "e2", data: "two" }), true);
      assert.deepEqual(await e2, ["two", "two"]);
      await drain(a, b, c, d);
      assert.deepEqual(logs, [
        [["e1", { k: 1 }]],
        [["e2", "two"]],
        [],
        [
          ["e1", { k: 1 }],
          ["e2", "two"],
        ],
      ]);
    });

    it("broadcast with an empty except list reaches the room once per member", async () => {
      const [a, b] = await openMany(2);
      const room = roomName("once");
      const other = roomName("other");
      await ask(b, "join", room);
      await ask(b, "join", other);
      const logs = [a, b].map(record);
      const got = next(b, "one");
      assert.equal(await ask(a, "broadcast", { room, except: [], event: "one", data: 1 }), true);
      assert.equal(await got, 1);
      await drain(a, b);
      assert.deepEqual(logs, [[], [["one", 1]]]);
    });

    it("rooms are per namespace: /admin sockets are not in / rooms", async () => {
      const a = await open();
      const admin = track(createSocket(srv.url + "/admin", mode, { auth: { admin: true } }));
      const welcome = next(admin, "welcome-admin");
      await startSocket(admin, mode);
      await welcome;
      const adminLog = record(admin);
      // the /admin socket's id is not a room of "/"
      assert.equal(await ask(a, "room-size", admin.id), 0);
      assert.equal(await ask(a, "to-room", { room: admin.id, event: "leak", data: 1 }), true);
      // a round trip on /admin: its echo comes back after anything sent before
      const echoed = next(admin, "echo");
      admin.emit("echo", "done");
      assert.equal(await echoed, "done");
      assert.deepEqual(adminLog, [["echo", "done"]]);
    });
  });
}
