#!/usr/bin/env bash
# Cluster benchmarks (issue 12): rtcio-server nodes on one Redis against the
# Node baseline on socket.io@4.8 + @socket.io/redis-adapter, same layout,
# same pinning, same Redis build, in one run.
#
#   bench/cluster.sh [relay] [join] [scale] [replica]    (default: relay join)
#
# relay  cross-node relay: every sender on node 1, every receiver on node 2
#        (rtcio-bench relay --placement one-way); envelopes/s, latency
#        p50/p99, CPU of nodes + Redis per envelope; table with the ratio
#        Rust/Node.
# join   join-room → #rtcio:init-offer latency, socket i on node i mod N, so
#        each room's members are on different nodes (rtcio-bench rooms).
# scale  100,000 sockets in 25,000 rooms of 4 over SCALE_NODES (6) rtcio-server
#        processes and SCALE_GENERATORS (6) rtcio-bench processes, each with
#        its own --source-addrs; then a relay at 50,000 env/s across nodes
#        beside them (placement cross). Reports join → init-offer p99 (worst
#        generator), relay p50/p99, and RSS of servers + Redis per socket.
#        Rust only (SCALE_SERVERS=node to try the Node cluster).
# replica  the memory cost of the full membership replica: REPLICA_SOCKETS
#        (15000) sockets in rooms of 4, all on node 1 of 2; node 2 has no
#        socket of its own, so its RSS growth is what every node pays for the
#        sockets of the others. Also node 1's and Redis's growth. Rust only.
#
# Each scenario × server kind gets a fresh redis-server (free loopback port,
# temporary directory, no persistence) and fresh nodes; everything is stopped
# at the end. relay/join: the nodes AND Redis pinned to $SERVER_CORE (0), the
# load generator to $BENCH_CORE (1) — compare.sh's layout with the whole
# cluster on the server core. scale: nothing pinned (SCALE_PIN=1 pins the
# servers + Redis to $SERVER_CORE and the generators to $BENCH_CORE).
#
# Environment (defaults in brackets):
#   CLUSTER_SERVERS ["node rust"]   which servers for relay/join
#   CLUSTER_NODES [2]               nodes for relay/join
#   CLUSTER_PORT [3201]             first node port (nodes on consecutive ports)
#   BENCH_WARMUP [2s]
#   BENCH_RELAY_PAIRS [50] BENCH_RELAY_WINDOW [8] BENCH_RELAY_DURATION [10s] BENCH_RELAY_SIZE [330]
#   BENCH_JOIN_SOCKETS [10000] BENCH_JOIN_RATE [500] BENCH_JOIN_HOLD [3s]
#   SCALE_SOCKETS [100000] SCALE_NODES [6] SCALE_GENERATORS [6]
#   SCALE_JOIN_RATE [2000]  (total new sockets/s over all generators; the
#                   join p99 depends on it: BENCHMARKS.md, "Paced load
#                   without bursts, and the join rate")
#   SCALE_RELAY_RATE [50000] SCALE_RELAY_PAIRS [200] SCALE_RELAY_WINDOW [64]
#   SCALE_RELAY_PLACEMENT [cross]  (same: sender and receiver on one node,
#                             so no envelope goes through Redis)
#   SCALE_RELAY_DURATION [20s] SCALE_SERVERS [rust] SCALE_PIN [0]
#   SCALE_NODE_WORKERS [1]   tokio workers per rtcio-server node in scale
#                   (TOKIO_WORKER_THREADS; empty = one per core)
#   REPLICA_SOCKETS [15000] REPLICA_RATE [1000]
#   SERVER_CORE [0] BENCH_CORE [1]
#   RECOVERY_WINDOW [0] RATE_LIMIT [0] NO_HISTORY [1]   rtcio-server settings
#                   (the Node cluster has neither recovery nor limits nor history)
#   RTCIO_SERVER_ARGS   extra arguments for rtcio-server
#   CLUSTER_REDIS_UNIX [0]  1: Redis also listens on a Unix socket in its
#                   temporary directory and the rtcio-server nodes use it
#                   (REDIS_URL=unix://...); the Node cluster stays on TCP.
#                   Redis on the nodes' machine without loopback TCP.
#   BENCH_NO_BUILD=1    do not run cargo build
#   BENCH_OUT=DIR       results (JSON, generator tables, logs) [target/bench-results/cluster-DATE]
#   RTCIO_SERVER_BIN / RTCIO_BENCH_BIN / RTCIO_REDIS_BIN   binaries
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(relay join)
read -r -a SERVERS <<<"${CLUSTER_SERVERS:-node rust}"
read -r -a SCALE_KINDS <<<"${SCALE_SERVERS:-rust}"
NODES="${CLUSTER_NODES:-2}"
BASE_PORT="${CLUSTER_PORT:-3201}"
WARMUP="${BENCH_WARMUP:-2s}"
SERVER_CORE="${SERVER_CORE:-0}"
BENCH_CORE="${BENCH_CORE:-1}"
OUT="${BENCH_OUT:-$ROOT/target/bench-results/cluster-$(date +%Y%m%d-%H%M%S)}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH_BIN="${RTCIO_BENCH_BIN:-$TARGET_DIR/release/rtcio-bench}"
SERVER_BIN="${RTCIO_SERVER_BIN:-$TARGET_DIR/release/rtcio-server}"
REDIS_BIN="${RTCIO_REDIS_BIN:-redis-server}"
mkdir -p "$OUT"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

command -v "$REDIS_BIN" >/dev/null || {
    echo "redis-server not found: install the Debian package redis-server (or set RTCIO_REDIS_BIN)" >&2
    exit 1
}
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release -p rtcio-server -p rtcio-bench
fi
if [ ! -d bench/node-cluster/node_modules/@socket.io/redis-adapter ]; then
    for s in "${SERVERS[@]}" "${SCALE_KINDS[@]}"; do
        if [ "$s" = node ]; then
            npm install --prefix bench/node-cluster --no-audit --no-fund
            break
        fi
    done
fi

load1="$(cut -d' ' -f1 /proc/loadavg)"
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    echo "warning: load average $load1 before the run: other processes will skew the results" >&2
fi

# pin CORE: sets PIN to the command prefix that pins to CORE ("all": none).
# A prefix rather than a wrapper function, so that `"${PIN[@]}" cmd &` makes
# $! the process itself (taskset execs it) and kill reaches it.
PIN=()
pin() {
    if [ "$1" = all ]; then PIN=(); else PIN=(taskset -c "$1"); fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p
    for p in $(seq 6400 6999); do
        if ! port_busy "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# --- cluster lifecycle -------------------------------------------------------
REDIS_PID=
REDIS_DIR=
REDIS_URL=
RUST_REDIS_URL=
NODE_PIDS=()
NODE_WORKERS=""
NODE_PORTS=()

start_redis() { # CORE
    REDIS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/rtcio-cluster-redis-XXXXXX")"
    local port
    port="$(free_port)"
    pin "$1"
    REDIS_URL="redis://127.0.0.1:$port"
    RUST_REDIS_URL="$REDIS_URL"
    local unix=()
    if [ "${CLUSTER_REDIS_UNIX:-0}" = 1 ]; then
        unix=(--unixsocket "$REDIS_DIR/redis.sock" --unixsocketperm 700)
        RUST_REDIS_URL="unix://$REDIS_DIR/redis.sock"
    fi
    "${PIN[@]}" "$REDIS_BIN" --port "$port" --bind 127.0.0.1 --dir "$REDIS_DIR" --save "" \
        --appendonly no --protected-mode yes --logfile "$REDIS_DIR/redis.log" "${unix[@]}" &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "redis-server did not start on port $port" >&2
    cat "$REDIS_DIR/redis.log" >&2 || true
    return 1
}

start_node() { # KIND PORT CORE LOG
    local kind="$1" port="$2" core="$3" log="$4"
    if port_busy "$port"; then
        echo "port $port is already in use (set CLUSTER_PORT)" >&2
        return 1
    fi
    pin "$core"
    case "$kind" in
        node) "${PIN[@]}" node bench/node-cluster/server.js --host 127.0.0.1 --port "$port" \
            --redis-url "$REDIS_URL" >"$log" 2>&1 & ;;
        rust) REDIS_URL="$RUST_REDIS_URL" RECOVERY_WINDOW="${RECOVERY_WINDOW:-0}" RATE_LIMIT="${RATE_LIMIT:-0}" \
            NO_HISTORY="${NO_HISTORY:-1}" RUST_LOG="${RUST_LOG:-warn}" \
            env ${NODE_WORKERS:+TOKIO_WORKER_THREADS=$NODE_WORKERS} "${PIN[@]}" "$SERVER_BIN" --host 127.0.0.1 --port "$port" ${RTCIO_SERVER_ARGS:-} >"$log" 2>&1 & ;;
        *) echo "unknown server $kind" >&2; return 1 ;;
    esac
    local pid=$!
    NODE_PIDS+=("$pid")
    NODE_PORTS+=("$port")
    for _ in $(seq 1 200); do
        if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$kind node on port $port exited:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$kind node did not answer /health on port $port" >&2
    return 1
}

start_cluster() { # KIND N CORE TAG
    local kind="$1" n="$2" core="$3" tag="$4" i
    start_redis "$core"
    for ((i = 0; i < n; i++)); do
        start_node "$kind" $((BASE_PORT + i)) "$core" "$OUT/$tag-$kind-node$((i + 1)).log"
    done
    # Let the nodes see each other (heartbeats, hello) before the load starts.
    sleep 1.5
}

stop_cluster() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    [ -n "$REDIS_DIR" ] && rm -rf "$REDIS_DIR"
    NODE_PIDS=()
    NODE_PORTS=()
    REDIS_PID=
    REDIS_DIR=
}

GEN_PIDS=()
cleanup() {
    local pid
    for pid in "${GEN_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_cluster
}
trap cleanup EXIT

ports_csv() { local IFS=,; echo "${NODE_PORTS[*]}"; }
pids_csv() { local IFS=,; echo "${NODE_PIDS[*]},$REDIS_PID"; }

label() {
    case "$1" in
        node) echo "Node cluster" ;;
        rust) echo "Rust cluster" ;;
    esac
}

# Sum of VmRSS (kB) of the given pids.
rss_kb() {
    local total=0 pid kb
    for pid in "$@"; do
        kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)"
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# --- relay / join --------------------------------------------------------------
status=0
run_pair_scenario() { # SCENARIO
    local scenario="$1" kind json args
    declare -A files=()
    case "$scenario" in
        relay) args=(relay --placement one-way --pairs "${BENCH_RELAY_PAIRS:-50}" --window "${BENCH_RELAY_WINDOW:-8}"
            --size "${BENCH_RELAY_SIZE:-330}" --duration "${BENCH_RELAY_DURATION:-10s}" --warmup "$WARMUP") ;;
        join) args=(rooms --sockets "${BENCH_JOIN_SOCKETS:-10000}" --room-size 4 --rate "${BENCH_JOIN_RATE:-500}"
            --hold "${BENCH_JOIN_HOLD:-3s}") ;;
    esac
    for kind in "${SERVERS[@]}"; do
        echo "== $scenario on $(label "$kind"): $NODES nodes + Redis on core $SERVER_CORE, generator on core $BENCH_CORE" >&2
        start_cluster "$kind" "$NODES" "$SERVER_CORE" "$scenario"
        json="$OUT/$scenario-$kind.json"
        pin "$BENCH_CORE"
        if ! "${PIN[@]}" "$BENCH_BIN" --ports "$(ports_csv)" --server-pid "$(pids_csv)" --quiet \
            --label "$kind-cluster" --name "cluster-$scenario" --json "$json" "${args[@]}" >"$OUT/$scenario-$kind.txt" 2>&1; then
            echo "   $scenario on $(label "$kind") reported a failure (see $OUT/$scenario-$kind.txt):" >&2
            grep -E "^(FAILED|error)" "$OUT/$scenario-$kind.txt" | sed 's/^/     /' >&2 || true
            [ "$kind" = node ] || status=1
        fi
        stop_cluster
        [ -f "$json" ] && files[$kind]="$json"
    done
    local columns=()
    for kind in "${SERVERS[@]}"; do
        [ -n "${files[$kind]:-}" ] && columns+=("$(label "$kind")=${files[$kind]}")
    done
    if [ ${#columns[@]} -gt 0 ]; then
        echo
        echo "### cluster $scenario ($NODES nodes; the 'server' rows are the nodes + Redis summed)"
        "$BENCH_BIN" table "${columns[@]}" | tee "$OUT/$scenario-table.md"
    fi
}

# --- scale ---------------------------------------------------------------------
run_scale() { # KIND
    local kind="$1"
    local sockets="${SCALE_SOCKETS:-100000}" nodes="${SCALE_NODES:-6}" gens="${SCALE_GENERATORS:-6}"
    local join_rate="${SCALE_JOIN_RATE:-2000}" relay_rate="${SCALE_RELAY_RATE:-50000}"
    local relay_duration="${SCALE_RELAY_DURATION:-20s}" relay_warmup=3
    local server_core=all bench_core=all
    if [ "${SCALE_PIN:-0}" = 1 ]; then server_core="$SERVER_CORE" bench_core="$BENCH_CORE"; fi
    local per_gen=$((sockets / gens))
    sockets=$((per_gen * gens))
    local join_secs=$((sockets / join_rate + 1))
    local relay_secs=${relay_duration%s}
    # Generators hold their sockets through the settle, the RSS reading and the relay.
    local hold=$((join_secs + relay_warmup + relay_secs + 60))

    echo "== scale on $(label "$kind"): $sockets sockets in rooms of 4, $nodes nodes, $gens generators" >&2
    # Six nodes share the machine's cores: one tokio worker each (README,
    # "Several nodes on one machine"), unless SCALE_NODE_WORKERS says otherwise.
    NODE_WORKERS="${SCALE_NODE_WORKERS-1}"
    start_cluster "$kind" "$nodes" "$server_core" scale
    NODE_WORKERS=""
    local rss0
    rss0="$(rss_kb "${NODE_PIDS[@]}" "$REDIS_PID")"
    GEN_PIDS=()
    local g
    for ((g = 0; g < gens; g++)); do
        rm -f "$OUT/scale-$kind-ready$g" "$OUT/scale-$kind-stop"
        # Two source addresses per generator, distinct between generators.
        pin "$bench_core"
        "${PIN[@]}" "$BENCH_BIN" --ports "$(ports_csv)" --quiet --label "$kind-cluster" --name cluster-scale-join \
            --source-addrs "127.0.1.$((2 * g + 1)),127.0.1.$((2 * g + 2))" --json "$OUT/scale-$kind-join$g.json" \
            rooms --sockets "$per_gen" --room-size 4 --rate "$(awk -v r="$join_rate" -v g="$gens" 'BEGIN { print r / g }')" \
            --hold "${hold}s" --ready-file "$OUT/scale-$kind-ready$g" --stop-file "$OUT/scale-$kind-stop" >"$OUT/scale-$kind-join$g.txt" 2>&1 &
        GEN_PIDS+=($!)
    done
    # Wait until every generator has all its sockets in (or gave up).
    local deadline=$((SECONDS + join_secs + 120)) ready
    while :; do
        ready=0
        for ((g = 0; g < gens; g++)); do [ -f "$OUT/scale-$kind-ready$g" ] && ready=$((ready + 1)); done
        [ "$ready" -eq "$gens" ] && break
        if [ $SECONDS -gt $deadline ]; then
            echo "   only $ready of $gens generators got their sockets in" >&2
            status=1
            break
        fi
        sleep 1
    done
    local joined=0
    for ((g = 0; g < gens; g++)); do
        joined=$((joined + $(cat "$OUT/scale-$kind-ready$g" 2>/dev/null || echo 0)))
    done
    sleep 3
    local rss1 per_node=""
    rss1="$(rss_kb "${NODE_PIDS[@]}" "$REDIS_PID")"
    for pid in "${NODE_PIDS[@]}" "$REDIS_PID"; do per_node+="$(rss_kb "$pid") "; done
    echo "   $joined sockets joined; RSS of nodes + Redis: $((rss0 / 1024)) MB before, $((rss1 / 1024)) MB with them (per process, kB: $per_node)" >&2

    echo "== relay at $relay_rate env/s across the nodes, beside the idle sockets" >&2
    pin "$bench_core"
    "${PIN[@]}" "$BENCH_BIN" --ports "$(ports_csv)" --server-pid "$(pids_csv)" --quiet --label "$kind-cluster" \
        --name cluster-scale-relay --source-addrs 127.0.2.1 --json "$OUT/scale-$kind-relay.json" \
        relay --placement "${SCALE_RELAY_PLACEMENT:-cross}" --pairs "${SCALE_RELAY_PAIRS:-200}" --window "${SCALE_RELAY_WINDOW:-64}" \
        --rate "$relay_rate" --duration "$relay_duration" --warmup "${relay_warmup}s" >"$OUT/scale-$kind-relay.txt" 2>&1 ||
        { echo "   relay reported a failure (see $OUT/scale-$kind-relay.txt)" >&2; status=1; }
    local rss2
    rss2="$(rss_kb "${NODE_PIDS[@]}" "$REDIS_PID")"
    # End the generators' hold now (they write their results and exit).
    touch "$OUT/scale-$kind-stop"
    for ((g = 0; g < gens; g++)); do wait "${GEN_PIDS[$g]}" 2>/dev/null || true; done
    GEN_PIDS=()
    stop_cluster

    node - "$OUT" "$kind" "$gens" "$sockets" "$joined" "$rss0" "$rss1" "$rss2" <<'EOF' | tee "$OUT/scale-$kind.md"
const fs = require("node:fs");
const [out, kind, gens, sockets, joined, rss0, rss1, rss2] = process.argv.slice(2);
const metric = (r, key) => r?.metrics?.find((m) => m.key === key)?.value;
const load = (f) => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return null; } };
const txt = (f) => { try { return fs.readFileSync(f, "utf8"); } catch { return ""; } };
const joins = [];
for (let g = 0; g < Number(gens); g++) joins.push(load(`${out}/scale-${kind}-join${g}.json`));
const relay = load(`${out}/scale-${kind}-relay.json`);
const ms = (v) => (v === undefined ? "n/a" : `${v.toFixed(2)} ms`);
const worst = (key) => Math.max(...joins.map((r) => metric(r, key) ?? NaN));
const failures = [...joins.flatMap((r) => r?.failures ?? ["a generator wrote no result"]), ...(relay?.failures ?? ["the relay wrote no result"])];
console.log(`\n### cluster scale (${kind}): ${sockets} sockets, rooms of 4`);
console.log("| metric | value |\n|---|---:|");
console.log(`| sockets joined | ${joined} / ${sockets} |`);
console.log(`| join → init-offer p50 (worst generator) | ${ms(worst("init_offer_p50_ms"))} |`);
console.log(`| join → init-offer p99 (worst generator) | ${ms(worst("init_offer_p99_ms"))} |`);
console.log(`| join → init-offer p99 per generator | ${joins.map((r) => ms(metric(r, "init_offer_p99_ms"))).join(", ")} |`);
console.log(`| join → join-ok p99 (worst generator) | ${ms(worst("join_ok_p99_ms"))} |`);
console.log(`| relay: envelopes/s (asked ${relay?.params?.rate ?? "?"}) | ${Math.round(metric(relay, "throughput") ?? 0)} |`);
console.log(`| relay: latency p50 / p99 / max | ${ms(metric(relay, "latency_p50_ms"))} / ${ms(metric(relay, "latency_p99_ms"))} / ${ms(metric(relay, "latency_max_ms"))} |`);
console.log(`| relay: CPU of nodes + Redis | ${(metric(relay, "server_cpu_pct") ?? 0).toFixed(0)} % |`);
console.log(`| relay: seconds with an envelope > 5 ms | ${metric(relay, "slow_seconds") ?? "n/a"} of ${relay?.params?.max_ms_per_s?.length ?? "?"} |`);
console.log(`| relay: slowest envelope per second (ms) | ${(relay?.params?.max_ms_per_s ?? []).map((v) => v.toFixed(1)).join(" ")} |`);
console.log(`| relay: other CPU on the machine (incl. idle generators) | ${(metric(relay, "other_cpu_pct") ?? 0).toFixed(0)} % |`);
console.log(`| RSS nodes + Redis: before / with sockets / after relay | ${(rss0 / 1024).toFixed(0)} / ${(rss1 / 1024).toFixed(0)} / ${(rss2 / 1024).toFixed(0)} MB |`);
console.log(`| RSS nodes + Redis per socket (growth / total) | ${((rss1 - rss0) * 1.024 / Math.max(1, joined)).toFixed(1)} / ${(rss1 * 1.024 / Math.max(1, joined)).toFixed(1)} KB |`);
if (failures.length) console.log(`\nFAILURES:\n- ${failures.join("\n- ")}`);
EOF
}

# --- replica -------------------------------------------------------------------
redis_used_kb() { redis-cli -u "$REDIS_URL" info memory | awk -F: '/^used_memory:/ { printf "%d", $2 / 1024 }'; }

run_replica() {
    local sockets="${REPLICA_SOCKETS:-15000}"
    echo "== replica: $sockets sockets in rooms of 4, all on node 1 of 2; node 2 has none of its own" >&2
    start_cluster rust 2 "$SERVER_CORE" replica
    local n1="${NODE_PIDS[0]}" n2="${NODE_PIDS[1]}"
    local b1 b2 br bm a1 a2 ar am joined
    b1="$(rss_kb "$n1")" b2="$(rss_kb "$n2")" br="$(rss_kb "$REDIS_PID")" bm="$(redis_used_kb)"
    rm -f "$OUT/replica-ready" "$OUT/replica-stop"
    pin "$BENCH_CORE"
    "${PIN[@]}" "$BENCH_BIN" --port "${NODE_PORTS[0]}" --server-pid "$n1" --quiet --label rust-cluster \
        --name cluster-replica --json "$OUT/replica-rust.json" rooms --sockets "$sockets" --room-size 4 \
        --rate "${REPLICA_RATE:-1000}" --hold 120s --ready-file "$OUT/replica-ready" \
        --stop-file "$OUT/replica-stop" >"$OUT/replica-rust.txt" 2>&1 &
    GEN_PIDS=($!)
    local deadline=$((SECONDS + sockets / ${REPLICA_RATE:-1000} + 90))
    while [ ! -f "$OUT/replica-ready" ] && [ $SECONDS -lt $deadline ]; do sleep 1; done
    sleep 3
    a1="$(rss_kb "$n1")" a2="$(rss_kb "$n2")" ar="$(rss_kb "$REDIS_PID")" am="$(redis_used_kb)"
    joined="$(cat "$OUT/replica-ready" 2>/dev/null || echo 0)"
    touch "$OUT/replica-stop"
    wait "${GEN_PIDS[0]}" || { echo "   replica run reported a failure (see $OUT/replica-rust.txt)" >&2; status=1; }
    GEN_PIDS=()
    stop_cluster
    awk -v n="$joined" -v b1="$b1" -v a1="$a1" -v b2="$b2" -v a2="$a2" -v br="$br" -v ar="$ar" -v bm="$bm" -v am="$am" 'BEGIN {
        k = (n > 0 ? n : 1) / 1.024
        print ""
        printf "### cluster replica: %d sockets in rooms of 4 on node 1 of 2\n", n
        print "| process | RSS before | RSS with the sockets | per socket |"
        print "|---|---:|---:|---:|"
        printf "| node 1 (the sockets are here) | %.1f MB | %.1f MB | %.2f KB |\n", b1 / 1024, a1 / 1024, (a1 - b1) / k
        printf "| node 2 (replica only) | %.1f MB | %.1f MB | %.2f KB |\n", b2 / 1024, a2 / 1024, (a2 - b2) / k
        printf "| redis-server (RSS) | %.1f MB | %.1f MB | %.2f KB |\n", br / 1024, ar / 1024, (ar - br) / k
        printf "| redis used_memory | %.1f MB | %.1f MB | %.2f KB |\n", bm / 1024, am / 1024, (am - bm) / k
    }' | tee "$OUT/replica.md"
}

for scenario in "${SCENARIOS[@]}"; do
    case "$scenario" in
        relay | join) run_pair_scenario "$scenario" ;;
        scale) for kind in "${SCALE_KINDS[@]}"; do run_scale "$kind"; done ;;
        replica) run_replica ;;
        *) echo "unknown scenario $scenario (relay, join, scale, replica)" >&2; exit 2 ;;
    esac
done
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); results in $OUT"
exit $status
