#!/usr/bin/env bash
# End-to-end packaging check (minutes; not part of `cargo test` or CI):
#   1. scripts/release.sh: static musl binaries (x86_64, aarch64, armv7, mipsel, mips) under 5 MB,
#      qemu smoke tests
#   2. scripts/ipk.sh: OpenWrt .ipk per binary, inspected; the procd init script's UCI -> YAML test
#   3. scripts/oci-image.sh: the OCI image, inspected (and checked against the Dockerfile), run
#   4. deploy/docker-compose.yml: `docker-compose config` (schema + interpolation) and its contract
#   5. deploy/pypowerwall-server.service: systemd-analyze verify and security exposure
#   6. deploy/helm: helm lint --strict, render, Kubernetes schema validation, server reads its config
# Installs what it needs (apt-get, rustup, pip into target/pkg-venv). Prints a short report.
#
#   scripts/check-packaging.sh [--no-build]    (--no-build: reuse the binaries already in dist/)
set -uo pipefail
source "$(dirname "$0")/packaging/lib.sh"
cd "$PKG_ROOT"

build=1
[ "${1:-}" = "--no-build" ] && build=0
logdir="$PKG_ROOT/target/check-packaging"
mkdir -p "$logdir"
results=()
failed=0

step() { # NAME COMMAND... — runs a step, logs it, records PASS/FAIL and its time
    local name="$1" start=$SECONDS rc
    shift
    pkg_say "$name"
    "$@" >"$logdir/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        results+=("$(printf 'PASS  %-10s %5ss' "$name" $((SECONDS - start)))")
    else
        results+=("$(printf 'FAIL  %-10s %5ss  (see %s)' "$name" $((SECONDS - start)) "$logdir/$name.log")")
        failed=1
        tail -n 30 "$logdir/$name.log" >&2
    fi
    return $rc
}

release() {
    if [ "$build" = 1 ]; then
        scripts/release.sh
    else
        for t in "${PKG_TARGETS[@]}"; do [ -x "$(pkg_bin "$t")" ] || pkg_die "no $(pkg_bin "$t")"; done
        echo "reusing the binaries in $PKG_DIST"
    fi
}

openwrt() {
    scripts/ipk.sh && scripts/packaging/test-openwrt-init.sh
}

compose() {
    pkg_apt docker-compose
    pkg_venv
    local f=deploy/docker-compose.yml tmp
    # Schema and interpolation, offline (no engine needed for `config`).
    PW_HOST=192.168.91.1 PW_GW_PWD=ABCDEFGHIJ docker-compose -f "$f" config -q || return 1
    PW_HOST=192.168.91.1 PW_GW_PWD=ABCDEFGHIJ docker-compose -f "$f" config >"$logdir/compose.resolved.yml" || return 1
    # The password is mandatory; a misspelt key is refused (the validator is not a no-op).
    if PW_HOST=192.168.91.1 docker-compose -f "$f" config -q 2>/dev/null; then
        echo "compose: accepted a missing PW_GW_PWD" >&2
        return 1
    fi
    tmp="$(mktemp --suffix=.yml)"
    sed 's/^    restart: unless-stopped$/    restart: unless-stopped\n    restart_policy_typo: always/' "$f" >"$tmp"
    if PW_HOST=x PW_GW_PWD=y docker-compose -f "$tmp" config -q 2>/dev/null; then
        echo "compose: the validator accepted an unknown key" >&2
        rm -f "$tmp"
        return 1
    fi
    rm -f "$tmp"
    # The contract with the image: port, auth volume, health check = the Dockerfile's.
    "$PKG_VENV/bin/python" - "$logdir/compose.resolved.yml" Dockerfile <<'EOF'
import json, re, sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))["services"]["pypowerwall-server"]
docker = re.sub(r"\\\n", " ", open(sys.argv[2]).read())
hc = json.loads(re.search(r"^HEALTHCHECK .*?CMD (\[.*\])", docker, re.M).group(1))
assert svc["healthcheck"]["test"] == ["CMD"] + hc, svc["healthcheck"]
assert any(p["target"] == 8675 for p in svc["ports"]), svc["ports"]
assert svc["environment"]["PW_AUTH_PATH"] == "/auth" and "auth:/auth:rw" in svc["volumes"], svc["volumes"]
assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], "hardening"
print("compose: valid (docker-compose config); PW_GW_PWD required; unknown keys refused; healthcheck, port 8675, auth volume match the image")
EOF
}

systemd_unit() {
    pkg_apt systemd
    local dir out score
    dir="$(mktemp -d)"
    # verify checks that ExecStart exists: point it at the built binary, all else unchanged.
    sed "s|^ExecStart=/usr/local/bin/pypowerwall-server|ExecStart=$(pkg_bin x86_64-unknown-linux-musl)|" \
        deploy/pypowerwall-server.service >"$dir/pypowerwall-server.service"
    out="$(systemd-analyze verify "$dir/pypowerwall-server.service" 2>&1)" || {
        echo "$out"
        return 1
    }
    [ -z "$out" ] || {
        echo "systemd-analyze verify: $out"
        return 1
    }
    score="$(systemd-analyze security --offline=yes "$dir/pypowerwall-server.service" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
    rm -rf "$dir"
    [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || {
        echo "systemd-analyze security: exposure ${score:-?} (want <= 2.0)"
        return 1
    }
    echo "systemd: verify clean; security exposure $score (offline)"
}

helm_chart() {
    pkg_venv
    "$PKG_VENV/bin/python" scripts/packaging/check_helm.py deploy/helm/pypowerwall-server "$(pkg_bin x86_64-unknown-linux-musl)" 2>&1 |
        grep -v 'funcMap fail'
    return "${PIPESTATUS[0]}"
}

total=$SECONDS
step release release || {
    printf '%s\n' "${results[@]}"
    exit 1
}
step openwrt openwrt
step oci scripts/oci-image.sh
step compose compose
step systemd systemd_unit
step helm helm_chart

echo
echo "== packaging report ($((SECONDS - total)) s) =="
grep -E '^(TARGET|[a-z0-9_]+-unknown-linux)' "$logdir/release.log" | grep -v 'smoke' || true
grep -E 'smoke test passed' "$logdir/release.log" || true
grep -E '\.ipk: ' "$logdir/openwrt.log" || true
grep -E '^openwrt init:' "$logdir/openwrt.log" || true
grep -E '^(PLATFORM|linux/)' "$logdir/oci.log" || true
grep -E '^(run:|archive:)' "$logdir/oci.log" || true
grep -h -E '^(compose|systemd|helm):' "$logdir/compose.log" "$logdir/systemd.log" "$logdir/helm.log" || true
echo
printf '%s\n' "${results[@]}"
exit $failed
