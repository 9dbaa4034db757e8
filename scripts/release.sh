#!/usr/bin/env bash
# Builds the static release binaries with plain cargo, checks them, and smoke-tests them.
#
#   scripts/release.sh                 build x86_64, aarch64, armv7, mipsel and mips (musl, static),
#                                      check, smoke-test
#   scripts/release.sh --no-smoke      build and check only
#   scripts/release.sh --target T ...  only these targets (repeatable)
#
# Output: dist/<target>/pypowerwall-server and dist/SHA256SUMS.
# Fails when a binary is 5 MB (5,000,000 bytes) or more, is not statically linked, or a smoke
# test fails. Smoke test: the target's binary runs (under qemu-user but on x86_64) as the
# gateway simulator and as the server pointed at it; the server must poll, turn healthy
# (`pypowerwall-server healthcheck`, exit 0) and answer /aggregates and /soe with real numbers.
#
# How each target is linked:
#   x86_64   rustup's prebuilt std; Debian's musl-gcc for ring's C code; rustc's bundled musl crt.
#   aarch64  rustup's prebuilt std; Debian's aarch64-linux-gnu-gcc as C compiler and linker
#            (rustc links its bundled musl libc/crt objects, so a glibc cross gcc is enough).
#   armv7    no prebuilt std is served here: nightly + -Zbuild-std, and `zig cc` (PyPI `ziglang`)
#            as C compiler and linker, since zig ships musl and libunwind for the target.
#   mipsel   MediaTek MT7621 and other little-endian MIPS routers (OpenWrt mipsel_24kc), and
#   mips     Qualcomm Atheros ath79 and other big-endian ones (OpenWrt mips_24kc): tier 3, so
#            built like armv7 (nightly, -Zbuild-std, zig cc). MIPS32r2 with soft float, which is
#            what Rust's mips(el)-unknown-linux-musl and OpenWrt's *_24kc assume. These Rust targets
#            link dynamically by default (for OpenWrt's SDK); +crt-static makes them static.
set -euo pipefail
source "$(dirname "$0")/packaging/lib.sh"
cd "$PKG_ROOT"

LIMIT=5000000
SMOKE=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --no-smoke) SMOKE=0 ;;
    --target)
        targets+=("$2")
        shift
        ;;
    -h | --help)
        sed -n '2,26p' "$0"
        exit 0
        ;;
    *) pkg_die "unknown argument $1 (try --help)" ;;
    esac
    shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${PKG_TARGETS[@]}")

# --- tools -------------------------------------------------------------------------------------
need=(file binutils curl python3)
for t in "${targets[@]}"; do
    case "$t" in
    x86_64-unknown-linux-musl) need+=(musl-tools) ;;
    # libc6-dev-arm64-cross: the headers for ring's C code (a Recommends of the gcc, so not pulled in).
    aarch64-unknown-linux-musl) need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user) ;;
    armv7-unknown-linux-musleabihf) need+=(binutils-arm-linux-gnueabihf qemu-user python3-venv) ;;
    mipsel-unknown-linux-musl) need+=(binutils-mipsel-linux-gnu qemu-user python3-venv) ;;
    mips-unknown-linux-musl) need+=(binutils-mips-linux-gnu qemu-user python3-venv) ;;
    *) pkg_die "unsupported target $t (see Cross.toml for others)" ;;
    esac
done
pkg_apt "${need[@]}"

# --- build -------------------------------------------------------------------------------------
build() {
    local t="$1"
    case "$t" in
    x86_64-unknown-linux-musl)
        pkg_rust_target "$t"
        CC_x86_64_unknown_linux_musl=musl-gcc \
            cargo build --release --locked --target "$t"
        ;;
    aarch64-unknown-linux-musl)
        pkg_rust_target "$t"
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
            CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
            AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar \
            cargo build --release --locked --target "$t"
        ;;
    armv7-unknown-linux-musleabihf)
        pkg_nightly
        local zig
        zig="$(pkg_zig)"
        # ARMv7-A, VFPv3-D16, Thumb-2, no NEON: what Rust's armv7-unknown-linux-musleabihf assumes.
        ZIG="$zig" ZIG_TARGET=arm-linux-musleabihf ZIG_MCPU=generic+v7a+vfp3d16+thumb2 \
            ZIG_GLOBAL_CACHE_DIR="$PKG_ROOT/target/zig-cache" \
            CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER="$PKG_ROOT/scripts/packaging/zig-cc" \
            CC_armv7_unknown_linux_musleabihf="$PKG_ROOT/scripts/packaging/zig-cc" \
            AR_armv7_unknown_linux_musleabihf=arm-linux-gnueabihf-ar \
            CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-Clink-self-contained=no" \
            cargo "+$PKG_NIGHTLY" build --release --locked --target "$t" \
            -Zbuild-std=std,panic_abort
        ;;
    mipsel-unknown-linux-musl | mips-unknown-linux-musl)
        pkg_nightly
        local zig arch="${t%%-*}" env_t="${t//-/_}" env_T
        env_T="${env_t^^}"
        zig="$(pkg_zig)"
        # MIPS32r2, soft float (zig's musleabi ABI): what Rust's mips(el)-unknown-linux-musl and
        # OpenWrt's mips(el)_24kc assume. The 24Kc has no FPU; a hard-float object would not link.
        # Static relocation model: the binary is a static non-PIE executable, and MIPS PIC code
        # (every call through the GOT) made it 0.5 MB larger (5.05 MB, over the limit).
        env ZIG="$zig" ZIG_TARGET="$arch-linux-musleabi" ZIG_MCPU=mips32r2+soft_float \
            ZIG_GLOBAL_CACHE_DIR="$PKG_ROOT/target/zig-cache" \
            "CARGO_TARGET_${env_T}_LINKER=$PKG_ROOT/scripts/packaging/zig-cc" \
            "CC_${env_t}=$PKG_ROOT/scripts/packaging/zig-cc" \
            "AR_${env_t}=$arch-linux-gnu-ar" \
            "CARGO_TARGET_${env_T}_RUSTFLAGS=-Ctarget-feature=+crt-static -Crelocation-model=static -Clink-self-contained=no" \
            cargo "+$PKG_NIGHTLY" build --release --locked --target "$t" \
            -Zbuild-std=std,panic_abort
        ;;
    esac
    mkdir -p "$PKG_DIST/$t"
    install -m 0755 "${CARGO_TARGET_DIR:-target}/$t/release/pypowerwall-server" "$(pkg_bin "$t")"
    case "$t" in
    # LLVM writes a .pdr (MIPS procedure descriptors, ~290 KB, never loaded) that the linker's
    # --strip-all keeps; it only serves debuggers.
    mips*) "${t%%-*}-linux-gnu-objcopy" --remove-section=.pdr "$(pkg_bin "$t")" ;;
    esac
}

declare -A took
for t in "${targets[@]}"; do
    pkg_say "build $t"
    start=$SECONDS
    build "$t"
    took[$t]=$((SECONDS - start))
done

# --- check: size and static linking ------------------------------------------------------------
fail=0
printf '\n%-34s %10s %9s %7s  %s\n' TARGET BYTES SIZE BUILD 'file(1)'
for t in "${targets[@]}"; do
    b="$(pkg_bin "$t")"
    bytes=$(pkg_bytes "$b")
    desc="$(file -b "$b")"
    printf '%-34s %10s %9s %6ss  %s\n' "$t" "$bytes" "$(pkg_mb "$bytes")" "${took[$t]}" "$(cut -d, -f1-2,4 <<<"$desc")"
    if [ "$bytes" -ge "$LIMIT" ]; then
        echo "FAIL: $t is $bytes bytes (limit: under $LIMIT)" >&2
        fail=1
    fi
    if ! grep -Eq 'statically linked|static-pie linked' <<<"$desc" || readelf -lW "$b" | grep -q INTERP ||
        readelf -dW "$b" 2>/dev/null | grep -q NEEDED; then
        echo "FAIL: $t is not statically linked: $desc" >&2
        fail=1
    fi
done
(cd "$PKG_DIST" && sha256sum */pypowerwall-server >SHA256SUMS)
[ "$fail" = 0 ] || exit 1

# --- smoke test ----------------------------------------------------------------------------------
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap cleanup EXIT

smoke() {
    local t="$1" b run sp hp logs start i ok=0
    b="$(pkg_bin "$t")"
    run="$(pkg_runner "$t")"
    logs="$PKG_ROOT/target/smoke/$t"
    mkdir -p "$logs"
    sp=$(pkg_free_port)
    hp=$(pkg_free_port)
    start=$SECONDS
    # The gateway simulator and the server, both from the target's binary.
    $run "$b" sim --listen "127.0.0.1:$sp" --fixture pw2 --gw-pwd SMOKETEST12 >"$logs/sim.log" 2>&1 &
    pids+=($!)
    env PW_HOST="127.0.0.1:$sp" PW_GW_PWD=SMOKETEST12 PW_PORT="$hp" PW_BIND_ADDRESS=127.0.0.1 \
        PW_CACHE_EXPIRE=1 $run "$b" >"$logs/server.log" 2>&1 &
    pids+=($!)
    # /health answers 2xx only once a poll of the gateway succeeded.
    for i in $(seq 1 120); do
        if $run "$b" healthcheck "http://127.0.0.1:$hp/health" 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.5
    done
    if [ "$ok" != 1 ]; then
        echo "FAIL: $t: the server did not turn healthy in 60 s; logs in $logs" >&2
        tail -n 20 "$logs/server.log" "$logs/sim.log" >&2 || true
        return 1
    fi
    curl -fsS "http://127.0.0.1:$hp/aggregates" >"$logs/aggregates.json"
    curl -fsS "http://127.0.0.1:$hp/soe" >"$logs/soe.json"
    python3 - "$logs/aggregates.json" "$logs/soe.json" <<'EOF' || return 1
import json, sys
agg = json.load(open(sys.argv[1]))
soe = json.load(open(sys.argv[2]))
for meter in ("site", "battery", "load", "solar"):
    v = agg.get(meter, {}).get("instant_power")
    assert isinstance(v, (int, float)), f"/aggregates: {meter}.instant_power is {v!r}"
assert agg["load"]["instant_power"] != 0, "/aggregates: load is 0 (no real data)"
p = soe.get("percentage")
assert isinstance(p, (int, float)) and 0 < p <= 100, f"/soe: percentage is {p!r}"
EOF
    grep -q "connected" "$logs/server.log" || {
        echo "FAIL: $t: no 'connected' line in the server log" >&2
        return 1
    }
    # The HEALTHCHECK contract: exit 1 when nothing answers.
    if $run "$b" healthcheck "http://127.0.0.1:$(pkg_free_port)/health" 2>/dev/null; then
        echo "FAIL: $t: healthcheck exited 0 against a closed port" >&2
        return 1
    fi
    cleanup
    printf '%-34s smoke test passed in %ss (%s)\n' "$t" $((SECONDS - start)) "${run:-native}"
}

if [ "$SMOKE" = 1 ]; then
    echo
    for t in "${targets[@]}"; do
        smoke "$t" || exit 1
    done
fi
echo
echo "release binaries in $PKG_DIST (SHA256SUMS beside them)"
