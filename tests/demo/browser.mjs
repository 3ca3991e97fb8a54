// Helpers of the browser suites: Debian's Chromium driven by playwright-core,
// launched with exactly the flags of issue 13 and a fresh profile directory,
// and page-state waits for the demo app (crates/server/demo/).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ROOT } from "../lib/harness.mjs";

export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];
/** Where screenshots go (gitignored). */
export const OUTPUT = path.join(ROOT, "test-output");

/** One browser (a persistent context on a fresh profile) for a whole test file. */
export async function launch() {
  const profile = mkdtempSync(path.join(os.tmpdir(), "rtcio-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1200, height: 560 },
  });
  // The persistent context opens with one blank tab; the tests open their own.
  for (const page of context.pages()) await page.close();
  return {
    context,
    async open(url, { onConsole = false } = {}) {
      const page = await context.newPage();
      if (onConsole || process.env.RTCIO_DEMO_CONSOLE) {
        page.on("console", (m) => console.log(`[page] ${m.type()}: ${m.text()}`));
        page.on("pageerror", (e) => console.log(`[page error] ${e.message}`));
      }
      await page.goto(url);
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The demo page URL that joins `room` as `name` at once. */
export function roomUrl(base, room, name, extra = {}) {
  const q = new URLSearchParams({ room, name, autojoin: "1", ...extra });
  return `${base}/?${q}`;
}

/** Names of the remote tiles on `page`, sorted. */
export async function remoteNames(page) {
  const names = await page.$$eval(".tile.remote", (tiles) => tiles.map((t) => t.dataset.name));
  return names.sort();
}

/**
 * Waits until `page` shows exactly the remote tiles `names` and each one's
 * video has frames (videoWidth > 0) and is playing: its currentTime moves on
 * past the value it had once it had frames.
 */
export async function waitForVideos(page, names, timeout = 60_000) {
  const sorted = [...names].sort();
  await page.waitForFunction(
    (expected) => {
      const tiles = [...document.querySelectorAll(".tile.remote")];
      const got = tiles.map((t) => t.dataset.name).sort();
      if (JSON.stringify(got) !== JSON.stringify(expected)) return false;
      return tiles.every((t) => {
        const v = t.querySelector("video");
        return v.videoWidth > 0 && v.currentTime > 0;
      });
    },
    sorted,
    { timeout, polling: 100 },
  );
  const before = await page.$$eval(".tile.remote video", (vs) => vs.map((v) => v.currentTime));
  await page.waitForFunction(
    (start) => [...document.querySelectorAll(".tile.remote video")].every((v, i) => v.currentTime > start[i]),
    before,
    { timeout, polling: 100 },
  );
}

/** Waits until `page` shows exactly the remote tiles `names` (whatever their media). */
export async function waitForTiles(page, names, timeout = 30_000) {
  await page.waitForFunction(
    (expected) =>
      JSON.stringify([...document.querySelectorAll(".tile.remote")].map((t) => t.dataset.name).sort()) ===
      JSON.stringify(expected),
    [...names].sort(),
    { timeout, polling: 100 },
  );
}

/** Waits until the status line of `page` contains `text`; resolves with the whole line. */
export async function waitForStatus(page, text, timeout = 30_000) {
  await page.waitForFunction(
    (t) => {
      const el = document.getElementById("status");
      return !el.hidden && el.textContent.includes(t);
    },
    text,
    { timeout, polling: 100 },
  );
  return page.textContent("#status");
}

/** Saves a screenshot of `page` as test-output/`file`. */
export async function screenshot(page, file) {
  mkdirSync(OUTPUT, { recursive: true });
  const where = path.join(OUTPUT, file);
  await page.screenshot({ path: where });
  return where;
}
