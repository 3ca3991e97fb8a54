// GET /metrics (Prometheus text): the figures move as clients connect, join,
// relay and get refused; --metrics-token protects it; --metrics-addr moves it.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { modes, next, rawEngine, until } from "../lib/harness.mjs";
import { barrier, clientPool, eventually, join, request, startSignaling, tryJoin, uniqueRoom } from "../server/server.mjs";
import { metric, parseMetrics, requireBinary, scrape, waitForOutput } from "./ops.mjs";

requireBinary();

const NS = 'namespace="/"';
const sockets = (transport) => `rtcio_sockets_connected{${NS},transport="${transport}"}`;
const events = (name) => `rtcio_events_received_total{event="${name}"}`;
const errors = (code) => `rtcio_errors_total{code="${code}"}`;

for (const [mode] of modes()) {
  describe(`metrics (${mode})`, () => {
    let server;
    before(async () => {
      server = await startSignaling();
    });
    after(() => server?.stop());
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    it("sockets, rooms, room sizes, events, joins, relayed envelopes and refusals are counted", async () => {
      const transport = mode === "polling" ? "polling" : "websocket";
      const m0 = await scrape(server.url);
      assert.equal(metric(m0, sockets(transport)), 0);
      assert.equal(metric(m0, `rtcio_rooms{${NS}}`), 0);

      const A = await pool.connect(server.url, mode);
      const B = await pool.connect(server.url, mode);
      const C = await pool.connect(server.url, mode);
      const m1 = await scrape(server.url);
      assert.equal(metric(m1, sockets(transport)), 3, "three sockets on this transport");

      const R = uniqueRoom();
      const P = uniqueRoom("locked");
      await join(A, R, "alice");
      await join(B, R, "bob");
      await join(C, P, "carol", "pw");
      const data = { sdp: "v=0 ...", type: "offer" };
      const relayed = next(A.socket, "#rtcio:message");
      B.socket.emit("#rtcio:message", { source: B.id, target: A.id, data });
      await relayed;
      // Refusals: a relay to a socket in no shared room, a wrong room password.
      assert.equal((await request(C.socket, ["error"], "#rtcio:message", { target: A.id, data }))[1].code, "peer-unreachable");
      assert.deepEqual(await tryJoin(A, { roomId: P, name: "alice", password: "nope" }), [
        "join-error",
        { reason: "wrong-password", roomId: P },
      ]);
      C.socket.emit("no-such-event", 1);
      await barrier(A, B, C);

      const m2 = await scrape(server.url);
      assert.equal(metric(m2, "rtcio_joins_total") - metric(m0, "rtcio_joins_total"), 3);
      assert.equal(metric(m2, `rtcio_rooms{${NS}}`), 2);
      // Rooms of 2 and 1: cumulative buckets, sum of members, count of rooms.
      assert.equal(metric(m2, 'rtcio_room_size_bucket{le="1"}'), 1);
      assert.equal(metric(m2, 'rtcio_room_size_bucket{le="2"}'), 2);
      assert.equal(metric(m2, 'rtcio_room_size_bucket{le="+Inf"}'), 2);
      assert.equal(metric(m2, "rtcio_room_size_sum"), 3);
      assert.equal(metric(m2, "rtcio_room_size_count"), 2);

      const delta = (key) => metric(m2, key) - metric(m0, key);
      assert.equal(delta(events("join-room")), 4);
      assert.equal(delta(events("#rtcio:message")), 2);
      assert.equal(delta(events("check-room")), 3, "the barrier's check-room events");
      assert.equal(delta(events("other")), 1);
      assert.equal(delta("rtcio_envelopes_relayed_total"), 1, "only the delivered envelope");
      // The relayed packet: Engine.IO `4`, Socket.IO `2`, the event with `source` first.
      const packet = `42${JSON.stringify(["#rtcio:message", { source: B.id, target: A.id, data }])}`;
      assert.equal(delta("rtcio_envelope_bytes_total"), Buffer.byteLength(packet));
      assert.equal(delta(errors("peer-unreachable")), 1);
      assert.equal(delta(errors("wrong-password")), 1);

      // Process figures are there.
      assert.ok(metric(m2, "process_resident_memory_bytes") > 0);
      assert.ok(metric(m2, "process_open_fds") > 0);
      assert.ok(metric(m2, "process_max_fds") > 0);
      assert.ok(m2.has("process_cpu_seconds_total"));
      assert.ok(m2.has("rtcio_accept_failures_total"));

      // Leaving shows at the next scrape.
      pool.closeAll();
      await eventually(async () => {
        const m3 = await scrape(server.url);
        assert.equal(metric(m3, sockets(transport)), 0);
        assert.equal(metric(m3, `rtcio_rooms{${NS}}`), 0);
        assert.equal(metric(m3, "rtcio_room_size_count"), 0);
      });
    });
  });
}

describe("metrics: slow consumers", () => {
  let server;
  before(async () => {
    server = await startSignaling(["--max-queue-bytes", "262144"]);
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("a client cut off for not reading is counted in rtcio_slow_consumers_total", async () => {
    const m0 = await scrape(server.url);
    const R = uniqueRoom("slow");
    const slow = await rawEngine(server.url, "websocket", { autoPong: true });
    await slow.send("40");
    const ack = await slow.waitFor((p) => typeof p === "string" && p.startsWith("40{"), 5000, "CONNECT ack");
    const slowId = JSON.parse(ack.slice(2)).sid;
    await slow.send(`42${JSON.stringify(["join-room", { roomId: R, name: "slow" }])}`);
    await slow.waitFor((p) => typeof p === "string" && p.includes('"join-ok"'), 5000, "join-ok");
    const sender = await pool.connect(server.url, "websocket");
    await join(sender, R, "sender");
    let gone = false;
    sender.socket.on("#rtcio:peer-left", ({ id }) => (gone ||= id === slowId));

    slow.pauseReading();
    const data = "x".repeat(100_000);
    let sent = 0;
    while (!gone && sent < 400) {
      sender.socket.emit("#rtcio:message", { target: slowId, data });
      if (++sent % 10 === 0) await barrier(sender);
    }
    await until(() => gone, 10_000, "the slow client's departure");
    const m1 = await scrape(server.url);
    assert.equal(metric(m1, "rtcio_slow_consumers_total") - metric(m0, "rtcio_slow_consumers_total"), 1);
    slow.resumeReading();
  });
});

describe("--metrics-token", () => {
  let server;
  before(async () => {
    server = await startSignaling(["--metrics-token", "scrape-secret-7f3a"]);
  });
  after(() => server?.stop());

  it("refuses a scrape without the bearer token or with another one", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "Basic scrape-secret-7f3a" }]) {
      const res = await fetch(`${server.url}/metrics`, { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.headers.get("www-authenticate"), "Bearer");
      assert.doesNotMatch(await res.text(), /rtcio_/);
    }
  });

  it("serves it with the token; the token is never logged", async () => {
    const values = await scrape(server.url, { authorization: "Bearer scrape-secret-7f3a" });
    assert.ok(values.has("rtcio_joins_total"));
    assert.doesNotMatch(server.output(), /scrape-secret-7f3a/);
  });
});

describe("--metrics-addr", () => {
  let server;
  before(async () => {
    server = await startSignaling(["--metrics-addr", "127.0.0.1:0"]);
  });
  after(() => server?.stop());

  it("serves /metrics (with /health and /ready) on its own address, not on the main one", async () => {
    const [, metricsUrl] = await waitForOutput(server, /metrics served on (http:\/\/[\d.]+:\d+)\/metrics/);
    assert.notEqual(metricsUrl, server.url);
    assert.equal((await fetch(`${server.url}/metrics`)).status, 404);
    const res = await fetch(`${metricsUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/plain/);
    assert.ok(parseMetrics(await res.text()).has(sockets("websocket")));
    assert.equal((await fetch(`${metricsUrl}/ready`)).status, 200);
    assert.equal(await (await fetch(`${metricsUrl}/health`)).text(), "ok");
  });
});
