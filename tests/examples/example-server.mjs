// Starts the runnable Rust recipes under examples/ (built by
// `cargo build --workspace --all-targets` into target/debug/examples/<name>,
// or $RTCIO_EXAMPLES_DIR/<name>) for the suites in this folder.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { ROOT } from "../lib/harness.mjs";

const DIR = process.env.RTCIO_EXAMPLES_DIR ?? path.join(ROOT, "target", "debug", "examples");

/** A TCP port nobody listens on right now (bound on port 0, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "0.0.0.0", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts example `name` on a free port and resolves once GET /health answers
 * `ok`. Retries on another port if the process exits first (the port was
 * taken between the probe and the bind). `env` is added to the environment.
 */
export async function startExample(name, env = {}) {
  const bin = path.join(DIR, name);
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: run \`cargo build --workspace --all-targets\` or set RTCIO_EXAMPLES_DIR`);
  }
  let lastOutput = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = spawn(bin, [], {
      env: { ...process.env, PORT: String(port), RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    proc.stdout.on("data", (c) => (output += c));
    proc.stderr.on("data", (c) => (output += c));
    const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
    let gone = false;
    exited.then(() => (gone = true));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    while (!gone && Date.now() < deadline) {
      try {
        const res = await fetch(`${url}/health`);
        if (res.status === 200 && (await res.text()) === "ok") {
          return {
            url,
            output: () => output,
            async stop() {
              if (!gone) proc.kill("SIGTERM");
              await exited;
            },
          };
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!gone) {
      proc.kill("SIGKILL");
      await exited;
      throw new Error(`example ${name} did not answer GET /health on port ${port} within 20 s:\n${output}`);
    }
    lastOutput = output;
  }
  throw new Error(`example ${name} exited before listening (3 attempts):\n${lastOutput}`);
}

