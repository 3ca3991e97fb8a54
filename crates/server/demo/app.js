// The video room: lobby, media, presence, tiles, chat and error messages.
// Signaling goes through sio.js (our Socket.IO client), media through one
// Peer (peer.js) per remote participant. Every text that came from another
// user is set with textContent, never as HTML.
import { SioSocket } from "./sio.js";
import { Peer } from "./peer.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const NAMESPACE = document.querySelector('meta[name="rtcio-namespace"]')?.content || "/";
// `?transport=polling` runs the signaling on HTTP long-polling instead of a WebSocket.
const TRANSPORT = params.get("transport") === "polling" ? "polling" : "websocket";

// Room ids: two words and 32 random bits (44 bits in all), easy to read
// aloud and not guessable by someone scanning for rooms.
const ADJECTIVES = (
  "amber azure bold brisk calm clear coral crisp dawn deep dusky eager early fair fern fleet " +
  "frosty gentle golden grand hazel honey indigo ivory jade keen lemon light lively lunar maple " +
  "mellow misty noble ocean olive opal pale pearl plum proud quiet rapid rosy ruby rustic sage " +
  "sandy scarlet silent silver slate snowy solar spring steady still sunny swift tawny teal velvet violet warm"
).split(" ");
const NOUNS = (
  "acorn alder aspen badger basin birch brook canyon cedar cliff cloud comet cove crane creek delta " +
  "dune eagle ember falcon fjord forest fox garden glade grove harbor hawk heron hill island lagoon " +
  "lake lark meadow mesa moon moss otter owl peak pine pond prairie quail rain reef ridge river " +
  "robin sparrow spruce star stone summit thicket tide trail valley wave willow wren"
).split(" ");

function randomRoom() {
  const [a, b, c] = crypto.getRandomValues(new Uint32Array(3));
  return `${ADJECTIVES[a % ADJECTIVES.length]}-${NOUNS[b % NOUNS.length]}-${c.toString(16).padStart(8, "0")}`;
}

// What each refusal means to the person in front of the page. The keys are
// the server's `join-error` reasons and `error` codes (crates/rtcio/src/errors.rs).
const MESSAGES = {
  "bad-request": "The server refused a malformed request.",
  "invalid-room": "That room name cannot be used: it must be 1 to 128 characters.",
  "password-required": "This room has a password. Enter it and join again.",
  "wrong-password": "Wrong password for this room.",
  "not-in-room": "You are not in this room any more. Join it again to continue.",
  "peer-unreachable": "A participant could not be reached; they may have just left.",
  forbidden: "You are not allowed to join this room.",
  "room-full": "This room is full. Try again later or pick another room.",
  "rate-limited": "Slow down: too many actions in a short time.",
  "too-many-rooms": "You are already in as many rooms as the server allows.",
  unavailable: "A service the server needs is unavailable right now. Try again in a moment.",
  kicked: "You were removed from the room by an administrator.",
  "not-found": "That room or person is not here any more.",
};

const describe = (code, message) =>
  MESSAGES[code] ?? (message ? `${message} (${code})` : `The server refused the action (${code}).`);

const state = {
  socket: null,
  roomId: null,
  name: "",
  password: "",
  wanted: false, // the user asked to be in the room (survives reconnects)
  inCall: false,
  local: null, // { stream, audio, video }
  mic: true,
  cam: true,
  screen: null, // the screen track while sharing
  iceServers: null,
  peers: new Map(),
  chatIds: new Set(),
};
window.rtcioDemo = state; // for the curious, in the browser console

// ---------------------------------------------------------------- status

function showStatus(text, kind = "info") {
  const el = $("status");
  el.textContent = text;
  el.className = kind;
  el.hidden = !text;
}

function setConnection(text, kind) {
  const el = $("connection");
  el.textContent = text;
  el.dataset.kind = kind;
}

// ---------------------------------------------------------------- lobby

function initLobby() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem("rtcio-demo") ?? "null");
  } catch {}
  $("room").value = params.get("room") ?? saved?.roomId ?? randomRoom();
  $("name").value = params.get("name") ?? saved?.name ?? localStorage.getItem("rtcio-demo-name") ?? "";
  $("password").value = params.get("password") ?? (saved?.roomId === $("room").value ? saved.password : "") ?? "";
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    join();
  });
  // A reload of a tab that was in a call, or a link made to join at once, goes straight in.
  if (params.get("autojoin") === "1" || (saved && saved.roomId === $("room").value)) join();
}

async function join() {
  state.roomId = $("room").value.trim();
  state.name = $("name").value.trim() || `guest-${Math.floor(Math.random() * 1000)}`;
  state.password = $("password").value;
  $("name").value = state.name;
  localStorage.setItem("rtcio-demo-name", state.name);
  $("join").disabled = true;
  showStatus("");
  if (!state.local) state.local = await getMedia();
  if (!state.iceServers) state.iceServers = await loadIceServers();
  state.wanted = true;
  if (!state.socket) connect();
  else if (state.socket.connected) emitJoin();
}

/** Camera and microphone, or as much of them as we can get; never fails. */
async function getMedia() {
  const empty = { stream: new MediaStream(), audio: null, video: null };
  if (!navigator.mediaDevices?.getUserMedia) {
    showStatus("Camera and microphone need a secure page (https or localhost): you can see and hear the others, they cannot see or hear you.", "warn");
    return empty;
  }
  let lastError = null;
  for (const constraints of [{ audio: true, video: true }, { audio: true }, { video: true }]) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      const local = { stream, audio: stream.getAudioTracks()[0] ?? null, video: stream.getVideoTracks()[0] ?? null };
      if (!local.video) showStatus("No camera available: the others hear you but do not see you.", "warn");
      else if (!local.audio) showStatus("No microphone available: the others see you but do not hear you.", "warn");
      return local;
    } catch (e) {
      lastError = e;
    }
  }
  const why =
    lastError?.name === "NotAllowedError"
      ? "Camera and microphone permission was refused"
      : lastError?.name === "NotFoundError"
        ? "No camera or microphone was found"
        : `Camera and microphone are unavailable (${lastError?.name ?? "unknown error"})`;
  showStatus(`${why}: you joined receive-only. You see and hear the others; they cannot see or hear you.`, "warn");
  return empty;
}

/** ICE servers from the server's `/ice` when it offers them; loopback and LAN need none. */
async function loadIceServers() {
  try {
    const res = await fetch("/ice", { cache: "no-store" });
    if (!res.ok) return [];
    const body = await res.json();
    return Array.isArray(body?.iceServers) ? body.iceServers : [];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- signaling

function connect() {
  setConnection("connecting…", "pending");
  const socket = new SioSocket(`${location.origin}/`, { namespace: NAMESPACE, transport: TRANSPORT });
  state.socket = socket;

  socket.on("connect", ({ recovered }) => {
    setConnection(`connected (${TRANSPORT})`, "ok");
    if (recovered) {
      // Same id and rooms as before the blip: keep every call, nudge the unhealthy ones.
      for (const peer of state.peers.values()) peer.nudge();
      return;
    }
    // A new socket id: the others see a new participant, so start over.
    for (const id of [...state.peers.keys()]) dropPeer(id);
    if (state.wanted) emitJoin();
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io server disconnect") {
      setConnection("disconnected", "error");
      if (state.inCall || state.wanted) leaveCall(null);
    } else if (reason !== "io client disconnect") {
      setConnection("reconnecting…", "pending");
    }
  });
  socket.on("reconnecting", (attempt) => setConnection(`reconnecting (attempt ${attempt})…`, "pending"));
  socket.on("connect_error", (err) => {
    setConnection("refused", "error");
    showStatus(`The server refused the connection: ${err.message}`, "error");
    state.socket = null;
    backToLobby();
  });

  socket.on("join-ok", ({ roomId }) => roomId === state.roomId && enterCall());
  socket.on("join-error", ({ reason }) => {
    showStatus(describe(reason), "error");
    state.wanted = false;
    backToLobby();
  });
  socket.on("error", (err) => {
    // An unreachable peer is usually one that just left: worth a note, not an alarm.
    showStatus(describe(err?.code, err?.message), err?.code === "peer-unreachable" ? "warn" : "error");
    if (err?.code === "kicked") leaveCall(describe("kicked"));
  });

  socket.on("user-connected", ({ id, name }) => {
    const peer = state.peers.get(id) ?? addPeer(id);
    peer.name = name ?? "";
    renderPeer(peer);
    renderPresence();
  });
  socket.on("user-disconnected", ({ id }) => dropPeer(id));
  socket.on("#rtcio:peer-left", ({ id }) => {
    const peer = state.peers.get(id);
    if (!peer) return;
    // A hint only: the peer may just have lost its signaling link. A call
    // that is up stays until WebRTC or the DataChannel says it is gone.
    if (peer.hint()) dropPeer(id);
  });
  socket.on("#rtcio:init-offer", ({ source }) => {
    const peer = state.peers.get(source) ?? addPeer(source);
    if (peer.pc) return;
    peer.polite = true;
    peer.start();
    if (state.screen) peer.setVideo(state.screen);
    renderPeer(peer);
  });
  socket.on("#rtcio:message", ({ source, data }) => {
    if (!data || typeof data !== "object") return;
    (state.peers.get(source) ?? addPeer(source)).signal(data);
  });
  socket.on("media-state", ({ id, mic, cam }) => {
    const peer = state.peers.get(id);
    if (!peer) return;
    peer.media = { mic: Boolean(mic), cam: Boolean(cam) };
    renderPeer(peer);
  });
  socket.on("stopScreenShare", ({ id }) => {
    const peer = state.peers.get(id);
    if (!peer) return;
    peer.screen = false;
    renderPeer(peer);
  });
  socket.on("chat-history", (messages) => {
    $("chat").hidden = false;
    if (Array.isArray(messages)) for (const m of messages) appendChat(m);
  });
  socket.on("chat-message", (message) => appendChat(message));
}

function emitJoin() {
  const payload = { roomId: state.roomId, name: state.name };
  if (state.password) payload.password = state.password;
  state.socket.emit("join-room", payload);
}

function sendMediaState() {
  if (!state.inCall) return;
  state.socket?.emit("media-state", {
    roomId: state.roomId,
    mic: Boolean(state.local?.audio && state.mic),
    cam: Boolean((state.local?.video && state.cam) || state.screen),
  });
}

// ---------------------------------------------------------------- call view

function enterCall() {
  const firstTime = !state.inCall;
  state.inCall = true;
  $("lobby").hidden = true;
  $("call").hidden = false;
  $("join").disabled = false;
  const link = new URL(location.pathname, location.origin);
  link.searchParams.set("room", state.roomId);
  if (TRANSPORT === "polling") link.searchParams.set("transport", "polling");
  $("room-name").textContent = state.roomId;
  $("room-link").value = link.href;
  $("room-bar").hidden = false;
  history.replaceState(null, "", link.href);
  sessionStorage.setItem("rtcio-demo", JSON.stringify({ roomId: state.roomId, name: state.name, password: state.password }));
  if (firstTime) renderLocal();
  $("toggle-mic").disabled = !state.local.audio;
  $("toggle-cam").disabled = !state.local.video;
  sendMediaState();
  renderPresence();
}

function backToLobby() {
  state.inCall = false;
  $("lobby").hidden = false;
  $("call").hidden = true;
  $("join").disabled = false;
}

/** Leaves the call for good: peers, signaling and devices are released. */
function leaveCall(message) {
  state.wanted = false;
  sessionStorage.removeItem("rtcio-demo");
  for (const id of [...state.peers.keys()]) dropPeer(id);
  state.socket?.close();
  state.socket = null;
  stopScreen(false);
  for (const t of state.local?.stream.getTracks() ?? []) t.stop();
  state.local = null;
  $("tiles").replaceChildren();
  $("chat-log").replaceChildren();
  $("chat").hidden = true;
  state.chatIds.clear();
  $("room-bar").hidden = true;
  setConnection("offline", "idle");
  backToLobby();
  if (message) showStatus(message, "error");
}

function makeTile(key) {
  const tile = $("tile-template").content.firstElementChild.cloneNode(true);
  tile.dataset.peer = key;
  if (key === "self") $("tiles").prepend(tile);
  else $("tiles").append(tile);
  return tile;
}

function renderLocal() {
  let tile = document.querySelector('.tile[data-peer="self"]');
  if (!tile) {
    tile = makeTile("self");
    tile.classList.add("local");
    tile.querySelector(".wave-button").remove();
    tile.querySelector("audio").remove();
  }
  const video = tile.querySelector("video");
  const shown = state.screen ?? state.local?.video;
  if (video.srcObject?.getVideoTracks()[0] !== shown) video.srcObject = shown ? new MediaStream([shown]) : null;
  tile.classList.toggle("no-video", !shown || (!state.cam && !state.screen));
  tile.querySelector(".name").textContent = `${state.name} (you)`;
  setBadge(tile, "mic", Boolean(state.local?.audio && state.mic));
  setBadge(tile, "cam", Boolean(state.local?.video && state.cam));
  tile.querySelector(".screen").hidden = !state.screen;
  tile.querySelector(".state").textContent = TRANSPORT;
  $("toggle-mic").textContent = state.mic ? "Mute" : "Unmute";
  $("toggle-mic").setAttribute("aria-pressed", String(state.mic));
  $("toggle-cam").textContent = state.cam ? "Camera off" : "Camera on";
  $("toggle-cam").setAttribute("aria-pressed", String(state.cam));
  $("toggle-screen").textContent = state.screen ? "Stop sharing" : "Share screen";
  $("toggle-screen").setAttribute("aria-pressed", String(Boolean(state.screen)));
}

function setBadge(tile, kind, on) {
  const badge = tile.querySelector(`.badge.${kind}`);
  badge.classList.toggle("off", on === false);
  badge.classList.toggle("unknown", on === null);
  badge.textContent = on === false ? `${kind} off` : kind;
}

function addPeer(id) {
  const peer = new Peer({
    id,
    name: "",
    polite: false,
    iceServers: state.iceServers ?? [],
    local: state.local ?? { stream: new MediaStream(), audio: null, video: null },
    send: (data) => state.socket?.emit("#rtcio:message", { source: state.socket.id, target: id, data }),
    events: {
      state: renderPeer,
      track: renderPeer,
      data: onPeerData,
      closed: (p) => dropPeer(p.id),
    },
  });
  peer.screen = false;
  state.peers.set(id, peer);
  const tile = makeTile(id);
  tile.classList.add("remote");
  tile.querySelector(".wave-button").addEventListener("click", () => {
    if (!peer.message({ t: "wave" })) showStatus(`${peer.name || "They"} cannot be reached peer-to-peer yet.`, "warn");
  });
  peer.tile = tile;
  renderPeer(peer);
  renderPresence();
  return peer;
}

function dropPeer(id) {
  const peer = state.peers.get(id);
  if (!peer) return;
  state.peers.delete(id);
  peer.close();
  peer.tile.remove();
  renderPresence();
}

function renderPeer(peer) {
  const tile = peer.tile;
  if (!tile?.isConnected) return;
  tile.dataset.name = peer.name;
  tile.dataset.state = peer.state;
  tile.querySelector(".name").textContent = peer.name || "joining…";
  const video = tile.querySelector("video");
  const audio = tile.querySelector("audio");
  const [vt] = peer.remote.getVideoTracks();
  const [at] = peer.remote.getAudioTracks();
  if (vt && video.srcObject?.getVideoTracks()[0] !== vt) video.srcObject = new MediaStream([vt]);
  if (at && audio.srcObject?.getAudioTracks()[0] !== at) {
    audio.srcObject = new MediaStream([at]);
    // Pages that capture nothing may not start sound on their own: offer a button.
    audio.play().catch(() => ($("enable-sound").hidden = false));
  }
  tile.classList.toggle("no-video", !vt || peer.media?.cam === false);
  setBadge(tile, "mic", peer.media ? peer.media.mic : null);
  setBadge(tile, "cam", peer.media ? peer.media.cam : null);
  tile.querySelector(".screen").hidden = !peer.screen;
  tile.querySelector(".state").textContent = peer.state;
  tile.querySelector(".rtt").textContent = peer.rtt === null ? "" : `${peer.rtt} ms`;
  renderPresence();
}

function renderPresence() {
  const items = [];
  if (state.inCall) {
    const li = document.createElement("li");
    li.textContent = `${state.name} (you)`;
    items.push(li);
  }
  for (const peer of state.peers.values()) {
    const li = document.createElement("li");
    li.dataset.peer = peer.id;
    li.textContent = `${peer.name || "joining…"} · ${peer.state}`;
    items.push(li);
  }
  $("presence").replaceChildren(...items);
}

function onPeerData(peer, msg) {
  if (msg.t === "wave") {
    const wave = peer.tile.querySelector(".wave");
    wave.textContent = "👋 waved at you";
    wave.hidden = false;
    clearTimeout(peer.waveTimer);
    peer.waveTimer = setTimeout(() => (wave.hidden = true), 8000);
  } else if (msg.t === "screen") {
    peer.screen = true;
    renderPeer(peer);
  } else if (msg.t === "bye") {
    dropPeer(peer.id);
  }
}

// ---------------------------------------------------------------- controls

function toggleMic() {
  if (!state.local?.audio) return;
  state.mic = !state.mic;
  state.local.audio.enabled = state.mic;
  renderLocal();
  sendMediaState();
}

function toggleCam() {
  if (!state.local?.video) return;
  state.cam = !state.cam;
  state.local.video.enabled = state.cam;
  renderLocal();
  sendMediaState();
}

async function toggleScreen() {
  if (state.screen) return stopScreen(true);
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
  } catch (e) {
    if (e?.name !== "NotAllowedError") showStatus(`Screen sharing is unavailable (${e?.name ?? e}).`, "warn");
    return;
  }
  const [track] = stream.getVideoTracks();
  state.screen = track;
  track.addEventListener("ended", () => stopScreen(true));
  for (const peer of state.peers.values()) {
    peer.setVideo(track);
    peer.message({ t: "screen", on: true });
  }
  renderLocal();
  sendMediaState();
}

/** Back to the camera; `announce` tells the room with `stopScreenShare`. */
function stopScreen(announce) {
  const track = state.screen;
  if (!track) return;
  state.screen = null;
  track.stop();
  // The others learn it from the server's `stopScreenShare`, as rtc.io clients do.
  for (const peer of state.peers.values()) peer.setVideo(null);
  if (announce && state.inCall) state.socket?.emit("stopScreenShare", { roomId: state.roomId });
  renderLocal();
  sendMediaState();
}

// ---------------------------------------------------------------- chat

function appendChat(m) {
  if (!m || typeof m.text !== "string") return;
  if (m.id != null) {
    if (state.chatIds.has(m.id)) return;
    state.chatIds.add(m.id);
  }
  const li = document.createElement("li");
  const time = document.createElement("time");
  const at = new Date(typeof m.at === "number" ? m.at : Date.parse(m.at) || Date.now());
  time.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const who = document.createElement("b");
  who.textContent = m.mine ? "you" : m.name || m.from || "someone";
  li.append(time, " ", who, " ", m.text);
  $("chat-log").append(li);
  li.scrollIntoView({ block: "end" });
}

function sendChat(e) {
  e.preventDefault();
  const text = $("chat-text").value.trim();
  if (!text || !state.socket) return;
  state.socket.emit("chat-message", { roomId: state.roomId, text }, (err, ack) => {
    if (err) return showStatus("The message could not be sent: the connection dropped.", "error");
    if (ack?.ok) {
      $("chat-text").value = "";
      appendChat({ id: ack.id, at: ack.at, text, mine: true });
    } else {
      const code = typeof ack?.error === "string" ? ack.error : ack?.error?.code;
      showStatus(describe(code ?? "bad-request", ack?.error?.message), "error");
    }
  });
}

// ---------------------------------------------------------------- wiring

$("toggle-mic").addEventListener("click", toggleMic);
$("toggle-cam").addEventListener("click", toggleCam);
$("toggle-screen").addEventListener("click", toggleScreen);
$("leave").addEventListener("click", () => leaveCall(null));
$("chat-form").addEventListener("submit", sendChat);
$("copy-link").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("room-link").value);
    showStatus("Link copied: open it in another tab or send it to someone.");
  } catch {
    $("room-link").select();
    showStatus("Press Ctrl+C (⌘C) to copy the selected link.");
  }
});
document.addEventListener("click", () => {
  for (const el of document.querySelectorAll(".tile audio")) if (el.srcObject && el.paused) el.play().catch(() => {});
  $("enable-sound").hidden = true;
});

// A closed or reloaded tab says goodbye: peers drop its tile at once instead
// of waiting for the server's heartbeat or WebRTC's own timeout.
function goodbye() {
  for (const peer of state.peers.values()) {
    peer.message({ t: "bye" });
    peer.close();
  }
  state.socket?.close();
}
addEventListener("pagehide", goodbye);
addEventListener("beforeunload", goodbye);
// Back from the back/forward cache with a closed socket: start over.
addEventListener("pageshow", (e) => e.persisted && location.reload());

initLobby();
