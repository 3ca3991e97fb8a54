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
