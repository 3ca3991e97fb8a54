// A throwaway nginx for the suites that test a shipped nginx block: the
// Debian binary, its own prefix in a temporary directory, a free loopback
// port, the block included as it ships (the caller replaces only ports),
// stopped with SIGQUIT afterwards. Never touches a system instance.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { freePort } from "./postgres.mjs";
import { eventually } from "../server/server.mjs";

const NGINX = process.env.NGINX_BIN ?? "/usr/sbin/nginx";

/**
 * Starts nginx in `tmp` (a `tempDir()`) with `block(listenPort)` — the
 * shipped block with its ports filled in — inside `http {}`. Resolves once
 * nginx proxies `/health`, to `{ url, stop() }`.
 */
export async function startNginx(tmp, block) {
  const port = await freePort();
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"]) mkdirSync(tmp.file(d), { recursive: true });
  writeFileSync(tmp.file("site.conf"), block(port));
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
  include ${tmp.file("site.conf")};
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
  // Up once it proxies /health to a server behind it.
  await eventually(async () => {
    assert.equal(proc.exitCode, null, `nginx exited: ${output}`);
    assert.equal((await fetch(`${url}/health`)).status, 200);
  }, 15_000);
  return {
    url,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGQUIT");
      await exited;
    },
  };
}
