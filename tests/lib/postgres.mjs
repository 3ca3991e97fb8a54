// A throwaway PostgreSQL cluster for the suites that need one: initdb in a
// temporary directory, pg_ctl on a free 127.0.0.1 port (Unix socket in the
// same directory), stopped and removed afterwards. PostgreSQL refuses to run
// as root, so as root (CI) every command runs as the `postgres` user of the
// Debian package, which owns the directory. Never touches a system instance.
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);
const BIN = process.env.RTCIO_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts a cluster; resolves to `{ url, stop(), start(), destroy() }` where
 * `url` is `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth on loopback).
 */
export async function startPostgres() {
  if (!existsSync(path.join(BIN, "initdb"))) {
    throw new Error(`PostgreSQL not found in ${BIN}: install the Debian package postgresql (or set RTCIO_PG_BIN)`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), "rtcio-pg-"));
  const root = process.getuid?.() === 0;
  if (root) {
    const { stdout: uid } = await exec("id", ["-u", "postgres"]);
    const { stdout: gid } = await exec("id", ["-g", "postgres"]);
    chownSync(dir, Number(uid), Number(gid));
  }
  const run = (tool, args) =>
    root ? exec("runuser", ["-u", "postgres", "--", path.join(BIN, tool), ...args]) : exec(path.join(BIN, tool), args);
  const data = path.join(dir, "data");
  await run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const start = () => run("pg_ctl", ["-D", data, "-l", path.join(dir, "server.log"), "-w", "-t", "60", "-o", options, "start"]);
  const stop = () => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async destroy() {
      await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
