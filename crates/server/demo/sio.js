// A compact Socket.IO 5 / Engine.IO 4 client for the demo page, written for
// this project so the binary can serve the page with no third-party code.
// It covers what the page needs: one namespace, JSON events (no binary),
// acknowledgements in both directions, heartbeats, WebSocket or HTTP
// long-polling (no upgrade between them), reconnection with backoff, and
// socket.io's connection-state recovery handshake (`pid` + `offset`).

const RECORD_SEPARATOR = "\x1e";
// Socket.IO packet types.
const CONNECT = 0, DISCONNECT = 1, EVENT = 2, ACK = 3, CONNECT_ERROR = 4;

/** Parses one Socket.IO packet (the text after the Engine.IO "4"). */
function decode(text) {
  const type = Number(text[0]);
  let i = 1;
  if (type === 5 || type === 6) i = text.indexOf("-", i) + 1; // binary: not used by the page
  let nsp = "/";
  if (text[i] === "/") {
    const end = text.indexOf(",", i);
    nsp = end < 0 ? text.slice(i) : text.slice(i, end);
    i = end < 0 ? text.length : end + 1;
  }
  let id = "";
  while (i < text.length && text[i] >= "0" && text[i] <= "9") id += text[i++];
  let data;
  if (i < text.length) data = JSON.parse(text.slice(i));
  return { type, nsp, id: id === "" ? null : Number(id), data };
}

/**
 * Engine.IO over one WebSocket. Calls `onpacket(text)` for every Engine.IO
 * packet and `onclose(reason)` once.
 */
class WebSocketTransport {
  constructor(base, handlers) {
    const url = new URL("socket.io/", base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "EIO=4&transport=websocket";
    this.handlers = handlers;
    this.ws = new WebSocket(url);
    this.ws.onmessage = (e) => typeof e.data === "string" && handlers.onpacket(e.data);
    this.ws.onclose = () => this.#closed("transport close");
    this.ws.onerror = () => this.#closed("transport error");
  }
  #closed(reason) {
    if (this.done) return;
    this.done = true;
    this.handlers.onclose(reason);
  }
  send(packets) {
    if (this.ws.readyState === WebSocket.OPEN) for (const p of packets) this.ws.send(p);
  }
  /** Synchronous last words (page unload): the packets go out before the close. */
  farewell(packets) {
    this.send(packets);
    this.close();
  }
  close() {
    this.done = true;
    try {
      this.ws.close();
    } catch {}
  }
}

/** Engine.IO over HTTP long-polling: one GET loop, one POST at a time. */
class PollingTransport {
  constructor(base, handlers) {
    this.base = new URL("socket.io/", base);
    this.handlers = handlers;
    this.abort = new AbortController();
    this.outbox = [];
    this.posting = false;
    this.sid = null;
    this.#loop();
  }
  #url() {
    const q = new URLSearchParams({ EIO: "4", transport: "polling", t: Date.now().toString(36) });
    if (this.sid) q.set("sid", this.sid);
    return `${this.base}?${q}`;
  }
  async #loop() {
    try {
      while (!this.done) {
        const res = await fetch(this.#url(), { signal: this.abort.signal, cache: "no-store" });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = await res.text();
        for (const p of body.split(RECORD_SEPARATOR)) {
          if (p[0] === "0" && !this.sid) this.sid = JSON.parse(p.slice(1)).sid;
          if (p === "1") throw new Error("closed by the server");
          if (!this.done) this.handlers.onpacket(p);
        }
      }
    } catch {
      this.#closed("transport close");
    }
  }
  #closed(reason) {
    if (this.done) return;
    this.done = true;
    this.abort.abort();
    this.handlers.onclose(reason);
  }
  send(packets) {
    this.outbox.push(...packets);
    this.#flush();
  }
  async #flush() {
    if (this.posting || !this.outbox.length || !this.sid || this.done) return;
    this.posting = true;
    const body = this.outbox.splice(0).join(RECORD_SEPARATOR);
    try {
      const res = await fetch(this.#url(), {
        method: "POST",
        body,
        headers: { "content-type": "text/plain;charset=UTF-8" },
        signal: this.abort.signal,
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    } catch {
      this.#closed("transport error");
    }
    this.posting = false;
    this.#flush();
  }
  /** A beacon outlives the page, so the server still hears the goodbye. */
  farewell(packets) {
    if (this.sid && !this.done) {
      navigator.sendBeacon(this.#url(), new Blob([packets.join(RECORD_SEPARATOR)], { type: "text/plain" }));
    }
    this.close();
  }
  close() {
    this.done = true;
    this.abort.abort();
  }
}

/**
 * One Socket.IO client socket on namespace `nsp` of the server at `base`.
 * Events from the server reach `on(event, fn)` handlers; the socket's own
 * events are `connect` ({ recovered }), `disconnect` (reason),
 * `connect_error` (Error) and `reconnecting` (attempt).
 */
export class SioSocket {
  constructor(base, { namespace = "/", transport = "websocket", auth = null, ackTimeout = 10_000 } = {}) {
    this.base = base;
    this.nsp = namespace;
    this.transportName = transport;
    this.auth = auth;
    this.ackTimeout = ackTimeout;
    this.handlers = new Map();
    this.acks = new Map();
    this.nextAck = 0;
    this.id = null;
    this.pid = null; // recovery session id, when the server offers recovery
    this.offset = null; // last event offset seen, for recovery
    this.connected = false;
    this.recovered = false;
    this.attempts = 0;
    this.stopped = false;
    this.#open();
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(fn);
    return this;
  }

  off(event, fn) {
    this.handlers.get(event)?.delete(fn);
    return this;
  }

  #fire(event, args) {
    for (const fn of [...(this.handlers.get(event) ?? [])]) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`handler for "${event}" failed`, e);
      }
    }
  }

  /** `emit(event, ...args[, ackCallback])`; false when not connected (the event is dropped). */
  emit(event, ...args) {
    const callback = typeof args.at(-1) === "function" ? args.pop() : null;
    if (!this.connected) {
      callback?.(new Error("not connected"));
      return false;
    }
    let id = "";
    if (callback) {
      id = String(this.nextAck++);
      const timer = setTimeout(() => {
        this.acks.delete(id);
        callback(new Error("ack timeout"));
      }, this.ackTimeout);
      this.acks.set(id, (err, data) => {
        clearTimeout(timer);
        if (err) callback(err);
        else callback(null, ...data);
      });
    }
    this.#send(`${EVENT}${this.#prefix()}${id}${JSON.stringify([event, ...args])}`);
    return true;
  }

  /** Emits with an acknowledgement and resolves with its first argument. */
  emitWithAck(event, ...args) {
    return new Promise((resolve, reject) => {
      if (!this.connected) return reject(new Error("not connected"));
      this.emit(event, ...args, (err, value) => (err ? reject(err) : resolve(value)));
    });
  }

  /** Leaves for good: a Socket.IO DISCONNECT so the server treats it as a goodbye, not a blip. */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.heartbeat);
    if (this.transport) this.transport.farewell(this.connected ? [`4${DISCONNECT}${this.#prefix()}`] : []);
    this.transport = null;
    if (this.connected) {
      this.connected = false;
      this.#fire("disconnect", ["io client disconnect"]);
    }
  }

  #prefix() {
    return this.nsp === "/" ? "" : `${this.nsp},`;
  }

  #send(packet) {
    this.transport?.send([`4${packet}`]);
  }

  #open() {
    const Transport = this.transportName === "polling" ? PollingTransport : WebSocketTransport;
    const transport = new Transport(this.base, {
      onpacket: (p) => transport === this.transport && this.#onEngine(p),
      onclose: (reason) => transport === this.transport && this.#lost(reason),
    });
    this.transport = transport;
  }

  #armHeartbeat() {
    clearTimeout(this.heartbeat);
    // No ping for interval + timeout: the link is dead even if the OS has not said so.
    this.heartbeat = setTimeout(() => {
      this.transport?.close();
      this.#lost("ping timeout");
    }, this.pingInterval + this.pingTimeout);
  }

  #onEngine(packet) {
    switch (packet[0]) {
      case "0": {
        const open = JSON.parse(packet.slice(1));
        this.pingInterval = open.pingInterval;
        this.pingTimeout = open.pingTimeout;
        this.#armHeartbeat();
        let data = this.auth ? { ...this.auth } : null;
        if (this.pid) data = { ...(data ?? {}), pid: this.pid, offset: this.offset };
        this.#send(`${CONNECT}${this.#prefix()}${data ? JSON.stringify(data) : ""}`);
        break;
      }
      case "2":
        this.#armHeartbeat();
        this.transport.send(["3"]);
        break;
      case "1":
        this.transport.close();
        this.#lost("transport close");
        break;
      case "4":
        this.#onSocketIo(decode(packet.slice(1)));
        break;
      default: // "3" pong, "6" noop
    }
  }

  #onSocketIo({ type, nsp, id, data }) {
    if (nsp !== this.nsp) return;
    switch (type) {
      case CONNECT: {
        const pid = data?.pid ?? null;
        this.recovered = Boolean(pid && this.pid === pid && this.id === data.sid);
        this.id = data.sid;
        this.pid = pid;
        this.connected = true;
        this.attempts = 0;
        this.#fire("connect", [{ recovered: this.recovered }]);
        break;
      }
      case EVENT: {
        const [event, ...args] = data;
        // With recovery on, the server appends each event's offset as a last string argument.
        if (this.pid && typeof args.at(-1) === "string") this.offset = args.at(-1);
        if (id !== null) args.push((...reply) => this.#send(`${ACK}${this.#prefix()}${id}${JSON.stringify(reply)}`));
        this.#fire(event, args);
        break;
      }
      case ACK: {
        const done = this.acks.get(String(id));
        this.acks.delete(String(id));
        done?.(null, data ?? []);
        break;
      }
      case CONNECT_ERROR:
        // A refusal by the server's middleware: retrying would be refused again.
        this.stopped = true;
        this.transport.close();
        this.#lost("connect error");
        this.#fire("connect_error", [new Error(data?.message ?? "connection refused")]);
        break;
      case DISCONNECT:
        // The server ended this socket on purpose: socket.io clients do not come back.
        this.stopped = true;
        this.transport.close();
        this.transport = null;
        this.connected = false;
        clearTimeout(this.heartbeat);
        this.#fire("disconnect", ["io server disconnect"]);
        break;
    }
  }

  #lost(reason) {
    clearTimeout(this.heartbeat);
    this.transport = null;
    for (const [id, done] of this.acks) {
      this.acks.delete(id);
      done(new Error("disconnected"));
    }
    if (this.connected) {
      this.connected = false;
      this.#fire("disconnect", [reason]);
    }
    if (this.stopped) return;
    // Backoff with jitter so a restarted server is not hit by every tab at once.
    const delay = Math.min(5000, 500 * 2 ** this.attempts) * (0.5 + Math.random() / 2);
    this.attempts++;
    this.#fire("reconnecting", [this.attempts]);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.#open(), delay);
  }
}
