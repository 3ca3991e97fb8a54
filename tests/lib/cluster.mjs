// A cluster of rtcio-server processes on one Redis, for the cluster suites:
// N nodes on 127.0.0.1 (port 0 each, so no clashes), every one started with
// REDIS_URL and the suites' environment (SUITE_ENV of tests/server/server.mjs),
// plus whatever `args` / `env` a test adds on top.
//
//   const redis = await startRedis();
//   const cluster = await startCluster(3, { redisUrl: redis.url });
//   cluster.urls[0] ... cluster.kill(1) ... await cluster.stop(); await redis.destroy();
import { startSignaling } from "../server/server.mjs";

/**
 * Starts `n` nodes. Resolves to:
 *   nodes[i]      the harness handle ({ url, proc, output(), stop(signal) })
 *   urls[i]       http://127.0.0.1:PORT of node i
 *   kill(i)       SIGKILL node i (no goodbye); resolves once it exited
 *   stopNode(i)   SIGTERM node i (graceful: goodbye published); resolves once it exited
 *   start(i)      starts node i again (a new process, new port: urls[i] changes)
 *   stop()        stops every node still running
 *   output(i)     what node i printed so far
 * Nodes start one after another; each has said "listening" when this resolves.
 * `args` / `env` may be functions of the node index for per-node settings.
 */
export async function startCluster(n, { redisUrl, args = [], env = {} } = {}) {
  if (!redisUrl) throw new Error("startCluster needs { redisUrl } (tests/lib/redis.mjs startRedis())");
  const argsOf = (i) => (typeof args === "function" ? args(i) : args);
  const envOf = (i) => ({ REDIS_URL: redisUrl, ...(typeof env === "function" ? env(i) : env) });
  const nodes = [];
  const urls = [];
  const startOne = async (i) => {
    const handle = await startSignaling(argsOf(i), { env: envOf(i) });
    nodes[i] = handle;
    urls[i] = handle.url;
    return handle;
  };
  try {
    for (let i = 0; i < n; i++) await startOne(i);
  } catch (e) {
    await Promise.all(nodes.filter(Boolean).map((h) => h.stop("SIGKILL")));
    throw e;
  }
  const running = (h) => h && h.proc.exitCode === null && h.proc.signalCode === null;
  return {
    nodes,
    urls,
    async kill(i) {
      return nodes[i].stop("SIGKILL");
    },
    async stopNode(i) {
      return nodes[i].stop("SIGTERM");
    },
    start: startOne,
    output(i) {
      return nodes[i].output();
    },
    async stop() {
      await Promise.all(nodes.filter(running).map((h) => h.stop("SIGKILL")));
    },
  };
}
