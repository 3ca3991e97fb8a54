// JWTs signed by hand with node:crypto (HS256 / RS256 / ES256 / none), and the
// small HTTP services the access-control suites start: a JWKS endpoint and a
// room policy service. No JWT library: the server must accept what any
// standard signer produces, so the tests build tokens from the RFC itself.
import crypto from "node:crypto";
import http from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const b64u = (data) => Buffer.from(data).toString("base64url");
export const now = () => Math.floor(Date.now() / 1000);

/** A compact JWS of `claims` with `alg` (`HS256` key: a string; `RS256`/`ES256`: a private KeyObject). */
export function sign(alg, claims, key, header = {}) {
  const input = `${b64u(JSON.stringify({ alg, typ: "JWT", ...header }))}.${b64u(JSON.stringify(claims))}`;
  let signature;
  switch (alg) {
    case "HS256":
      signature = crypto.createHmac("sha256", key).update(input).digest();
      break;
    case "RS256":
      signature = crypto.sign("sha256", Buffer.from(input), key);
      break;
    case "ES256":
      signature = crypto.sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
      break;
    case "none":
      signature = Buffer.alloc(0);
      break;
    default:
      throw new Error(`unsupported alg ${alg}`);
  }
  return `${input}.${b64u(signature)}`;
}

export const rsaKeys = () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
export const ecKeys = () => crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });

/** Writes `publicKey` as a PEM file in a fresh temporary directory; resolves to its path. */
export function pemFile(publicKey) {
  const dir = mkdtempSync(path.join(tmpdir(), "rtcio-jwt-"));
  const file = path.join(dir, "public.pem");
  writeFileSync(file, publicKey.export({ type: "spki", format: "pem" }));
  return file;
}

/** The public JWK of `publicKey` with `kid`. */
export function jwk(publicKey, kid, alg) {
  return { ...publicKey.export({ format: "jwk" }), kid, alg, use: "sig" };
}

/**
 * Starts an HTTP server on 127.0.0.1:0 answering every request with
 * `handler(req, body)` → `{ status, json }` (or a promise of it). Resolves to
 * `{ url, hits, requests, close }`.
 */
export async function startService(handler) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", async () => {
      const parsed = body ? JSON.parse(body) : undefined;
      requests.push({ method: req.method, url: req.url, body: parsed });
      const { status = 200, json = {} } = (await handler(req, parsed)) ?? {};
      if (res.destroyed) return;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    get hits() {
      return requests.length;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}
