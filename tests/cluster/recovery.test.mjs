// Recovery across nodes (issue 12): two rtcio-server nodes on one throwaway
// Redis, the real socket.io-client@4 on websocket, polling and upgrade. A
// client whose transport is cut and who reconnects to the OTHER node gets
// its id, rooms, data and missed packets back (once, in order); a client
// whose node is SIGKILLed reconnects to the survivor keeping its id and
// rooms, and its peers see no user-disconnected within the presence grace.
// A pid of a socket still connected, or a forged one, gets a fresh socket.
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { io } from "socket.io-client";
import { MODES, until, untilAsync, waitConnected } from "../lib/harness.mjs";
import { startCluster } from "../lib/cluster.mjs";
import { startRedis } from "../lib/redis.mjs";
import { barrier, clientPool, seen, tryJoin, uniqueRoom, waitAny } from "../server/server.mjs";

const GRACE_S = 4;
const ENV = { RECOVERY_WINDOW: "2m", PRESENCE_GRACE: `${GRACE_S}s` };

/** Drops the offset socket.io appends to every event while recovery is on. */
const withoutOffset = ([event, ...args]) =>
  typeof args.at(-1) === "string" && /^\d+$/.test(args.at(-1)) ? [event, ...args.slice(0, -1)] : [event, ...args];
const plainSeen = (client, from = 0) => seen(client, from).map(withoutOffset);

async function join(client, roomId, name) {
  assert.deepEqual(withoutOffset(await tryJoin(client, { roomId, name })), ["join-ok", { roomId }]);
}

/** Presence events about `id` (a blip must not churn them; peer-left is only a hint). */
const churn = (client, id, from = 0) =>
  plainSeen(client, from).filter(
    ([e, p]) =>
      (e === "user-connected" || e === "user-disconnected") ? p?.id === id : e === "#rtcio:init-offer" && p?.source === id,
  );

/** Reconnects `client` to `url` (it presents its pid and last offset) and resolves with its id. */
async function reconnectTo(client, url, mode) {
  client.socket.io.uri = url;
  client.socket.connect();
  await waitConnected(client.socket, mode);
  return client.socket.id;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves once `from` can relay to `to` (the node of `from` has the room
 * membership of `to` in its replica): the clusters' replicas have converged.
 */
async function linked(from, to) {
  const deadline = Date.now() + 5000;
  for (let n = 0; ; n++) {
    const tag = `link-${n}`;
    const got = waitAny(to.socket, ["#rtcio:message"], (m) => m?.data === tag, 200).then(
      () => true,
      () => false,
    );
    from.socket.emit("#rtcio:message", { target: to.id, data: tag });
    if (await got) return;
    assert.ok(Date.now() < deadline, "the nodes' replicas did not converge within 5 s");
  }
}

/** A on node `a`, B on node `b`, both in `room`, each able to reach the other. */
async function pair(pool, a, b, mode, room) {
  const A = await pool.connect(a, mode);
  const B = await pool.connect(b, mode);
  await join(A, room, "alice");
  await join(B, room, "bob");
  await linked(A, B);
  await linked(B, A);
  return { A, B };
}

describe("recovery across nodes", () => {
  const pool = clientPool();
  let redis;
  let cluster;
  afterEach(async () => {
    // RTCIO_TEST_DEBUG=1 prints what each node logged.
    if (process.env.RTCIO_TEST_DEBUG && cluster) {
      for (let i = 0; i < 2; i++) console.error(`--- node ${i}\n${cluster.output(i)}`);
    }
    pool.closeAll();
    await cluster?.stop();
    await redis?.destroy();
    cluster = undefined;
    redis = undefined;
  });
  // A Redis of its own for each test: nothing left over from an earlier cluster.
  const start = async () => {
    redis = await startRedis();
    cluster = await startCluster(2, { redisUrl: redis.url, env: ENV });
    // Each node has joined the cluster (connected to Redis) before the test drives it.
    for (const url of cluster.urls) {
      await untilAsync(async () => (await fetch(`${url}/ready`)).status === 200, 10_000, `${url}/ready`);
    }
    return cluster.urls;
  };

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it("a cut transport reconnecting to the other node: same id, rooms, data, missed events once and in order", async () => {
        const [one, two] = await start();
        const room = uniqueRoom("xnode");
        const { A, B } = await pair(pool, one, two, mode, room);
        A.socket.emit("media-state", { roomId: room, mic: true, cam: false });
        await waitAny(B.socket, ["media-state"], (p) => p?.id === A.id);
        await sleep(300); // the session record follows the data within 100 ms
        const oldId = A.id;
        const markB = B.log.length;

        const gone = waitAny(B.socket, ["#rtcio:peer-left"], (p) => p?.id === oldId, 10_000);
        const disconnected = new Promise((r) => A.socket.once("disconnect", r));
        A.socket.io.engine.close();
        await disconnected;
        await gone;

        // While A is away (parked on node one), from node two: relays, room events.
        const markA = A.log.length;
        for (let n = 1; n <= 3; n++) B.socket.emit("#rtcio:message", { target: oldId, data: { n } });
        B.socket.emit("media-state", { roomId: room, mic: false, cam: true });
        await barrier(B);
        assert.deepEqual(plainSeen(B, markB).filter(([e]) => e === "error"), [], "no peer-unreachable for an absent peer");

        const newId = await reconnectTo(A, two, mode);
        assert.equal(newId, oldId, "same socket id on the other node");
        assert.equal(A.socket.recovered, true, "socket.recovered");
        A.id = newId;
        await until(() => plainSeen(A, markA).length >= 4, 5000, "missed events").catch((e) => {
          throw new Error(`${e.message}: ${JSON.stringify(A.log.slice(markA))}`);
        });
        await barrier(A);
        assert.deepEqual(plainSeen(A, markA), [
          ["#rtcio:message", { source: B.id, target: oldId, data: { n: 1 } }],
          ["#rtcio:message", { source: B.id, target: oldId, data: { n: 2 } }],
          ["#rtcio:message", { source: B.id, target: oldId, data: { n: 3 } }],
          ["media-state", { roomId: room, mic: false, cam: true, id: B.id }],
        ]);

        // Rooms intact on the new node: room events and relays both ways.
        const markA2 = A.log.length;
        B.socket.emit("media-state", { roomId: room, mic: true, cam: true });
        await waitAny(A.socket, ["media-state"], (p) => p?.id === B.id && p.cam === true && p.mic === true);
        A.socket.emit("#rtcio:message", { target: B.id, data: "back" });
        await waitAny(B.socket, ["#rtcio:message"], (p) => p?.data === "back" && p.source === oldId);
        assert.deepEqual(plainSeen(A, markA2), [["media-state", { roomId: room, mic: true, cam: true, id: B.id }]]);

        // Data intact: a newcomer on A's new node sees its name and cached media-state.
        const C = await pool.connect(two, mode);
        await join(C, room, "carol");
        assert.deepEqual(
          plainSeen(C).filter(([, p]) => p?.id === oldId),
          [
            ["user-connected", { id: oldId, name: "alice" }],
            ["media-state", { roomId: room, mic: true, cam: false, id: oldId }],
          ],
        );

        // No presence churn at its peer, even once the grace has passed.
        await sleep(GRACE_S * 1000 + 1000);
        assert.deepEqual(churn(B, oldId, markB), [], "no user-disconnected / user-connected / init-offer for a blip");
      });
    });
  }

  it("a pid of a socket still connected, or a forged one, gets a fresh socket on any node", async () => {
    const [one, two] = await start();
    const A = await pool.connect(one, "websocket");
    const pid = A.socket._pid;
    assert.equal(typeof pid, "string", "the CONNECT answer carries a pid");
    await sleep(300);
    for (const [url, auth, what] of [
      [two, { pid, offset: "0" }, "A's pid on the other node while A is connected"],
      [one, { pid, offset: "0" }, "A's pid on A's own node while A is connected"],
      [two, { pid: "AAAAAAAAAAAAAAAAAAAA", offset: "0" }, "a forged pid"],
      [two, { pid, offset: "x" }, "a malformed offset"],
    ]) {
      const socket = io(url, { ...MODES.websocket, forceNew: true, reconnection: false, auth });
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      assert.notEqual(socket.id, A.id, what);
      assert.equal(socket.recovered, false, what);
      socket.disconnect();
    }
    // A is untouched.
    assert.equal(A.socket.connected, true);
  });

  it("after Redis restarted empty, a live socket's session is written again: its node killed, it is recovered on the other", async () => {
    const [one, two] = await start();
    const room = uniqueRoom("restart");
    const { A, B } = await pair(pool, one, two, "websocket", room);
    const oldId = A.id;
    await redis.restart();
    for (const url of cluster.urls) {
      await untilAsync(async () => (await fetch(`${url}/ready`)).status === 200, 10_000, `${url}/ready`);
    }
    await linked(A, B);
    await linked(B, A);
    await sleep(500); // the records are written again within 100 ms of the reconnect
    const disconnected = new Promise((r) => A.socket.once("disconnect", r));
    await cluster.kill(0);
    await disconnected;
    assert.equal(await reconnectTo(A, two, "websocket"), oldId, "same socket id on the survivor");
    assert.equal(A.socket.recovered, true, "socket.recovered");
    A.id = oldId;
    await linked(B, A);
  });

  it("a reconnect that goes away while its dead node's session is being claimed leaves it for the next one", async () => {
    const [one, two] = await start();
    const room = uniqueRoom("retry");
    const { A, B } = await pair(pool, one, two, "websocket", room);
    const oldId = A.id;
    await sleep(300); // the session record follows the connect within 100 ms
    const auth = () => ({ pid: A.socket._pid, offset: A.socket._lastOffset });
    const disconnected = new Promise((r) => A.socket.once("disconnect", r));
    await cluster.kill(0);
    await disconnected;
    // A first attempt: the survivor waits for the dead node's liveness key; it gives up.
    const first = io(two, { ...MODES.websocket, forceNew: true, reconnection: false, auth: auth() });
    const firstConnected = new Promise((r) => first.once("connect", () => r(true)));
    const early = await Promise.race([firstConnected, sleep(1000).then(() => false)]);
    assert.equal(early, false, "the dead node still looks alive for a moment");
    first.io.engine.close();
    first.close();
    await sleep(8000); // the claim ends meanwhile (the key expires within 5 s)
    const second = io(two, { ...MODES.websocket, forceNew: true, reconnection: false, auth: auth() });
    await new Promise((resolve, reject) => {
      second.once("connect", resolve);
      second.once("connect_error", reject);
    });
    try {
      // (`recovered` stays false on a client that did not hold the pid itself.)
      assert.equal(second.id, oldId, "the session waited for the next try");
      await linked(B, { socket: second, id: second.id });
    } finally {
      second.close();
    }
  });

  for (const mode of ["websocket", "polling"]) {
    it(`${mode}: its node SIGKILLed, a client reconnects to the survivor keeping its id and rooms; no user-disconnected`, async () => {
      const [one, two] = await start();
      const room = uniqueRoom("killed");
      const { A, B } = await pair(pool, one, two, mode, room);
      A.socket.emit("media-state", { roomId: room, mic: true, cam: true });
      await waitAny(B.socket, ["media-state"], (p) => p?.id === A.id);
      await sleep(300);
      const oldId = A.id;
      const markB = B.log.length;

      const disconnected = new Promise((r) => A.socket.once("disconnect", r));
      const killedAt = Date.now();
      await cluster.kill(0);
      await disconnected;
      const newId = await reconnectTo(A, two, mode);
      assert.equal(newId, oldId, "same socket id on the survivor");
      assert.equal(A.socket.recovered, true, "socket.recovered");
      A.id = newId;
      // Within the liveness TTL and a margin (the survivor waits for the dead node's key).
      assert.ok(Date.now() - killedAt < 15_000, "recovered within 15 s of the kill");

      // Rooms intact: room events and relays both ways.
      B.socket.emit("media-state", { roomId: room, mic: false, cam: false });
      await waitAny(A.socket, ["media-state"], (p) => p?.id === B.id && p.mic === false);
      A.socket.emit("#rtcio:message", { target: B.id, data: "alive" });
      await waitAny(B.socket, ["#rtcio:message"], (p) => p?.data === "alive" && p.source === oldId);

      // Data intact: a newcomer sees its name and media-state.
      const C = await pool.connect(two, mode);
      await join(C, room, "carol");
      assert.deepEqual(
        plainSeen(C).filter(([, p]) => p?.id === oldId),
        [
          ["user-connected", { id: oldId, name: "alice" }],
          ["media-state", { roomId: room, mic: true, cam: true, id: oldId }],
        ],
      );

      // The death is noticed within 10 s, then the grace runs: no user-disconnected.
      await sleep(Math.max(0, killedAt + 10_000 + GRACE_S * 1000 + 1500 - Date.now()));
      assert.deepEqual(
        plainSeen(B, markB).filter(([e, p]) => e === "user-disconnected" && p?.id === oldId),
        [],
        "no user-disconnected for a socket back within the grace",
      );
      assert.deepEqual(churn(B, oldId, markB), [], "no presence churn");
    });
  }
});
