// The admin page at /admin/ in a real Chromium: a wrong token is refused, the
// right one shows live rooms and members, the Kick button kicks (the kicked
// client and its peer observe it), and client-chosen names stay text.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { until } from "../lib/harness.mjs";
import { KIND, assertDeparture, barrier, clientPool, join, seen, startSignaling, uniqueRoom } from "./server.mjs";
import { CHROMIUM, FLAGS } from "../demo/browser.mjs";

const TOKEN = "admin-page-token-0123456789abcdef";
const skip = KIND === "node" ? "the Node reference has no admin page" : false;

describe("admin page in Chromium", { skip }, () => {
  let server;
  let context;
  let profile;
  before(async () => {
    server = await startSignaling([], { env: { ADMIN_TOKEN: TOKEN } });
    profile = await mkdtemp(path.join(os.tmpdir(), "rtcio-admin-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
    });
  });
  after(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await server?.stop();
  });

  const pool = clientPool();
  afterEach(() => pool.closeAll());

  it("refuses a wrong token, then shows rooms and members live and kicks with a click", async () => {
    const page = await context.newPage();
    const problems = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("dialog", (d) => {
      problems.push(`dialog: ${d.message()}`);
      d.dismiss();
    });

    const R = uniqueRoom("page");
    const A = await pool.connect(server.url, "websocket");
    const B = await pool.connect(server.url, "websocket");
    const evil = '<img src=x onerror="alert(1)">';
    await join(A, R, "alice");
    await join(B, R, evil);

    await page.goto(`${server.url}/admin/`);
    await page.fill("#token", "not-the-token");
    await page.click("#connect");
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Refused"), null, { timeout: 10_000 });
    assert.match(await page.textContent("#status"), /invalid token/);
    assert.equal(await page.isHidden("#dashboard"), true);

    await page.fill("#token", TOKEN);
    await page.click("#connect");
    const room = page.locator(`.room[data-room="${R}"]`);
    await room.waitFor({ timeout: 10_000 });
    assert.equal(await page.inputValue("#token"), "", "the token field is cleared once connected");
    assert.deepEqual(await room.locator("td.name").allTextContents(), ["alice", evil], "names shown as text, in join order");
    assert.equal(await page.locator("img").count(), 0, "a name is never markup");
    assert.match(await room.locator(".size").textContent(), /^2 members$/);
    const statsText = await page.textContent("#stats");
    assert.match(statsText, /Connected sockets\s*2/);

    // A third client joins: the page shows it on its next poll.
    const C = await pool.connect(server.url, "websocket");
    await join(C, R, "carol");
    await page.waitForFunction((r) => document.querySelector(`.room[data-room="${r}"] .size`)?.textContent === "3 members", R, { timeout: 10_000 });

    const mark = A.log.length;
    const kicked = new Promise((resolve) => B.socket.once("disconnect", (reason) => resolve([reason, B.log.at(-1)])));
    await room.locator(`tr[data-socket="${B.id}"] button.kick`).click();
    assert.deepEqual(await kicked, ["io server disconnect", ["error", { code: "kicked", message: "removed by an administrator" }]]);
    await until(() => seen(A, mark).length >= 2, 5000, "A hears B leave");
    await barrier(A);
    assertDeparture(seen(A, mark), B.id);
    await page.waitForFunction((r) => document.querySelector(`.room[data-room="${r}"] .size`)?.textContent === "2 members", R, { timeout: 10_000 });
    assert.deepEqual(await room.locator("td.name").allTextContents(), ["alice", "carol"]);

    await room.locator("button.close-room").click();
    await page.waitForFunction((r) => !document.querySelector(`.room[data-room="${r}"]`), R, { timeout: 10_000 });
    assert.ok(A.socket.connected && C.socket.connected, "closing a room disconnects nobody");
    assert.deepEqual(problems, [], "no script error, CSP violation or dialog");
    await page.close();
  });
});
