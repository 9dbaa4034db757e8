#!/usr/bin/env bash
# Benchmarks: pypowerwall-server (Rust, this repo) against pypowerwall-server 0.13.0 (Python, PyPI),
# both on loopback against the same built-in gateway simulator. Prints a table with ratios and
# writes it to target/bench/results.md. Traffic goes to 127.0.0.1 only.
#
#   benches/run.sh                 # full run (about 5 minutes)
#   BENCH_SECONDS=5 benches/run.sh # shorter load phases
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECONDS:-10}
WS_CLIENTS=${BENCH_WS_CLIENTS:-1000}
WS_SECS=${BENCH_WS_SECONDS:-30}
OUT=target/bench
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk; then
    echo "installing wrk (Debian) ..."
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

echo "building release binaries ..."
# What users run: the static musl binary (Docker scratch image, routers, Pi). A plain glibc
# `cargo build --release` is measured too, for reference.
scripts/release.sh --target x86_64-unknown-linux-musl --no-smoke > "$OUT/release.log" 2>&1
cargo build --release -q
cargo bench --bench wsload --no-run -q 2>/dev/null
WSLOAD=$(find target/release/deps -maxdepth 1 -name 'wsload-*' -type f -executable -printf '%T@ %p\n' | sort -rn | awk 'NR == 1 {print $2}')
BIN=dist/x86_64-unknown-linux-musl/pypowerwall-server
GLIBC=target/release/pypowerwall-server
SIM_PORT=18443 RS_PORT=18675 PY_PORT=18676 GWPASS=BenchPass-42

# ---------------------------------------------------------------------------- helpers
now_ms() { date +%s%3N; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU share (% of one core) of PID over SECONDS
cpu_pct() {
    local a b
    a=$(cpu_ticks "$1"); sleep "$2"; b=$(cpu_ticks "$1")
    awk -v a="$a" -v b="$b" -v s="$2" 'BEGIN {printf "%.1f", (b - a) / s}'
}
wait_http() { # URL TIMEOUT_S -> prints ms until the first 2xx
    local t0; t0=$(now_ms)
    for _ in $(seq 1 $(($2 * 50))); do
        if curl -sf -o /dev/null "$1"; then echo $(($(now_ms) - t0)); return 0; fi
        sleep 0.02
    done
    echo "timeout"; return 1
}
wait_data() { # URL
    for _ in $(seq 1 300); do
        b=$(curl -s "$1" || true)
        if [ -n "$b" ] && [ "$b" != "null" ] && [ "$b" != "{}" ]; then return 0; fi
        sleep 0.1
    done
    echo "no data from $1"; return 1
}
# wrk URL -> "req/s p50_ms p99_ms"
load() {
    wrk -t2 -c50 -d"${SECS}s" --latency "$1" > "$OUT/wrk.txt" 2>&1 || true
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$OUT/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$OUT/wrk.txt")
    echo "${rps:-0} $(to_ms "${p50:-0}") $(to_ms "${p99:-0}")"
}
to_ms() { # wrk units (us, ms, s) -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
max_rss_during() { # PID SECONDS -> max VmRSS KiB sampled every 100 ms
    local m=0 r
    for _ in $(seq 1 $(($2 * 10))); do r=$(rss_kib "$1"); [ "$r" -gt "$m" ] && m=$r; sleep 0.1; done
    echo "$m"
}
sim_status_count() { curl -sk "https://127.0.0.1:$SIM_PORT/test/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }

# ---------------------------------------------------------------------------- simulator
"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --fixture pw2 --gw-pwd "$GWPASS" 2>/dev/null &
PIDS+=($!)
wait_http "https://127.0.0.1:$SIM_PORT/test/stats" 10 >/dev/null || { curl -sk "https://127.0.0.1:$SIM_PORT/test/stats"; }

# ---------------------------------------------------------------------------- Rust server
echo "Rust server ..."
T0=$(now_ms)
PW_HOST=127.0.0.1:$SIM_PORT PW_GW_PWD=$GWPASS PW_PORT=$RS_PORT PW_BIND_ADDRESS=127.0.0.1 "$BIN" 2>"$OUT/rs.log" &
RS=$!; PIDS+=($RS)
RS_FIRST=$(wait_http "http://127.0.0.1:$RS_PORT/stats" 10)
wait_data "http://127.0.0.1:$RS_PORT/aggregates"
sleep 2
RS_IDLE_RSS=$(rss_kib $RS)
RS_IDLE_CPU=$(cpu_pct $RS 10)
curl -sk "https://127.0.0.1:$SIM_PORT/test/stats/reset" >/dev/null
S0=$(sim_status_count)
read -r RS_AGG_RPS RS_AGG_P50 RS_AGG_P99 < <(load "http://127.0.0.1:$RS_PORT/aggregates")
S1=$(sim_status_count)
RS_STATUS_PER_TICK=$(awk -v a="$S0" -v b="$S1" -v s="$SECS" 'BEGIN {printf "%.2f", (b - a) / (s / 5)}')
max_rss_during $RS "$SECS" > "$OUT/rs_rss" &
SAMPLER=$!
read -r RS_VIT_RPS RS_VIT_P50 RS_VIT_P99 < <(load "http://127.0.0.1:$RS_PORT/vitals")
wait $SAMPLER; RS_LOAD_RSS=$(cat "$OUT/rs_rss")
read -r RS_AP_RPS RS_AP_P50 RS_AP_P99 < <(load "http://127.0.0.1:$RS_PORT/api/aggregate/power")

echo "WebSocket fan-out: $WS_CLIENTS clients for ${WS_SECS}s ..."
A=$(cpu_ticks $RS)
"$WSLOAD" "127.0.0.1:$RS_PORT" /ws/aggregate "$WS_CLIENTS" "$WS_SECS" > "$OUT/ws.txt" &
WSP=$!
sleep 5; A=$(cpu_ticks $RS); sleep $((WS_SECS - 10)); B=$(cpu_ticks $RS)
WS_RSS=$(rss_kib $RS)
WS_CPU=$(awk -v a="$A" -v b="$B" -v s=$((WS_SECS - 10)) 'BEGIN {printf "%.1f", (b - a) / s}')
wait $WSP
WS_LINE=$(cat "$OUT/ws.txt")
kill $RS; wait $RS 2>/dev/null || true

echo "10 gateways, idle ..."
GWS=$(python3 -c "import json; print(json.dumps([{'id': f'g{i}', 'host': '127.0.0.1:$SIM_PORT', 'gw_pwd': '$GWPASS'} for i in range(10)]))")
PW_GATEWAYS=$GWS PW_PORT=$RS_PORT PW_BIND_ADDRESS=127.0.0.1 "$BIN" 2>>"$OUT/rs.log" &
RS10=$!; PIDS+=($RS10)
wait_http "http://127.0.0.1:$RS_PORT/stats" 10 >/dev/null
sleep 8
RS10_CPU=$(cpu_pct $RS10 10)
RS10_RSS=$(rss_kib $RS10)
kill $RS10; wait $RS10 2>/dev/null || true
SIZE=$(stat -c %s "$BIN")

# The glibc build (`cargo build --release`), for reference.
echo "glibc build ..."
PW_HOST=127.0.0.1:$SIM_PORT PW_GW_PWD=$GWPASS PW_PORT=$RS_PORT PW_BIND_ADDRESS=127.0.0.1 "$GLIBC" 2>>"$OUT/rs.log" &
GL=$!; PIDS+=($GL)
wait_http "http://127.0.0.1:$RS_PORT/stats" 10 >/dev/null
wait_data "http://127.0.0.1:$RS_PORT/aggregates"
GL_IDLE=$(rss_kib $GL)
max_rss_during $GL "$SECS" > "$OUT/gl_rss" &
SAMPLER=$!
read -r GL_RPS GL_P50 GL_P99 < <(load "http://127.0.0.1:$RS_PORT/aggregates")
wait $SAMPLER; GL_LOAD=$(cat "$OUT/gl_rss")
kill $GL; wait $GL 2>/dev/null || true
GLIBC_ROW="| glibc build (cargo build --release): /aggregates req/s, p99 ms, RSS idle / under load (KiB), size | $GL_RPS, $GL_P99, $GL_IDLE / $GL_LOAD, $(stat -c %s "$GLIBC") B | | |"

# ---------------------------------------------------------------------------- Python server
echo "Python pypowerwall-server 0.13.0 ..."
VENV=target/bench-venv
if [ ! -x "$VENV/bin/pypowerwall-server" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "pypowerwall-server==0.13.0"
fi
T0=$(now_ms)
(cd "$OUT" && env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE PW_HOST=127.0.0.1:$SIM_PORT PW_GW_PWD=$GWPASS \
    PW_PORT=$PY_PORT PW_BIND_ADDRESS=127.0.0.1 PW_FAILOVER=no \
    "../../$VENV/bin/pypowerwall-server" > py.log 2>&1) &
PY=$!; PIDS+=($PY)
PY_FIRST=$(wait_http "http://127.0.0.1:$PY_PORT/stats" 60)
# the server runs as a child of the subshell; measure the python process itself
PYP=$(pgrep -n -f "bench-venv/bin/pypowerwall-server")
wait_data "http://127.0.0.1:$PY_PORT/aggregates"
sleep 2
PY_IDLE_RSS=$(rss_kib "$PYP")
PY_IDLE_CPU=$(cpu_pct "$PYP" 10)
read -r PY_AGG_RPS PY_AGG_P50 PY_AGG_P99 < <(load "http://127.0.0.1:$PY_PORT/aggregates")
max_rss_during "$PYP" "$SECS" > "$OUT/py_rss" &
SAMPLER=$!
read -r PY_VIT_RPS PY_VIT_P50 PY_VIT_P99 < <(load "http://127.0.0.1:$PY_PORT/vitals")
wait $SAMPLER; PY_LOAD_RSS=$(cat "$OUT/py_rss")
read -r PY_AP_RPS PY_AP_P50 PY_AP_P99 < <(load "http://127.0.0.1:$PY_PORT/api/aggregate/power")
kill "$PYP" 2>/dev/null || true

# ---------------------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.1f×", a / b }'; }
{
echo "| Measure | Rust (static musl binary) | Python 0.13.0 | Ratio |"
echo "|---|---:|---:|---:|"
echo "| /aggregates req/s (50 conns) | $RS_AGG_RPS | $PY_AGG_RPS | $(ratio "$RS_AGG_RPS" "$PY_AGG_RPS") |"
echo "| /aggregates p50 / p99 ms | $RS_AGG_P50 / $RS_AGG_P99 | $PY_AGG_P50 / $PY_AGG_P99 | $(ratio "$PY_AGG_P99" "$RS_AGG_P99") (p99) |"
echo "| /vitals req/s | $RS_VIT_RPS | $PY_VIT_RPS | $(ratio "$RS_VIT_RPS" "$PY_VIT_RPS") |"
echo "| /vitals p50 / p99 ms | $RS_VIT_P50 / $RS_VIT_P99 | $PY_VIT_P50 / $PY_VIT_P99 | |"
echo "| /api/aggregate/power req/s | $RS_AP_RPS | $PY_AP_RPS | $(ratio "$RS_AP_RPS" "$PY_AP_RPS") |"
echo "| /api/aggregate/power p50 / p99 ms | $RS_AP_P50 / $RS_AP_P99 | $PY_AP_P50 / $PY_AP_P99 | |"
echo "| RSS idle (KiB) | $RS_IDLE_RSS | $PY_IDLE_RSS | $(ratio "$PY_IDLE_RSS" "$RS_IDLE_RSS") smaller |"
echo "| RSS under load, max (KiB) | $RS_LOAD_RSS | $PY_LOAD_RSS | $(ratio "$PY_LOAD_RSS" "$RS_LOAD_RSS") smaller |"
echo "| CPU idle, 1 gateway (% of a core) | $RS_IDLE_CPU | $PY_IDLE_CPU | |"
echo "| CPU idle, 10 gateways (% of a core) | $RS10_CPU (RSS $RS10_RSS KiB) | — | |"
echo "| Gateway status requests per 5 s tick under load | $RS_STATUS_PER_TICK | — | |"
echo "| Time to first answered request (ms) | $RS_FIRST | $PY_FIRST | $(ratio "$PY_FIRST" "$RS_FIRST") faster |"
echo "| WebSocket: $WS_CLIENTS clients, ${WS_SECS}s | CPU $WS_CPU %, RSS $WS_RSS KiB | — | |"
echo "| Binary size (bytes, static musl x86_64) | $SIZE | — | |"
echo "$GLIBC_ROW"
echo
echo "WebSocket client: $WS_LINE"
} | tee "$OUT/results.md"
