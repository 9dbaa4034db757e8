#!/usr/bin/env bash
# Close to the limit (issue 20): our /aggregates against nginx serving the same bytes as a
# static file, in the same run, on the same cores: keep-alive, `wrk -t2 -c50`, the two
# alternated twice. Prints requests/s, p99 and the ratio ours / nginx. Installs wrk and nginx
# from Debian. Loopback only.
#
#   benches/nginx.sh                   # 10 s per phase
#   BENCH_SECONDS=5 benches/nginx.sh
#   BENCH_BIN=dist/x86_64-unknown-linux-musl/pypowerwall-server benches/nginx.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packaging/lib.sh
SECS=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-18705}
NGINX_PORT=${BENCH_NGINX_PORT:-18706}
OUT=target/bench/nginx
rm -rf "$OUT" && mkdir -p "$OUT/www"
pkg_apt wrk nginx-light curl
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release -q; fi
BIN=${BENCH_BIN:-target/release/pypowerwall-server}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# A 60 s poll: no tick re-renders the body during a phase.
PW_CACHE_EXPIRE=60 "$BIN" --demo --bind 127.0.0.1 --port "$PORT" >"$OUT/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
    b=$(curl -s "http://127.0.0.1:$PORT/aggregates" || true)
    if [ -n "$b" ] && [ "$b" != "null" ]; then break; fi
    sleep 0.1
done
curl -s -o "$OUT/www/aggregates" "http://127.0.0.1:$PORT/aggregates"

cat >"$OUT/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $PWD/$OUT/nginx.pid;
error_log $PWD/$OUT/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type application/json;
    client_body_temp_path $PWD/$OUT/tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $PWD/$OUT/www;
    }
}
EOF
mkdir -p "$OUT/tmp"
nginx -c "$PWD/$OUT/nginx.conf" &
PIDS+=($!)
for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/aggregates"; then break; fi
    sleep 0.1
done
cmp -s "$OUT/www/aggregates" <(curl -s "http://127.0.0.1:$NGINX_PORT/aggregates") ||
    { echo "nginx does not serve the same bytes" >&2; exit 1; }

phase() { # NAME URL
    local out
    out=$(wrk -t2 -c50 -d"${SECS}s" --latency "$2")
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$1 $rps $p99"
}
echo "| Phase | Server | req/s | p99 |"
echo "|---|---|---:|---:|"
declare -A sum
for round in 1 2; do
    for name in ours nginx; do
        if [ "$name" = ours ]; then url="http://127.0.0.1:$PORT/aggregates"; else url="http://127.0.0.1:$NGINX_PORT/aggregates"; fi
        read -r _ rps p99 < <(phase "$name" "$url")
        echo "| $round | $name | $rps | $p99 |"
        sum[$name]=$(awk -v a="${sum[$name]:-0}" -v b="$rps" 'BEGIN {print a + b}')
    done
done
echo
awk -v o="${sum[ours]}" -v n="${sum[nginx]}" \
    'BEGIN {printf "ours / nginx: %.2f (requests/s summed over both rounds; body %s bytes)\n", o / n, "'"$(stat -c %s "$OUT/www/aggregates")"'"}'
