// The runnable Rust recipes under examples/ (built by
// `cargo build --workspace --all-targets` into target/debug/examples/<name>,
// or $RTCIO_EXAMPLES_DIR/<name>), each checked for exactly what its source
// implements. An example listens on 0.0.0.0:$PORT and prints nothing reliable
// about it, so the test picks a free port and polls GET /health.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { ask, until } from "../lib/harness.mjs";
import { expectMinted } from "../ice/ice.mjs";
import { startExample } from "./example-server.mjs";
import { barrier, clientPool, expectDeparture, join, threeClientScenario, uniqueRoom, waitAny } from "../server/server.mjs";

const MSG = "#rtcio:message";

/**
 * Barrier for the examples without `check-room`: each client in turn (senders
 * first) relays an envelope to a target that cannot exist and waits for the
 * relay's `error { code: "peer-unreachable" }`. The server handles a socket's
 * events in order and delivers its outgoing events in order, so once this
 * resolves everything caused earlier has reached these clients. The replies'
 * positions are remembered so `observed()` leaves them out.
 */
let relayBarrierSeq = 0;
async function relayBarrier(...clients) {
  for (const client of clients) {
    const reply = waitAny(client.socket, ["error"], (p) => p?.code === "peer-unreachable");
    client.socket.emit(MSG, { target: `no-such-socket-${++relayBarrierSeq}`, data: {} });
    await reply;
    client.barrierReplies ??= new Set();
    client.barrierReplies.add(client.log.length - 1);
  }
}

/** The client's events from index `from`, without relay-barrier replies. */
function observed(client, from = 0) {
  return client.log
    .map((entry, i) => [entry, i])
    .filter(([, i]) => i >= from && !client.barrierReplies?.has(i))
    .map(([entry]) => entry);
}

/** Asserts `entry` is `["error", { code, message }]` with a non-empty message. */
function assertRelayError(entry, code) {
  assert.ok(entry, `expected an error ${code}, got nothing`);
  assert.equal(entry[0], "error", `expected error ${code}, got ${JSON.stringify(entry)}`);
  assert.equal(entry[1]?.code, code, JSON.stringify(entry));
  assert.equal(typeof entry[1].message, "string");
  assert.ok(entry[1].message.length > 0, "error.message must not be empty");
}

const byId = (a, b) => (String(a[1]?.id) < String(b[1]?.id) ? -1 : 1);

// ---------------------------------------------------------------------------
// join_room: backfill (user-connected per existing peer, with its name) to the
// newcomer, user-connected + #rtcio:init-offer to the existing peers. The
// recipe sends no join-ok and no refusal (an invalid request is ignored).
// ---------------------------------------------------------------------------
describe("example join_room", () => {
  let server;
  before(async () => {
    server = await startExample("join_room");
  });
  after(() => server?.stop());

  for (const mode of ["websocket", "polling"]) {
    describe(`join_room (${mode})`, () => {
      const pool = clientPool();
      afterEach(() => pool.closeAll());
      const peer = () => pool.connect(server.url, mode);

      it("three clients: the late joiner is backfilled, the others are told and offer", async () => {
        const R = uniqueRoom();
        const A = await peer();
        const B = await peer();
        const C = await peer();

        A.socket.emit("join-room", { roomId: R, name: "alice" });
        await relayBarrier(A);
        B.socket.emit("join-room", { roomId: R, name: "bob" });
        await relayBarrier(B, A);
        C.socket.emit("join-room", { roomId: R, name: "carol" });
        await relayBarrier(C, A, B);

        // The recipe does not order the backfill: compare as a set.
        assert.deepEqual(
          [...observed(C)].sort(byId),
          [
            ["user-connected", { id: A.id, name: "alice" }],
            ["user-connected", { id: B.id, name: "bob" }],
          ].sort(byId),
          "C is backfilled with A and B",
        );
        assert.deepEqual(observed(A), [
          ["user-connected", { id: B.id, name: "bob" }],
          ["#rtcio:init-offer", { source: B.id }],
          ["user-connected", { id: C.id, name: "carol" }],
          ["#rtcio:init-offer", { source: C.id }],
        ]);
        assert.deepEqual(observed(B), [
          ["user-connected", { id: A.id, name: "alice" }],
          ["user-connected", { id: C.id, name: "carol" }],
          ["#rtcio:init-offer", { source: C.id }],
        ]);
        for (const X of [A, B, C]) {
          for (const [event, p] of observed(X)) {
            if (event === "user-connected") assert.notEqual(p.id, X.id, "self user-connected");
            if (event === "#rtcio:init-offer") assert.notEqual(p.source, X.id, "self init-offer");
          }
        }
      });

      it("a missing name is shown as an empty string", async () => {
        const R = uniqueRoom();
        const A = await peer();
        const B = await peer();
        A.socket.emit("join-room", { roomId: R });
        await relayBarrier(A);
        B.socket.emit("join-room", { roomId: R, name: "bob" });
        await relayBarrier(B, A);
        assert.deepEqual(observed(B), [["user-connected", { id: A.id, name: "" }]]);
        assert.deepEqual(observed(A), [
          ["user-connected", { id: B.id, name: "bob" }],
          ["#rtcio:init-offer", { source: B.id }],
        ]);
      });

      it("a request without a string roomId is ignored: no reply, no room joined", async () => {
        const R = uniqueRoom();
        const A = await peer();
        const B = await peer();
        A.socket.emit("join-room", { roomId: R, name: "alice" });
        await relayBarrier(A);
        for (const payload of [{ name: "bob" }, { roomId: 5, name: "bob" }, R, null]) {
          B.socket.emit("join-room", payload);
        }
        B.socket.emit("join-room");
        await relayBarrier(B, A);
        assert.deepEqual(observed(B), [], "B got no reply");
        assert.deepEqual(observed(A), [], "A heard of no join");
      });
    });
  }
});

// ---------------------------------------------------------------------------
// leave_room: leave-room and the disconnecting hook announce user-disconnected
// to a room's other members. The recipe has no join handler, so no socket can
// ever be in a room besides its own-id room: the announcements cannot be
// observed. What can be checked: the server runs, and a leave-room for a room
// the socket is not in (or a malformed one) is silent and harmless.
// ---------------------------------------------------------------------------
describe("example leave_room (websocket)", () => {
  let server;
  before(async () => {
    server = await startExample("leave_room");
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());
  const peer = () => pool.connect(server.url, "websocket");

  it("leave-room: the rest of the room gets user-disconnected, the leaver and outsiders nothing", async () => {
    const [A, B, C, D] = [await peer(), await peer(), await peer(), await peer()];
    const R = uniqueRoom("leave");
    for (const x of [A, B, C]) x.socket.emit("join-room", { roomId: R });
    await relayBarrier(A, B, C, D);
    A.socket.emit("leave-room", { roomId: R });
    await until(() => observed(B).length >= 1 && observed(C).length >= 1, 5000, "user-disconnected");
    await relayBarrier(A, B, C, D);
    assert.deepEqual(observed(B), [["user-disconnected", { id: A.id }]]);
    assert.deepEqual(observed(C), [["user-disconnected", { id: A.id }]]);
    assert.deepEqual(observed(A), [], "the leaver gets nothing");
    assert.deepEqual(observed(D), [], "an outsider gets nothing");
  });

  it("disconnect: the rooms get user-disconnected while they are still known", async () => {
    const [A, B, C] = [await peer(), await peer(), await peer()];
    const R = uniqueRoom("gone");
    for (const x of [A, B]) x.socket.emit("join-room", { roomId: R });
    await relayBarrier(A, B, C);
    A.socket.disconnect();
    await until(() => observed(B).length >= 2, 5000, "user-disconnected and peer-left");
    await relayBarrier(B, C);
    // The recipe's user-disconnected, plus the default listeners' peer-left.
    const names = observed(B).map(([name]) => name).sort();
    assert.deepEqual(names, ["#rtcio:peer-left", "user-disconnected"]);
    for (const [, payload] of observed(B)) assert.deepEqual(payload, { id: A.id });
    assert.deepEqual(observed(C), []);
  });

  it("leave-room for a room the socket is not in: nothing to anyone, the connection stays up", async () => {
    const A = await peer();
    const B = await peer();
    for (const payload of [{ roomId: uniqueRoom("never-joined") }, { roomId: B.id }, { roomId: A.id }, {}, "x", null]) {
      A.socket.emit("leave-room", payload);
    }
    A.socket.emit("leave-room");
    await relayBarrier(A, B);
    assert.ok(A.socket.connected, "the connection stays up");
    assert.deepEqual(observed(A), []);
    assert.deepEqual(observed(B), []);
  });
});

// ---------------------------------------------------------------------------
// media_state_cache: media-state is relayed as sent (no id added, no
// validation) to the other members of `roomId`, and cached per socket (a bare
// join-room puts sockets in rooms). Own-id rooms work as in socket.io: a
// media-state naming B's id reaches B. The cache is only written and cleared,
// never read: not observable.
// ---------------------------------------------------------------------------
describe("example media_state_cache (websocket)", () => {
  let server;
  before(async () => {
    server = await startExample("media_state_cache");
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());
  const peer = () => pool.connect(server.url, "websocket");

  it("media-state reaches the other members of a joined room, payload unchanged", async () => {
    const [A, B, C] = [await peer(), await peer(), await peer()];
    const R = uniqueRoom("media");
    for (const x of [A, B]) x.socket.emit("join-room", { roomId: R });
    await relayBarrier(A, B, C);
    const state = { roomId: R, mic: false, cam: true };
    A.socket.emit("media-state", state);
    await until(() => observed(B).length >= 1, 5000, "relayed media-state");
    await relayBarrier(A, B, C);
    assert.deepEqual(observed(B), [["media-state", state]]);
    assert.deepEqual(observed(A), [], "the sender gets nothing back");
    assert.deepEqual(observed(C), [], "a socket outside the room gets nothing");
  });

  it("media-state naming a socket's own-id room reaches that socket, payload unchanged", async () => {
    const A = await peer();
    const B = await peer();
    const C = await peer();
    const states = [
      { roomId: B.id, mic: true, cam: false },
      { roomId: B.id, mic: false, cam: true },
    ];
    for (const s of states) A.socket.emit("media-state", s);
    await until(() => observed(B).length >= states.length, 5000, "relayed media-state");
    await relayBarrier(A, B, C);
    assert.deepEqual(observed(B), states.map((s) => ["media-state", s]));
    assert.deepEqual(observed(A), [], "the sender gets nothing back");
    assert.deepEqual(observed(C), [], "a socket outside the room gets nothing");
  });

  it("media-state for a room without other members, or without a string roomId: nothing to anyone", async () => {
    const A = await peer();
    const B = await peer();
    A.socket.emit("media-state", { roomId: uniqueRoom("empty"), mic: true, cam: true });
    A.socket.emit("media-state", { roomId: A.id, mic: true, cam: true }); // its own room: only itself
    A.socket.emit("media-state", { mic: true, cam: true });
    A.socket.emit("media-state", { roomId: 5, mic: true, cam: true });
    A.socket.emit("media-state");
    await relayBarrier(A, B);
    assert.ok(A.socket.connected, "the connection stays up");
    assert.deepEqual(observed(A), []);
    assert.deepEqual(observed(B), []);
  });
});

// ---------------------------------------------------------------------------
// namespaces: `/calls` is a signaling namespace (the #rtcio:message relay,
// room scope), `/admin` a plain one (no relay). Neither has a join handler,
// so two /calls sockets never share a room and the relay refuses them.
// ---------------------------------------------------------------------------
describe("example namespaces (websocket)", () => {
  let server;
  before(async () => {
    server = await startExample("namespaces");
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());
  const peer = (nsp) => pool.connect(`${server.url}${nsp}`, "websocket");

  it("/calls and /admin accept connections", async () => {
    const calls = await peer("/calls");
    const admin = await peer("/admin");
    assert.ok(calls.socket.connected && calls.id);
    assert.ok(admin.socket.connected && admin.id);
  });

  it("/calls relays: an unknown target, or a socket sharing no room, answers peer-unreachable", async () => {
    const A = await peer("/calls");
    const B = await peer("/calls");
    A.socket.emit(MSG, { source: A.id, target: "no-such-socket", data: {} });
    A.socket.emit(MSG, { source: A.id, target: B.id, data: { candidate: { candidate: "", sdpMid: "0" } } });
    A.socket.emit(MSG, { source: A.id, data: {} }); // no target
    await until(() => A.log.length >= 3, 5000, "three replies");
    assertRelayError(A.log[0], "peer-unreachable");
    assertRelayError(A.log[1], "peer-unreachable");
    assertRelayError(A.log[2], "bad-request");
    await relayBarrier(B);
    assert.deepEqual(observed(B), [], "B gets nothing");
    assert.equal(A.log.length, 3, "one reply per envelope");
  });

  it("/admin has no relay: an envelope gets no answer and reaches nobody", async () => {
    const A = await peer("/admin");
    const B = await peer("/admin");
    A.socket.emit(MSG, { source: A.id, target: "no-such-socket", data: {} });
    A.socket.emit(MSG, { source: A.id, target: B.id, data: {} });
    // No barrier exists on /admin: a bounded wait, for this negative only.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(A.socket.connected && B.socket.connected, "both stay connected");
    assert.deepEqual(A.log, []);
    assert.deepEqual(B.log, []);
  });
});

// ---------------------------------------------------------------------------
// rooms_building_block: the whole rooms & presence block (as in the
// rtcio-server binary), so the contract's helpers apply.
// ---------------------------------------------------------------------------
describe("example rooms_building_block", () => {
  let server;
  before(async () => {
    server = await startExample("rooms_building_block");
  });
  after(() => server?.stop());

  for (const mode of ["websocket", "polling"]) {
    describe(`rooms_building_block (${mode})`, () => {
      const pool = clientPool();
      afterEach(() => pool.closeAll());
      const peer = () => pool.connect(server.url, mode);

      it("three clients: exact events, in order, for everyone", async () => {
        await threeClientScenario(peer);
      });

      it("a disconnect: the room gets user-disconnected and peer-left, once", async () => {
        const R = uniqueRoom();
        const A = await peer();
        const B = await peer();
        await join(A, R, "alice");
        await join(B, R, "bob");
        await barrier(A);
        await expectDeparture(B.id, [A], () => B.socket.disconnect());
      });
    });
  }
});

// ---------------------------------------------------------------------------
// wire_ice: the seed's wireIce. ask-ice answers the seed's four ICE servers
// for TURN_HOST, username = now + 600 s, credential = HMAC-SHA1(TURN_SECRET).
// ---------------------------------------------------------------------------
describe("example wire_ice", () => {
  const env = { TURN_SECRET: "example-turn-secret", TURN_HOST: "turn.example.test" };
  let server;
  before(async () => {
    server = await startExample("wire_ice", env);
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const mode of ["websocket", "polling"]) {
    it(`ask-ice answers { iceServers } with credentials minted from TURN_SECRET (${mode})`, async () => {
      const { socket } = await pool.connect(server.url, mode);
      await expectMinted(() => ask(socket, "ask-ice"), { hosts: [env.TURN_HOST], secret: env.TURN_SECRET });
    });
  }
});

// ---------------------------------------------------------------------------
// chat_history: the seed's "Persisting chat history" recipe. History survives
// a restart of the server on the same database.
// ---------------------------------------------------------------------------
describe("example chat_history (websocket)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "rtcio-example-chat-"));
  const env = { DATABASE_URL: `sqlite://${path.join(dir, "chat.db")}` };
  const pool = clientPool();
  after(() => {
    pool.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores before fanning out, and a later joiner gets the history, even after a restart", async () => {
    const R = uniqueRoom("recipe");
    const history = (client) => new Promise((resolve) => client.socket.once("chat-history", (messages, roomId) => resolve([messages, roomId])));
    let server = await startExample("chat_history", env);
    try {
      const A = await pool.connect(server.url, "websocket");
      const B = await pool.connect(server.url, "websocket");
      const firstHistory = history(A);
      await join(A, R, "alice");
      assert.deepEqual(await firstHistory, [[], R]);
      await join(B, R, "bob");
      const live = waitAny(B.socket, ["chat-message"]);
      const ack = await A.socket.timeout(5000).emitWithAck("chat-message", { roomId: R, text: "hello" });
      assert.equal(ack.ok, true);
      const [, message] = await live;
      assert.deepEqual({ ...message, at: 0 }, { id: ack.id, roomId: R, from: A.id, name: "alice", text: "hello", at: 0 });
    } finally {
      pool.closeAll();
      await server.stop();
    }
    server = await startExample("chat_history", env);
    try {
      const C = await pool.connect(server.url, "websocket");
      const later = history(C);
      await join(C, R, "carol");
      const [messages, roomId] = await later;
      assert.equal(roomId, R);
      assert.deepEqual(messages.map((m) => [m.name, m.text]), [["alice", "hello"]]);
    } finally {
      await server.stop();
    }
  });
});
