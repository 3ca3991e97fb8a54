// Helpers shared by the operations suites (metrics, logs, configuration,
// readiness, TLS, nginx, capacity): scraping /metrics, waiting for a log
// line, running the binary for a one-shot command, raw Engine.IO clients.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, until } from "../lib/harness.mjs";

export const BIN = process.env.RTCIO_SERVER_BIN ?? path.join(ROOT, "target", "debug", "rtcio-server");

export function requireBinary() {
  if (!existsSync(BIN)) throw new Error(`${BIN} not found: run \`cargo build -p rtcio-server\``);
}

/**
 * GETs `url` + `/metrics` and returns a Map from `name{labels}` (exactly as
 * rendered, labels in the exporter's order) to the numeric value.
 */
export async function scrape(url, headers = {}) {
  const res = await fetch(`${url}/metrics`, { headers });
  assert200(res, "/metrics");
  return parseMetrics(await res.text());
}

function assert200(res, what) {
  if (res.status !== 200) throw new Error(`${what} answered ${res.status}`);
}

export function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return values;
}

/** The value of `key` in a scrape, 0 when the series does not exist yet. */
export const metric = (values, key) => values.get(key) ?? 0;

/** Resolves with the first match of `regex` in the server's output (stdout + stderr). */
export async function waitForOutput(server, regex, ms = 10_000, what = String(regex)) {
  let m = null;
  await until(() => (m = server.output().match(regex)) !== null, ms, what);
  return m;
}

/** Runs the binary to completion (for --print-config, --help, refused configurations). */
export function runOnce(args, env = {}) {
  const r = spawnSync(BIN, args, { env: { ...process.env, ...env }, encoding: "utf8", timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A temporary directory removed by `cleanup()`. */
export function tempDir(label) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `rtcio-${label}-`));
  return { dir, file: (name) => path.join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Opens a bare Engine.IO WebSocket and joins the main namespace (`40`):
 * the cheapest real client, for tests that need many connections. Resolves
 * with the `ws` once the server acknowledged the namespace connection.
 */
export async function rawSocket(url, WebSocket) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("raw socket: no namespace ack within 20 s"));
    }, 20_000);
    ws.on("message", (data) => {
      const text = data.toString();
      if (text.startsWith("0{")) ws.send("40");
      else if (text.startsWith("40{")) {
        clearTimeout(timer);
        resolve(ws);
      } else if (text === "2") ws.send("3");
    });
    ws.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
