#!/usr/bin/env python3
"""Redis CPU per room join: the join script sent whole (EVAL) vs by hash
(EVALSHA), as rtcio-cluster's room store now does.

    python3 bench/redis-evalsha.py [JOINS]     (default 20000)

Starts a throwaway redis-server on a free loopback port (no persistence),
pipelines JOINS joins into rooms of 4 with each form twice, alternating, and
prints the redis-server CPU time per join (from /proc). Stops it at the end.
"""
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = open(os.path.join(ROOT, "crates/cluster/src/lua/join.lua")).read()
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        redis = subprocess.Popen(
            [os.environ.get("RTCIO_REDIS_BIN", "redis-server"), "--port", str(port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(50):
                try:
                    conn = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                sys.exit("redis-server did not start")

            def call(*args):
                conn.sendall(enc(*args))
                return conn.recv(4096)

            call("SCRIPT", "LOAD", SCRIPT)
            tick = os.sysconf("SC_CLK_TCK")

            def cpu():
                with open("/proc/%d/stat" % redis.pid) as f:
                    v = f.read().split()
                return (int(v[13]) + int(v[14])) / tick

            for mode in ["EVAL", "EVALSHA", "EVAL", "EVALSHA"]:
                call("FLUSHALL")
                c0, t0 = cpu(), time.time()
                batch = b""
                for i in range(N):
                    room = "room%d" % (i // 4)
                    head = SCRIPT if mode == "EVAL" else SHA
                    batch += enc(mode, head, 2, "rtcio:room:/:" + room, "rtcio:roompw:/:" + room,
                                 "sid%d" % i, '{"node":"abcdef0123456789","name":"user"}', 4, "",
                                 86400000, "join")
                    if len(batch) > 200000 or i == N - 1:
                        conn.sendall(batch)
                        batch = b""
                conn.sendall(enc("PING"))
                buf = b""
                while not buf.endswith(b"+PONG\r\n"):
                    buf += conn.recv(1 << 20)
                if b"-NOSCRIPT" in buf or b"-ERR" in buf:
                    sys.exit("a join failed: " + mode)
                print("%-7s redis-server CPU per join %.1f us (%d joins in %.2f s)"
                      % (mode, (cpu() - c0) / N * 1e6, N, time.time() - t0))
        finally:
            redis.kill()
            redis.wait()


main()
