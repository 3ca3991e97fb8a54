// Room access policy (issue 8): `jwt` (the token's rooms claim), `file` (an
// allow-list reloaded on SIGHUP) and `http` (a policy service started here),
// each allowing and refusing. A refused join answers join-error and error
// with the same code, does not join, and nobody in the room hears anything.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { until } from "../lib/harness.mjs";
import { KIND, assertError, barrier, clientPool, join, joinAtOnce, seen, startSignaling, tryJoin, uniqueRoom, waitAny } from "./server.mjs";
import { now, sign, startService } from "./tokens.mjs";

const SECRET = "policy-secret";
const MODES_UNDER_TEST = ["websocket", "polling", "upgrade"];
const token = (sub, extra = {}) => sign("HS256", { sub, exp: now() + 600, ...extra }, SECRET);

/** Joins and expects a refusal with `code`: join-error then error, and no join. */
async function refused(client, roomId, code) {
  const from = client.log.length;
  const reply = await tryJoin(client, { roomId, name: "x" });
  assert.deepEqual(reply, ["join-error", { reason: code, roomId }]);
  await until(() => seen(client, from).some(([e]) => e === "error"), 5000, "the error event");
  const got = seen(client, from);
  assert.deepEqual(got[0], ["join-error", { reason: code, roomId }]);
  assertError(got[1], code, roomId);
  assert.equal(got.length, 2, JSON.stringify(got));
}

describe("room access policy", { skip: KIND === "node" && "the reference server has no policy" }, () => {
  describe("jwt: the rooms claim", () => {
    let server;
    before(async () => {
      server = await startSignaling([], { env: { JWT_SECRET: SECRET, ROOM_POLICY: "jwt" } });
    });
    after(() => server?.stop());
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    for (const mode of MODES_UNDER_TEST) {
      it(`${mode}: a listed room or pattern is joined; any other is forbidden and the room hears nothing`, async () => {
        const owner = await pool.connect(server.url, mode, { auth: { token: token("owner", { rooms: ["secret-*", "team-*"] }) } });
        const guest = await pool.connect(server.url, mode, { auth: { token: token("guest", { rooms: ["team-*"] }) } });
        const nobody = await pool.connect(server.url, mode, { auth: { token: token("nobody") } });
        const secret = uniqueRoom("secret");
        const team = uniqueRoom("team");
        await join(owner, secret, "o");
        await join(guest, team, "g");
        const before = owner.log.length;
        await refused(guest, secret, "forbidden");
        await refused(nobody, team, "forbidden");
        await barrier(guest, nobody, owner);
        assert.deepEqual(seen(owner, before), [], "the room heard nothing");
        // A refused socket is in no room: relaying to the owner is unreachable.
        const reply = waitAny(guest.socket, ["error"]);
        guest.socket.emit("#rtcio:message", { target: owner.id, data: 1 });
        assertError(await reply, "peer-unreachable");
      });
    }

    it("caps stay exact on the policy's async path: 12 racing into a cap-4 room", async () => {
      const capped = await startSignaling([], { env: { JWT_SECRET: SECRET, ROOM_POLICY: "jwt", MAX_PEERS: "4" } });
      const local = clientPool();
      try {
        const clients = [];
        for (let i = 0; i < 12; i++) clients.push(await local.connect(capped.url, "websocket", { auth: { token: token(`u${i}`, { rooms: ["*"] }) } }));
        const R = uniqueRoom("race");
        const { got } = await joinAtOnce(clients, R);
        assert.equal(got.filter(([e]) => e === "join-ok").length, 4);
        assert.deepEqual(new Set(got.filter(([e]) => e === "join-error").map(([, p]) => p.reason)), new Set(["room-full"]));
      } finally {
        local.closeAll();
        await capped.stop();
      }
    });
  });

  for (const format of ["toml", "json"]) {
    describe(`file (${format}), reloaded on SIGHUP`, () => {
      const dir = mkdtempSync(path.join(tmpdir(), "rtcio-policy-"));
      const file = path.join(dir, `rooms.${format}`);
      const write = (rooms) =>
        writeFileSync(
          file,
          format === "json"
            ? JSON.stringify({ rooms })
            : `[rooms]\n${Object.entries(rooms).map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`).join("\n")}\n`,
        );
      let server;
      before(async () => {
        write({ "standup-*": ["alice"], "lobby-*": ["*"] });
        server = await startSignaling([], { env: { JWT_SECRET: SECRET, ROOM_POLICY: "file", ROOM_POLICY_FILE: file } });
      });
      after(() => server?.stop());
      const pool = clientPool();
      afterEach(() => pool.closeAll());

      for (const mode of MODES_UNDER_TEST) {
        it(`${mode}: listed users join, others are forbidden; "*" admits anyone`, async () => {
          const alice = await pool.connect(server.url, mode, { auth: { token: token("alice") } });
          const bob = await pool.connect(server.url, mode, { auth: { token: token("bob") } });
          const standup = uniqueRoom("standup");
          await join(alice, standup, "a");
          await refused(bob, standup, "forbidden");
          await refused(alice, uniqueRoom("unlisted"), "forbidden");
          await join(bob, uniqueRoom("lobby"), "b");
        });
      }

      it("SIGHUP reloads the list; a broken file keeps the previous one", async () => {
        const bob = await pool.connect(server.url, "websocket", { auth: { token: token("bob") } });
        const standup = uniqueRoom("standup");
        await refused(bob, standup, "forbidden");
        write({ "standup-*": ["alice", "bob"] });
        let mark = server.output().length;
        server.proc.kill("SIGHUP");
        await until(() => server.output().slice(mark).includes("reloaded the room allow-list"), 5000, "the reload");
        await join(bob, standup, "b");
        writeFileSync(file, "this is { not valid");
        mark = server.output().length;
        server.proc.kill("SIGHUP");
        await until(() => server.output().slice(mark).includes("could not reload"), 5000, "the failed reload");
        await join(bob, uniqueRoom("standup"), "b");
      });
    });
  }

  describe("http: a policy service", () => {
    let service;
    let server;
    let slowGate;
    before(async () => {
      service = await startService(async (req, body) => {
        const room = body?.roomId ?? "";
        if (room.startsWith("ok-")) return { status: 204 };
        if (room.startsWith("no-")) return { status: 403 };
        if (room.startsWith("slow-")) {
          await new Promise((r) => (slowGate = r));
          return { status: 200 };
        }
        return { status: 500 };
      });
      server = await startSignaling([], {
        env: {
          JWT_SECRET: SECRET,
          ROOM_POLICY: "http",
          ROOM_POLICY_URL: `${service.url}/may-join`,
          ROOM_POLICY_TIMEOUT: "500ms",
          ROOM_POLICY_CACHE: "60s",
        },
      });
    });
    after(async () => {
      slowGate?.();
      await server?.stop();
      await service?.close();
    });
    const pool = clientPool();
    afterEach(() => pool.closeAll());

    for (const mode of MODES_UNDER_TEST) {
      it(`${mode}: 2xx allows with { userId, roomId, name } posted; 403 forbids; 500 and a timeout are unavailable`, async () => {
        const A = await pool.connect(server.url, mode, { auth: { token: token(`user-${mode}`) } });
        const B = await pool.connect(server.url, mode, { auth: { token: token(`other-${mode}`) } });
        const ok = uniqueRoom("ok");
        const from = service.hits;
        await join(A, ok, "Ann");
        assert.deepEqual(service.requests[from], {
          method: "POST",
          url: "/may-join",
          body: { userId: `user-${mode}`, roomId: ok, name: "Ann" },
        });
        const heard = A.log.length;
        await refused(B, uniqueRoom("no"), "forbidden");
        await refused(B, uniqueRoom("err"), "unavailable");
        await refused(B, uniqueRoom("slow"), "unavailable");
        slowGate?.();
        await barrier(B, A);
        assert.deepEqual(seen(A, heard), [], "nobody heard the refused joins");
      });
    }

    it("decisions are cached per user and room: a re-join after leaving asks nobody", async () => {
      const A = await pool.connect(server.url, "websocket", { auth: { token: token("cached-user") } });
      const R = uniqueRoom("ok");
      await join(A, R, "a");
      const hits = service.hits;
      A.socket.emit("leave-room", { roomId: R });
      await join(A, R, "a");
      await refused(A, uniqueRoom("no"), "forbidden");
      const afterForbid = service.hits;
      assert.equal(afterForbid, hits + 1, "only the new room was asked");
      const again = service.requests.at(-1).body.roomId;
      await refused(A, again, "forbidden");
      assert.equal(service.hits, afterForbid, "the refusal was cached too");
    });
  });
});
