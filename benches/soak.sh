#!/usr/bin/env bash
# Soak benchmark: the release server against the built-in simulator for SOAK_SECS (default 600)
# with 50 keep-alive HTTP connections and 200 WebSocket clients, while the simulator has a fault
# switched on for the first 30 s of every minute (benches/soak.rs does the load and the faults).
# Prints requests, errors outside fault windows, p50/p99, RSS / fds / threads after warm-up (3 min)
# and at the end. Loopback only; stops by itself.
#
#   benches/soak.sh                  # 10 minutes
#   SOAK_SECS=120 benches/soak.sh    # shorter
#   SOAK_CONNS=50 SOAK_WS=200 SOAK_RATE=10 (requests/s per connection) SOAK_NICE=10
#   SOAK_BIN=dist/x86_64-unknown-linux-musl/pypowerwall-server   # soak a release binary
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SOAK_SECS:-600}
CONNS=${SOAK_CONNS:-50}
WS=${SOAK_WS:-200}
RATE=${SOAK_RATE:-10}
NICE=${SOAK_NICE:-10}
SIM_PORT=${SOAK_SIM_PORT:-19443}
PORT=${SOAK_PORT:-19675}
GWPASS=Soak-Pass-42
OUT=target/soak
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "building (release) ..."
nice -n "$NICE" cargo build --release -q
nice -n "$NICE" cargo bench --bench soak --no-run -q 2>/dev/null
SOAK=$(find target/release/deps -maxdepth 1 -name 'soak-*' -type f -executable -printf '%T@ %p\n' | sort -rn | awk 'NR == 1 {print $2}')
BIN=${SOAK_BIN:-target/release/pypowerwall-server}

wait_url() { # URL SECONDS
    for _ in $(seq 1 $(($2 * 10))); do
        if curl -skf -o /dev/null -m 2 "$1"; then return 0; fi
        sleep 0.1
    done
    echo "no answer from $1" >&2; return 1
}

"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --fixture pw2 --gw-pwd "$GWPASS" 2>"$OUT/sim.log" &
PIDS+=($!)
wait_url "https://127.0.0.1:$SIM_PORT/test/stats" 10

PW_HOST=127.0.0.1:$SIM_PORT PW_GW_PWD=$GWPASS PW_PORT=$PORT PW_BIND_ADDRESS=127.0.0.1 \
    PW_WS_MAX_CLIENTS=$((WS + 50)) PW_MAX_CONNECTIONS=$((CONNS + 100)) "$BIN" 2>"$OUT/server.log" &
SERVER=$!; PIDS+=($SERVER)
wait_url "http://127.0.0.1:$PORT/stats" 10
for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then break; fi
    sleep 0.1
done

echo "soak: ${SECS}s against pid $SERVER (logs in $OUT/) ..."
nice -n "$NICE" "$SOAK" "127.0.0.1:$PORT" "https://127.0.0.1:$SIM_PORT" "$SERVER" "$SECS" \
    "$CONNS" "$WS" "$RATE" 2>"$OUT/faults.log" | tee "$OUT/result.txt"
echo "server log: $(grep -c WARN "$OUT/server.log" || true) WARN lines, $(grep -c ERROR "$OUT/server.log" || true) ERROR lines"
