// A seconds-long smoke run of every rtcio-bench scenario against the
// rtcio-server binary: proves the load generator works end to end (the real
// measurements are bench/compare.sh's, never CI's; see BENCHMARKS.md).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ROOT, startServer } from "../lib/harness.mjs";

const run = promisify(execFile);
const BENCH = process.env.RTCIO_BENCH_BIN ?? path.join(ROOT, "target", "debug", "rtcio-bench");
const SERVER = process.env.RTCIO_SERVER_BIN ?? path.join(ROOT, "target", "debug", "rtcio-server");

describe("rtcio-bench smoke runs against rtcio-server", () => {
  let server;
  const dir = mkdtempSync(path.join(tmpdir(), "rtcio-bench-"));
  before(async () => {
    // Chat history in a temporary SQLite file (never ./rtcio.db); the
    // scenarios flood envelopes far past the per-socket limits.
    server = await startServer(SERVER, ["--host", "127.0.0.1", "--port", "0"], {
      env: { RATE_LIMIT: "0", NO_HISTORY: "0", DATABASE_URL: `sqlite://${path.join(dir, "chat.db")}` },
    });
  });
  after(() => server?.stop());

  const bench = async (scenario) => {
    const port = new URL(server.url).port;
    const json = path.join(dir, `${scenario}.json`);
    await run(BENCH, ["--port", port, "--server-pid", String(server.proc.pid), "--smoke", "--quiet", "--json", json, scenario], {
      timeout: 60_000,
    });
    const report = JSON.parse(readFileSync(json, "utf8"));
    const metric = (key) => report.metrics.find((m) => m.key === key)?.value;
    assert.deepEqual(report.failures, [], `${scenario} reported failures`);
    return metric;
  };

  it("relay: envelopes flow, none lost or reordered", async () => {
    const metric = await bench("relay");
    assert.ok(metric("throughput") > 0, "some envelopes were relayed");
    assert.equal(metric("lost"), 0);
    assert.equal(metric("out_of_order"), 0);
  });

  it("chat: messages are stored, acknowledged and fanned out", async () => {
    const metric = await bench("chat");
    assert.ok(metric("stored_per_s") > 0, "some messages were stored");
    assert.ok(metric("delivered_per_s") > 0, "some messages were fanned out");
    assert.equal(metric("refused"), 0);
  });

  for (const scenario of ["rooms", "call", "churn"]) {
    it(`${scenario}: completes without a failure and measures something`, async () => {
      const metric = await bench(scenario);
      assert.ok(metric !== undefined);
    });
  }
});

// The multi-server plumbing the cluster benchmarks (bench/cluster.sh) rely
// on, without Redis: two independent servers, so only relays that stay on one
// node can work (`--placement same`); the CPU/RSS of both servers summed; and
// client sockets bound to an explicit list of source addresses.
describe("rtcio-bench against several servers", () => {
  const servers = [];
  const dir = mkdtempSync(path.join(tmpdir(), "rtcio-bench-multi-"));
  before(async () => {
    for (let i = 0; i < 2; i++) {
      servers.push(
        await startServer(SERVER, ["--host", "127.0.0.1", "--port", "0"], {
          env: { RATE_LIMIT: "0", NO_HISTORY: "1" },
        }),
      );
    }
  });
  after(() => servers.forEach((s) => s.stop()));

  const bench = async (name, args) => {
    const json = path.join(dir, `${name}.json`);
    await run(BENCH, ["--smoke", "--quiet", "--json", json, ...args], { timeout: 60_000 });
    return JSON.parse(readFileSync(json, "utf8"));
  };
  const metric = (report, key) => report.metrics.find((m) => m.key === key)?.value;

  it("relay over --ports with --placement same reaches both servers and sums their CPU", async () => {
    const ports = servers.map((s) => new URL(s.url).port).join(",");
    const pids = servers.map((s) => String(s.proc.pid)).join(",");
    const report = await bench("relay-ports", ["--ports", ports, "--server-pid", pids, "relay", "--placement", "same"]);
    assert.deepEqual(report.failures, []);
    assert.equal(report.params.nodes, 2);
    assert.equal(report.params.placement, "same");
    assert.ok(metric(report, "throughput") > 0);
    assert.equal(metric(report, "lost"), 0);
    assert.ok(metric(report, "server_rss_mb") > 0, "RSS of the listed servers");
  });

  it("relay over --urls with --placement cross really puts sender and receiver on different servers (unconnected here: nothing arrives)", async () => {
    const urls = servers.map((s) => s.url).join(",");
    await assert.rejects(
      bench("relay-cross", ["--urls", urls, "relay", "--placement", "cross"]),
      "a receiver on another, unconnected server cannot be reached",
    );
  });

  it("--source-addrs takes a list of loopback addresses", async () => {
    const port = new URL(servers[0].url).port;
    const report = await bench("rooms-sources", ["--port", port, "--source-addrs", "127.0.0.2,127.0.0.3", "rooms"]);
    assert.deepEqual(report.failures, []);
    assert.equal(report.params.source_addrs, 2);
  });
});
