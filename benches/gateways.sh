#!/usr/bin/env bash
# How cost grows with gateways (issue 20): N gateways (5 s polls) in one server process against
# simulators on the same host (one per 250 gateways, `--max-connections` with room for three
# connections per gateway: the one TEDAPI and the customer login share, and reconnects), for
# each N in BENCH_GATEWAYS.
# Prints, per N: gateways online, RSS and threads after warm-up, the server's CPU share over 30 s
# and per poll, the size and time of /health, /api/gateways and /api/aggregate/status, and
# /api/aggregate/status and /power under 10 s of wrk each (4 connections).
# Loopback only.
#
#   benches/gateways.sh                       # N = 10 100 1000
#   BENCH_GATEWAYS="10 100" benches/gateways.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packaging/lib.sh
pkg_apt wrk curl
NS=${BENCH_GATEWAYS:-10 100 1000}
SIM_PORT=${BENCH_SIM_PORT:-19543}
PORT=${BENCH_PORT:-19775}
OUT=target/bench/gateways
mkdir -p "$OUT"
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release -q; fi
BIN=${BENCH_BIN:-target/release/pypowerwall-server}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
trap cleanup EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
fetch() { # PATH -> "bytes ms"
    curl -s -o /dev/null -m 30 -w '%{size_download} %{time_total}' "http://127.0.0.1:$PORT$1" |
        awk '{printf "%d B %.1f ms", $1, $2 * 1000}'
}
p99() { # PATH -> "req/s, p99" of 10 s of wrk with 4 connections
    wrk -t1 -c4 -d10s --latency "http://127.0.0.1:$PORT$1" 2>/dev/null |
        awk '/Requests\/sec/ {r = $2} / 99%/ {p = $2} END {printf "%d req/s, p99 %s", r, p}'
}
echo "| Gateways | online | RSS | RSS per gateway | threads | CPU (% of a core) | CPU per poll | /health | /api/gateways | /api/aggregate/status | /api/aggregate/status under load | /api/aggregate/power under load |"
echo "|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|"
for n in $NS; do
    # One simulator per 250 gateways, so the simulators can use every core.
    sims=$(((n + 249) / 250))
    for k in $(seq 0 $((sims - 1))); do
        "$BIN" sim --listen "127.0.0.1:$((SIM_PORT + k))" --fixture pw2 --gw-pwd BenchPass-42 \
            --max-connections $((3 * n / sims + 64)) 2>"$OUT/sim-$n-$k.log" &
        PIDS+=($!)
    done
    {
        echo "gateways:"
        for i in $(seq 1 "$n"); do
            echo "  - {id: g$i, host: \"127.0.0.1:$((SIM_PORT + i % sims))\", gw_pwd: BenchPass-42}"
        done
    } >"$OUT/gateways-$n.yaml"
    sleep 1
    PW_CONFIG="$OUT/gateways-$n.yaml" "$BIN" --bind 127.0.0.1 --port "$PORT" 2>"$OUT/server-$n.log" &
    SERVER=$!; PIDS+=($SERVER)
    online=0
    for _ in $(seq 1 240); do
        online=$(curl -s -m 5 "http://127.0.0.1:$PORT/api/aggregate/status" |
            python3 -c 'import json,sys; print(json.load(sys.stdin).get("online", 0))' 2>/dev/null || echo 0)
        [ "$online" -ge "$n" ] && break
        sleep 0.5
    done
    sleep 10
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
    threads=$(awk '/Threads/ {print $2}' "/proc/$SERVER/status")
    a=$(ticks "$SERVER"); sleep 30; b=$(ticks "$SERVER")
    hz=$(getconf CLK_TCK)
    cpu=$(awk -v a="$a" -v b="$b" -v hz="$hz" 'BEGIN {printf "%.1f", (b - a) / hz / 30 * 100}')
    per_poll=$(awk -v a="$a" -v b="$b" -v hz="$hz" -v n="$n" 'BEGIN {printf "%.2f ms", (b - a) / hz * 1000 / (n * 6)}')
    echo "| $n | $online | $((rss / 1024)) MiB | $((rss / n)) KiB | $threads | $cpu | $per_poll | $(fetch /health) | $(fetch /api/gateways) | $(fetch /api/aggregate/status) | $(p99 /api/aggregate/status) | $(p99 /api/aggregate/power) |"
    cleanup
    sleep 1
done
