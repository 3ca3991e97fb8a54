// A real call through the server in headless Chromium (WebSocket signaling):
// two pages see and hear each other and a DataChannel message crosses; a
// late third page makes a full mesh; a reloaded page comes back as one tile;
// a closed page's tile goes away.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KIND, startSignaling } from "../server/server.mjs";
import { launch, remoteNames, roomUrl, screenshot, waitForTiles, waitForVideos } from "./browser.mjs";

describe("demo app: a call in Chromium", { timeout: 600_000, skip: KIND === "node" && "the demo page is served by the Rust binary" }, () => {
  let server, browser;
  let room;
  const pages = {};
  const url = (name) => roomUrl(server.url, room, name);

  before(async () => {
    server = await startSignaling();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a page opened without a room gets an unguessable one and a link to share", async () => {
    pages.alice = await browser.open(`${server.url}/?name=alice&autojoin=1`);
    await pages.alice.waitForSelector("#call:not([hidden])", { timeout: 30_000 });
    room = await pages.alice.textContent("#room-name");
    assert.match(room, /^[a-z]+-[a-z]+-[0-9a-f]{8}$/);
    assert.equal(await pages.alice.inputValue("#room-link"), `${server.url}/?room=${room}`);
  });

  test("two pages receive each other's video, media-state badges and a DataChannel wave", async () => {
    pages.bob = await browser.open(url("bob"));
    await waitForVideos(pages.alice, ["bob"]);
    await waitForVideos(pages.bob, ["alice"]);

    // Wave: sent peer-to-peer on the DataChannel, never through the server.
    await pages.alice.click('.tile.remote[data-name="bob"] .wave-button');
    await pages.bob.waitForSelector('.tile.remote[data-name="alice"] .wave:not([hidden])', { timeout: 30_000 });
    assert.match(await pages.bob.textContent('.tile.remote[data-name="alice"] .wave'), /waved/);

    // Mute: bob's tile of alice shows her mic off (media-state through the server).
    await pages.alice.click("#toggle-mic");
    await pages.bob.waitForSelector('.tile.remote[data-name="alice"] .badge.mic.off', { timeout: 30_000 });
    await pages.alice.click("#toggle-mic");
    await pages.bob.waitForSelector('.tile.remote[data-name="alice"] .badge.mic:not(.off):not(.unknown)', { timeout: 30_000 });
    assert.equal(await pages.bob.textContent('.tile.remote[data-name="alice"] .state'), "connected");
  });

  test("screen share: the others get the screen instead of the camera, and stopScreenShare ends it", async () => {
    // Aspect ratio of alice's video on bob's page. Under load WebRTC scales
    // video down, but keeps its shape: the fake camera is 4:3, the captured
    // screen (the 1200x560 viewport) is much wider.
    const aspectIs = (wide) =>
      pages.bob.waitForFunction(
        (wide) => {
          const v = document.querySelector('.tile.remote[data-name="alice"] video');
          if (!(v.videoWidth > 0 && v.videoHeight > 0)) return false;
          const offCamera = Math.abs(v.videoWidth / v.videoHeight - 4 / 3) > 0.2;
          return offCamera === wide;
        },
        wide,
        { timeout: 30_000, polling: 100 },
      );
    await aspectIs(false);
    await pages.alice.click("#toggle-screen");
    await pages.bob.waitForSelector('.tile.remote[data-name="alice"] .badge.screen:not([hidden])', { timeout: 30_000 });
    await aspectIs(true);
    await pages.alice.click("#toggle-screen");
    // The badge goes on the server's stopScreenShare, and the camera comes back.
    await pages.bob.waitForSelector('.tile.remote[data-name="alice"] .badge.screen', { state: "hidden", timeout: 30_000 });
    await aspectIs(false);
  });

  test("a late third page makes a full mesh: every page plays two remote videos", async () => {
    pages.carol = await browser.open(url("carol"));
    await waitForVideos(pages.carol, ["alice", "bob"]);
    await waitForVideos(pages.alice, ["bob", "carol"]);
    await waitForVideos(pages.bob, ["alice", "carol"]);
    // Presence list: the page itself and both others.
    const presence = await pages.carol.$$eval("#presence li", (lis) => lis.map((li) => li.textContent));
    assert.equal(presence.length, 3, JSON.stringify(presence));
    await pages.alice.waitForFunction(() => [...document.querySelectorAll(".tile.remote .rtt")].every((r) => r.textContent), null, {
      timeout: 30_000,
    });
    await screenshot(pages.alice, "demo-call.png");
  });

  test("a reloaded page comes back as one tile, not two", async () => {
    await pages.bob.reload();
    await waitForVideos(pages.bob, ["alice", "carol"]);
    await waitForVideos(pages.alice, ["bob", "carol"]);
    await waitForVideos(pages.carol, ["alice", "bob"]);
    assert.deepEqual(await remoteNames(pages.alice), ["bob", "carol"]);
    assert.deepEqual(await remoteNames(pages.carol), ["alice", "bob"]);
  });

  test("a closed page's tile disappears from the others", async () => {
    await pages.carol.close();
    // "Within a few seconds": the page says goodbye on pagehide; 15 s covers a loaded CI machine.
    await waitForTiles(pages.alice, ["bob"], 15_000);
    await waitForTiles(pages.bob, ["alice"], 15_000);
    // The call between the two that stayed is unaffected.
    await waitForVideos(pages.alice, ["bob"]);
    await waitForVideos(pages.bob, ["alice"]);
  });
});
