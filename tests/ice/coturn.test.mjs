// The real proof: a coturn TURN server (Debian's `coturn`, started here on a
// free 127.0.0.1 port with `use-auth-secret`) accepts the credentials that
// ask-ice (real socket.io-client@4) and GET /ice hand out, and refuses a
// tampered credential, one minted with another secret, and an expired one.
//
// The allocation is made by coturn's own client, `turnutils_uclient`, in its
// client-to-client mode (-y): it allocates two relays on the TURN server and
// sends a message through them. Measured with coturn 4.6.1:
//   success  exit code 0; with -v it prints `Received relay addr: IP:PORT`
//   refused  exit code 255 (-1) and `ERROR: Cannot complete Allocation`
//            (coturn answers 401 to every attempt; its log says
//            `check_stun_auth: Cannot find credentials of user <USERNAME>`)
// coturn missing is a failure, not a skip: `.ci/run` installs it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import crypto from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { ask, modes } from "../lib/harness.mjs";
import { KIND, clientPool, startSignaling } from "../server/server.mjs";
import { credential, expectMinted, getIce, nowSecs } from "./ice.mjs";

const SKIP = KIND === "node" && "the Node reference server has no ask-ice";
const NEW_SECRET = "rotated-in-secret-4b1e";
const OLD_SECRET = "rotating-out-secret-c07d";
const OTHER_SECRET = "a-secret-coturn-does-not-have";

/** A port free for both TCP and UDP on 127.0.0.1 right now (coturn listens on both). */
async function freeTcpUdpPort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = net.createServer();
    await new Promise((resolve, reject) => tcp.once("error", reject).listen(0, "127.0.0.1", resolve));
    const { port } = tcp.address();
    const udp = dgram.createSocket("udp4");
    const ok = await new Promise((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise((r) => tcp.close(r));
    if (ok) await new Promise((r) => udp.close(r));
    else udp.close();
    if (ok) return port;
  }
  throw new Error("no port free for both TCP and UDP");
}

/** Resolves once a STUN Binding request to 127.0.0.1:port gets a Binding success response. */
async function stunReady(port, ms = 20_000) {
  const socket = dgram.createSocket("udp4");
  const id = crypto.randomBytes(12);
  // RFC 5389 header: type 0x0001 (Binding request), length 0, magic cookie, transaction id.
  const request = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), id]);
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`coturn did not answer STUN on ${port} within ${ms} ms`)), ms);
      const retry = setInterval(() => socket.send(request, port, "127.0.0.1"), 100);
      socket.on("message", (msg) => {
        if (msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(id)) {
          clearTimeout(timer);
          clearInterval(retry);
          resolve();
        }
      });
      socket.on("error", () => {}); // ICMP port unreachable before coturn listens
      socket.send(request, port, "127.0.0.1");
    });
  } finally {
    socket.close();
  }
}

/**
 * Starts turnserver with a config file, log, pid file and user database in a
 * temporary directory (so no system file is read or written), on 127.0.0.1
 * only, TURN REST API auth with `secrets`, no TLS/DTLS, no CLI.
 */
async function startCoturn(secrets) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "rtcio-coturn-"));
  const port = await freeTcpUdpPort();
  const conf = path.join(dir, "turnserver.conf");
  writeFileSync(
    conf,
    [
      "listening-ip=127.0.0.1",
      `listening-port=${port}`,
      "relay-ip=127.0.0.1",
      // uclient's client-to-client mode relays between two allocations on loopback.
      "allow-loopback-peers",
      "use-auth-secret",
      ...secrets.map((s) => `static-auth-secret=${s}`),
      "realm=rtcio.test",
      "no-tls",
      "no-dtls",
      "no-cli",
      "no-rfc5780",
      `log-file=${path.join(dir, "turn.log")}`,
      "simple-log",
      `pidfile=${path.join(dir, "turn.pid")}`,
      `userdb=${path.join(dir, "turndb")}`,
      "",
    ].join("\n"),
  );
  const proc = spawn("turnserver", ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout.on("data", (c) => (output += c));
  proc.stderr.on("data", (c) => (output += c));
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  const spawned = await new Promise((resolve) => {
    proc.once("spawn", () => resolve(null));
    proc.once("error", (e) => resolve(e));
  });
  if (spawned) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot run turnserver (${spawned.code ?? spawned.message}): install Debian's coturn (.ci/run does)`);
  }
  await Promise.race([
    stunReady(port),
    exited.then(({ code }) => {
      throw new Error(`turnserver exited (${code}) before listening:\n${output}`);
    }),
  ]);
  return {
    port,
    log: () => readFileSync(path.join(dir, "turn.log"), "utf8"),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs coturn's client against a `turn:` URL with `username`/`credential`:
 * allocate relays and send a message through them.
 * Resolves to `{ code, output }` (never rejects on a refusal).
 */
function uclient(url, username, password) {
  const m = url.match(/^turn:([\d.]+):(\d+)\?transport=(udp|tcp)$/);
  assert.ok(m, `a turn: URL for the local coturn: ${url}`);
  const [, host, port, transport] = m;
  const args = ["-v", "-y", "-n", "1", "-m", "1", "-p", port, "-u", username, "-w", password];
  if (transport === "tcp") args.unshift("-t");
  args.push(host);
  return new Promise((resolve, reject) => {
    const proc = spawn("turnutils_uclient", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    proc.stdout.on("data", (c) => (output += c));
    proc.stderr.on("data", (c) => (output += c));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
    proc.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run turnutils_uclient (${e.code ?? e.message}): install Debian's coturn (.ci/run does)`));
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

async function assertAllocates(url, username, password) {
  const { code, signal, output } = await uclient(url, username, password);
  assert.equal(code, 0, `turnutils_uclient exit code (signal ${signal}):\n${output.slice(-2000)}`);
  assert.match(output, /Received relay addr: 127\.0\.0\.1:\d+/, "a relay was allocated");
  assert.doesNotMatch(output, /Cannot complete Allocation/);
}

async function assertRefused(coturn, url, username, password) {
  const { code, output } = await uclient(url, username, password);
  assert.notEqual(code, 0, `turnutils_uclient must fail:\n${output.slice(-2000)}`);
  assert.match(output, /Cannot complete Allocation/);
  assert.doesNotMatch(output, /Received relay addr/);
  // coturn itself says why: it could not match the credential of this user.
  assert.ok(coturn.log().includes(`Cannot find credentials of user <${username}>`), `coturn logged the refusal of ${username}`);
}

/** The `turn:` entry of an answer for `transport`. */
const turnEntry = (answer, transport) => answer.iceServers.find((s) => s.urls.endsWith(`?transport=${transport}`) && s.urls.startsWith("turn:"));

describe("coturn accepts what ask-ice and GET /ice mint", { skip: SKIP }, () => {
  let coturn;
  let server;
  before(async () => {
    // coturn in the middle of a rotation: it has both secrets; we mint with the new one.
    coturn = await startCoturn([OLD_SECRET, NEW_SECRET]);
    server = await startSignaling([], {
      env: { TURN_SECRET: `${NEW_SECRET},${OLD_SECRET}`, TURN_HOST: "127.0.0.1", TURN_PORT: String(coturn.port) },
    });
  });
  after(async () => {
    await server?.stop();
    await coturn?.stop();
  });
  const pool = clientPool();
  afterEach(() => pool.closeAll());
  const expected = () => ({ hosts: ["127.0.0.1"], port: coturn.port, secret: NEW_SECRET });

  for (const [mode] of modes()) {
    it(`ask-ice credentials allocate a relay over UDP (${mode})`, async () => {
      const { socket } = await pool.connect(server.url, mode);
      const answer = await expectMinted(() => ask(socket, "ask-ice"), expected());
      const { urls, username, credential: password } = turnEntry(answer, "udp");
      await assertAllocates(urls, username, password);
    });
  }

  it("GET /ice credentials allocate a relay over UDP and over TCP", async () => {
    const answer = await expectMinted(async () => (await getIce(server.url)).body, expected());
    for (const transport of ["udp", "tcp"]) {
      const { urls, username, credential: password } = turnEntry(answer, transport);
      await assertAllocates(urls, username, password);
    }
  });

  it("the `expiry:userId` username of authenticated users is accepted too", async () => {
    const answer = (await getIce(server.url)).body;
    const { urls, username } = turnEntry(answer, "udp");
    const named = `${username}:alice`;
    await assertAllocates(urls, named, credential(NEW_SECRET, named));
  });

  it("rotation: credentials minted with the outgoing secret are still accepted", async () => {
    const answer = (await getIce(server.url)).body;
    const { urls, username } = turnEntry(answer, "udp");
    await assertAllocates(urls, username, credential(OLD_SECRET, username));
  });

  it("a tampered credential is refused", async () => {
    const { socket } = await pool.connect(server.url, "websocket");
    const { urls, username, credential: password } = turnEntry(await ask(socket, "ask-ice"), "udp");
    const flipped = (password[0] === "A" ? "B" : "A") + password.slice(1);
    await assertRefused(coturn, urls, username, flipped);
  });

  it("a username with a pushed-back expiry is refused (the credential signs the username)", async () => {
    const { urls, username, credential: password } = turnEntry((await getIce(server.url)).body, "udp");
    await assertRefused(coturn, urls, String(Number(username) + 3600), password);
  });

  it("an already-expired username is refused, though correctly signed", async () => {
    const { urls } = turnEntry((await getIce(server.url)).body, "udp");
    const expired = String(nowSecs() - 60);
    await assertRefused(coturn, urls, expired, credential(NEW_SECRET, expired));
  });

  it("credentials minted by a server with another secret are refused", async () => {
    const other = await startSignaling([], {
      env: { TURN_SECRET: OTHER_SECRET, TURN_HOST: "127.0.0.1", TURN_PORT: String(coturn.port) },
    });
    try {
      const answer = await expectMinted(async () => (await getIce(other.url)).body, { ...expected(), secret: OTHER_SECRET });
      const { urls, username, credential: password } = turnEntry(answer, "udp");
      await assertRefused(coturn, urls, username, password);
    } finally {
      await other.stop();
    }
  });
});
