// TLS without a proxy: --tls-cert/--tls-key (PEM) serve HTTPS and WSS with
// rustls. The test makes a self-signed certificate with the openssl CLI and
// drives socket.io-client over https:// and wss:// on every transport mode,
// trusting exactly that certificate.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import https from "node:https";
import { after, afterEach, before, describe, it } from "node:test";
import { modes, next } from "../lib/harness.mjs";
import { clientPool, join, startSignaling, uniqueRoom } from "../server/server.mjs";
import { requireBinary, runOnce, tempDir } from "./ops.mjs";

requireBinary();

function selfSigned(tmp) {
  const cert = tmp.file("cert.pem");
  const key = tmp.file("key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ], { stdio: "ignore" });
  return { cert, key, ca: readFileSync(cert) };
}

/** GET over https trusting `ca`; resolves with { status, body }. */
function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      })
      .on("error", reject);
  });
}

describe("TLS", () => {
  const tmp = tempDir("tls");
  let pem;
  let server;
  let url;
  before(async () => {
    pem = selfSigned(tmp);
    server = await startSignaling(["--tls-cert", pem.cert, "--tls-key", pem.key]);
    url = server.url.replace(/^http:/, "https:");
  });
  after(async () => {
    await server?.stop();
    tmp.cleanup();
  });
  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("logs that it serves TLS and answers /health over HTTPS", async () => {
    assert.match(server.output(), /listening on 127\.0\.0\.1:\d+.*tls=true/);
    assert.deepEqual(await httpsGet(`${url}/health`, pem.ca), { status: 200, body: "ok" });
  });

  it("plain HTTP on the TLS port gets no answer", async () => {
    await assert.rejects(fetch(`${server.url}/health`));
  });

  it("a client that does not trust the certificate cannot connect", async () => {
    await assert.rejects(httpsGet(`${url}/health`, undefined), /self[- ]signed|certificate/i);
  });

  for (const [mode] of modes()) {
    it(`socket.io-client over https/wss: join and relay (${mode})`, async () => {
      const R = uniqueRoom();
      const A = await pool.connect(url, mode, { ca: pem.ca });
      const B = await pool.connect(url, mode, { ca: pem.ca });
      await join(A, R, "alice");
      await join(B, R, "bob");
      const envelope = { source: B.id, target: A.id, data: { candidate: "c" } };
      const got = next(A.socket, "#rtcio:message");
      B.socket.emit("#rtcio:message", envelope);
      assert.deepEqual(await got, envelope);
      if (mode !== "polling") assert.equal(A.socket.io.engine.transport.name, "websocket");
    });
  }

  it("refuses to start with a certificate and no key, or unreadable files", () => {
    const alone = runOnce(["--port", "0", "--tls-cert", pem.cert]);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--tls-cert and --tls-key go together/);
    const missing = runOnce(["--port", "0", "--tls-cert", pem.cert, "--tls-key", tmp.file("nope.pem")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--tls-key .*nope\.pem/);
    const swapped = runOnce(["--port", "0", "--tls-cert", pem.key, "--tls-key", pem.key]);
    assert.equal(swapped.code, 2);
    assert.match(swapped.stderr, /--tls-cert/);
  });
});
