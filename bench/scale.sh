#!/usr/bin/env bash
# The scale target: many idle sockets in rooms of 4 on one rtcio-server
# process, then a paced relay beside them. Reports join → init-offer latency
# for the joins, relay latency at the paced rate, and the server's RSS.
#
#   SCALE_SOCKETS   idle sockets (default 18000: the open-file hard limit here
#                   is 20,000 per process, server included)
#   SCALE_RATE      relay envelopes per second (default 50000)
#   SCALE_PAIRS     relay pairs (default 100)
#   SERVER_CORE / BENCH_CORE   cores to pin to (default 0 / 1; SERVER_CORE=all for no pinning)
set -euo pipefail
cd "$(dirname "$0")/.."

SOCKETS=${SCALE_SOCKETS:-18000}
RATE=${SCALE_RATE:-50000}
PAIRS=${SCALE_PAIRS:-100}
PORT=${BENCH_PORT:-3111}
OUT=${BENCH_OUT:-target/bench-results/scale-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

if [ -z "${BENCH_NO_BUILD:-}" ]; then
  cargo build --release -q -p rtcio-server -p rtcio-bench
fi
SERVER=${RTCIO_SERVER_BIN:-target/release/rtcio-server}
BENCH=${RTCIO_BENCH_BIN:-target/release/rtcio-bench}
pin_server=(taskset -c "${SERVER_CORE:-0}")
[ "${SERVER_CORE:-0}" = all ] && pin_server=()
pin_bench=(taskset -c "${BENCH_CORE:-1}")

# RATE_LIMIT=0: thousands of sockets connect from a few loopback addresses.
RATE_LIMIT=0 NO_HISTORY="${NO_HISTORY:-1}" "${pin_server[@]}" "$SERVER" --host 127.0.0.1 --port "$PORT" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

HOLD=$(( SOCKETS / 2000 + 60 ))
echo "== $SOCKETS sockets joining rooms of 4 (held ${HOLD}s)"
"${pin_bench[@]}" "$BENCH" --port "$PORT" --server-pid "$SERVER_PID" --quiet --source-addrs 4 --json "$OUT/rooms.json" \
  rooms --sockets "$SOCKETS" --room-size 4 --rate 2000 --hold "${HOLD}s" >"$OUT/rooms.txt" 2>&1 &
ROOMS=$!
# Let every socket join (2,000 joins/s) before the relay starts; polling the
# kernel's socket tables instead would itself load the machine.
sleep $(( SOCKETS / 2000 + 8 ))

echo "== relay at $RATE envelopes/s beside them"
"${pin_bench[@]}" "$BENCH" --port "$PORT" --server-pid "$SERVER_PID" --quiet --source-addrs 4 --json "$OUT/relay.json" \
  relay --pairs "$PAIRS" --window 64 --rate "$RATE" --duration 20s --warmup 3s | tee "$OUT/relay.txt"
wait $ROOMS || true
cat "$OUT/rooms.txt"
echo "results in $OUT"
