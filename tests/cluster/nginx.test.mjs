// Sticky sessions through a real nginx (docs/nginx-cluster.conf, only its
// ports replaced): two cluster nodes on one Redis behind an `ip_hash`
// upstream. A long-polling client makes many requests through nginx and
// keeps its one session, and relays to and from a peer on the other node.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ROOT, until } from "../lib/harness.mjs";
import { startCluster } from "../lib/cluster.mjs";
import { startNginx } from "../lib/nginx.mjs";
import { startRedis } from "../lib/redis.mjs";
import { tempDir } from "../ops/ops.mjs";
import { clientPool, eventually, join, uniqueRoom, waitAny } from "../server/server.mjs";

/** docs/nginx-cluster.conf with its three ports replaced, and nothing else. */
function shippedBlock([a, b], listenPort) {
  const block = readFileSync(path.join(ROOT, "docs", "nginx-cluster.conf"), "utf8");
  for (const needle of ["ip_hash;", "server 127.0.0.1:3001;", "server 127.0.0.1:3002;", "listen 80;"]) {
    assert.ok(block.includes(needle), `the shipped block has ${needle}`);
  }
  return block
    .replace("server 127.0.0.1:3001;", `server 127.0.0.1:${a};`)
    .replace("server 127.0.0.1:3002;", `server 127.0.0.1:${b};`)
    .replace("listen 80;", `listen 127.0.0.1:${listenPort};`);
}

/** Which node (index) holds the Engine.IO session `sid`: the one that knows it. */
async function nodeOf(urls, sid) {
  for (const [i, url] of urls.entries()) {
    // A POST of a noop packet: 200 "ok" where the session lives, 400 elsewhere.
    const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: "POST", body: "6" });
    await res.text();
    if (res.status === 200) return i;
  }
  return -1;
}

describe("cluster behind nginx ip_hash (docs/nginx-cluster.conf)", () => {
  let redis;
  let cluster;
  let nginx;
  let tmp;
  const pool = clientPool();
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(2, { redisUrl: redis.url });
    tmp = tempDir("nginx-cluster");
    const ports = cluster.urls.map((u) => Number(new URL(u).port));
    nginx = await startNginx(tmp, (listen) => shippedBlock(ports, listen));
  });
  after(async () => {
    pool.closeAll();
    await nginx?.stop();
    await cluster?.stop();
    await redis?.destroy();
    tmp?.cleanup();
  });

  it("a polling client keeps its session over many requests and relays with a peer on the other node", async () => {
    const P = await pool.connect(nginx.url, "polling");
    const engine = P.socket.io.engine;
    const session = engine.id;
    const home = await nodeOf(cluster.urls, session);
    assert.ok(home >= 0, "the session lives on one node");
    const Q = await pool.connect(cluster.urls[1 - home], "websocket");
    const R = uniqueRoom("sticky");
    let lost = 0;
    P.socket.on("disconnect", () => lost++);
    await join(P, R, "polling-through-nginx");
    await join(Q, R, "direct");
    // Q's node knows P is in the room once Q heard of P (its join snapshot or P's arrival).
    await eventually(async () => {
      const got = waitAny(Q.socket, ["#rtcio:message"], (m) => m?.data === "probe", 300);
      P.socket.emit("#rtcio:message", { target: Q.id, data: "probe" });
      await got;
    });
    const N = 100;
    const atQ = [];
    const atP = [];
    Q.socket.on("#rtcio:message", (m) => m.source === P.id && typeof m.data === "number" && atQ.push(m.data));
    P.socket.on("#rtcio:message", (m) => m.source === Q.id && typeof m.data === "number" && atP.push(m.data));
    // One at a time, each waiting for the answer: hundreds of polling requests.
    for (let n = 0; n < N; n++) {
      P.socket.emit("#rtcio:message", { target: Q.id, data: n });
      await until(() => atQ.length === n + 1, 5000, `envelope ${n} at Q`);
      Q.socket.emit("#rtcio:message", { target: P.id, data: n });
      await until(() => atP.length === n + 1, 5000, `envelope ${n} at P`);
    }
    assert.deepEqual(atQ, [...Array(N).keys()]);
    assert.deepEqual(atP, [...Array(N).keys()]);
    assert.equal(engine.id, session, "one Engine.IO session throughout");
    assert.equal(engine.transport.name, "polling");
    assert.equal(lost, 0, "never disconnected");
    assert.equal(await nodeOf(cluster.urls, session), home, "still on the same node");
  });
});
