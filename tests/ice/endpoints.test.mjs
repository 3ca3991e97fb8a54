// ask-ice (socket, with an acknowledgement) and GET /ice (plain HTTP) on the
// rtcio-server binary, without a TURN server: the exact answer, the
// STUN-only fallback, CORS and caching, and the secret kept out of every
// output. tests/ice/coturn.test.mjs proves a real coturn accepts what is minted.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { ROOT, ask, modes, next } from "../lib/harness.mjs";
import { KIND, clientPool, startSignaling } from "../server/server.mjs";
import { expectMinted, getIce } from "./ice.mjs";

const SKIP = KIND === "node" && "the Node reference server has no ask-ice";
const FIRST = "first-turn-secret-7f3a";
const SECOND = "second-turn-secret-91c4";
const HOST = "turn.example.test";

describe("ask-ice and GET /ice with a TURN secret", { skip: SKIP }, () => {
  let server;
  before(async () => {
    // Debug logs on: the secret must not show up even there.
    server = await startSignaling([], {
      env: { TURN_SECRET: `${FIRST},${SECOND}`, TURN_HOST: HOST, RUST_LOG: "debug" },
    });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  for (const [mode] of modes()) {
    it(`ask-ice answers the seed's { iceServers }, minted with the first secret (${mode})`, async () => {
      const { socket } = await pool.connect(server.url, mode);
      await expectMinted(() => ask(socket, "ask-ice"), { hosts: [HOST], secret: FIRST });
    });

    it(`ask-ice without an acknowledgement gets error bad-request; the socket stays usable (${mode})`, async () => {
      const { socket } = await pool.connect(server.url, mode);
      const error = next(socket, "error");
      socket.emit("ask-ice");
      const payload = await error;
      assert.equal(payload.code, "bad-request");
      assert.equal(typeof payload.message, "string");
      assert.ok(payload.message.length > 0);
      assert.ok(socket.connected);
      await expectMinted(() => ask(socket, "ask-ice"), { hosts: [HOST], secret: FIRST });
    });
  }

  it("GET /ice answers the same JSON, uncacheable", async () => {
    let res;
    await expectMinted(
      async () => {
        const got = await getIce(server.url);
        res = got.res;
        return got.body;
      },
      { hosts: [HOST], secret: FIRST },
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^application\/json/);
    assert.equal(res.headers.get("cache-control"), "no-store");
  });

  it("GET /ice with the socket's CORS policy (default `*`), preflight included", async () => {
    const { res } = await getIce(server.url, { origin: "https://app.example.test" });
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const preflight = await fetch(`${server.url}/ice`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example.test",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
      },
    });
    assert.ok(preflight.status === 200 || preflight.status === 204, `preflight status ${preflight.status}`);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
    assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /GET/);
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /authorization/i);
  });

  it("only GET: POST /ice → 405", async () => {
    const res = await fetch(`${server.url}/ice`, { method: "POST" });
    assert.equal(res.status, 405);
  });

  it("the secrets never appear in the server's output (debug logs on)", async () => {
    // Something to log first: an answered ask-ice and a GET /ice.
    const { socket } = await pool.connect(server.url, "polling");
    await ask(socket, "ask-ice");
    await getIce(server.url);
    assert.match(server.output(), /mint TURN credentials/, "the start-up line says credentials are minted");
    assert.ok(!server.output().includes(FIRST), "first secret in the output");
    assert.ok(!server.output().includes(SECOND), "second secret in the output");
  });
});

describe("TURN settings", { skip: SKIP }, () => {
  it("hosts, ports, transports, TTL and extra STUN URLs from the flags; ask-ice on --namespace", async () => {
    const server = await startSignaling([
      "--namespace", "/rtc",
      "--turn-host", "a.example.test,b.example.test",
      "--turn-port", "3479",
      "--turn-tls-port", "443",
      "--turn-transports", "udp,tls",
      "--turn-ttl", "2m",
      "--stun-urls", "stun:stun.example.test:19302",
    ], { env: { TURN_SECRET: FIRST } });
    const pool = clientPool();
    try {
      const { socket } = await pool.connect(`${server.url}/rtc`, "websocket");
      const answer = await ask(socket, "ask-ice");
      const { username, credential } = answer.iceServers[1];
      const minted = { username, credential };
      assert.deepEqual(answer, {
        iceServers: [
          { urls: "stun:a.example.test:3479" },
          { urls: "turn:a.example.test:3479?transport=udp", ...minted },
          { urls: "turns:a.example.test:443?transport=tcp", ...minted },
          { urls: "stun:b.example.test:3479" },
          { urls: "turn:b.example.test:3479?transport=udp", ...minted },
          { urls: "turns:b.example.test:443?transport=tcp", ...minted },
          { urls: "stun:stun.example.test:19302" },
        ],
      });
      const expiry = Number(username);
      const now = Math.floor(Date.now() / 1000);
      assert.ok(expiry > now + 100 && expiry <= now + 120, `TTL 2m: expiry ${expiry}, now ${now}`);
    } finally {
      pool.closeAll();
      await server.stop();
    }
  });

  it("a secret without a TURN host is refused at start-up, without echoing the secret", async () => {
    const err = await startSignaling([], { env: { TURN_SECRET: FIRST } }).then(
      (s) => (s.stop(), assert.fail("the server started")),
      (e) => e,
    );
    assert.match(err.message, /exited \(2\)/);
    assert.match(err.message, /TURN_HOST/);
    assert.ok(!err.message.includes(FIRST), err.message);
  });

  it("--help documents the settings and hides TURN_SECRET's value", () => {
    const bin = process.env.RTCIO_SERVER_BIN ?? path.join(ROOT, "target", "debug", "rtcio-server");
    const help = spawnSync(bin, ["--help"], { env: { ...process.env, TURN_SECRET: FIRST }, encoding: "utf8" });
    assert.equal(help.status, 0);
    for (const name of ["TURN_SECRET", "TURN_HOST", "TURN_TTL", "TURN_PORT", "TURN_TLS_PORT", "TURN_TRANSPORTS", "STUN_URLS"]) {
      assert.ok(help.stdout.includes(`[env: ${name}`), `--help names ${name}`);
    }
    assert.ok(!help.stdout.includes(FIRST) && !help.stderr.includes(FIRST), "the secret is not printed");
  });
});

describe("STUN only (no TURN secret)", { skip: SKIP }, () => {
  const STUN = ["stun:stun.example.test:3478", "stun:stun2.example.test:19302"];
  let server;
  before(async () => {
    server = await startSignaling([], { env: { STUN_URLS: STUN.join(",") } });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());
  const expected = { iceServers: STUN.map((urls) => ({ urls })) };

  it("warns at start-up that relayed calls will fail", () => {
    assert.match(server.output(), /WARN.*TURN_SECRET is not set.*STUN only.*relayed calls will fail/);
  });

  for (const [mode] of modes()) {
    it(`ask-ice answers the configured STUN URLs, nothing minted (${mode})`, async () => {
      const { socket } = await pool.connect(server.url, mode);
      assert.deepEqual(await ask(socket, "ask-ice"), expected);
    });
  }

  it("GET /ice answers the same", async () => {
    const { res, body } = await getIce(server.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.deepEqual(body, expected);
  });
});
