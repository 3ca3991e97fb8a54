// Departures noticed at once on every transport, and Socket.IO
// connection-state recovery (issue 7), through the real socket.io-client@4 on
// websocket, polling and upgrade. Each test starts its own server with the
// recovery settings it is about (RECOVERY_WINDOW, PRESENCE_GRACE,
// RECOVERY_MAX_PACKETS), on top of SUITE_ENV.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { afterEach, describe, it } from "node:test";
import { io } from "socket.io-client";
import { MODES, ROOT, modes, record, until, waitConnected } from "../lib/harness.mjs";
import { KIND, barrier, clientPool, seen, startSignaling, tryJoin, uniqueRoom, waitAny } from "./server.mjs";

// The heartbeat would notice a vanished client only after pingInterval +
// pingTimeout (45 s by default): anything well under that is the transport.
const DEPARTURE_MS = 10_000;

/** Drops the offset socket.io appends to every event while recovery is on. */
const withoutOffset = ([event, ...args]) =>
  typeof args.at(-1) === "string" && /^\d+$/.test(args.at(-1)) ? [event, ...args.slice(0, -1)] : [event, ...args];

/** join-room that must succeed (the reply compared without its offset). */
async function join(client, roomId, name) {
  assert.deepEqual(withoutOffset(await tryJoin(client, { roomId, name })), ["join-ok", { roomId }]);
}

/** Seen events (barriers aside) without their offsets. */
const plainSeen = (client, from = 0) => seen(client, from).map(withoutOffset);

/** Only presence events (the ones a blip must not churn). */
const PRESENCE = ["user-connected", "user-disconnected", "#rtcio:init-offer", "#rtcio:peer-left"];
const presence = (client, from = 0) => plainSeen(client, from).filter(([e]) => PRESENCE.includes(e));

/** Cuts the client's transport (the server sees the connection lost, not a goodbye). */
async function cut(client, peer) {
  const gone = waitAny(peer.socket, ["#rtcio:peer-left"], (p) => p?.id === client.id, DEPARTURE_MS);
  const disconnected = new Promise((r) => client.socket.once("disconnect", r));
  client.socket.io.engine.close();
  await disconnected;
  await gone;
}

/** Reconnects a cut client (it presents its pid and last offset) and waits for `connect`. */
async function reconnect(client, mode) {
  client.socket.connect();
  await waitConnected(client.socket, mode);
  const id = client.socket.id;
  return id;
}

/** Spawns a client process that joins `room`; resolves with the process and its socket id. */
async function spawnJoined(url, mode, room, name) {
  const script = path.join(ROOT, "tests", "server", "fixtures", "joined-client.mjs");
  const child = spawn(process.execPath, [script, url, mode, room, name], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const id = await new Promise((resolve, reject) => {
    child.stdout.on("data", (c) => {
      out += c;
      const m = out.match(/joined (\S+)\n/);
      if (m) resolve(m[1]);
    });
    child.stderr.on("data", (c) => (out += c));
    child.once("exit", (code) => reject(new Error(`client exited (${code}): ${out}`)));
    setTimeout(() => reject(new Error(`client did not join: ${out}`)), 15_000).unref();
  });
  return { child, id };
}

describe("connection-state recovery and departures", { skip: KIND === "node" ? "Rust server settings" : false }, () => {
  const pool = clientPool();
  let server;
  afterEach(async () => {
    pool.closeAll();
    await server?.stop();
    server = undefined;
  });

  // SUITE_ENV turns recovery off for the other suites; on here, as by default.
  const start = (env) => startSignaling([], { env: { RECOVERY_WINDOW: "2m", ...env } });
  /** A fresh server with `env`, and alice (A) and bob (B) in one new room. */
  const pairInRoom = async (env, label, mode) => {
    server = await start(env);
    const room = uniqueRoom(label);
    const A = await pool.connect(server.url, mode);
    const B = await pool.connect(server.url, mode);
    await join(A, room, "alice");
    await join(B, room, "bob");
    return { room, A, B };
  };

  describe("polling departures, by hand (Engine.IO over fetch)", () => {
    const open = async () => {
      const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
      const handshake = await (await fetch(base)).text();
      const url = `${base}&sid=${JSON.parse(handshake.slice(1)).sid}`;
      assert.equal((await fetch(url, { method: "POST", body: "40" })).status, 200);
      assert.match(await (await fetch(url)).text(), /^40\{/);
      return url;
    };

    it("an answered GET followed by a quiet gap is not a departure", async () => {
      server = await start({});
      const url = await open();
      // The client between two polls, for longer than any departure takes to notice.
      await new Promise((r) => setTimeout(r, 1000));
      const pending = fetch(url);
      const post = await fetch(url, { method: "POST", body: '42["check-room",{"roomId":"gap"}]' });
      assert.equal(post.status, 200);
      const res = await pending;
      assert.equal(res.status, 200);
      assert.match(await res.text(), /room-check-ok/);
    });

    it("a pending GET whose connection closes ends the session at once", async () => {
      server = await start({});
      const url = await open();
      const abort = new AbortController();
      const pending = fetch(url, { signal: abort.signal }).catch(() => "aborted");
      await new Promise((r) => setTimeout(r, 200)); // let the GET reach the server
      abort.abort();
      assert.equal(await pending, "aborted");
      // The server ends the session by itself: its session gauge drops to 0
      // (a probe that cannot disturb the session, unlike another GET, which
      // would be refused as an overlap while the aborted one still counted).
      const sessions = async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return Number(/^rtcio_engine_sessions (\S+)$/m.exec(text)?.[1]);
      };
      const deadline = Date.now() + 10_000;
      while ((await sessions()) !== 0) {
        assert.ok(Date.now() < deadline, "the session was not ended within 10 s of its GET's connection closing");
        await new Promise((r) => setTimeout(r, 50));
      }
      // And it is gone for the client too: the next GET is refused as an
      // unknown session.
      const res = await fetch(url);
      const body = await res.text();
      if (res.status === 200) assert.equal(body, "1", "only the close packet");
      else assert.match(body, /Session ID unknown/);
    });
  });

  for (const [mode] of modes()) {
    describe(mode, () => {
      for (const window of ["0", "2m"]) {
        it(`a client process killed with SIGKILL: its peer gets #rtcio:peer-left at once (RECOVERY_WINDOW=${window})`, async () => {
          server = await start({ RECOVERY_WINDOW: window, PRESENCE_GRACE: "60s" });
          const room = uniqueRoom("kill");
          const B = await pool.connect(server.url, mode);
          await join(B, room, "bob");
          const met = waitAny(B.socket, ["user-connected"], () => true, 20_000);
          const { child, id } = await spawnJoined(server.url, mode, room, "victim");
          assert.equal((await met)[1].id, id);
          const mark = B.log.length;
          const left = waitAny(B.socket, ["#rtcio:peer-left"], (p) => p?.id === id, DEPARTURE_MS);
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGKILL");
          await exited;
          await left;
          if (window === "0") {
            // Without recovery everything is as before: both events at once.
            await until(() => presence(B, mark).length >= 2, DEPARTURE_MS, "user-disconnected");
            assert.deepEqual(
              presence(B, mark).map(([e]) => e).sort(),
              ["#rtcio:peer-left", "user-disconnected"],
            );
          } else {
            await barrier(B);
            assert.deepEqual(presence(B, mark), [["#rtcio:peer-left", { id }]], "user-disconnected waits for the grace");
          }
        });
      }

      it("a cut transport recovers: same id, rooms, data, missed events once and in order, no presence churn", async () => {
        server = await start({ PRESENCE_GRACE: "3s" });
        const room = uniqueRoom("blip");
        const other = uniqueRoom("other");
        const A = await pool.connect(server.url, mode);
        const B = await pool.connect(server.url, mode);
        await join(A, room, "alice");
        await join(A, other, "alice");
        await join(B, room, "bob");
        await barrier(A, B);
        A.socket.emit("media-state", { roomId: room, mic: true, cam: false });
        await waitAny(B.socket, ["media-state"], (p) => p?.id === A.id);
        const oldId = A.id;
        const before = A.socket._pid;
        assert.equal(typeof before, "string", "the CONNECT answer carries a pid");
        const markB = B.log.length;
        const cutAt = Date.now();
        await cut(A, B);

        // While A is away: relayed to it, to its room, media-state in its room.
        const markA = A.log.length;
        for (let n = 1; n <= 3; n++) B.socket.emit("#rtcio:message", { target: oldId, data: { n } });
        B.socket.emit("media-state", { roomId: room, mic: false, cam: true });
        B.socket.emit("stopScreenShare", { roomId: room, extra: "x" });
        await barrier(B);
        assert.deepEqual(plainSeen(B, markB).filter(([e]) => e === "error"), [], "no peer-unreachable for an absent peer");

        const newId = await reconnect(A, mode);
        assert.equal(newId, oldId, "same socket id");
        assert.equal(A.socket.recovered, true, "socket.recovered");
        A.id = newId;
        await until(() => plainSeen(A, markA).length >= 5, 5000, "missed events").catch((e) => {
          throw new Error(`${e.message}: ${JSON.stringify(A.log.slice(markA))}`);
        });
        await barrier(A);
        assert.deepEqual(plainSeen(A, markA), [
          ["#rtcio:message", { source: B.id, target: oldId, data: { n: 1 } }],
          ["#rtcio:message", { source: B.id, target: oldId, data: { n: 2 } }],
          ["#rtcio:message", { source: B.id, target: oldId, data: { n: 3 } }],
          ["media-state", { roomId: room, mic: false, cam: true, id: B.id }],
          ["stopScreenShare", { roomId: room, extra: "x", id: B.id }],
        ]);

        // Rooms intact: it still receives room events, and relays reach it.
        const markA2 = A.log.length;
        B.socket.emit("media-state", { roomId: room, mic: true, cam: true });
        await waitAny(A.socket, ["media-state"], (p) => p?.id === B.id && p.cam === true && p.mic === true);
        A.socket.emit("#rtcio:message", { target: B.id, data: "back" });
        await waitAny(B.socket, ["#rtcio:message"], (p) => p?.data === "back" && p.source === oldId);
        assert.deepEqual(plainSeen(A, markA2), [["media-state", { roomId: room, mic: true, cam: true, id: B.id }]]);

        // Data intact: a newcomer's backfill shows A's name and cached media-state.
        const C = await pool.connect(server.url, mode);
        await join(C, room, "carol");
        const backfill = plainSeen(C);
        assert.deepEqual(
          backfill.filter(([e, p]) => p?.id === oldId),
          [
            ["user-connected", { id: oldId, name: "alice" }],
            ["media-state", { roomId: room, mic: true, cam: false, id: oldId }],
          ],
        );

        // The peer saw the hint, and no other presence churn, even past the grace.
        await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 3500 - Date.now())));
        await barrier(B);
        assert.deepEqual(
          presence(B, markB).filter(([, p]) => p?.id === oldId || p?.source === oldId),
          [["#rtcio:peer-left", { id: oldId }]],
        );
      });

      it("a client that never comes back: #rtcio:peer-left at once, user-disconnected after the grace and not before", async () => {
        const graceMs = 2000;
        const { room, A, B } = await pairInRoom({ PRESENCE_GRACE: `${graceMs}ms` }, "gone", mode);
        const markB = B.log.length;
        const left = waitAny(B.socket, ["#rtcio:peer-left"], (p) => p?.id === A.id, DEPARTURE_MS);
        A.socket.io.engine.close();
        await left;
        const leftAt = Date.now();
        await waitAny(B.socket, ["user-disconnected"], (p) => p?.id === A.id, graceMs + 10_000);
        const after = Date.now() - leftAt;
        // Timers never fire early: the lower bound holds on a loaded machine too.
        assert.ok(after >= graceMs - 100, `user-disconnected came ${after} ms after peer-left (grace ${graceMs} ms)`);
        await barrier(B);
        assert.deepEqual(presence(B, markB), [
          ["#rtcio:peer-left", { id: A.id }],
          ["user-disconnected", { id: A.id }],
        ]);
      });

      it("recovered after the grace: announced again like a newcomer", async () => {
        const { room, A, B } = await pairInRoom({ PRESENCE_GRACE: "500ms" }, "late", mode);
        const oldId = A.id;
        await cut(A, B);
        await waitAny(B.socket, ["user-disconnected"], (p) => p?.id === oldId);
        const markB = B.log.length;
        assert.equal(await reconnect(A, mode), oldId);
        assert.equal(A.socket.recovered, true);
        await until(() => presence(B, markB).length >= 2, 5000, "re-announcement");
        await barrier(A, B);
        assert.deepEqual(presence(B, markB), [
          ["user-connected", { id: oldId, name: "alice" }],
          ["#rtcio:init-offer", { source: oldId }],
        ]);
      });

      it("a goodbye is announced at once with recovery on (client disconnect)", async () => {
        const { room, A, B } = await pairInRoom({ PRESENCE_GRACE: "60s" }, "bye", mode);
        const markB = B.log.length;
        A.socket.disconnect();
        await until(() => presence(B, markB).length >= 2, DEPARTURE_MS, "departure");
        await barrier(B);
        assert.deepEqual(
          presence(B, markB).map(([e]) => e).sort(),
          ["#rtcio:peer-left", "user-disconnected"],
        );
        // And it cannot be recovered: a goodbye drops the state.
        A.socket.connect();
        await waitConnected(A.socket, mode);
        assert.notEqual(A.socket.id, A.id);
        assert.equal(A.socket.recovered, false);
      });

      it("past the window: a fresh id and the usual presence events", async () => {
        const { room, A, B } = await pairInRoom({ RECOVERY_WINDOW: "1", PRESENCE_GRACE: "1" }, "window", mode);
        const oldId = A.id;
        await cut(A, B);
        await waitAny(B.socket, ["user-disconnected"], (p) => p?.id === oldId);
        // The window (1 s) ended with the grace; give it a margin to be sure.
        await new Promise((r) => setTimeout(r, 500));
        const newId = await reconnect(A, mode);
        assert.notEqual(newId, oldId);
        assert.equal(A.socket.recovered, false);
        A.id = newId;
        const markB = B.log.length;
        await join(A, room, "alice");
        await barrier(B);
        assert.deepEqual(presence(B, markB), [
          ["user-connected", { id: newId, name: "alice" }],
          ["#rtcio:init-offer", { source: newId }],
        ]);
      });

      it("past the missed-packet limit: a fresh id", async () => {
        const { room, A, B } = await pairInRoom({ RECOVERY_MAX_PACKETS: "20", PRESENCE_GRACE: "60s" }, "limit", mode);
        const oldId = A.id;
        await cut(A, B);
        for (let n = 0; n < 25; n++) B.socket.emit("#rtcio:message", { target: oldId, data: { n } });
        await barrier(B);
        const newId = await reconnect(A, mode);
        assert.notEqual(newId, oldId);
        assert.equal(A.socket.recovered, false);
        // Once the state is dropped the absent socket is unreachable, as any gone peer.
        const late = waitAny(B.socket, ["error"]);
        B.socket.emit("#rtcio:message", { target: oldId, data: "late" });
        const [, err] = await late;
        assert.equal(err.code, "peer-unreachable");
      });

      it("a forged or unknown pid, a connected socket's pid, a malformed offset: a fresh connection", async () => {
        server = await start({ PRESENCE_GRACE: "60s" });
        const room = uniqueRoom("forged");
        const A = await pool.connect(server.url, mode);
        const B = await pool.connect(server.url, mode);
        const D = await pool.connect(server.url, mode);
        await join(A, room, "alice");
        await join(B, room, "bob");
        await join(D, room, "dave");

        const attempt = async (auth) => {
          const socket = io(server.url, { ...MODES[mode], forceNew: true, reconnection: false, auth });
          const log = record(socket);
          await waitConnected(socket, mode);
          const client = { socket, log, id: socket.id };
          return client;
        };
        const freshly = async (auth, label) => {
          const C = await attempt(auth);
          try {
            assert.equal(C.socket.recovered, false, label);
            assert.ok(![A.id, B.id].includes(C.socket.id), `${label}: someone else's id`);
            // Not in anyone's room: a room event does not reach it.
            B.socket.emit("media-state", { roomId: room, mic: true, cam: true });
            await waitAny(D.socket, ["media-state"], (p) => p?.id === B.id);
            await barrier(C);
            assert.deepEqual(plainSeen(C), [], `${label}: nothing of the room`);
          } finally {
            C.socket.disconnect();
          }
        };

        await freshly({ pid: "AAAAAAAAAAAAAAAAAAAA", offset: "1" }, "unknown pid");
        await freshly({ pid: "not a pid", offset: "1" }, "malformed pid");
        await freshly({ pid: B.socket._pid, offset: "1" }, "pid of a connected socket");

        // A's real pid with a malformed offset, while A is away: fresh, and
        // A's own state stays (it can still recover).
        const pid = A.socket._pid;
        const oldId = A.id;
        await cut(A, B);
        await freshly({ pid, offset: "1x" }, "malformed offset");
        await freshly({ pid, offset: 3 }, "offset not a string");
        await freshly({ pid, offset: "99999999" }, "offset never sent");
        assert.equal(await reconnect(A, mode), oldId);
        assert.equal(A.socket.recovered, true);
      });

      it("with RECOVERY_WINDOW=0 there is no pid and no offset", async () => {
        server = await start({ RECOVERY_WINDOW: "0" });
        const A = await pool.connect(server.url, mode);
        assert.equal(A.socket._pid, undefined);
        await join(A, uniqueRoom("off"), "alice");
        const joinOk = A.log.find(([e]) => e === "join-ok");
        assert.equal(joinOk.length, 2, `no offset argument: ${JSON.stringify(joinOk)}`);
      });
    });
  }
});
