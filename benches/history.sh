#!/usr/bin/env bash
# Energy history costs (issue 15): bytes on disk per gateway, RSS per gateway, and the page
# writes of a flush, measured on the release binary against the built-in simulator.
# Starts 1 and then 11 gateways (each its own history file in a temporary PW_HISTORY_DIR),
# waits for them to poll, and prints RSS, the per-gateway difference, the files' sizes and what
# `/api/timeseries/status` reports after a forced flush (PW_HISTORY_FLUSH=10). Loopback only.
#
#   benches/history.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_PORT=${BENCH_SIM_PORT:-19543}
PORT=${BENCH_PORT:-19775}
GWPASS=Bench-Pass-42
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
cargo build --release -q
BIN=target/release/pypowerwall-server
"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --fixture pw2 --gw-pwd "$GWPASS" 2>/dev/null &
PIDS+=($!)
sleep 1
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
run() { # $1 = gateways; prints RSS (KiB) after the first polls and a flush
    local n=$1 gws
    rm -rf "$DIR"/* && mkdir -p "$DIR/h"
    gws=$(python3 -c "import json; print(json.dumps([{'id': f'g{i}', 'host': '127.0.0.1:$SIM_PORT', 'gw_pwd': '$GWPASS'} for i in range($n)]))")
    PW_GATEWAYS=$gws PW_HISTORY_DIR="$DIR/h" PW_HISTORY_FLUSH=10 PW_PORT=$PORT PW_BIND_ADDRESS=127.0.0.1 \
        "$BIN" 2>"$DIR/log" &
    local pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/api/gateways" >/dev/null && break; sleep 0.2; done
    sleep 25
    echo "$(rss_kib $pid)"
    curl -s "http://127.0.0.1:$PORT/api/timeseries/status?gateway=g0" > "$DIR/status-$n.json"
    ls -l "$DIR/h" | awk 'NR > 1 {print $5}' | sort -u > "$DIR/sizes-$n"
    kill $pid; wait $pid 2>/dev/null || true
}
R1=$(run 1)
R11=$(run 11)
echo "| Measure | Value |"
echo "|---|---:|"
echo "| binary (release, this host) | $(stat -c %s "$BIN") B |"
echo "| RSS, 1 gateway | $R1 KiB |"
echo "| RSS, 11 gateways | $R11 KiB |"
echo "| RSS per added gateway | $(( (R11 - R1) / 10 )) KiB |"
echo "| history file per gateway | $(paste -sd, "$DIR/sizes-11") B |"
python3 - "$DIR/status-11.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
def find(o, k):
    if isinstance(o, dict):
        for kk, v in o.items():
            if kk == k: return v
            r = find(v, k)
            if r is not None: return r
    if isinstance(o, list):
        for v in o:
            r = find(v, k)
            if r is not None: return r
for k in ("flushes", "page_writes", "file_bytes"):
    print(f"| status `{k}` (g0, after ~25 s) | {find(s, k)} |")
PY
