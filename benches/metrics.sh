#!/usr/bin/env bash
# /metrics against /aggregates in one run: the release server in --demo mode (built-in simulator,
# loopback only), wrk with 2 threads and 50 connections; /aggregates, /metrics and /metrics
# gzipped (as Prometheus asks) alternated twice so all see the same machine load. Prints req/s,
# p99, the server's CPU time per request (from /proc, so the load wrk itself puts on the shared
# cores does not count) and body bytes as a Markdown table.
#
#   benches/metrics.sh                 # 4 phases of 10 s
#   BENCH_SECONDS=5 benches/metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-18677}
OUT=target/bench
mkdir -p "$OUT"
if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk (Debian) ..."
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk) >/dev/null
fi
cargo build --release -q
BIN=target/release/pypowerwall-server
"$BIN" --demo --bind 127.0.0.1 --port "$PORT" > "$OUT/metrics-server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    b=$(curl -s "http://127.0.0.1:$PORT/aggregates" || true)
    if [ -n "$b" ] && [ "$b" != "null" ]; then break; fi
    sleep 0.1
done
bytes() { curl -s -H "Accept-Encoding: $2" "http://127.0.0.1:$PORT$1" | wc -c; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
run() { # PATH ENCODING -> "req/s p99 cpu-µs-per-request"
    local t0 t1
    t0=$(cpu_ticks)
    wrk -t2 -c50 -d"${SECS}s" --latency -H "Accept-Encoding: $2" "http://127.0.0.1:$PORT$1" > "$OUT/wrk-metrics.txt" 2>&1 || true
    t1=$(cpu_ticks)
    local n
    n=$(awk '/requests in/ {print $1}' "$OUT/wrk-metrics.txt")
    echo "$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-metrics.txt") $(awk '$1 == "99%" {print $2}' "$OUT/wrk-metrics.txt") $(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')"
}
echo "| Route | Accept-Encoding | Phase | req/s | p99 | server CPU µs/request | Body bytes |"
echo "|---|---|---|---|---|---|---|"
for phase in 1 2; do
    for case in "/aggregates identity" "/metrics identity" "/metrics gzip"; do
        read -r path enc <<<"$case"
        read -r rps p99 cpu <<<"$(run "$path" "$enc")"
        echo "| \`$path\` | $enc | $phase | $rps | $p99 | $cpu | $(bytes "$path" "$enc") |"
    done
done
