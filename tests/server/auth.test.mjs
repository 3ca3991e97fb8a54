// JWT authentication of the Socket.IO handshake (issue 8): with a secret, a
// PEM public key and a JWKS served by a small HTTP server started here, every
// refusal gives the seed's exact `connect_error` messages ("missing token",
// "invalid token"), the log says why without printing the token, and an
// accepted token's `sub` shows up as `userId` in presence.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { until } from "../lib/harness.mjs";
import { KIND, attempt, clientPool, join, startSignaling, uniqueRoom, waitAny } from "./server.mjs";
import { ecKeys, jwk, now, pemFile, rsaKeys, sign, startService } from "./tokens.mjs";

const AUTH_MODES = ["websocket", "polling", "upgrade"];
const SECRET = "test-secret-0123456789";
const AUDIENCE = "rtcio-calls";
const ISSUER = "https://issuer.test";

async function refusedWith(url, mode, opts, message) {
  const r = await attempt(url, mode, opts);
  if (r.ok) r.socket.close();
  assert.equal(r.ok, false, "the connection must be refused");
  assert.equal(r.message, message);
}

async function accepted(url, mode, opts) {
  const r = await attempt(url, mode, opts);
  assert.equal(r.ok, true, `refused: ${r.message}`);
  r.socket.close();
}

const claims = (extra = {}) => ({ sub: "alice", username: "Alice", aud: AUDIENCE, iss: ISSUER, exp: now() + 600, ...extra });

describe("JWT auth", { skip: KIND === "node" && "the reference server has no auth" }, () => {
  describe("with a shared secret (HS256)", () => {
    let server;
    before(async () => {
      server = await startSignaling([], { env: { JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, JWT_ISSUER: ISSUER } });
    });
    after(() => server?.stop());
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    it("the start-up log says auth is on and never shows the secret", () => {
      assert.match(server.output(), /authentication on/);
      assert.doesNotMatch(server.output(), new RegExp(SECRET));
    });

    for (const mode of AUTH_MODES) {
      describe(mode, () => {
        it("no token → connect_error `missing token`", async () => {
          await refusedWith(server.url, mode, {}, "missing token");
          await refusedWith(server.url, mode, { auth: { token: "" } }, "missing token");
        });

        it("bad signature, expired, not yet valid, wrong audience, wrong issuer, alg none, garbage → `invalid token`", async () => {
          const cases = {
            "bad-signature": sign("HS256", claims(), "another-secret"),
            expired: sign("HS256", claims({ exp: now() - 3600 }), SECRET),
            "not-yet-valid": sign("HS256", claims({ nbf: now() + 3600 }), SECRET),
            "wrong-audience": sign("HS256", claims({ aud: "someone-else" }), SECRET),
            "wrong-issuer": sign("HS256", claims({ iss: "https://evil.test" }), SECRET),
            "alg-none": sign("none", claims(), SECRET),
            malformed: "not.a.jwt",
          };
          const before = server.output().length;
          for (const [why, token] of Object.entries(cases)) {
            await refusedWith(server.url, mode, { auth: { token } }, "invalid token").catch((e) => {
              throw new Error(`${why}: ${e.message}`);
            });
          }
          // The log names every reason and never a token.
          await until(() => Object.keys(cases).every((why) => server.output().slice(before).includes(why)), 5000, "every reason logged");
          for (const token of Object.values(cases)) assert.ok(!server.output().includes(token), "a token reached the log");
        });

        it("a valid token in auth.token connects", async () => {
          await accepted(server.url, mode, { auth: { token: sign("HS256", claims(), SECRET) } });
        });

        it("a small clock skew is tolerated (exp 5 s ago)", async () => {
          await accepted(server.url, mode, { auth: { token: sign("HS256", claims({ exp: now() - 5 }), SECRET) } });
        });

        it("a valid token in an Authorization: Bearer header connects", async () => {
          const token = sign("HS256", claims(), SECRET);
          await accepted(server.url, mode, { extraHeaders: { Authorization: `Bearer ${token}` } });
        });

        it("sub becomes userId in presence, username the default name", async () => {
          const R = uniqueRoom("auth");
          const A = await pool.connect(server.url, mode, { auth: { token: sign("HS256", claims(), SECRET) } });
          const B = await pool.connect(server.url, mode, {
            auth: { token: sign("HS256", claims({ sub: "bob", username: undefined, name: "Bob N." }), SECRET) },
          });
          await join(A, R); // no name given: the token's username is used
          const toA = waitAny(A.socket, ["user-connected"]);
          await join(B, R, "bobby");
          assert.deepEqual(
            B.log.filter(([e]) => e === "user-connected"),
            [["user-connected", { id: A.id, name: "Alice", userId: "alice" }]],
          );
          assert.deepEqual(await toA, ["user-connected", { id: B.id, name: "bobby", userId: "bob" }]);
        });
      });
    }
  });

  for (const [label, keys, alg] of [
    ["an RSA public key (RS256)", rsaKeys, "RS256"],
    ["an EC public key (ES256)", ecKeys, "ES256"],
  ]) {
    describe(`with ${label} from a PEM file`, () => {
      const { publicKey, privateKey } = keys();
      const other = keys();
      let server;
      before(async () => {
        server = await startSignaling([], { env: { JWT_PUBLIC_KEY: pemFile(publicKey) } });
      });
      after(() => server?.stop());

      for (const mode of AUTH_MODES) {
        it(`${mode}: a token signed with the private key connects; another key's, and an HS256 token keyed with the public key, do not`, async () => {
          await accepted(server.url, mode, { auth: { token: sign(alg, { sub: "u1" }, privateKey) } });
          await refusedWith(server.url, mode, { auth: { token: sign(alg, { sub: "u1" }, other.privateKey) } }, "invalid token");
          // Algorithm confusion: the public key's PEM text used as an HMAC secret.
          const pem = publicKey.export({ type: "spki", format: "pem" });
          await refusedWith(server.url, mode, { auth: { token: sign("HS256", { sub: "u1" }, pem) } }, "invalid token");
          await until(() => server.output().includes("wrong-algorithm"), 5000, "the confusion logged as wrong-algorithm");
        });
      }
    });
  }

  for (const mode of AUTH_MODES) {
    describe(`with a JWKS (${mode})`, () => {
      const rsa = rsaKeys();
      const ec = ecKeys();
      const rotated = rsaKeys();
      const keys = [jwk(rsa.publicKey, "k-rsa", "RS256"), jwk(ec.publicKey, "k-ec", "ES256")];
      let jwks;
      let server;
      before(async () => {
        jwks = await startService(() => ({ json: { keys } }));
        server = await startSignaling([], { env: { JWT_JWKS_URL: `${jwks.url}/.well-known/jwks.json` } });
        await until(() => jwks.hits >= 1, 10_000, "the start-up fetch of the JWKS");
      });
      after(async () => {
        await server?.stop();
        await jwks?.close();
      });
      const pool = clientPool();
      afterEach(() => pool.closeAll());

      it("tokens signed by each published key connect, from the cache", async () => {
        await accepted(server.url, mode, { auth: { token: sign("RS256", { sub: "r" }, rsa.privateKey, { kid: "k-rsa" }) } });
        await accepted(server.url, mode, { auth: { token: sign("ES256", { sub: "e" }, ec.privateKey, { kid: "k-ec" }) } });
        assert.equal(jwks.hits, 1, "served from the cache");
      });

      it("a key rotated in is fetched when a token names its kid; the user id reaches presence", async () => {
        keys.push(jwk(rotated.publicKey, "k-new", "RS256"));
        const token = sign("RS256", { sub: "carol", name: "Carol" }, rotated.privateKey, { kid: "k-new" });
        const C = await pool.connect(server.url, mode, { auth: { token } });
        assert.equal(jwks.hits, 2, "one refetch for the unknown kid");
        const D = await pool.connect(server.url, mode, { auth: { token: sign("RS256", { sub: "dave" }, rsa.privateKey, { kid: "k-rsa" }) } });
        const R = uniqueRoom("jwks");
        await join(C, R);
        await join(D, R, "D");
        assert.deepEqual(
          D.log.filter(([e]) => e === "user-connected"),
          [["user-connected", { id: C.id, name: "Carol", userId: "carol" }]],
        );
      });

      it("an unknown kid → `invalid token`, without another fetch within 30 s", async () => {
        const stranger = rsaKeys();
        const hits = jwks.hits;
        await refusedWith(server.url, mode, { auth: { token: sign("RS256", { sub: "x" }, stranger.privateKey, { kid: "k-unknown" }) } }, "invalid token");
        await refusedWith(server.url, mode, { auth: { token: sign("RS256", { sub: "x" }, stranger.privateKey, { kid: "k-other" }) } }, "invalid token");
        assert.equal(jwks.hits, hits, "no refetch within 30 s of the last one");
        await until(() => server.output().includes("unknown-kid"), 5000, "the reason logged");
      });

      it("a published key's kid with another key's signature → `invalid token`", async () => {
        await refusedWith(server.url, mode, { auth: { token: sign("RS256", { sub: "x" }, rotated.privateKey, { kid: "k-rsa" }) } }, "invalid token");
      });
    });
  }

  describe("with no key configured", () => {
    let server;
    before(async () => {
      server = await startSignaling();
    });
    after(() => server?.stop());

    it("auth is off (the log says so) and presence has no userId", async () => {
      assert.match(server.output(), /authentication off/);
      const pool = clientPool();
      try {
        const A = await pool.connect(server.url, "websocket");
        const B = await pool.connect(server.url, "websocket");
        const R = uniqueRoom();
        await join(A, R, "a");
        await join(B, R, "b");
        assert.deepEqual(B.log.filter(([e]) => e === "user-connected"), [["user-connected", { id: A.id, name: "a" }]]);
      } finally {
        pool.closeAll();
      }
    });
  });
});
