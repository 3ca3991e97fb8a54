#!/usr/bin/env bash
# The chat scenario (`rtcio-bench chat`) on SQLite and on PostgreSQL, with
# inserts batched (the default) and one message per INSERT
# (`--history-batch-max 1`): messages stored + fanned out per second and the
# send → ack latency. A throwaway PostgreSQL cluster is started on a free
# port in a temporary directory (as the `postgres` user when run as root) and
# removed afterwards; the SQLite file lives in the same temporary directory.
#
#   bash bench/chat.sh                  # 10 s per run
#   BENCH_ARGS="--duration 5s" bash bench/chat.sh
#   BENCH_SMOKE=1 bash bench/chat.sh    # tiny runs: proves the script works
#
# rtcio-server is pinned to core ${SERVER_CORE:-0}, the generator to core
# ${BENCH_CORE:-1}; PostgreSQL is not pinned (it shares the machine).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${RTCIO_PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-3102}
PG_PORT=${BENCH_PG_PORT:-55432}
OUT=${BENCH_OUT:-target/bench-chat}
SERVER=${RTCIO_SERVER_BIN:-target/release/rtcio-server}
BENCH=${RTCIO_BENCH_BIN:-target/release/rtcio-bench}
SMOKE=()
[ "${BENCH_SMOKE:-}" = 1 ] && SMOKE=(--smoke)
[ "${BENCH_NO_BUILD:-}" = 1 ] || cargo build --release -q -p rtcio-server -p rtcio-bench
mkdir -p "$OUT"

TMP=$(mktemp -d)
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$TMP"
    as_pg=(runuser -u postgres --)
fi
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
"${as_pg[@]}" "$PG_BIN/initdb" -D "$TMP/pg" -A trust -U postgres -E UTF8 >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w \
    -o "-p $PG_PORT -k $TMP -c listen_addresses=127.0.0.1" start >/dev/null

run() { # label database-url batch-max
    local label=$1 url=$2 batch=$3
    DATABASE_URL=$url HISTORY_BATCH_MAX=$batch RUST_LOG=warn \
        taskset -c "${SERVER_CORE:-0}" "$SERVER" --host 127.0.0.1 --port "$PORT" >"$OUT/$label.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
        sleep 0.1
    done
    echo "== $label (DATABASE_URL=${url%%://*}://..., HISTORY_BATCH_MAX=$batch)"
    # shellcheck disable=SC2086
    taskset -c "${BENCH_CORE:-1}" "$BENCH" --port "$PORT" --server-pid "$SERVER_PID" --quiet \
        --label "$label" --json "$OUT/$label.json" "${SMOKE[@]}" chat ${BENCH_ARGS:-}
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

run sqlite-batched "sqlite://$TMP/chat-batched.db" 128
run sqlite-single "sqlite://$TMP/chat-single.db" 1
run postgres-batched "postgres://postgres@127.0.0.1:$PG_PORT/postgres" 128
"${as_pg[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -c "TRUNCATE chat_messages" postgres
run postgres-single "postgres://postgres@127.0.0.1:$PG_PORT/postgres" 1

"$BENCH" table "sqlite-single=$OUT/sqlite-single.json" "sqlite-batched=$OUT/sqlite-batched.json"
"$BENCH" table "postgres-single=$OUT/postgres-single.json" "postgres-batched=$OUT/postgres-batched.json"
