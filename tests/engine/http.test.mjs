// HTTP level of /socket.io/ with raw fetch (and a raw ws where needed):
// handshake, error codes, CORS, a hand-driven polling session, restricted
// transports.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import {
  RECORD_SEPARATOR,
  ask,
  createSocket,
  decodePollingPayload,
  next,
  rawEngine,
  startSocket,
} from "../lib/harness.mjs";
import { useCleanup, useServer } from "./server.mjs";

const path = "/socket.io/";

async function getJson(url, init) {
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    assert.fail(`status ${res.status}, body is not JSON: ${JSON.stringify(text)}`);
  }
  return { res, json };
}

async function handshake(base, query = "EIO=4&transport=polling", init) {
  const res = await fetch(`${base}${path}?${query}`, init);
  const body = await res.text();
  return { res, body };
}

function parseOpen(body) {
  assert.ok(body.startsWith("0{"), `expected an open packet, got ${JSON.stringify(body)}`);
  return JSON.parse(body.slice(1));
}

/** Status and `{code,message}` of an error response. */
async function assertError(url, status, expected, init) {
  const { res, json } = await getJson(url, init);
  assert.equal(res.status, status, JSON.stringify(json));
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(json, expected);
}

/** Upgrade attempt on `url`: resolves with the HTTP status of a refused upgrade, or "open". */
function tryUpgrade(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode);
      ws.terminate();
    });
    ws.once("open", () => {
      resolve("open");
      ws.terminate();
    });
    ws.once("error", () => resolve("error"));
  });
}

describe("default server", () => {
  const srv = useServer();
  const track = useCleanup();

  it("polling handshake: 200, open packet with sid, upgrades, heartbeat, maxPayload", async () => {
    const { res, body } = await handshake(srv.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const open = parseOpen(body);
    assert.deepEqual(Object.keys(open).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert.equal(typeof open.sid, "string");
    assert.ok(open.sid.length >= 20, `sid ${open.sid} is too short`);
    assert.deepEqual(open.upgrades, ["websocket"]);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    assert.equal(open.maxPayload, 1000000);
  });

  it("every handshake gets a fresh sid", async () => {
    const sids = new Set();
    for (let i = 0; i < 20; i++) sids.add(parseOpen((await handshake(srv.url)).body).sid);
    assert.equal(sids.size, 20);
  });

  it("websocket handshake: open packet with no further upgrades", async () => {
    const raw = track(await rawEngine(srv.url, "websocket"));
    assert.deepEqual(Object.keys(raw.handshake).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert.ok(raw.handshake.sid.length >= 20);
    assert.deepEqual(raw.handshake.upgrades, []);
    assert.equal(raw.handshake.pingInterval, 25000);
    assert.equal(raw.handshake.pingTimeout, 20000);
    assert.equal(raw.handshake.maxPayload, 1000000);
  });

  it("EIO=3 → 400 Unsupported protocol version", async () => {
    await assertError(`${srv.url}${path}?EIO=3&transport=polling`, 400, {
      code: 5,
      message: "Unsupported protocol version",
    });
  });

  it("unknown sid → 400 Session ID unknown", async () => {
    await assertError(`${srv.url}${path}?EIO=4&transport=polling&sid=doesnotexist`, 400, {
      code: 1,
      message: "Session ID unknown",
    });
    await assertError(`${srv.url}${path}?EIO=4&transport=polling&sid=doesnotexist`, 400, {
      code: 1,
      message: "Session ID unknown",
    }, { method: "POST", body: "40" });
  });

  it("unknown or missing transport → 400 Transport unknown", async () => {
    for (const query of ["EIO=4&transport=flashsocket", "EIO=4&transport=", "EIO=4"]) {
      await assertError(`${srv.url}${path}?${query}`, 400, { code: 0, message: "Transport unknown" });
    }
  });

  it("a handshake must be a GET → 400 Bad handshake method", async () => {
    await assertError(`${srv.url}${path}?EIO=4&transport=polling`, 400, {
      code: 2,
      message: "Bad handshake method",
    }, { method: "POST", body: "40" });
  });

  it("WebSocket upgrade for an unknown sid is refused with 400", async () => {
    assert.equal(await tryUpgrade(`${srv.url.replace("http", "ws")}${path}?EIO=4&transport=websocket&sid=nope`), 400);
  });

  it("CORS: a polling GET with Origin gets Access-Control-Allow-Origin", async () => {
    const { res, body } = await handshake(srv.url, undefined, { headers: { Origin: "http://example.com" } });
    assert.equal(res.status, 200);
    parseOpen(body);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  });

  it("CORS: preflight OPTIONS → 204 with allowed methods", async () => {
    const res = await fetch(`${srv.url}${path}?EIO=4&transport=polling`, {
      method: "OPTIONS",
      headers: {
        Origin: "http://example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
      },
    });
    assert.equal(res.status, 204);
    assert.equal(await res.text(), "");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const methods = (res.headers.get("access-control-allow-methods") ?? "").split(",").map((m) => m.trim());
    assert.ok(methods.includes("GET") && methods.includes("POST"), `allow-methods: ${methods}`);
  });

  it("a polling session driven by hand: CONNECT, welcome, ack, binary, disconnect", async () => {
    const { body } = await handshake(srv.url);
    const { sid } = parseOpen(body);
    const url = `${srv.url}${path}?EIO=4&transport=polling&sid=${sid}`;
    const post = async (...packets) => {
      const res = await fetch(url, {
        method: "POST",
        body: packets.join(RECORD_SEPARATOR),
        headers: { "content-type": "text/plain;charset=UTF-8" },
      });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "ok");
    };
    const received = [];
    const pollUntil = async (count) => {
      while (received.length < count) {
        const res = await fetch(url);
        assert.equal(res.status, 200);
        received.push(...decodePollingPayload(await res.text()).filter((p) => p !== "6"));
      }
    };

    await post('40{"token":"by-hand"}');
    await pollUntil(2);
    assert.match(received[0], /^40\{/);
    const connectAck = JSON.parse(received[0].slice(2));
    assert.deepEqual(Object.keys(connectAck), ["sid"]);
    assert.equal(typeof connectAck.sid, "string");
    assert.notEqual(connectAck.sid, sid, "the Socket.IO id is not the Engine.IO sid");
    assert.match(received[1], /^42\[/);
    const [event, welcome] = JSON.parse(received[1].slice(2));
    assert.equal(event, "welcome");
    assert.equal(welcome.id, connectAck.sid);
    assert.deepEqual(welcome.auth, { token: "by-hand" });

    // two packets in one POST, acks come back with their ids
    await post('427["ping-ack"]', '428["echo-ack","x",{"y":[1]}]');
    await pollUntil(4);
    assert.deepEqual(received.slice(2, 4), ['437["pong"]', '438["x",{"y":[1]}]']);

    // binary from the server over polling: base64 attachments after the packet
    await post('429["server-binary"]');
    await pollUntil(8);
    const [header, att0, att1, ack] = received.slice(4, 8);
    assert.match(header, /^452-\[/);
    assert.deepEqual(JSON.parse(header.slice(4)), [
      "binary",
      { buf: { _placeholder: true, num: 0 }, nested: { list: [{ _placeholder: true, num: 1 }, "text"] } },
    ]);
    assert.deepEqual([...att0], [1, 2, 3]);
    assert.deepEqual([...att1], [4, 5]);
    assert.equal(ack, "439[true]");

    // binary to the server over polling ("b" + base64), echoed back
    await post('451-["echo",{"_placeholder":true,"num":0}]', "b" + Buffer.from([250, 251]).toString("base64"));
    await pollUntil(10);
    assert.match(received[8], /^451-\[/);
    assert.deepEqual(JSON.parse(received[8].slice(4)), ["echo", { _placeholder: true, num: 0 }]);
    assert.deepEqual([...received[9]], [250, 251]);

    // Engine.IO close from the client ends the session
    await post("1");
    const after = await fetch(url);
    const text = await after.text();
    // either the session is already gone, or the last poll returns the close
    if (after.status === 200) assert.ok(decodePollingPayload(text).includes("1") || text === "", text);
    else assert.deepEqual([after.status, JSON.parse(text)], [400, { code: 1, message: "Session ID unknown" }]);
  });
});

describe("--cors-origin http://allowed.test", () => {
  const srv = useServer({ "cors-origin": "http://allowed.test" });

  it("GET: Access-Control-Allow-Origin is the configured origin", async () => {
    const { res, body } = await handshake(srv.url, undefined, { headers: { Origin: "http://allowed.test" } });
    assert.equal(res.status, 200);
    parseOpen(body);
    assert.equal(res.headers.get("access-control-allow-origin"), "http://allowed.test");
  });

  it("preflight: 204 with the configured origin", async () => {
    const res = await fetch(`${srv.url}${path}?EIO=4&transport=polling`, {
      method: "OPTIONS",
      headers: { Origin: "http://allowed.test", "Access-Control-Request-Method": "GET" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "http://allowed.test");
    const methods = (res.headers.get("access-control-allow-methods") ?? "").split(",").map((m) => m.trim());
    assert.ok(methods.includes("GET") && methods.includes("POST"), `allow-methods: ${methods}`);
  });
});

describe("--transports websocket", () => {
  const srv = useServer({ transports: "websocket" });
  const track = useCleanup();

  it("the polling handshake is refused: 400 Transport unknown", async () => {
    await assertError(`${srv.url}${path}?EIO=4&transport=polling`, 400, { code: 0, message: "Transport unknown" });
  });

  it("a websocket client still works", async () => {
    const socket = track(createSocket(srv.url, "websocket"));
    const welcome = next(socket, "welcome");
    await startSocket(socket, "websocket");
    assert.equal((await welcome).id, socket.id);
    assert.equal(socket.io.engine.transport.name, "websocket");
    assert.equal(await ask(socket, "ping-ack"), "pong");
  });

  it("a polling-only client fails to connect", async () => {
    const socket = track(createSocket(srv.url, "polling"));
    const failed = next(socket, "connect_error");
    socket.connect();
    const err = await failed;
    assert.ok(err instanceof Error);
  });
});

describe("--transports polling", () => {
  const srv = useServer({ transports: "polling" });
  const track = useCleanup();

  it("the handshake offers no upgrades", async () => {
    const { res, body } = await handshake(srv.url);
    assert.equal(res.status, 200);
    assert.deepEqual(parseOpen(body).upgrades, []);
  });

  it("a WebSocket connection is refused", async () => {
    assert.equal(await tryUpgrade(`${srv.url.replace("http", "ws")}${path}?EIO=4&transport=websocket`), 400);
  });

  it("a polling client works (and an upgrade-capable one stays on polling)", async () => {
    for (const mode of ["polling", "upgrade"]) {
      const socket = track(createSocket(srv.url, mode));
      const welcome = next(socket, "welcome");
      socket.connect();
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      assert.equal((await welcome).id, socket.id);
      assert.equal(await ask(socket, "ping-ack"), "pong");
      assert.equal(socket.io.engine.transport.name, "polling");
    }
  });
});
