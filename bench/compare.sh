#!/usr/bin/env bash
# Node socket.io@4.8 baseline vs rtcio-server, same load, same pinning.
#
#   bench/compare.sh [SCENARIO...]      (default: relay relay-sdp rooms call churn)
#
# Each scenario runs against a fresh server process: the Node baseline
# (bench/baseline/server.js) and target/release/rtcio-server pinned to core
# $SERVER_CORE, the load generator (target/release/rtcio-bench) pinned to core
# $BENCH_CORE; then rtcio-server again on all cores, for information. One
# table at the end: metric | Node | Rust | ratio Rust/Node | Rust (all cores).
# (↑) marks metrics where higher is better, (↓) lower is better.
#
# Sizes (environment, defaults finish in about 4 minutes in total):
#   BENCH_SERVERS="node rust rust-all"  which servers to run
#   BENCH_WARMUP=2s                     warm-up of the timed scenarios
#   BENCH_RELAY_PAIRS=50 BENCH_RELAY_WINDOW=8 BENCH_RELAY_DURATION=10s
#   BENCH_RELAY_SIZE=330  BENCH_SDP_SIZE=5000 (relay-sdp)
#   BENCH_ROOMS_SOCKETS=10000 BENCH_ROOMS_SIZE=4 BENCH_ROOMS_RATE=1000 BENCH_ROOMS_HOLD=5s
#   BENCH_CALL_CONCURRENCY=20 BENCH_CALL_DURATION=10s
#   BENCH_CHURN_CYCLES=20000 BENCH_CHURN_CONCURRENCY=100
#   BENCH_SMOKE=1          about 2 s per scenario (proves the harness works)
#   BENCH_NO_BUILD=1       do not run cargo build
#   BENCH_OUT=DIR          where the JSON results and server logs go
#   BENCH_PORT=3101        server port
#   SERVER_CORE=0 BENCH_CORE=1
#   RTCIO_SERVER_ARGS=...  extra arguments for rtcio-server
#   NO_HISTORY=0           keep rtcio-server's chat history on (default off here:
#                          the Node baseline has none, and no rtcio.db is written)
#   RATE_LIMIT=1           measure with the rate limits on (default 0: off, as
#                          the bench floods far past the per-socket limits;
#                          raise them with RTCIO_SERVER_ARGS="--message-rate ...")
#   RTCIO_SERVER_BIN / RTCIO_BENCH_BIN  binaries to use (default: the release builds)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(relay relay-sdp rooms call churn)
read -r -a SERVERS <<<"${BENCH_SERVERS:-node rust rust-all}"
WARMUP="${BENCH_WARMUP:-2s}"
PORT="${BENCH_PORT:-3101}"
SERVER_CORE="${SERVER_CORE:-0}"
BENCH_CORE="${BENCH_CORE:-1}"
OUT="${BENCH_OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH_BIN="${RTCIO_BENCH_BIN:-$TARGET_DIR/release/rtcio-bench}"
SERVER_BIN="${RTCIO_SERVER_BIN:-$TARGET_DIR/release/rtcio-server}"
mkdir -p "$OUT"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    packages=(-p rtcio-bench)
    for s in "${SERVERS[@]}"; do
        case "$s" in rust*) packages=(-p rtcio-server -p rtcio-bench) ;; esac
    done
    cargo build --release "${packages[@]}"
fi
for s in "${SERVERS[@]}"; do
    if [ "$s" = node ] && [ ! -d bench/baseline/node_modules/socket.io ]; then
        npm install --prefix bench/baseline --no-audit --no-fund
    fi
done

load1="$(cut -d' ' -f1 /proc/loadavg)"
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    echo "warning: load average $load1 before the run: other processes will skew the results" >&2
    echo "         (see the 'other CPU on the machine' rows)" >&2
fi

SMOKE=()
[ -n "${BENCH_SMOKE:-}" ] && SMOKE=(--smoke)

scenario_args() {
    case "$1" in
        relay) echo relay --pairs "${BENCH_RELAY_PAIRS:-50}" --window "${BENCH_RELAY_WINDOW:-8}" \
            --size "${BENCH_RELAY_SIZE:-330}" --duration "${BENCH_RELAY_DURATION:-10s}" --warmup "$WARMUP" ;;
        relay-sdp) echo relay --pairs "${BENCH_RELAY_PAIRS:-50}" --window "${BENCH_RELAY_WINDOW:-8}" \
            --size "${BENCH_SDP_SIZE:-5000}" --duration "${BENCH_RELAY_DURATION:-10s}" --warmup "$WARMUP" ;;
        rooms) echo rooms --sockets "${BENCH_ROOMS_SOCKETS:-10000}" --room-size "${BENCH_ROOMS_SIZE:-4}" \
            --rate "${BENCH_ROOMS_RATE:-1000}" --hold "${BENCH_ROOMS_HOLD:-5s}" ;;
        call) echo call --concurrency "${BENCH_CALL_CONCURRENCY:-20}" \
            --duration "${BENCH_CALL_DURATION:-10s}" --warmup "$WARMUP" ;;
        churn) echo churn --cycles "${BENCH_CHURN_CYCLES:-20000}" --concurrency "${BENCH_CHURN_CONCURRENCY:-100}" ;;
        *) echo "unknown scenario $1" >&2; return 1 ;;
    esac
}

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap stop_server EXIT

start_server() { # kind log
    local kind="$1" log="$2"
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
        echo "port $PORT is already in use (set BENCH_PORT)" >&2
        return 1
    fi
    case "$kind" in
        node) taskset -c "$SERVER_CORE" node bench/baseline/server.js --host 127.0.0.1 --port "$PORT" >"$log" 2>&1 & ;;
        rust) NO_HISTORY="${NO_HISTORY:-1}" RATE_LIMIT="${RATE_LIMIT:-0}" RUST_LOG="${RUST_LOG:-warn}" taskset -c "$SERVER_CORE" "$SERVER_BIN" --host 127.0.0.1 --port "$PORT" \
            ${RTCIO_SERVER_ARGS:-} >"$log" 2>&1 & ;;
        rust-all) NO_HISTORY="${NO_HISTORY:-1}" RATE_LIMIT="${RATE_LIMIT:-0}" RUST_LOG="${RUST_LOG:-warn}" "$SERVER_BIN" --host 127.0.0.1 --port "$PORT" \
            ${RTCIO_SERVER_ARGS:-} >"$log" 2>&1 & ;;
        *) echo "unknown server $kind" >&2; return 1 ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
            sleep 0.2
            if kill -0 "$SERVER_PID" 2>/dev/null; then
                return 0
            fi
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$kind server exited:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$kind server did not answer /health on port $PORT" >&2
    return 1
}

label() {
    case "$1" in
        node) echo "Node" ;;
        rust) echo "Rust" ;;
        rust-all) echo "Rust (all cores)" ;;
    esac
}

status=0
declare -A FILES
for scenario in "${SCENARIOS[@]}"; do
    read -r -a args <<<"$(scenario_args "$scenario")"
    for kind in "${SERVERS[@]}"; do
        json="$OUT/$scenario-$kind.json"
        echo "== $scenario on $kind" >&2
        start_server "$kind" "$OUT/$scenario-$kind.server.log"
        sleep 0.5
        if ! taskset -c "$BENCH_CORE" "$BENCH_BIN" --port "$PORT" --server-pid "$SERVER_PID" \
            --label "$kind" --name "$scenario" --json "$json" "${SMOKE[@]}" "${args[@]}" >"$OUT/$scenario-$kind.txt"; then
            echo "   $scenario on $kind reported a failure (see $OUT/$scenario-$kind.txt)" >&2
            status=1
        fi
        stop_server
        if [ -f "$json" ]; then
            FILES[$kind]="${FILES[$kind]:-}${FILES[$kind]:+,}$json"
        fi
    done
done

columns=()
for kind in "${SERVERS[@]}"; do
    [ -n "${FILES[$kind]:-}" ] && columns+=("$(label "$kind")=${FILES[$kind]}")
done
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "server on core $SERVER_CORE, load generator on core $BENCH_CORE; results in $OUT"
echo
"$BENCH_BIN" table "${columns[@]}" | tee "$OUT/table.md"
exit $status
