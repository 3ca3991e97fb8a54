// The admin page: connects to the `/admin` namespace with the token typed in
// (kept in memory only, never stored), then polls `stats` and `list-rooms`
// every two seconds and renders rooms, members and counts with kick and
// close buttons. Names and ids come from clients: they are only ever set as
// text, never as HTML.
import { Connection } from "./sio.js";

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
let conn = null;
let timer = null;

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "onclick") node.addEventListener("click", v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function describe(error) {
  return error ? `${error.code}: ${error.message}` : "no answer";
}

async function act(event, payload, what) {
  try {
    const reply = await conn.request(event, payload);
    if (!reply?.ok) status(`${what} failed: ${describe(reply?.error)}`, true);
    else status(`${what}: done.`);
  } catch (e) {
    status(`${what} failed: ${e.message}`, true);
  }
  refresh();
}

function renderStats(s) {
  const rows = [
    ["Namespace", s.namespace],
    ["Connected sockets", s.sockets],
    ["Engine.IO sessions", s.sessions],
    ["Rooms", s.rooms],
    ["Sockets in rooms", s.socketsInRooms],
    ["Largest room", s.largestRoom],
    ["Admins connected", s.admins],
    ["Up for", `${s.uptimeSeconds} s (since ${new Date(s.startedAt).toISOString()})`],
    ["Resident memory", s.rssBytes == null ? "n/a" : `${(s.rssBytes / 1048576).toFixed(1)} MiB`],
  ];
  $("stats").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: String(v) })]));
}

function renderRooms(list) {
  $("room-count").textContent = `(${list.total}${list.truncated ? `, first ${list.rooms.length} shown` : ""})`;
  $("no-rooms").hidden = list.total > 0;
  const rooms = list.rooms.map((room) => {
    const rows = room.members.map((m) =>
      el(
        "tr",
        { dataset: { socket: m.id } },
        el("td", { className: "name", textContent: m.name ?? "" }),
        el("td", { className: "user", textContent: m.userId ?? "" }),
        el("td", {}, el("code", { textContent: m.id })),
        el(
          "td",
          {},
          el("button", {
            className: "kick",
            textContent: "Kick",
            title: "Disconnect this socket",
            onclick: () => act("kick", { socketId: m.id }, `Kick ${m.name || m.id}`),
          }),
          m.userId
            ? el("button", {
                className: "kick-user",
                textContent: "Kick user",
                title: "Disconnect every socket of this user",
                onclick: () => act("kick", { userId: m.userId }, `Kick user ${m.userId}`),
              })
            : "",
        ),
      ),
    );
    return el(
      "div",
      { className: "room", dataset: { room: room.roomId } },
      el(
        "h3",
        {},
        el("span", { className: "room-id", textContent: room.roomId }),
        el("span", { className: "size", textContent: `${room.size} member${room.size === 1 ? "" : "s"}` }),
        el("button", {
          className: "close-room",
          textContent: "Close room",
          onclick: () => act("close-room", { roomId: room.roomId }, `Close ${room.roomId}`),
        }),
      ),
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, ...["Name", "User id", "Socket id", ""].map((h) => el("th", { textContent: h })))),
        el("tbody", {}, ...rows),
      ),
    );
  });
  $("rooms").replaceChildren(...rooms);
}

let refreshing = false;

async function refresh() {
  // A slow server must not pile up polls.
  if (!conn || refreshing) return;
  refreshing = true;
  try {
    const [stats, list] = await Promise.all([conn.request("stats"), conn.request("list-rooms")]);
    if (stats?.ok) renderStats(stats);
    if (list?.ok) renderRooms(list);
  } catch (e) {
    if (conn) status(`Refresh failed: ${e.message}`, true);
  } finally {
    refreshing = false;
  }
}

function disconnected(message, isError) {
  clearInterval(timer);
  timer = null;
  conn = null;
  $("dashboard").hidden = true;
  $("connect").hidden = false;
  $("disconnect").hidden = true;
  status(message, isError);
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = $("token").value;
  status("Connecting…");
  const c = new Connection("/admin", { token });
  try {
    await c.connect();
  } catch (err) {
    const detail = err.data?.message ? ` (${err.data.message})` : "";
    disconnected(`Refused: ${err.message}${detail}`, true);
    return;
  }
  conn = c;
  $("token").value = "";
  c.on("close", () => {
    if (conn === c) disconnected("Disconnected from the server.", true);
  });
  c.on("error", (err) => status(`Error: ${describe(err)}`, true));
  $("dashboard").hidden = false;
  $("connect").hidden = true;
  $("disconnect").hidden = false;
  status("Connected.");
  await refresh();
  timer = setInterval(refresh, POLL_MS);
});

$("disconnect").addEventListener("click", () => {
  const c = conn;
  disconnected("Not connected.");
  c?.close();
});
