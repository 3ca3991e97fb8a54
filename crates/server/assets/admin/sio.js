// A compact Socket.IO 5 / Engine.IO 4 client for the admin page: WebSocket
// transport only, one namespace, an `auth` object on connect, events with
// acknowledgements, heartbeats answered. No binary packets, no reconnection
// (the page offers a "Connect" button instead). Written for this page so it
// carries no third-party code.

/** Engine.IO packet types (text frames). */
const EIO = { OPEN: "0", CLOSE: "1", PING: "2", PONG: "3", MESSAGE: "4" };
/** Socket.IO packet types. */
const SIO = { CONNECT: "0", DISCONNECT: "1", EVENT: "2", ACK: "3", CONNECT_ERROR: "4" };

/** Splits a Socket.IO packet (without its Engine.IO `4`) into its parts. */
export function parsePacket(text, defaultNsp = "/") {
  let i = 0;
  const type = text[i++];
  let nsp = defaultNsp;
  if (text[i] === "/") {
    const comma = text.indexOf(",", i);
    nsp = comma === -1 ? text.slice(i) : text.slice(i, comma);
    i = comma === -1 ? text.length : comma + 1;
  }
  let id = "";
  while (i < text.length && text[i] >= "0" && text[i] <= "9") id += text[i++];
  const rest = text.slice(i);
  return { type, nsp, id: id === "" ? null : Number(id), data: rest === "" ? undefined : JSON.parse(rest) };
}

export class Connection {
  /**
   * @param {string} nsp namespace, e.g. "/admin"
   * @param {object} auth sent with CONNECT (socket.io's `auth` option)
   * @param {string} [base] origin of the server, default the page's own
   */
  constructor(nsp, auth, base = location.origin) {
    this.nsp = nsp;
    this.auth = auth;
    this.url = base.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
    this.nextAck = 0;
    this.pending = new Map();
    this.listeners = new Map();
    this.ws = null;
    this.id = null;
  }

  /** Resolves with the socket id once the namespace accepted us; rejects with connect_error's Error. */
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let settled = false;
      const fail = (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      };
      ws.onerror = () => fail(new Error("cannot reach the server"));
      ws.onclose = () => {
        fail(new Error("connection closed"));
        this.id = null;
        for (const { reject: r } of this.pending.values()) r(new Error("disconnected"));
        this.pending.clear();
        this.fire("close");
      };
      ws.onmessage = ({ data }) => {
        if (typeof data !== "string") return;
        switch (data[0]) {
          case EIO.OPEN:
            ws.send(EIO.MESSAGE + SIO.CONNECT + this.nsp + "," + JSON.stringify(this.auth));
            break;
          case EIO.PING:
            ws.send(EIO.PONG);
            break;
          case EIO.MESSAGE: {
            const p = parsePacket(data.slice(1));
            if (p.nsp !== this.nsp) break;
            if (p.type === SIO.CONNECT) {
              this.id = p.data?.sid ?? null;
              settled = true;
              resolve(this.id);
            } else if (p.type === SIO.CONNECT_ERROR) {
              const err = new Error(p.data?.message ?? "refused");
              err.data = p.data?.data;
              fail(err);
              ws.close();
            } else if (p.type === SIO.ACK && this.pending.has(p.id)) {
              const { resolve: r, timer } = this.pending.get(p.id);
              clearTimeout(timer);
              this.pending.delete(p.id);
              r(Array.isArray(p.data) ? p.data[0] : undefined);
            } else if (p.type === SIO.EVENT && Array.isArray(p.data)) {
              this.fire(p.data[0], ...p.data.slice(1));
            } else if (p.type === SIO.DISCONNECT) {
              ws.close();
            }
            break;
          }
          case EIO.CLOSE:
            ws.close();
            break;
        }
      };
    });
  }

  /** Sends `event` with one argument; resolves with the acknowledgement's first argument. */
  request(event, arg, timeoutMs = 10_000) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.id === null) {
      return Promise.reject(new Error("not connected"));
    }
    const id = this.nextAck++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${event}`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const args = arg === undefined ? [event] : [event, arg];
      this.ws.send(EIO.MESSAGE + SIO.EVENT + this.nsp + "," + id + JSON.stringify(args));
    });
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
  }

  fire(event, ...args) {
    for (const fn of this.listeners.get(event) ?? []) fn(...args);
  }

  close() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(EIO.MESSAGE + SIO.DISCONNECT + this.nsp + ",");
      this.ws.close();
    }
  }
}
