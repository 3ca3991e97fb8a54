// A throwaway redis-server for the cluster suites: a free 127.0.0.1 port, a
// temporary directory, no persistence (a restart starts empty, as a Redis
// that lost its data would), stopped and removed afterwards. Never touches a
// system instance. Fails, rather than skips, when redis-server is missing.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./postgres.mjs";

const BIN = process.env.RTCIO_REDIS_BIN ?? "redis-server";

async function waitPort(port, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts redis-server; resolves to `{ url, unixUrl, port, stop(), start(), restart(), destroy() }`
 * (`unixUrl`: the same server on a Unix socket in its temporary directory).
 * `stop()` kills it (SIGKILL: the cluster must cope with a Redis that vanishes),
 * `start()` starts it again on the same port, empty.
 */
export async function startRedis() {
  try {
    execFileSync(BIN, ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("redis-server not found: install the Debian package redis-server (or set RTCIO_REDIS_BIN)");
  }
  const dir = mkdtempSync(path.join(tmpdir(), "rtcio-redis-"));
  const port = await freePort();
  let child = null;
  const start = async () => {
    child = spawn(
      BIN,
      [
        "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "yes",
        "--unixsocket", path.join(dir, "redis.sock"), "--unixsocketperm", "700",
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    await waitPort(port);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    unixUrl: `unix://${path.join(dir, "redis.sock")}`,
    port,
    start,
    stop,
    async restart() {
      await stop();
      await start();
    },
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
