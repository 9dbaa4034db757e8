#!/usr/bin/env bash
# Indicative costs of a release binary for another CPU, run under qemu-user on this machine
# (issue 20: MIPS routers): RSS and CPU time per poll tick of the server, one gateway.
#
#   benches/qemu.sh TARGET [SECONDS]     e.g. benches/qemu.sh mipsel-unknown-linux-musl 60
#
# Runs dist/TARGET/pypowerwall-server (scripts/release.sh builds it) as the pw2 simulator and as
# the server polling it every 5 s (the default PW_CACHE_EXPIRE). After a 15 s warm-up it reads the
# server's utime+stime (/proc/PID/stat) and powerwall_polls_total (/metrics), waits SECONDS, and
# reads them again. The process measured is qemu, so both figures include the emulator:
#   - RSS is qemu's VmRSS; "qemu alone" is qemu's VmRSS for a static binary that only sleeps
#     (built with zig cc for the target), a rough baseline to subtract.
#   - CPU per tick is emulated time (TCG translation and the translated code on this x86 host),
#     not a router's CPU time; compare targets with each other, not with a real router.
set -euo pipefail
source "$(dirname "$0")/../scripts/packaging/lib.sh"
cd "$PKG_ROOT"
t="${1:?usage: benches/qemu.sh TARGET [SECONDS]}"
secs="${2:-60}"
b="$(pkg_bin "$t")"
[ -x "$b" ] || pkg_die "no $b: run scripts/release.sh --target $t"
run="$(pkg_runner "$t")"
[ -n "$run" ] || pkg_die "$t runs natively here; this measures qemu-user runs"
work="$PKG_ROOT/target/bench-qemu/$t"
mkdir -p "$work"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
polls() {
    curl -fsS "http://127.0.0.1:$hp/metrics" |
        awk '/^powerwall_polls_total[{ ]/ {s += $NF} END {print s + 0}'
}

# Baseline: qemu running a static program of the same target that only sleeps.
case "$t" in
mipsel-*) zt=mipsel-linux-musleabi mcpu=mips32r2+soft_float ;;
mips-*) zt=mips-linux-musleabi mcpu=mips32r2+soft_float ;;
aarch64-*) zt=aarch64-linux-musl mcpu=generic ;;
armv7-*) zt=arm-linux-musleabihf mcpu=generic+v7a+vfp3d16+thumb2 ;;
*) pkg_die "no baseline for $t" ;;
esac
printf '#include <unistd.h>\nint main(void) { sleep(30); return 0; }\n' >"$work/sleep.c"
ZIG_GLOBAL_CACHE_DIR="$PKG_ROOT/target/zig-cache" "$(pkg_zig)" cc -target "$zt" -mcpu="$mcpu" -static -Os \
    "$work/sleep.c" -o "$work/sleep"
$run "$work/sleep" &
pids+=($!)
sleep 2
base=$(rss_kib "${pids[-1]}")

sp=$(pkg_free_port)
hp=$(pkg_free_port)
$run "$b" sim --listen "127.0.0.1:$sp" --fixture pw2 --gw-pwd BENCHQEMU12 >"$work/sim.log" 2>&1 &
pids+=($!)
env PW_HOST="127.0.0.1:$sp" PW_GW_PWD=BENCHQEMU12 PW_PORT="$hp" PW_BIND_ADDRESS=127.0.0.1 \
    $run "$b" >"$work/server.log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$hp/health" >/dev/null 2>&1 && break
    sleep 0.5
done
sleep 15
c0=$(cpu_ticks $server) p0=$(polls)
sleep "$secs"
c1=$(cpu_ticks $server) p1=$(polls)
rss=$(rss_kib $server)
hz=$(getconf CLK_TCK)
ticks=$((p1 - p0))
[ "$ticks" -gt 0 ] || pkg_die "no polls in $secs s; logs in $work"
echo "| $t (qemu-user) | |"
echo "|---|---:|"
echo "| binary | $(pkg_bytes "$b") B |"
echo "| server RSS (qemu's VmRSS) | $rss KiB |"
echo "| qemu alone (a static sleep) | $base KiB |"
echo "| polls in $secs s | $ticks |"
awk -v c=$((c1 - c0)) -v n="$ticks" -v hz="$hz" -v s="$secs" 'BEGIN {
    printf "| CPU per poll tick (utime+stime) | %.1f ms |\n", c * 1000 / hz / n
    printf "| CPU, share of one core | %.2f %% |\n", c * 100 / hz / s }'
