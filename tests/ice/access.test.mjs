// ICE vending behind the access controls of the binary: `GET /ice` and
// `ask-ice` accept exactly the socket's JWTs (username `expiry:sub`), and both
// paths are rate-limited — `GET /ice` per client IP on the handshake budget,
// `ask-ice` by the per-socket event limiter like every other event.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { ask } from "../lib/harness.mjs";
import { KIND, clientPool, startSignaling } from "../server/server.mjs";
import { now, sign } from "../server/tokens.mjs";
import { expectMinted, getIce } from "./ice.mjs";

const SKIP = KIND === "node" && "the Node reference server has no ask-ice";
const TURN = "access-turn-secret-5d1e";
const HOST = "turn.example.test";
const JWT = "access-jwt-secret-for-ice-tests-0b7c";
const token = (claims = {}) => sign("HS256", { sub: "alice", exp: now() + 600, ...claims }, JWT);

describe("GET /ice and ask-ice with JWT authentication", { skip: SKIP }, () => {
  let server;
  before(async () => {
    server = await startSignaling([], { env: { TURN_SECRET: TURN, TURN_HOST: HOST, JWT_SECRET: JWT } });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("GET /ice without a token is refused with 401 and `missing token`", async () => {
    const { res, body } = await getIce(server.url);
    assert.equal(res.status, 401);
    assert.equal(body.message, "missing token");
  });

  it("GET /ice with a token signed by another key is refused with `invalid token`", async () => {
    const forged = sign("HS256", { sub: "alice", exp: now() + 600 }, "some-other-secret-entirely-9a2f");
    const { res, body } = await getIce(server.url, { authorization: `Bearer ${forged}` });
    assert.equal(res.status, 401);
    assert.equal(body.message, "invalid token");
  });

  it("GET /ice with the socket's JWT mints `expiry:sub` credentials", async () => {
    await expectMinted(
      async () => {
        const { res, body } = await getIce(server.url, { authorization: `Bearer ${token()}` });
        assert.equal(res.status, 200);
        return body;
      },
      { hosts: [HOST], secret: TURN, userId: "alice" },
    );
  });

  for (const mode of ["websocket", "polling"]) {
    it(`ask-ice on an authenticated socket mints \`expiry:sub\` (${mode})`, async () => {
      const { socket } = await pool.connect(server.url, mode, { auth: { token: token({ sub: "bob" }) } });
      await expectMinted(() => ask(socket, "ask-ice"), { hosts: [HOST], secret: TURN, userId: "bob" });
    });
  }
});

describe("GET /ice and ask-ice are rate-limited", { skip: SKIP }, () => {
  let server;
  before(async () => {
    server = await startSignaling([], {
      env: { TURN_SECRET: TURN, TURN_HOST: HOST, RATE_LIMIT: "1", HANDSHAKE_LIMIT: "5", EVENT_RATE: "2/4" },
    });
  });
  after(() => server?.stop());
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("GET /ice past the per-IP budget answers 429 rate-limited with Retry-After", async () => {
    const statuses = [];
    let refused;
    for (let i = 0; i < 12; i++) {
      const { res, body } = await getIce(server.url);
      statuses.push(res.status);
      if (res.status === 429) {
        refused = { res, body };
        break;
      }
    }
    assert.ok(refused, `a refusal within 12 requests: ${statuses}`);
    assert.equal(refused.body.code, "rate-limited");
    assert.ok(Number(refused.res.headers.get("retry-after")) >= 1);
    // The budget is 5 per minute: at most 5 answered before the refusal.
    assert.ok(statuses.filter((s) => s === 200).length <= 5, `${statuses}`);
  });

  it("a burst of ask-ice past the event budget gets error rate-limited naming the event", async () => {
    const { socket } = await pool.connect(server.url, "websocket");
    const refused = new Promise((resolve) => socket.on("error", (e) => e?.code === "rate-limited" && resolve(e)));
    let answered = 0;
    for (let i = 0; i < 20; i++) socket.emit("ask-ice", () => answered++);
    const error = await refused;
    assert.equal(error.event, "ask-ice");
    // Burst 4 at 2/s: far fewer than the 20 sent at once were answered.
    assert.ok(answered <= 10, `answered ${answered} of 20`);
  });
});
