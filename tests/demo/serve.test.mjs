// The binary serves the demo app at `/` with its assets under `/demo/`, and
// `--no-demo` / `DEMO=false` remove it while signaling keeps working.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ROOT } from "../lib/harness.mjs";
import { KIND, startSignaling } from "../server/server.mjs";

const skip = KIND === "node" && "the demo page is served by the Rust binary";

async function handshakeWorks(url) {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^0\{"sid":/);
}

test("the page and its scripts are served, with a strict content security policy", { skip }, async () => {
  const server = await startSignaling(["--namespace", "/calls"]);
  try {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /^text\/html/);
    assert.match(page.headers.get("content-security-policy"), /default-src 'self'/);
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/demo\/app.js">/);
    // The page is told the namespace the relay runs on.
    assert.match(html, /<meta name="rtcio-namespace" content="\/calls">/);
    for (const [asset, type] of [
      ["app.js", /^text\/javascript/],
      ["peer.js", /^text\/javascript/],
      ["sio.js", /^text\/javascript/],
      ["style.css", /^text\/css/],
    ]) {
      const res = await fetch(`${server.url}/demo/${asset}`);
      assert.equal(res.status, 200, asset);
      assert.match(res.headers.get("content-type"), type, asset);
      assert.ok((await res.text()).length > 100, asset);
    }
    assert.equal((await fetch(`${server.url}/demo/nothing.js`)).status, 404);
    await handshakeWorks(server.url);
  } finally {
    await server.stop();
  }
});

for (const [label, args, env] of [
  ["--no-demo", ["--no-demo"], {}],
  ["DEMO=false", [], { DEMO: "false" }],
]) {
  test(`${label} removes the page: / and /demo/ answer 404, signaling still works`, { skip }, async () => {
    const server = await startSignaling(args, { env });
    try {
      assert.equal((await fetch(`${server.url}/`)).status, 404);
      assert.equal((await fetch(`${server.url}/demo/app.js`)).status, 404);
      assert.equal(await (await fetch(`${server.url}/health`)).text(), "ok");
      await handshakeWorks(server.url);
    } finally {
      await server.stop();
    }
  });
}

test("the page has a message for every join-error reason and error code of crates/rtcio/src/errors.rs", { skip }, async () => {
  const source = readFileSync(path.join(ROOT, "crates", "rtcio", "src", "errors.rs"), "utf8");
  const codes = [...source.matchAll(/ErrorCode::\w+ => "([a-z-]+)"/g)].map((m) => m[1]);
  assert.ok(codes.length >= 12, `codes found in errors.rs: ${codes}`);
  const server = await startSignaling();
  try {
    const app = await (await fetch(`${server.url}/demo/app.js`)).text();
    const table = app.slice(app.indexOf("const MESSAGES = {"), app.indexOf("};", app.indexOf("const MESSAGES = {")));
    const missing = codes.filter((code) => !new RegExp(`^\\s*"?${code}"?: "`, "m").test(table));
    assert.deepEqual(missing, [], "codes without a message in app.js MESSAGES");
  } finally {
    await server.stop();
  }
});
