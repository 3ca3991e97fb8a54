#!/usr/bin/env node
// The engine conformance server (tests/engine/CONTRACT.md) on Node socket.io@4.8.
// The JavaScript conformance suite runs against this server too
// (RTCIO_CONFORMANCE_SERVER=node), which proves the tests encode socket.io's
// behaviour rather than ours.
import http from "node:http";
import { Server } from "socket.io";

function parseArgs(argv) {
  const opts = {
    port: 0,
    host: "127.0.0.1",
    transports: ["polling", "websocket"],
    pingInterval: 25000,
    pingTimeout: 20000,
    maxPayload: 1000000,
    connectTimeout: 45000,
    corsOrigin: "*",
  };
  const int = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) usage(`${flag} expects a non-negative integer, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let value;
    const eq = flag.indexOf("=");
    if (flag.startsWith("--") && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    } else if (flag === "--help" || flag === "-h") {
      usage();
    } else {
      value = argv[++i];
      if (value === undefined) usage(`${flag} expects a value`);
    }
    switch (flag) {
      case "--port": opts.port = int(flag, value); break;
      case "--host": opts.host = value; break;
      case "--transports":
        opts.transports = value.split(",").map((t) => t.trim()).filter(Boolean);
        for (const t of opts.transports) {
          if (t !== "polling" && t !== "websocket") usage(`unknown transport ${t}`);
        }
        break;
      case "--ping-interval": opts.pingInterval = int(flag, value); break;
      case "--ping-timeout": opts.pingTimeout = int(flag, value); break;
      case "--max-payload": opts.maxPayload = int(flag, value); break;
      case "--connect-timeout": opts.connectTimeout = int(flag, value); break;
      case "--cors-origin": opts.corsOrigin = value; break;
      // Accepted for parity with the Rust server; socket.io has no such bound.
      case "--max-queue-bytes": int(flag, value); break;
      default: usage(`unknown flag ${flag}`);
    }
  }
  return opts;
}

function usage(error) {
  const text =
    "conformance [--port 0] [--host 127.0.0.1] [--transports polling,websocket]\n" +
    "  [--ping-interval MS] [--ping-timeout MS] [--max-payload BYTES]\n" +
    "  [--connect-timeout MS] [--cors-origin ORIGIN]\n";
  if (error) {
    process.stderr.write(`error: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));

const httpServer = http.createServer();
const io = new Server(httpServer, {
  cors: { origin: opts.corsOrigin },
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: opts.maxPayload,
  transports: opts.transports,
  connectTimeout: opts.connectTimeout,
});

const sortedRooms = (socket) => [...socket.rooms].sort();
const lastAck = (args) => (typeof args[args.length - 1] === "function" ? args.pop() : undefined);

// ---- namespace "/" ---------------------------------------------------------
const root = io.of("/");

root.use((socket, next) => {
  const auth = socket.handshake.auth ?? {};
  if (auth.token === "bad") {
    const err = new Error("invalid token");
    err.data = { reason: "bad" };
    return next(err);
  }
  next();
});

root.on("connection", (socket) => {
  socket.emit("welcome", {
    id: socket.id,
    auth: socket.handshake.auth ?? {},
    query: { ...socket.handshake.query },
  });

  socket.on("echo", (...args) => {
    socket.emit("echo", ...args);
  });

  socket.on("echo-ack", (...args) => {
    const ack = lastAck(args);
    if (ack) ack(...args);
  });

  socket.on("ping-ack", (...args) => {
    const ack = lastAck(args);
    if (ack) ack("pong");
  });

  socket.on("ask-client", (req, ack) => {
    if (typeof ack !== "function") return;
    const { event, timeoutMs } = req ?? {};
    socket.timeout(timeoutMs).emit(event, "question", (err, answer) => {
      if (err) ack({ ok: false, error: "timeout" });
      else ack({ ok: true, answer });
    });
  });

  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(sortedRooms(socket));
  });

  socket.on("leave", (room, ack) => {
    socket.leave(room);
    if (typeof ack === "function") ack(sortedRooms(socket));
  });

  socket.on("to-room", ({ room, event, data } = {}, ack) => {
    socket.to(room).emit(event, data);
    if (typeof ack === "function") ack(true);
  });

  socket.on("broadcast", ({ room, except, event, data } = {}, ack) => {
    let op = root.to(room);
    if (except !== undefined && except !== null) op = op.except(except);
    op.emit(event, data);
    if (typeof ack === "function") ack(true);
  });

  socket.on("room-size", (room, ack) => {
    if (typeof ack === "function") ack(root.adapter.rooms.get(room)?.size ?? 0);
  });

  socket.on("server-binary", (ack) => {
    socket.emit("binary", {
      buf: Buffer.from([1, 2, 3]),
      nested: { list: [Buffer.from([4, 5]), "text"] },
    });
    if (typeof ack === "function") ack(true);
  });

  socket.on("disconnect-me", () => {
    socket.disconnect();
  });
});

// ---- namespace "/admin" ----------------------------------------------------
const admin = io.of("/admin");

admin.use((socket, next) => {
  if (socket.handshake.auth?.admin === true) return next();
  next(new Error("not admin"));
});

admin.on("connection", (socket) => {
  socket.emit("welcome-admin", { id: socket.id });
  socket.on("echo", (...args) => {
    socket.emit("echo", ...args);
  });
});

// ---- start -----------------------------------------------------------------
httpServer.listen(opts.port, opts.host, () => {
  const { address, port } = httpServer.address();
  const host = address.includes(":") ? `[${address}]` : address;
  process.stdout.write(`listening on ${host}:${port}\n`);
});

const shutdown = () => {
  io.close();
  httpServer.closeAllConnections?.();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
