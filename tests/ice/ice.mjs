// Helpers shared by the ICE suites: the coturn REST credential computed
// independently with node:crypto, and the exact answer the server must give.
import assert from "node:assert/strict";
import crypto from "node:crypto";

/** base64(HMAC-SHA1(secret, username)): coturn's REST API credential. */
export const credential = (secret, username) => crypto.createHmac("sha1", secret).update(username).digest("base64");

/** Unix time in seconds. */
export const nowSecs = () => Math.floor(Date.now() / 1000);

/**
 * Runs `request()` (resolving to an answer `{ iceServers }`) and asserts it is
 * exactly the seed's shape for each of `hosts`: `stun:`, `turn:` udp and tcp,
 * `turns:`, with username `expiry` (or `expiry:userId`), expiry = now + ttl
 * at the time of the request, and credential = HMAC-SHA1(secret, username).
 * Returns the answer.
 */
export async function expectMinted(request, { hosts, secret, ttl = 600, port = 3478, tlsPort = 5349, userId, stunUrls = [] }) {
  const before = nowSecs();
  const answer = await request();
  const after = nowSecs();
  assert.ok(Array.isArray(answer?.iceServers), `an { iceServers } answer: ${JSON.stringify(answer)}`);
  const username = answer.iceServers[1]?.username;
  assert.equal(typeof username, "string", `a minted username: ${JSON.stringify(answer)}`);
  const [expiry, ...rest] = username.split(":");
  assert.match(expiry, /^\d+$/, `username starts with the expiry: ${username}`);
  assert.ok(
    Number(expiry) >= before + ttl && Number(expiry) <= after + ttl,
    `expiry ${expiry} is now + ${ttl} s (now: ${before}..${after})`,
  );
  assert.equal(rest.length ? rest.join(":") : undefined, userId, `username ${username}`);
  const minted = { username, credential: credential(secret, username) };
  assert.deepEqual(answer, {
    iceServers: [
      ...hosts.flatMap((host) => [
        { urls: `stun:${host}:${port}` },
        { urls: `turn:${host}:${port}?transport=udp`, ...minted },
        { urls: `turn:${host}:${port}?transport=tcp`, ...minted },
        { urls: `turns:${host}:${tlsPort}?transport=tcp`, ...minted },
      ]),
      ...stunUrls.map((urls) => ({ urls })),
    ],
  });
  return answer;
}

/** `GET /ice`: `{ res, body }` with the body parsed as JSON. */
export async function getIce(url, headers = {}) {
  const res = await fetch(`${url}/ice`, { headers });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`GET /ice answered ${res.status} with a body that is not JSON: ${text}`);
  }
  return { res, body };
}
