#!/usr/bin/env bash
# Instructions per request for /aggregates and /metrics (identity and gzip), counted by
# valgrind's callgrind: repeatable whatever else the machine is doing, unlike req/s. The release
# server runs --demo under callgrind with a one-hour poll (no tick inside a window); each route gets
# 2,000 keep-alive requests from one Python client between a zero and a dump of the counters,
# each case twice, alternated.
# The whole process is counted (reading, routing, writing, and the /metrics server part that is
# rebuilt at most every 5 s, about once per tick; callgrind's slowness makes that look ~20x
# dearer per request than it is).
#
#   benches/metrics-ir.sh
#   BENCH_BIN=target/prof/release/pypowerwall-server benches/metrics-ir.sh   # a build with symbols, for callgrind_annotate
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${BENCH_PORT:-18704}
N=${BENCH_REQUESTS:-2000}
OUT=target/bench/callgrind
rm -rf "$OUT" && mkdir -p "$OUT"
source scripts/packaging/lib.sh
pkg_apt valgrind curl python3
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release -q; fi
BIN=${BENCH_BIN:-target/release/pypowerwall-server}
PW_CACHE_EXPIRE=3600 PW_CACHE_TTL=7200 valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" \
    "$BIN" --demo --bind 127.0.0.1 --port "$PORT" > "$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    b=$(curl -s "http://127.0.0.1:$PORT/aggregates" || true)
    if [ -n "$b" ] && [ "$b" != "null" ]; then break; fi
    sleep 0.2
done
client() { python3 - "$PORT" "$1" "$2" "$3" <<'PY'
import http.client, sys
port, path, enc, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("GET", path, headers={"Accept-Encoding": enc})
    c.getresponse().read()
PY
}
client /metrics gzip 50 && client /aggregates identity 50   # warm: first renders, caches
echo "| Route | Accept-Encoding | Instructions per request |"
echo "|---|---|---|"
for case in "/aggregates identity" "/metrics identity" "/metrics gzip" "/aggregates identity" "/metrics identity" "/metrics gzip"; do
    read -r path enc <<<"$case"
    callgrind_control -z "$PID" >/dev/null
    client "$path" "$enc" "$N"
    callgrind_control -d "$PID" >/dev/null
    sleep 0.5
    f=$(ls -t "$OUT"/cg.* | head -1)
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
    echo "| \`$path\` | $enc | $((total / N)) |"
done
