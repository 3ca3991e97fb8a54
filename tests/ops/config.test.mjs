// The configuration file (--config / RTCIO_CONFIG, TOML keyed by flag name):
// precedence flags > environment > file > defaults, --print-config with
// secrets redacted, and refusals that name the key.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, afterEach, before, describe, it } from "node:test";
import { modes } from "../lib/harness.mjs";
import { clientPool, join, startSignaling, uniqueRoom } from "../server/server.mjs";
import { requireBinary, runOnce, tempDir } from "./ops.mjs";

requireBinary();

/** The Engine.IO open packet of a fresh polling handshake. */
async function openPacket(url) {
  const body = await (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).text();
  assert.ok(body.startsWith("0{"), body);
  return JSON.parse(body.slice(1));
}

describe("configuration file", () => {
  const tmp = tempDir("config");
  after(() => tmp.cleanup());

  const FILE = tmp.file("rtcio.toml");
  writeFileSync(
    FILE,
    [
      "# every key is a flag's long name",
      'ping-interval = "7s"',
      'ping_timeout = "8s"', // snake_case is accepted too
      'namespace = "/from-file"',
      "max-payload = 123456",
      'transports = ["polling", "websocket"]',
      "",
    ].join("\n"),
  );

  describe("precedence: flags > environment > file > defaults", () => {
    let server;
    before(async () => {
      server = await startSignaling(["--config", FILE, "--ping-interval", "6s"], {
        env: { PING_INTERVAL: "11s", PING_TIMEOUT: "9s" },
      });
    });
    after(() => server?.stop());
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    it("each setting comes from the strongest source that gives it", async () => {
      const open = await openPacket(server.url);
      assert.equal(open.pingInterval, 6000, "the flag beats the environment and the file");
      assert.equal(open.pingTimeout, 9000, "the environment beats the file");
      assert.equal(open.maxPayload, 123456, "the file beats the default");
    });

    for (const [mode] of modes()) {
      it(`the file's namespace carries the protocol (${mode})`, async () => {
        const R = uniqueRoom();
        const A = await pool.connect(`${server.url}/from-file`, mode);
        await join(A, R, "alice");
      });
    }
  });

  it("RTCIO_CONFIG names the file too", async () => {
    const server = await startSignaling([], { env: { RTCIO_CONFIG: FILE } });
    try {
      const open = await openPacket(server.url);
      assert.equal(open.pingInterval, 7000);
      assert.equal(open.pingTimeout, 8000);
    } finally {
      await server.stop();
    }
  });

  it("--print-config prints the effective configuration with sources, secrets redacted, and exits", () => {
    const secretFile = tmp.file("secret.toml");
    writeFileSync(secretFile, 'metrics-token = "file-secret-41c2"\nport = 4100\n');
    const r = runOnce(["--config", secretFile, "--print-config", "--host", "127.0.0.2"], { PING_TIMEOUT: "3s" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^metrics-token = "<redacted>" # file$/m);
    assert.match(r.stdout, /^port = 4100 # file$/m);
    assert.match(r.stdout, /^host = "127\.0\.0\.2" # --host$/m);
    assert.match(r.stdout, /^ping-timeout = "3s" # env PING_TIMEOUT$/m);
    assert.match(r.stdout, /^ping-interval = "25s" # default$/m);
    assert.match(r.stdout, /^log-format = "pretty" # default$/m);
    assert.doesNotMatch(r.stdout + r.stderr, /file-secret-41c2/);

    const fromEnv = runOnce(["--print-config"], { METRICS_TOKEN: "env-secret-88d0" });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /^metrics-token = "<redacted>" # env METRICS_TOKEN$/m);
    assert.doesNotMatch(fromEnv.stdout + fromEnv.stderr, /env-secret-88d0/);

    const help = runOnce(["--help"], { METRICS_TOKEN: "env-secret-88d0" });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--metrics-token/);
    assert.doesNotMatch(help.stdout, /env-secret-88d0/);
  });

  it("the printed configuration is itself a valid file", () => {
    const printed = runOnce(["--config", FILE, "--print-config", "--port", "4200"]);
    assert.equal(printed.code, 0, printed.stderr);
    const copy = tmp.file("printed.toml");
    writeFileSync(copy, printed.stdout);
    const again = runOnce(["--config", copy, "--print-config"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^port = 4200 # file$/m);
    assert.match(again.stdout, /^namespace = "\/from-file" # file$/m);
  });

  for (const [content, key, why] of [
    ["max-paylod = 5\n", "max-paylod", /unknown key/],
    ["port = \"many\"\n", "port", /invalid value `many`/],
    ["ping-interval = \"2h\"\n", "ping-interval", /invalid value `2h`/],
    ["log-format = \"xml\"\n", "log-format", /pretty, json/],
    ["cors-credentials = \"yes\"\n", "cors-credentials", /invalid value `yes`/],
    ["relay-scope = \"everyone\"\n", "relay-scope", /invalid value `everyone`/],
    ["[server]\nport = 1\n", "server", /unknown key/],
  ]) {
    it(`refused, naming the key: ${content.trim().replace("\n", " ")}`, () => {
      const bad = tmp.file(`bad-${key}.toml`);
      writeFileSync(bad, content);
      const r = runOnce(["--config", bad, "--port", "0"]);
      assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(`\`${key}\``), r.stderr);
      assert.match(r.stderr, why);
      assert.doesNotMatch(r.stderr, /listening on/);
    });
  }

  it("a file that is not TOML is refused with its position", () => {
    const bad = tmp.file("broken.toml");
    writeFileSync(bad, "port = \n");
    const r = runOnce(["--config", bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /broken\.toml.*line 1/s);
  });
});
