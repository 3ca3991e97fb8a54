// Binary payloads (Socket.IO BINARY_EVENT / BINARY_ACK with attachments) in
// both directions. Received binaries are compared byte for byte via `plain()`,
// whatever type the client decodes them to.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ask, askAll, bin, createSocket, isBinary, modes, next, nextArgs, plain, record, roundTrip, startSocket, until } from "../lib/harness.mjs";
import { openWelcomed, useCleanup, useServer } from "./server.mjs";

const srv = useServer();

const allBytes = () => Uint8Array.from({ length: 256 }, (_, i) => i);
const bigBytes = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

for (const [mode] of modes()) {
  describe(mode, () => {
    const track = useCleanup();
    const open = (url = srv.url, opts) => openWelcomed(track, url, mode, opts, url === srv.url ? "welcome" : "welcome-admin");
    const echo = async (socket, ...args) => {
      const echoed = nextArgs(socket, "echo");
      socket.emit("echo", ...args);
      return echoed;
    };

    it("echo: a Buffer comes back as binary with the same bytes", async () => {
      const socket = await open();
      const [got] = await echo(socket, Buffer.from([0, 1, 2, 253, 254, 255]));
      assert.ok(isBinary(got), `expected binary, got ${typeof got}`);
      assert.deepEqual(plain(got), bin([0, 1, 2, 253, 254, 255]));
    });

    it("echo: ArrayBuffer and Uint8Array", async () => {
      const socket = await open();
      const u8 = allBytes();
      let [got] = await echo(socket, u8.buffer);
      assert.ok(isBinary(got));
      assert.deepEqual(plain(got), bin(u8));
      [got] = await echo(socket, u8);
      assert.ok(isBinary(got));
      assert.deepEqual(plain(got), bin(u8));
      // a view on part of a larger buffer sends only the viewed bytes
      [got] = await echo(socket, new Uint8Array(u8.buffer, 10, 5));
      assert.deepEqual(plain(got), bin([10, 11, 12, 13, 14]));
    });

    it("echo: empty binary", async () => {
      const socket = await open();
      const [got] = await echo(socket, Buffer.alloc(0));
      assert.ok(isBinary(got));
      assert.deepEqual(plain(got), bin([]));
    });

    it("echo: binaries nested in objects and arrays, mixed with text", async () => {
      const socket = await open();
      const payload = {
        file: Buffer.from("hello"),
        meta: {
          name: "x.bin",
          parts: [Buffer.from([1]), "text", new Uint8Array([2, 3]), { deep: [[Buffer.from([4, 5, 6])]] }],
          n: 3,
          nil: null,
        },
      };
      const got = await echo(socket, payload, [Buffer.from([9]), 10, [Buffer.from([11, 12])]], "tail");
      assert.deepEqual(plain(got), [
        {
          file: bin(Buffer.from("hello")),
          meta: {
            name: "x.bin",
            parts: [bin([1]), "text", bin([2, 3]), { deep: [[bin([4, 5, 6])]] }],
            n: 3,
            nil: null,
          },
        },
        [bin([9]), 10, [bin([11, 12])]],
        "tail",
      ]);
    });

    it("echo: several top-level binary arguments keep their order", async () => {
      const socket = await open();
      // socket.io-parser accepts at most 10 attachments per packet
      const args = Array.from({ length: 10 }, (_, i) => Buffer.from([i, i, i]));
      const got = await echo(socket, ...args);
      assert.deepEqual(plain(got), args.map((b) => bin(b)));
    });

    it("more than 10 attachments in one packet → the server closes the connection", async () => {
      // socket.io-parser 4.2.7 (socket.io 4.8.1) Decoder: maxAttachments = 10;
      // a decode error makes the server close the whole engine connection.
      const socket = await open();
      const disconnected = nextArgs(socket, "disconnect");
      socket.emit("echo", ...Array.from({ length: 11 }, (_, i) => Buffer.from([i])));
      const [reason] = await disconnected;
      assert.ok(["transport close", "transport error"].includes(reason), `reason ${reason}`);
    });

    it("echo: the same binary object referenced twice arrives twice", async () => {
      const socket = await open();
      const b = Buffer.from([7, 7]);
      const got = await echo(socket, { a: b, b });
      assert.deepEqual(plain(got), [{ a: bin([7, 7]), b: bin([7, 7]) }]);
    });

    it("echo: a 256 KiB binary", async () => {
      const socket = await open();
      const data = bigBytes(256 * 1024);
      const [got] = await echo(socket, data);
      assert.deepEqual(plain(got), bin(data));
    });

    it("text and binary events interleave in order", async () => {
      const socket = await open();
      const events = record(socket);
      const sent = [];
      for (let i = 0; i < 30; i++) {
        const arg = i % 3 === 0 ? Buffer.from([i]) : i % 3 === 1 ? { i, b: Buffer.from([i, i]) } : `t${i}`;
        sent.push(["echo", arg]);
        socket.emit("echo", arg);
      }
      await until(() => events.length >= 30, 10_000, "30 echoes");
      assert.equal(await roundTrip(socket), "pong");
      assert.deepEqual(plain(events), plain(sent));
    });

    it("echo-ack: binary in the acknowledgement (BINARY_ACK)", async () => {
      const socket = await open();
      const res = await askAll(socket, "echo-ack", Buffer.from([1, 2]), { x: [new Uint8Array([3])] }, "s");
      assert.deepEqual(plain(res), [bin([1, 2]), { x: [bin([3])] }, "s"]);
    });

    it("server-binary: the server emits binaries nested in an object", async () => {
      const socket = await open();
      const events = record(socket);
      const binary = nextArgs(socket, "binary");
      assert.equal(await ask(socket, "server-binary"), true);
      const args = await binary;
      assert.equal(args.length, 1);
      assert.ok(isBinary(args[0].buf));
      assert.ok(isBinary(args[0].nested.list[0]));
      assert.deepEqual(plain(args), [{ buf: bin([1, 2, 3]), nested: { list: [bin([4, 5]), "text"] } }]);
      assert.deepEqual(
        events.map(([e]) => e),
        ["binary"],
      );
    });

    it("server→client ack carrying binary, answered back with binary", async () => {
      const socket = await open();
      socket.on("bin-question", (arg, ack) => ack({ reply: Buffer.from([42, 43]), arg }));
      const res = await ask(socket, "ask-client", { event: "bin-question", timeoutMs: 3000 });
      assert.deepEqual(plain(res), { ok: true, answer: { reply: bin([42, 43]), arg: "question" } });
    });

    it("binary on /admin", async () => {
      const socket = await open(srv.url + "/admin", { auth: { admin: true } });
      const [got] = await echo(socket, { b: Buffer.from([5, 4, 3]) });
      assert.deepEqual(plain(got), { b: bin([5, 4, 3]) });
    });

    it("placeholder-looking JSON from the client is plain data, not an attachment", async () => {
      const socket = await open();
      const fake = { _placeholder: true, num: 0 };
      const got = await echo(socket, "x", Buffer.from([1]));
      assert.deepEqual(plain(got), ["x", bin([1])]);
      // a text-only event whose JSON looks like a placeholder: socket.io-parser
      // treats it as data because the packet type is EVENT, not BINARY_EVENT
      const got2 = await echo(socket, { note: "text", obj: { ...fake, extra: 1 } });
      assert.deepEqual(got2, [{ note: "text", obj: { _placeholder: true, num: 0, extra: 1 } }]);
    });

    it("a welcome is never mistaken for binary", async () => {
      const socket = track(createSocket(srv.url, mode));
      const welcome = next(socket, "welcome");
      await startSocket(socket, mode);
      const w = await welcome;
      assert.equal(typeof w.id, "string");
    });
  });
}
