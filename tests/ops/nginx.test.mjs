// The shipped nginx block (docs/nginx.conf) in front of the server: a real
// Debian nginx, started by the test on loopback with that very file (only
// its two ports replaced), carries socket.io-client on websocket, polling
// and polling→websocket upgrade.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { ROOT, modes, next } from "../lib/harness.mjs";
import { clientPool, eventually, join, startSignaling, uniqueRoom } from "../server/server.mjs";
import { requireBinary, tempDir } from "./ops.mjs";

requireBinary();

const NGINX = process.env.NGINX_BIN ?? "/usr/sbin/nginx";

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** docs/nginx.conf with the upstream and listen ports replaced, and nothing else. */
function shippedBlock(upstreamPort, listenPort) {
  const block = readFileSync(path.join(ROOT, "docs", "nginx.conf"), "utf8");
  assert.ok(block.includes("server 127.0.0.1:3001;") && block.includes("listen 80;"), "the block's ports");
  return block
    .replace("server 127.0.0.1:3001;", `server 127.0.0.1:${upstreamPort};`)
    .replace("listen 80;", `listen 127.0.0.1:${listenPort};`);
}

async function startNginx(tmp, upstreamPort) {
  const port = await freePort();
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"]) mkdirSync(tmp.file(d), { recursive: true });
  writeFileSync(tmp.file("rtcio.conf"), shippedBlock(upstreamPort, port));
  const user = process.getuid?.() === 0 ? "user root;" : "";
  writeFileSync(
    tmp.file("nginx.conf"),
    `${user}
worker_processes 1;
pid ${tmp.file("nginx.pid")};
error_log ${tmp.file("logs/error.log")} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${tmp.file("body")};
  proxy_temp_path ${tmp.file("proxy")};
  fastcgi_temp_path ${tmp.file("fastcgi")};
  uwsgi_temp_path ${tmp.file("uwsgi")};
  scgi_temp_path ${tmp.file("scgi")};
  include ${tmp.file("rtcio.conf")};
}
`,
  );
  const proc = spawn(NGINX, ["-p", tmp.dir, "-e", tmp.file("logs/error.log"), "-c", tmp.file("nginx.conf"), "-g", "daemon off;"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout.on("data", (c) => (output += c));
  proc.stderr.on("data", (c) => (output += c));
  const exited = once(proc, "exit");
  const url = `http://127.0.0.1:${port}`;
  // Up once it proxies /health to the server.
  await eventually(async () => {
    assert.equal(proc.exitCode, null, `nginx exited: ${output}`);
    const res = await fetch(`${url}/health`);
    assert.equal(res.status, 200);
  }, 15_000);
  return {
    url,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGQUIT");
      await exited;
    },
  };
}

describe("behind nginx (docs/nginx.conf)", () => {
  const tmp = tempDir("nginx");
  let server;
  let nginx;
  before(async () => {
    server = await startSignaling();
    nginx = await startNginx(tmp, new URL(server.url).port);
  });
  after(async () => {
    await nginx?.stop();
    await server?.stop();
    tmp.cleanup();
  });
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("proxies /health and /ready", async () => {
    assert.equal(await (await fetch(`${nginx.url}/health`)).text(), "ok");
    assert.deepEqual(await (await fetch(`${nginx.url}/ready`)).json(), { status: "ready" });
  });

  for (const [mode] of modes()) {
    it(`socket.io-client through nginx: join, presence, relay (${mode})`, async () => {
      const R = uniqueRoom();
      const A = await pool.connect(nginx.url, mode);
      const B = await pool.connect(nginx.url, mode);
      await join(A, R, "alice");
      const seen = next(A.socket, "user-connected");
      await join(B, R, "bob");
      assert.deepEqual(await seen, { id: B.id, name: "bob" });
      const envelope = { source: B.id, target: A.id, data: { sdp: "v=0" } };
      const got = next(A.socket, "#rtcio:message");
      B.socket.emit("#rtcio:message", envelope);
      assert.deepEqual(await got, envelope);
      const expected = mode === "polling" ? "polling" : "websocket";
      assert.equal(A.socket.io.engine.transport.name, expected);
      assert.equal(B.socket.io.engine.transport.name, expected);
    });
  }
});
