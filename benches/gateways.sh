#!/usr/bin/env bash
# How cost grows with gateways (issue 20): N gateways (5 s polls) in one server process against
# one simulator (`--max-connections` raised to feed them), for each N in BENCH_GATEWAYS. Prints,
# per N: gateways online, RSS and threads after warm-up, the server's CPU share over 30 s and
# per poll, and the size and time of /health, /api/gateways and /api/aggregate/status.
# Loopback only.
#
#   benches/gateways.sh                       # N = 10 100 1000
#   BENCH_GATEWAYS="10 100" benches/gateways.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NS=${BENCH_GATEWAYS:-10 100 1000}
SIM_PORT=${BENCH_SIM_PORT:-19543}
PORT=${BENCH_PORT:-19775}
OUT=target/bench/gateways
mkdir -p "$OUT"
cargo build --release -q
BIN=target/release/pypowerwall-server
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
trap cleanup EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
fetch() { # PATH -> "bytes ms"
    curl -s -o /dev/null -m 30 -w '%{size_download} %{time_total}' "http://127.0.0.1:$PORT$1" |
        awk '{printf "%d B %.1f ms", $1, $2 * 1000}'
}
echo "| Gateways | online | RSS | RSS per gateway | threads | CPU (% of a core) | CPU per poll | /health | /api/gateways | /api/aggregate/status |"
echo "|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
for n in $NS; do
    "$BIN" sim --listen "127.0.0.1:$SIM_PORT" --fixture pw2 --gw-pwd BenchPass-42 \
        --max-connections $((n + 64)) 2>"$OUT/sim-$n.log" &
    PIDS+=($!)
    {
        echo "gateways:"
        for i in $(seq 1 "$n"); do
            echo "  - {id: g$i, host: \"127.0.0.1:$SIM_PORT\", gw_pwd: BenchPass-42}"
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
    echo "| $n | $online | $((rss / 1024)) MiB | $((rss / n)) KiB | $threads | $cpu | $per_poll | $(fetch /health) | $(fetch /api/gateways) | $(fetch /api/aggregate/status) |"
    cleanup
    sleep 1
done
