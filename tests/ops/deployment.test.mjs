// The shipped deployment files work with the binary: the systemd unit
// (docs/rtcio-server.service) passes `systemd-analyze verify` and raises
// LimitNOFILE, and its command line and environment, with the example
// configuration (docs/rtcio.toml), are settings the server accepts.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { ROOT } from "../lib/harness.mjs";
import { BIN, requireBinary, runOnce, tempDir } from "./ops.mjs";

requireBinary();

const UNIT = readFileSync(path.join(ROOT, "docs", "rtcio-server.service"), "utf8");
const EXAMPLE = path.join(ROOT, "docs", "rtcio.toml");

/** `Key=value` lines of the [Service] section, in order (repeated keys kept). */
function serviceEntries() {
  const section = UNIT.split(/^\[Service\]$/m)[1].split(/^\[/m)[0];
  return section
    .split("\n")
    .filter((l) => l && !l.startsWith("#") && l.includes("="))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}

describe("deployment files", () => {
  const tmp = tempDir("deploy");
  after(() => tmp.cleanup());

  it("the unit raises LimitNOFILE far above the 1024 default", () => {
    const limit = serviceEntries().find(([k]) => k === "LimitNOFILE");
    assert.ok(limit, "LimitNOFILE is set");
    assert.ok(Number(limit[1]) >= 65536, `LimitNOFILE=${limit[1]}`);
  });

  it("systemd-analyze verify accepts the unit (binary path replaced)", () => {
    const unit = tmp.file("rtcio-server.service");
    writeFileSync(unit, UNIT.replaceAll("/usr/local/bin/rtcio-server", BIN));
    const out = execFileSync("systemd-analyze", ["verify", unit], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    assert.doesNotMatch(out, /error/i);
  });

  it("the unit's command line and environment with docs/rtcio.toml are accepted settings", () => {
    const entries = serviceEntries();
    const env = Object.fromEntries(
      entries.filter(([k]) => k === "Environment").map(([, v]) => v.split(/=(.*)/s).slice(0, 2)),
    );
    const exec = entries.find(([k]) => k === "ExecStart")[1].split(/\s+/);
    assert.equal(exec[0], "/usr/local/bin/rtcio-server");
    const args = exec.slice(1).map((a) => (a === "/etc/rtcio/rtcio.toml" ? EXAMPLE : a));
    assert.ok(args.includes(EXAMPLE), "the unit reads /etc/rtcio/rtcio.toml");
    const r = runOnce([...args, "--print-config"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^log-format = "json" # env LOG_FORMAT$/m);
    assert.match(r.stdout, /^drain-delay = "5s" # env DRAIN_DELAY$/m);
    assert.match(r.stdout, /^metrics-addr = "127\.0\.0\.1:9100" # file$/m);
    assert.match(r.stdout, /^allowed-origins = "https:\/\/app\.example\.com" # file$/m);
  });
});
