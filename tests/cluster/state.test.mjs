// Shared room state across nodes (issue 12): three rtcio-server processes on
// one real Redis (started here on a free loopback port), driven with the real
// socket.io-client. Room caps exact under a race spread over the nodes,
// passwords set on one node and checked on the others, and the join snapshot
// (names, media-state, join order) showing peers connected to other nodes;
// #rtcio:init-offer exactly once per pair when joins race on different nodes.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { MODES, until } from "../lib/harness.mjs";
import { startRedis } from "../lib/redis.mjs";
import { assertError, barrier, checkRoom, clientPool, eventually, join, joinAtOnce, seen, startSignaling, tryJoin, uniqueRoom, waitAny } from "../server/server.mjs";

const MODE_CYCLE = ["websocket", "polling", "upgrade"];
const NODES = 3;
const ADMIN_TOKEN = "admin-token-for-the-state-suite-0123";

/** An admin socket on `url` (list-rooms shows the rooms as that node's replica has them). */
async function admin(url) {
  const socket = io(`${url}/admin`, { ...MODES.websocket, forceNew: true, reconnection: false, auth: { token: ADMIN_TOKEN } });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

/** Resolves once every node's replica has each of `clients` in its own room `${prefix}-${i}`. */
async function replicasKnow(urls, clients, prefix) {
  const admins = await Promise.all(urls.map(admin));
  try {
    await eventually(async () => {
      for (const a of admins) {
        const { rooms } = await a.timeout(5000).emitWithAck("list-rooms");
        for (const [i, c] of clients.entries()) {
          const room = rooms.find((r) => r.roomId === `${prefix}-${i}`);
          assert.deepEqual(room?.members.map((m) => m.id), [c.id], `a node does not know ${prefix}-${i} yet`);
        }
      }
    }, 10_000);
  } finally {
    for (const a of admins) a.disconnect();
  }
}

/** Starts `n` nodes on `redisUrl` (each a plain rtcio-server with REDIS_URL). */
async function startNodes(n, redisUrl, env = {}) {
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) nodes.push(await startSignaling([], { env: { REDIS_URL: redisUrl, ...env } }));
  } catch (e) {
    await Promise.all(nodes.map((h) => h.stop("SIGKILL")));
    throw e;
  }
  return nodes;
}

/** `user-connected` payloads a client saw, in order. */
const userConnected = (c) => seen(c).filter(([e]) => e === "user-connected").map(([, p]) => p);

describe("cluster: shared room state", () => {
  let redis;
  let nodes = [];
  const pool = clientPool();
  const url = (i) => nodes[i % nodes.length].url;

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(NODES, redis.url, { ADMIN_TOKEN });
  });
  after(async () => {
    await Promise.all(nodes.map((h) => h.stop("SIGKILL")));
    await redis?.destroy();
  });
  afterEach(() => pool.closeAll());

  it("30 clients spread over 3 nodes race for a cap-8 room: exactly 8 join-ok, 22 room-full", async () => {
    const clients = await Promise.all(
      Array.from({ length: 30 }, (_, i) => pool.connect(url(i), MODE_CYCLE[i % MODE_CYCLE.length])),
    );
    const R = uniqueRoom("cap");
    const { got, inside, outside } = await joinAtOnce(clients, R);
    assert.equal(inside.length, 8);
    assert.equal(outside.length, 22);
    for (const [event, payload] of got) if (event === "join-error") assert.deepEqual(payload, { reason: "room-full", roomId: R });
    await barrier(...outside);
    for (const c of outside) assertError(seen(c).find(([e]) => e === "error"), "room-full", R);
    // A leave on one node frees exactly one place for a joiner on another.
    const leaver = inside[0];
    const leaverNode = clients.indexOf(leaver) % NODES;
    leaver.socket.emit("leave-room", { roomId: R });
    await barrier(leaver);
    const late = outside.find((c) => clients.indexOf(c) % NODES !== leaverNode);
    await join(late, R, "late");
    const last = outside.find((c) => c !== late);
    assert.deepEqual(await tryJoin(last, { roomId: R }), ["join-error", { reason: "room-full", roomId: R }]);
  });

  it("a password set on node 1 is required and checked on nodes 2 and 3, and dies with the room", async () => {
    const R = uniqueRoom("pw");
    const A = await pool.connect(url(0), "websocket");
    const B = await pool.connect(url(1), "polling");
    const C = await pool.connect(url(2), "upgrade");
    await join(A, R, "alice", "s3cret");
    assert.deepEqual(await checkRoom(B, { roomId: R }), ["room-check-ok", { roomId: R, passwordRequired: true }]);
    assert.deepEqual(await checkRoom(C, { roomId: R, password: "nope" }), ["join-error", { reason: "wrong-password", roomId: R }]);
    assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob" }), ["join-error", { reason: "password-required", roomId: R }]);
    assert.deepEqual(await tryJoin(B, { roomId: R, name: "bob", password: "nope" }), ["join-error", { reason: "wrong-password", roomId: R }]);
    await join(B, R, "bob", "s3cret");
    assert.deepEqual(userConnected(B), [{ id: A.id, name: "alice" }]);
    // Both leave (one per node): the room is empty, its password gone.
    A.socket.emit("leave-room", { roomId: R });
    B.socket.emit("leave-room", { roomId: R });
    await barrier(A, B);
    assert.deepEqual(await checkRoom(C, { roomId: R }), ["room-check-ok", { roomId: R, passwordRequired: false }]);
    await join(C, R, "carol");
    // A disconnect empties a room as a leave does.
    const R2 = uniqueRoom("pw");
    await join(A, R2, "alice", "pw2");
    A.socket.disconnect();
    await eventually(async () => {
      const got = await checkRoom(C, { roomId: R2 });
      assert.deepEqual(got, ["room-check-ok", { roomId: R2, passwordRequired: false }]);
    });
  });

  it("names, join order and media-state of peers on other nodes are in a newcomer's snapshot", async () => {
    const R = uniqueRoom("snap");
    const A = await pool.connect(url(0), "websocket");
    const B = await pool.connect(url(1), "websocket");
    const C = await pool.connect(url(2), "polling");
    await join(A, R, "alice");
    A.socket.emit("media-state", { roomId: R, mic: true, cam: false });
    await barrier(A); // A's node wrote the media-state before answering
    await join(B, R, "bob");
    assert.deepEqual(
      seen(B).filter(([e]) => e === "user-connected" || e === "media-state" || e === "join-ok"),
      [
        ["user-connected", { id: A.id, name: "alice" }],
        ["media-state", { roomId: R, mic: true, cam: false, id: A.id }],
        ["join-ok", { roomId: R }],
      ],
    );
    // A new name given at a join in another room is the socket's name everywhere.
    await join(B, uniqueRoom("other"), "Bobby");
    await barrier(B);
    await join(C, R, "carol");
    assert.deepEqual(userConnected(C), [
      { id: A.id, name: "alice" },
      { id: B.id, name: "Bobby" },
    ]);
    const mediaC = seen(C).filter(([e]) => e === "media-state").map(([, p]) => p);
    assert.deepEqual(mediaC, [{ roomId: R, mic: true, cam: false, id: A.id }]);
  });

  it("the id of a socket on another node is not a joinable room", async () => {
    const A = await pool.connect(url(0), "websocket");
    const B = await pool.connect(url(1), "websocket");
    const R = uniqueRoom("seen");
    await join(A, R, "a");
    await join(B, R, "b");
    // A relay from B reaching A proves B's node knows A (and its room).
    const got = waitAny(A.socket, ["#rtcio:message"], (m) => m?.data === "hello", 5000);
    B.socket.emit("#rtcio:message", { target: A.id, data: "hello" });
    await got;
    assert.deepEqual(await tryJoin(B, { roomId: A.id, name: "b" }), ["join-error", { reason: "invalid-room", roomId: A.id }]);
    assert.deepEqual(await checkRoom(B, { roomId: A.id }), ["join-error", { reason: "invalid-room", roomId: A.id }]);
  });

  it("a newcomer's relay sent the moment join-ok arrives reaches a member on another node", async () => {
    // The member's node announces its join after the room store has it, so
    // the newcomer's node can get the store's snapshot first: it takes the
    // snapshot's members in, instead of refusing the relay as unreachable.
    for (let round = 0; round < 40; round++) {
      const A = await pool.connect(url(0), "websocket");
      const B = await pool.connect(url(1), "websocket");
      const R = uniqueRoom("newcomer");
      await join(A, R, "a");
      const outcome = Promise.race([
        waitAny(A.socket, ["#rtcio:message"], (m) => m?.data === "hello", 5000).then(() => "delivered"),
        waitAny(B.socket, ["error"], () => true, 5000).then((e) => `refused: ${JSON.stringify(e)}`),
      ]);
      B.socket.once("join-ok", () => B.socket.emit("#rtcio:message", { target: A.id, data: "hello" }));
      B.socket.emit("join-room", { roomId: R, name: "b" });
      assert.equal(await outcome, "delivered", `round ${round}`);
      pool.closeAll();
    }
  });

  it("joins racing on different nodes: each pair meets once and exactly one side is asked to offer", async () => {
    for (let round = 0; round < 3; round++) {
      const R = uniqueRoom("glare");
      const clients = await Promise.all([0, 1, 2, 3, 4].map((i) => pool.connect(url(i), "websocket")));
      // The race is about the room store: every node first knows every
      // socket (the cluster's membership replica), so no announcement waits
      // on replication.
      for (const [i, c] of clients.entries()) await join(c, `${R}-warm-${i}`, `p${i}`);
      await replicasKnow(nodes.map((n) => n.url), clients, `${R}-warm`);
      const replies = clients.map((c) => waitAny(c.socket, ["join-ok"], (p) => p?.roomId === R, 10_000));
      for (const [i, c] of clients.entries()) c.socket.emit("join-room", { roomId: R, name: `p${i}` });
      await Promise.all(replies);
      const others = clients.length - 1;
      await until(() => clients.every((c) => userConnected(c).length >= others), 10_000, "everyone met everyone");
      await barrier(...clients);
      for (const c of clients) {
        const met = userConnected(c).map((p) => p.id).sort();
        assert.deepEqual(met, clients.filter((o) => o !== c).map((o) => o.id).sort(), "each peer met exactly once");
      }
      const offers = (c) => seen(c).filter(([e]) => e === "#rtcio:init-offer").map(([, p]) => p.source);
      for (let i = 0; i < clients.length; i++) {
        for (let j = i + 1; j < clients.length; j++) {
          const [a, b] = [clients[i], clients[j]];
          const asked = offers(a).filter((s) => s === b.id).length + offers(b).filter((s) => s === a.id).length;
          assert.equal(asked, 1, `pair ${i}-${j}: one init-offer`);
        }
      }
      pool.closeAll();
    }
  });
});

describe("cluster: Redis restarted empty", () => {
  it("each node writes its members back: a newcomer's snapshot has them, with names and media-state", async () => {
    const redis = await startRedis();
    const nodes = await startNodes(2, redis.url);
    const pool = clientPool();
    try {
      const R = uniqueRoom("resync");
      const A = await pool.connect(nodes[0].url, "websocket");
      const B = await pool.connect(nodes[1].url, "polling");
      await join(A, R, "alice");
      A.socket.emit("media-state", { roomId: R, mic: false, cam: true });
      await barrier(A);
      await join(B, R, "bob");
      await redis.restart();
      // Joins may be refused `unavailable` (or see a partial room) until both
      // nodes have reconnected and written their members back: fresh clients
      // until one meets both.
      await eventually(async () => {
        const C = await pool.connect(nodes[1].url, "websocket");
        const got = await tryJoin(C, { roomId: R, name: "carol" });
        assert.deepEqual(got, ["join-ok", { roomId: R }]);
        const met = userConnected(C);
        assert.ok(met.some((p) => p.id === A.id && p.name === "alice"), JSON.stringify(met));
        assert.ok(met.some((p) => p.id === B.id && p.name === "bob"), JSON.stringify(met));
        const media = seen(C).filter(([e]) => e === "media-state").map(([, p]) => p);
        assert.deepEqual(media, [{ roomId: R, mic: false, cam: true, id: A.id }]);
      }, 15_000);
    } finally {
      pool.closeAll();
      await Promise.all(nodes.map((h) => h.stop("SIGKILL")));
      await redis.destroy();
    }
  });
});

describe("cluster: a node dies", () => {
  it("its members' places under the cap are freed, and newcomers no longer meet them", async () => {
    const redis = await startRedis();
    const nodes = await startNodes(2, redis.url, { MAX_PEERS: "2" });
    const pool = clientPool();
    try {
      const R = uniqueRoom("dead");
      const A = await pool.connect(nodes[0].url, "websocket");
      const B = await pool.connect(nodes[1].url, "websocket");
      await join(A, R, "alice");
      await join(B, R, "bob");
      const C = await pool.connect(nodes[0].url, "polling");
      assert.deepEqual(await tryJoin(C, { roomId: R, name: "carol" }), ["join-error", { reason: "room-full", roomId: R }]);
      await nodes[1].stop("SIGKILL");
      // Dead within 10 s (liveness), then one survivor cleans the room hash.
      await eventually(async () => {
        assert.deepEqual(await tryJoin(C, { roomId: R, name: "carol" }), ["join-ok", { roomId: R }]);
      }, 20_000);
      assert.deepEqual(userConnected(C), [{ id: A.id, name: "alice" }]);
    } finally {
      pool.closeAll();
      await Promise.all(nodes.map((h) => h.stop("SIGKILL")));
      await redis.destroy();
    }
  });
});

describe("cluster: Redis unreachable", () => {
  it("a join is refused `unavailable` with { code, message, roomId }, promptly", async () => {
    const redis = await startRedis();
    const [node] = await startNodes(1, redis.url);
    const pool = clientPool();
    try {
      const A = await pool.connect(node.url, "websocket");
      await join(A, uniqueRoom("up"), "a");
      await redis.stop();
      const R = uniqueRoom("down");
      const started = Date.now();
      const got = await waitAnyJoin(A, R);
      assert.deepEqual(got, ["join-error", { reason: "unavailable", roomId: R }]);
      await barrierless(A);
      assertError(seen(A).findLast(([e]) => e === "error"), "unavailable", R);
      assert.ok(Date.now() - started < 8000, "answered within the timeout, not hung");
    } finally {
      pool.closeAll();
      await node.stop("SIGKILL");
      await redis.destroy();
    }
  });
});

/** Emits a join and resolves with its join-ok / join-error. */
function waitAnyJoin(client, roomId) {
  const reply = waitAny(client.socket, ["join-ok", "join-error"], (p) => p?.roomId === roomId, 10_000);
  client.socket.emit("join-room", { roomId, name: "x" });
  return reply;
}

/** Lets the `error` that follows a join-error arrive (no barrier: check-room needs Redis too). */
async function barrierless(client) {
  await until(() => seen(client).some(([e]) => e === "error"), 5000, "the error event");
}
