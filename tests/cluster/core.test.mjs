// The cluster core (issue 12): three rtcio-server nodes on one throwaway
// Redis, driven by the real socket.io-client@4 (websocket, polling and
// upgrade spread over the nodes). Membership is replicated on every node,
// relays go to the target's node only, a dead node's sockets are announced
// gone, and a Redis outage stops cross-node traffic only until it is back.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, afterEach, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { MODES, until } from "../lib/harness.mjs";
import { startCluster } from "../lib/cluster.mjs";
import { startRedis } from "../lib/redis.mjs";
import { now, sign } from "../server/tokens.mjs";
import {
  assertError,
  barrier,
  clientPool,
  eventually,
  floodBesideCalm,
  join,
  seen,
  threeClientScenario,
  uniqueRoom,
  waitAny,
} from "../server/server.mjs";

const ADMIN_TOKEN = "admin-token-for-cluster-tests-0123";
const MODE_OF = ["websocket", "polling", "upgrade"];

/** An admin socket on `url`. */
async function admin(url) {
  const socket = io(`${url}/admin`, { ...MODES.websocket, forceNew: true, reconnection: false, auth: { token: ADMIN_TOKEN } });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

/** Runs redis-cli against the test's Redis (to look at the keys the nodes leave). */
function redisCli(redis, ...args) {
  return execFileSync("redis-cli", ["-p", String(redis.port), "--raw", ...args], { encoding: "utf8" }).trim();
}

const ask = (socket, event, ...args) => socket.timeout(5000).emitWithAck(event, ...args);

/** Resolves once every admin sees `room` with exactly `ids` (in any order). */
async function converged(admins, room, ids) {
  const want = [...ids].sort();
  await eventually(async () => {
    for (const a of admins) {
      const reply = await ask(a, "list-rooms");
      const found = reply.rooms.find((r) => r.roomId === room);
      const got = found ? found.members.map((m) => m.id).sort() : [];
      assert.deepEqual(got, want, `${room} as one node sees it`);
    }
  }, 5000);
}

/** The node's `rtcio_cluster_*` samples from /metrics, by name. */
async function clusterMetrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split("\n")) {
    const m = /^(rtcio_cluster_[a-z_]+) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

async function ready(url) {
  const res = await fetch(`${url}/ready`);
  return res.status;
}

/** Sends one envelope from `from` to `to` and resolves when it arrived (rejects after `ms`). */
async function relayArrives(from, to, data, ms) {
  const got = waitAny(to.socket, ["#rtcio:message"], (m) => m?.data === data, ms);
  from.socket.emit("#rtcio:message", { target: to.id, data });
  return got;
}

describe("cluster core: three nodes on one Redis", () => {
  let redis;
  let cluster;
  let admins;
  const pool = clientPool();
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(3, { redisUrl: redis.url, env: { ADMIN_TOKEN } });
    await Promise.all(cluster.urls.map((u) => until(() => true).then(() => eventually(async () => assert.equal(await ready(u), 200)))));
    admins = await Promise.all(cluster.urls.map(admin));
  });
  afterEach(() => pool.closeAll());
  after(async () => {
    for (const a of admins ?? []) a.disconnect();
    await cluster?.stop();
    await redis?.destroy();
  });

  /** Client i on node i (mode by node), joined to `room` in turn, replicas converged after each join. */
  async function spread(room, names) {
    const clients = [];
    for (let i = 0; i < names.length; i++) {
      const c = await pool.connect(cluster.urls[i % 3], MODE_OF[i % 3]);
      clients.push(c);
    }
    for (let i = 0; i < names.length; i++) {
      await join(clients[i], room, names[i]);
      await converged(admins, room, clients.slice(0, i + 1).map((c) => c.id));
    }
    return clients;
  }

  it("A, B, C on nodes 1, 2, 3: the protocol's three-client sequence across nodes", async () => {
    let i = 0;
    const peer = () => {
      const node = i++ % 3;
      return pool.connect(cluster.urls[node], MODE_OF[node]);
    };
    // The newcomer's announcements cross Redis: wait until every earlier
    // member has its init-offer, then a round trip per client.
    const settle = async (joiner, ...others) => {
      await until(() => others.every((o) => o.log.some(([e, p]) => e === "#rtcio:init-offer" && p?.source === joiner.id)));
      await barrier(joiner, ...others);
    };
    await threeClientScenario(peer, { settle });
  });

  // The join snapshot's names come from the shared room store (Redis).
  it("the newcomer's backfill lists the peers of every node with their names", async () => {
    const R = uniqueRoom("backfill");
    const [, , C] = await spread(R, ["alice", "bob", "carol"]);
    await barrier(C);
    const names = seen(C).filter(([e]) => e === "user-connected").map(([, p]) => p.name).sort();
    assert.deepEqual(names, ["alice", "bob"]);
  });

  it("1,000 envelopes relayed across nodes arrive in order (node 1 → 2 and node 2 → 3 at once)", async () => {
    const R = uniqueRoom("order");
    const [A, B, C] = await spread(R, ["a", "b", "c"]);
    const N = 1000;
    const got = { B: [], C: [] };
    B.socket.on("#rtcio:message", (m) => m.source === A.id && got.B.push(m.data.n));
    C.socket.on("#rtcio:message", (m) => m.source === B.id && got.C.push(m.data.n));
    for (let n = 0; n < N; n++) {
      A.socket.emit("#rtcio:message", { target: B.id, data: { n } });
      B.socket.emit("#rtcio:message", { target: C.id, data: { n } });
    }
    await until(() => got.B.length === N && got.C.length === N, 20000, "1,000 envelopes each");
    const order = Array.from({ length: N }, (_, i) => i);
    assert.deepEqual(got.B, order);
    assert.deepEqual(got.C, order);
  });

  it("relay scope is checked on the replica: a stranger on another node is refused both ways", async () => {
    const R = uniqueRoom("scope");
    const [A] = await spread(R, ["a"]);
    const S = await pool.connect(cluster.urls[1], "polling");
    await converged(admins, R, [A.id]);
    const mark = A.log.length;
    A.socket.emit("#rtcio:message", { target: S.id, data: "psst" });
    const [, err] = await waitAny(A.socket, ["error"]);
    assertError(["error", err], "peer-unreachable");
    S.socket.emit("#rtcio:message", { target: A.id, data: "hi" });
    const [, err2] = await waitAny(S.socket, ["error"]);
    assertError(["error", err2], "peer-unreachable");
    await barrier(S, A);
    assert.ok(!seen(A, mark).some(([e]) => e === "#rtcio:message"), "nothing reached A");
  });

  it("media-state, stopScreenShare, leave-room and a disconnect reach the peers on every node", async () => {
    const R = uniqueRoom("presence");
    const [A, B, C] = await spread(R, ["a", "b", "c"]);
    await barrier(A, B, C);
    let marks = [B, C].map((x) => x.log.length);
    A.socket.emit("media-state", { roomId: R, mic: false, cam: true });
    A.socket.emit("stopScreenShare", { roomId: R, streamId: "s1" });
    await until(() => [B, C].every((x, i) => seen(x, marks[i]).length >= 2), 5000, "media-state + stopScreenShare");
    for (const [i, X] of [B, C].entries()) {
      assert.deepEqual(seen(X, marks[i]), [
        ["media-state", { roomId: R, mic: false, cam: true, id: A.id }],
        ["stopScreenShare", { roomId: R, streamId: "s1", id: A.id }],
      ]);
    }
    marks = [A, C].map((x) => x.log.length);
    B.socket.emit("leave-room", { roomId: R });
    await until(() => [A, C].every((x, i) => seen(x, marks[i]).length >= 1), 5000, "user-disconnected");
    for (const [i, X] of [A, C].entries()) assert.deepEqual(seen(X, marks[i]), [["user-disconnected", { id: B.id }]]);
    await converged(admins, R, [A.id, C.id]);
    marks = [A].map((x) => x.log.length);
    C.socket.disconnect();
    await until(() => seen(A, marks[0]).length >= 2, 5000, "departure of C");
    const key = (e) => JSON.stringify(e);
    assert.deepEqual(seen(A, marks[0]).map(key).sort(), [["user-disconnected", { id: C.id }], ["#rtcio:peer-left", { id: C.id }]].map(key).sort());
    await converged(admins, R, [A.id]);
  });

  it("chat fan-out (no history) reaches the room on every node, stamped by the sender's node", async () => {
    const R = uniqueRoom("chat");
    const [A, B, C] = await spread(R, ["alice", "bob", "carol"]);
    const delivered = [B, C].map((X) => waitAny(X.socket, ["chat-message"]));
    const ack = await ask(A.socket, "chat-message", { roomId: R, text: "hello nodes" });
    assert.equal(ack.ok, true);
    for (const got of delivered) {
      const [, m] = await got;
      assert.equal(m.roomId, R);
      assert.equal(m.from, A.id);
      assert.equal(m.name, "alice");
      assert.equal(m.text, "hello nodes");
    }
  });

  it("admin list-rooms sees every node's members; kick reaches a socket on another node", async () => {
    const R = uniqueRoom("kick");
    const [A, B] = await spread(R, ["a", "b"]);
    const reply = await ask(admins[2], "list-rooms");
    const room = reply.rooms.find((r) => r.roomId === R);
    assert.deepEqual(room.members.map((m) => m.id), [A.id, B.id], "join order, across nodes");
    const log = [];
    B.socket.on("error", (e) => log.push(["error", e]));
    const gone = new Promise((resolve) => B.socket.once("disconnect", resolve));
    const markA = A.log.length;
    assert.deepEqual(await ask(admins[0], "kick", { socketId: B.id, reason: "enough" }), { ok: true, kicked: [B.id] });
    assert.equal(await gone, "io server disconnect");
    assert.deepEqual(log, [["error", { code: "kicked", message: "enough" }]], "the reason arrives before the disconnect");
    await until(() => seen(A, markA).length >= 2, 5000, "A hears B leave");
    await converged(admins, R, [A.id]);
    const missing = await ask(admins[0], "kick", { socketId: B.id });
    assert.equal(missing.ok, false);
    assert.equal(missing.error.code, "not-found");
  });
});

describe("cluster core: admin actions on every node (JWT identities)", () => {
  const SECRET = "cluster-jwt-secret-0123456789abcdef";
  const token = (sub) => sign("HS256", { sub, exp: now() + 600 }, SECRET);
  let redis;
  let cluster;
  let admins;
  const pool = clientPool();
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(3, { redisUrl: redis.url, env: { ADMIN_TOKEN, JWT_SECRET: SECRET } });
    admins = await Promise.all(cluster.urls.map(admin));
  });
  afterEach(() => pool.closeAll());
  after(async () => {
    for (const a of admins ?? []) a.disconnect();
    await cluster?.stop();
    await redis?.destroy();
  });

  it("kick { userId } reaches that user's sockets on every node", async () => {
    const R = uniqueRoom("kick-user");
    const ann = await Promise.all([0, 1, 2].map((i) => pool.connect(cluster.urls[i], MODE_OF[i], { auth: { token: token("ann") } })));
    const ben = await pool.connect(cluster.urls[2], "websocket", { auth: { token: token("ben") } });
    await join(ben, R, "ben");
    await converged(admins, R, [ben.id]);
    await join(ann[1], R, "ann");
    await converged(admins, R, [ben.id, ann[1].id]);
    const gone = ann.map((c) => new Promise((resolve) => c.socket.once("disconnect", resolve)));
    const reply = await ask(admins[0], "kick", { userId: "ann", reason: "bye ann" });
    assert.equal(reply.ok, true);
    assert.deepEqual(reply.kicked, [ann[0].id], "this node's sockets are listed");
    assert.deepEqual(await Promise.all(gone), ["io server disconnect", "io server disconnect", "io server disconnect"]);
    for (const c of ann) assert.deepEqual(c.log.filter(([e]) => e === "error"), [["error", { code: "kicked", message: "bye ann" }]]);
    await until(() => ben.log.some(([e, p]) => e === "user-disconnected" && p.id === ann[1].id), 5000, "ben hears ann leave");
    assert.equal(ben.socket.connected, true, "other users stay");
  });

  it("close-room empties the room on every node: each member hears every other leave, then the notice", async () => {
    const R = uniqueRoom("close");
    const members = [];
    for (let i = 0; i < 3; i++) {
      const c = await pool.connect(cluster.urls[i], MODE_OF[i], { auth: { token: token(`u${i}`) } });
      await join(c, R, `m${i}`);
      members.push(c);
      await converged(admins, R, members.map((m) => m.id));
    }
    await barrier(...members);
    const marks = members.map((m) => m.log.length);
    const reply = await ask(admins[1], "close-room", { roomId: R, reason: "closing time" });
    assert.deepEqual(reply, { ok: true, roomId: R, removed: members.map((m) => m.id) });
    await until(() => members.every((m, i) => seen(m, marks[i]).length >= 3), 5000, "two departures and the notice each");
    await barrier(...members);
    for (const [i, m] of members.entries()) {
      const got = seen(m, marks[i]);
      const departures = got.slice(0, 2).map(([e, p]) => [e, p.id]).sort();
      const others = members.filter((o) => o !== m).map((o) => ["user-disconnected", o.id]).sort();
      assert.deepEqual(departures, others, `member ${i} hears the two others leave`);
      assert.deepEqual(got.slice(2), [["error", { code: "kicked", message: "closing time", roomId: R }]]);
      assert.equal(m.socket.connected, true, "still connected");
    }
    await converged(admins, R, []);
  });
});

describe("cluster core: a node dies (SIGKILL)", () => {
  let redis;
  let cluster;
  const pool = clientPool();
  before(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    pool.closeAll();
    await cluster?.stop();
    // The next cluster starts on an empty Redis (the killed nodes' keys gone).
    redisCli(redis, "FLUSHALL");
  });
  after(() => redis?.destroy());

  it("recovery off: the others hear #rtcio:peer-left and user-disconnected within 10 s", async () => {
    cluster = await startCluster(3, { redisUrl: redis.url, env: { ADMIN_TOKEN } });
    const admins = await Promise.all(cluster.urls.map(admin));
    const R = uniqueRoom("death");
    const A = await pool.connect(cluster.urls[0], "websocket");
    const B = await pool.connect(cluster.urls[1], "polling");
    const C = await pool.connect(cluster.urls[2], "upgrade");
    // Each join once every node knows the previous ones (the join snapshot
    // reads the replica until the Redis room store is merged).
    for (const [i, X] of [A, B, C].entries()) {
      await join(X, R, "x");
      await converged(admins, R, [A, B, C].slice(0, i + 1).map((c) => c.id));
    }
    for (const a of admins) a.disconnect();
    await barrier(A, B, C);
    // B's user-connected of C proves node 2 knows C; wait for A's replica likewise.
    await until(() => seen(A).filter(([e]) => e === "user-connected").length === 2, 5000, "A met B and C");
    // The room hash a room store keeps (written here by hand: the core alone has none).
    const roomKey = `rtcio:room:/:${R}`;
    for (const X of [A, B, C]) redisCli(redis, "HSET", roomKey, X.id, "{}");
    const marks = [A, C].map((x) => x.log.length);
    const t0 = Date.now();
    await cluster.kill(1);
    await until(() => [A, C].every((x, i) => seen(x, marks[i]).length >= 2), 12000, "departure of B");
    assert.ok(Date.now() - t0 < 11000, "noticed within 10 s (+1 s margin)");
    const key = (e) => JSON.stringify(e);
    for (const [i, X] of [A, C].entries()) {
      assert.deepEqual(
        seen(X, marks[i]).map(key).sort(),
        [["user-disconnected", { id: B.id }], ["#rtcio:peer-left", { id: B.id }]].map(key).sort(),
        "each peer hears it once",
      );
    }
    // The dead node's socket is unreachable now; the survivors still talk.
    A.socket.emit("#rtcio:message", { target: B.id, data: 1 });
    const [, err] = await waitAny(A.socket, ["error"]);
    assertError(["error", err], "peer-unreachable");
    await relayArrives(A, C, "still here", 5000);
    // One survivor removed the dead node's entries.
    await eventually(async () => {
      const nodes = redisCli(redis, "SMEMBERS", "rtcio:nodes").split("\n").filter(Boolean);
      assert.equal(nodes.length, 2, "the dead node left rtcio:nodes");
      const keys = redisCli(redis, "KEYS", "rtcio:sockets:*").split("\n").filter(Boolean).sort();
      assert.deepEqual(keys, nodes.map((n) => `rtcio:sockets:${n}`).sort(), "only the survivors' socket lists");
      const left = redisCli(redis, "HKEYS", roomKey).split("\n").filter(Boolean).sort();
      assert.deepEqual(left, [A.id, C.id].sort(), "the dead node's member freed its place in the room hash");
    });
  });

  it("a node stopped cleanly (SIGTERM): its sockets' departures are heard once, and it leaves no keys", async () => {
    cluster = await startCluster(2, { redisUrl: redis.url, env: { ADMIN_TOKEN } });
    const admins = await Promise.all(cluster.urls.map(admin));
    const R = uniqueRoom("goodbye");
    const A = await pool.connect(cluster.urls[0], "websocket");
    const B = await pool.connect(cluster.urls[1], "polling");
    await join(A, R, "a");
    await converged(admins, R, [A.id]);
    await join(B, R, "b");
    await converged(admins, R, [A.id, B.id]);
    const nodes = redisCli(redis, "SMEMBERS", "rtcio:nodes").split("\n").filter(Boolean);
    assert.equal(nodes.length, 2, "both nodes registered");
    const mark = A.log.length;
    const { code } = await cluster.stopNode(1);
    assert.equal(code, 0);
    await until(() => seen(A, mark).length >= 2, 5000, "departure of B");
    await barrier(A);
    const key = (e) => JSON.stringify(e);
    assert.deepEqual(
      seen(A, mark).map(key).sort(),
      [["user-disconnected", { id: B.id }], ["#rtcio:peer-left", { id: B.id }]].map(key).sort(),
    );
    await converged([admins[0]], R, [A.id]);
    const left = redisCli(redis, "SMEMBERS", "rtcio:nodes").split("\n").filter(Boolean);
    assert.equal(left.length, 1, "the stopped node left rtcio:nodes");
    const gone = nodes.find((n) => !left.includes(n));
    assert.equal(redisCli(redis, "EXISTS", `rtcio:node:${gone}`), "0");
    assert.equal(redisCli(redis, "EXISTS", `rtcio:sockets:${gone}`), "0");
    assert.equal(redisCli(redis, "HLEN", `rtcio:sockets:${left[0]}`), "1", "A is listed under its node");
    admins[0].disconnect();
  });

  it("recovery on: peer-left at once, user-disconnected only after the presence grace", async () => {
    const GRACE = 3000;
    cluster = await startCluster(2, { redisUrl: redis.url, env: { RECOVERY_WINDOW: "2m", PRESENCE_GRACE: "3s", ADMIN_TOKEN } });
    const admins = await Promise.all(cluster.urls.map(admin));
    const R = uniqueRoom("grace");
    const A = await pool.connect(cluster.urls[0], "websocket");
    const B = await pool.connect(cluster.urls[1], "websocket");
    // With recovery on every event carries an offset as an extra last argument.
    for (const [i, X] of [A, B].entries()) {
      const ok = waitAny(X.socket, ["join-ok"]);
      X.socket.emit("join-room", { roomId: R, name: "x" });
      await ok;
      await converged(admins, R, [A, B].slice(0, i + 1).map((c) => c.id));
    }
    for (const a of admins) a.disconnect();
    await until(() => A.log.some(([e, p]) => e === "user-connected" && p.id === B.id), 5000, "A met B");
    const times = {};
    A.socket.on("#rtcio:peer-left", () => (times.left ??= Date.now()));
    A.socket.on("user-disconnected", () => (times.gone ??= Date.now()));
    await cluster.kill(1);
    await until(() => times.left, 11000, "peer-left");
    await until(() => times.gone, GRACE + 5000, "user-disconnected after the grace");
    assert.ok(times.gone - times.left >= GRACE - 500, `user-disconnected waited for the grace (${times.gone - times.left} ms)`);
  });
});

describe("cluster core: Redis on a Unix socket", () => {
  it("nodes given unix:// reach each other: presence, a relay both ways and a room event cross", async () => {
    const redis = await startRedis();
    const cluster = await startCluster(2, { redisUrl: redis.unixUrl });
    const pool = clientPool();
    try {
      const R = uniqueRoom("unix");
      const A = await pool.connect(cluster.urls[0], "websocket");
      const B = await pool.connect(cluster.urls[1], "polling");
      await join(A, R, "a");
      const metB = waitAny(A.socket, ["user-connected"], (p) => p?.id === B.id, 5000);
      await join(B, R, "b");
      await metB;
      await relayArrives(A, B, "over-unix-1", 5000);
      await relayArrives(B, A, "over-unix-2", 5000);
      const media = waitAny(B.socket, ["media-state"], (p) => p?.id === A.id && p?.roomId === R, 5000);
      A.socket.emit("media-state", { roomId: R, mic: false, cam: true });
      assert.deepEqual((await media)[1], { roomId: R, mic: false, cam: true, id: A.id });
      assert.match(redisCli(redis, "KEYS", "rtcio:node:*"), /rtcio:node:/, "the nodes registered in this Redis");
    } finally {
      pool.closeAll();
      await cluster.stop();
      await redis.destroy();
    }
  });
});

describe("cluster core: Redis stops and comes back", () => {
  let redis;
  let cluster;
  const pool = clientPool();
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(2, { redisUrl: redis.url, env: { ADMIN_TOKEN, RELAY_SCOPE: "any" } });
  });
  after(async () => {
    pool.closeAll();
    await cluster?.stop();
    await redis?.destroy();
  });

  it("same-node relay keeps working, /ready is 503 meanwhile, cross-node relay resumes within 10 s", async () => {
    const R = uniqueRoom("outage");
    const A = await pool.connect(cluster.urls[0], "websocket");
    const B = await pool.connect(cluster.urls[0], "polling");
    const C = await pool.connect(cluster.urls[1], "upgrade");
    const admins = await Promise.all(cluster.urls.map(admin));
    for (const [i, X] of [A, B, C].entries()) {
      await join(X, R, "x");
      await converged(admins, R, [A, B, C].slice(0, i + 1).map((c) => c.id));
    }
    for (const a of admins) a.disconnect();
    await until(() => A.log.filter(([e]) => e === "user-connected").length === 2, 5000, "A met B and C");
    await relayArrives(A, C, "before", 5000);
    for (const u of cluster.urls) assert.equal(await ready(u), 200);

    const departures = () =>
      [A, B, C].flatMap((X) => X.log.filter(([e]) => e === "user-disconnected" || e === "#rtcio:peer-left"));
    await redis.stop();
    await eventually(async () => assert.equal(await ready(cluster.urls[0]), 503), 5000);
    // Longer than a liveness key lives (5 s): nobody may be taken for dead for it.
    await new Promise((r) => setTimeout(r, 6000));
    for (let i = 0; i < 20; i++) await relayArrives(A, B, `local ${i}`, 2000);
    // A socket that connects while Redis is away reaches the other nodes'
    // replicas with the resync (relay scope `any` on this cluster: no room needed).
    const D = await pool.connect(cluster.urls[0], "websocket");
    // What it could not tell the others is counted, and /metrics says Redis is away.
    const down = await clusterMetrics(cluster.urls[0]);
    assert.equal(down.rtcio_cluster_up, 0);
    assert.ok(down.rtcio_cluster_messages_dropped_total >= 1, `dropped while down: ${JSON.stringify(down)}`);

    await redis.start();
    const t0 = Date.now();
    await eventually(() => relayArrives(A, C, "after", 500), 10000);
    assert.ok(Date.now() - t0 < 10500, "cross-node relay resumed within 10 s");
    await relayArrives(C, A, "back", 5000);
    const resumed = await clusterMetrics(cluster.urls[0]);
    await eventually(() => relayArrives(C, D, "to the one who joined during the outage", 500), 5000);
    // Past the 5 s every node waits after a reconnect before judging the others.
    await new Promise((r) => setTimeout(r, 6000));
    assert.deepEqual(departures(), [], "a Redis outage is not a node death");
    await relayArrives(A, C, "still connected", 5000);
    await eventually(async () => {
      for (const u of cluster.urls) assert.equal(await ready(u), 200);
    }, 5000);
    const back = await clusterMetrics(cluster.urls[0]);
    assert.equal(back.rtcio_cluster_up, 1);
    assert.equal(resumed.rtcio_cluster_up, 1);
    assert.equal(back.rtcio_cluster_messages_dropped_total, resumed.rtcio_cluster_messages_dropped_total, "nothing dropped once traffic resumed");
    const out = cluster.output(0);
    const downs = out.split("\n").filter((l) => l.includes("lost the connection to Redis") || l.includes("cannot reach Redis")).length;
    assert.equal(downs, 1, `one line when Redis goes down:\n${out}`);
    assert.ok(!out.includes(redis.url), "the Redis URL is never logged");
  });
});

describe("cluster core: rate limits stay per socket", () => {
  let redis;
  let cluster;
  const pool = clientPool();
  before(async () => {
    redis = await startRedis();
    // The defaults except a smaller envelope budget, so the flood is cheap to send.
    cluster = await startCluster(2, { redisUrl: redis.url, env: { RATE_LIMIT: "1", MESSAGE_RATE: "50/100", HANDSHAKE_LIMIT: "0" } });
  });
  afterEach(() => pool.closeAll());
  after(async () => {
    await cluster?.stop();
    await redis?.destroy();
  });

  /** `a` on node 1 and `b` on node 2 in a fresh room; resolves once `a`'s node knows `b` is in it. */
  async function pair(label, modes) {
    const a = await pool.connect(cluster.urls[0], modes[0]);
    const b = await pool.connect(cluster.urls[1], modes[1]);
    const room = uniqueRoom(label);
    await join(a, room, `${label}-a`);
    await join(b, room, `${label}-b`);
    // The user-connected reaches a's node behind b's membership (one ordered bus).
    await until(() => a.log.some(([e, p]) => e === "user-connected" && p?.id === b.id), 5000, `${label}: a told of b`);
    return [a, b];
  }

  it("a flooder on node 1 relaying to node 2 is held to its budget; a calm socket of the same node relays everything", async () => {
    const MSG = "#rtcio:message";
    const [F, T] = await pair("flood", ["websocket", "upgrade"]);
    const [A, B] = await pair("calm", ["polling", "websocket"]);
    const received = (c) => c.log.filter(([e]) => e === MSG).length;
    const start = Date.now();
    const FLOOD = 3000;
    const CALM = 100;
    // The calm socket sends at 40/s, under its 50/s budget, during the flood,
    // from the flooder's node: the budget is the socket's, not the node's.
    await floodBesideCalm({ flooder: F, target: T, flood: FLOOD, calm: A, calmTarget: B, calmCount: CALM });
    await until(() => received(B) === CALM, 20_000, "every calm envelope across nodes");
    // F's events are handled in order on its node: once its barrier is
    // answered, every envelope it sent was relayed (towards node 2) or refused.
    await barrier(F);
    const elapsed = (Date.now() - start) / 1000;
    await until(() => received(T) >= 100, 10_000, "the flooder's burst on node 2");
    // Let what is still crossing arrive: only the lower bound could miss it.
    await new Promise((r) => setTimeout(r, 500));
    const got = received(T);
    assert.ok(got < FLOOD, `the flood was throttled (${got} of ${FLOOD} relayed)`);
    assert.ok(got <= 50 * elapsed + 100 + 1, `${got} relayed in ${elapsed.toFixed(2)} s exceeds 50/s × t + 100`);
    assert.ok(got >= 100, `at least the burst crossed to node 2 (${got})`);
    const crossed = T.log.filter(([e]) => e === MSG).map(([, p]) => p.data.n);
    assert.ok(crossed.every((n, i) => i === 0 || n > crossed[i - 1]), "what crossed arrived once each, in order");
    assert.deepEqual(
      B.log.filter(([e]) => e === MSG).map(([, p]) => p.data.n),
      Array.from({ length: CALM }, (_, i) => i),
      "the calm socket's envelopes all crossed, in order",
    );
    const errs = F.log.filter(([e, p]) => e === "error" && p?.code === "rate-limited");
    assert.ok(errs.length >= 1, "the flooder was told");
    assertError(errs[0], "rate-limited");
    assert.equal(errs[0][1].event, MSG);
    assert.ok(!A.log.some(([e, p]) => e === "error" && p?.code === "rate-limited"), "the calm socket was never limited");
  });
});
