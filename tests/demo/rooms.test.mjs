// The demo app's messages and fallbacks in Chromium, and its signaling on
// HTTP long-polling: a wrong or missing room password is explained, a page
// without camera or microphone joins receive-only and still sees the others,
// and `?transport=polling` makes a full call without any WebSocket.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KIND, startSignaling, uniqueRoom } from "../server/server.mjs";
import { launch, roomUrl, waitForStatus, waitForTiles, waitForVideos } from "./browser.mjs";

describe("demo app: passwords, receive-only, long-polling", { timeout: 600_000, skip: KIND === "node" && "the demo page is served by the Rust binary" }, () => {
  let server, browser;
  before(async () => {
    server = await startSignaling();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a missing or wrong room password shows its message and keeps the page out of the call", async () => {
    const room = uniqueRoom("locked");
    const owner = await browser.open(roomUrl(server.url, room, "owner", { password: "s3cret" }));
    await owner.waitForSelector("#call:not([hidden])", { timeout: 30_000 });

    const guest = await browser.open(roomUrl(server.url, room, "guest", { password: "guess" }));
    assert.match(await waitForStatus(guest, "Wrong password"), /Wrong password for this room/);
    assert.equal(await guest.isVisible("#lobby"), true, "the lobby stays up after a refusal");
    assert.equal(await guest.isVisible("#call"), false);

    await guest.fill("#password", "");
    await guest.click("#join");
    assert.match(await waitForStatus(guest, "has a password"), /This room has a password/);

    // The right password gets in: the refusals left the page usable.
    await guest.fill("#password", "s3cret");
    await guest.click("#join");
    await waitForVideos(guest, ["owner"]);
    await waitForVideos(owner, ["guest"]);
    await Promise.all([owner.close(), guest.close()]);
  });

  test("without camera and microphone the page joins receive-only and still sees the others", async () => {
    const room = uniqueRoom("receive-only");
    const sender = await browser.open(roomUrl(server.url, room, "sender"));
    await sender.waitForSelector("#call:not([hidden])", { timeout: 30_000 });

    const page = await browser.context.newPage();
    // The permission prompt refused, as a user clicking "Block" does.
    await page.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
    });
    await page.goto(roomUrl(server.url, room, "viewer"));
    assert.match(await waitForStatus(page, "receive-only"), /permission was refused/);
    await waitForVideos(page, ["sender"]);
    // The sender has the viewer's tile, connected, showing no video and both badges off.
    await waitForTiles(sender, ["viewer"]);
    await sender.waitForSelector('.tile.remote[data-name="viewer"][data-state="connected"].no-video', { timeout: 30_000 });
    await sender.waitForSelector('.tile.remote[data-name="viewer"] .badge.cam.off', { timeout: 30_000 });
    assert.equal(await page.isDisabled("#toggle-cam"), true);
    await Promise.all([sender.close(), page.close()]);
  });

  test("signaling on long-polling: two pages call each other and no WebSocket is opened", async () => {
    const room = uniqueRoom("polling");
    const sockets = [];
    const open = async (name) => {
      const page = await browser.context.newPage();
      page.on("websocket", (ws) => sockets.push(ws.url()));
      await page.goto(roomUrl(server.url, room, name, { transport: "polling" }));
      return page;
    };
    const alice = await open("alice");
    const bob = await open("bob");
    await waitForVideos(alice, ["bob"]);
    await waitForVideos(bob, ["alice"]);
    assert.equal(await alice.textContent("#connection"), "connected (polling)");
    await alice.click('.tile.remote[data-name="bob"] .wave-button');
    await bob.waitForSelector('.tile.remote[data-name="alice"] .wave:not([hidden])', { timeout: 30_000 });

    // A closed polling page leaves at once too (its goodbye goes out as a beacon).
    await bob.close();
    await waitForTiles(alice, [], 15_000);
    assert.deepEqual(sockets, [], "the signaling never used a WebSocket");
    await alice.close();
  });
});
