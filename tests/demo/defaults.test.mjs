// The demo app against the binary's own defaults for what the other suites
// turn off: connection-state recovery on (every event carries an offset),
// chat history on (a temporary SQLite file), the default rate limits; and a
// room cap of 2, so a third page is refused with the room-full message.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { KIND, startSignaling, uniqueRoom } from "../server/server.mjs";
import { launch, roomUrl, waitForStatus, waitForVideos } from "./browser.mjs";

describe("demo app with recovery, chat history and a room cap", { timeout: 600_000, skip: KIND === "node" && "the demo page is served by the Rust binary" }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), "rtcio-demo-chat-"));
  let server, browser;
  before(async () => {
    server = await startSignaling([], {
      env: {
        RECOVERY_WINDOW: "2m",
        RATE_LIMIT: "1",
        NO_HISTORY: "0",
        DATABASE_URL: `sqlite://${path.join(dir, "chat.db")}`,
        MAX_PEERS: "2",
      },
    });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("two pages call and chat through the server; a third page is told the room is full", async () => {
    const room = uniqueRoom("defaults");
    const alice = await browser.open(roomUrl(server.url, room, "alice"));
    const bob = await browser.open(roomUrl(server.url, room, "bob"));
    await waitForVideos(alice, ["bob"]);
    await waitForVideos(bob, ["alice"]);

    // The chat panel appears once the server sent the (empty) history.
    await alice.waitForSelector("#chat:not([hidden])", { timeout: 30_000 });
    await bob.waitForSelector("#chat:not([hidden])", { timeout: 30_000 });
    await alice.fill("#chat-text", "hello from alice");
    await alice.press("#chat-text", "Enter");
    await bob.waitForFunction(
      () => [...document.querySelectorAll("#chat-log li")].some((li) => li.textContent.includes("alice hello from alice")),
      null,
      { timeout: 30_000, polling: 100 },
    );
    // The sender's own line comes from the acknowledgement (stored, then fanned out).
    await alice.waitForFunction(
      () => [...document.querySelectorAll("#chat-log li")].some((li) => li.textContent.includes("you hello from alice")),
      null,
      { timeout: 30_000, polling: 100 },
    );

    const carol = await browser.open(roomUrl(server.url, room, "carol"));
    assert.match(await waitForStatus(carol, "full"), /This room is full/);
    assert.equal(await carol.isVisible("#call"), false);

    // A page that joins later gets the stored history.
    await bob.close();
    const dave = await browser.open(roomUrl(server.url, room, "dave"));
    await dave.waitForFunction(
      () => [...document.querySelectorAll("#chat-log li")].some((li) => li.textContent.includes("alice hello from alice")),
      null,
      { timeout: 30_000, polling: 100 },
    );
    await Promise.all([alice.close(), carol.close(), dave.close()]);
  });
});
