#!/usr/bin/env bash
# Assembles the OCI image (the Dockerfile's FROM scratch image) from the release binaries without a
# Docker engine, then inspects it.
#
#   scripts/release.sh && scripts/oci-image.sh
#
# Output: dist/oci/ (OCI image layout: tag VERSION = multi-platform index of linux/amd64,
# linux/arm64 and linux/arm/v7; VERSION-amd64/-arm64/-armv7 = one platform) and
# dist/pypowerwall-server-VERSION-oci.tar (the same layout as one file). Use it with skopeo:
#   skopeo copy --all oci:dist/oci:VERSION docker://REGISTRY/pypowerwall-server:VERSION
#   skopeo copy oci-archive:dist/pypowerwall-server-VERSION-oci.tar:VERSION-arm64 \
#       docker-daemon:pypowerwall-server:VERSION
#
# Inspection: every blob's digest and size; config (user, port, volume, env, entrypoint, health
# check) against the Dockerfile's final stage; the layer's files (static binary of the right
# architecture, CA bundle, passwd, /auth ownership); skopeo and umoci read it; and the amd64
# image's unpacked root file system runs: chroot into it as uid 10001 with the image's Env and
# Entrypoint (+ --demo), then its Healthcheck command must exit 0.
set -euo pipefail
source "$(dirname "$0")/packaging/lib.sh"
cd "$PKG_ROOT"

pkg_apt ca-certificates python3 skopeo umoci curl
version="$(pkg_version)"
out="$PKG_DIST/oci"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

pairs=()
declare -A plat=([x86_64-unknown-linux-musl]=linux/amd64 [aarch64-unknown-linux-musl]=linux/arm64
    [armv7-unknown-linux-musleabihf]=linux/arm/v7)
for t in "${PKG_TARGETS[@]}"; do
    b="$(pkg_bin "$t")"
    # No image for the MIPS targets: those routers take the .ipk (scripts/ipk.sh), not containers.
    [ -n "${plat[$t]:-}" ] && [ -x "$b" ] && pairs+=("${plat[$t]}=$b")
done
[ ${#pairs[@]} -gt 0 ] || pkg_die "no binaries in $PKG_DIST: run scripts/release.sh first"

pkg_say "assemble $out (${pairs[*]%%=*})"
rm -rf "$out"
python3 scripts/packaging/oci.py build "$out" "$version" "${pairs[@]}"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$out" -cf "$PKG_DIST/pypowerwall-server-$version-oci.tar" oci-layout index.json blobs

pkg_say "inspect"
python3 scripts/packaging/oci.py check "$out" "$version" Dockerfile

# Independent readers: skopeo (containers/image) and umoci.
skopeo inspect --raw "oci:$out:$version" | python3 -c '
import json, sys
idx = json.load(sys.stdin)
print("skopeo: index of", ", ".join(m["platform"]["architecture"] + m["platform"].get("variant", "") for m in idx["manifests"]))'
skopeo inspect --config "oci:$out:$version-amd64" | python3 -c '
import json, sys
c = json.load(sys.stdin)["config"]
assert c["User"] == "10001:10001", c["User"]
print("skopeo: amd64 config: User", c["User"], "Entrypoint", c["Entrypoint"], "Ports", list(c["ExposedPorts"]))'
skopeo inspect "oci-archive:$PKG_DIST/pypowerwall-server-$version-oci.tar:$version-arm64" >/dev/null
echo "skopeo: the archive's arm64 image reads"

bundle="$PKG_ROOT/target/oci-bundle"
rm -rf "$bundle"
umoci_flags=()
[ "$(id -u)" -eq 0 ] || umoci_flags+=(--rootless)
umoci unpack "${umoci_flags[@]}" --image "$out:$version-amd64" "$bundle" >/dev/null
python3 - "$bundle/config.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))["process"]
assert p["user"]["uid"] == 10001 and p["user"]["gid"] == 10001, p["user"]
assert p["args"] == ["/usr/local/bin/pypowerwall-server"], p["args"]
assert any(e.startswith("PW_AUTH_PATH=") for e in p["env"]), p["env"]
print("umoci: runtime bundle: uid", p["user"]["uid"], "args", p["args"])
EOF
echo "umoci: root file system: $(cd "$bundle/rootfs" && find . -mindepth 1 | sort | tr '\n' ' ')"

if [ "$(id -u)" -eq 0 ]; then
    # Run the image's own files, nothing from the host: chroot, uid 10001, the image's Env.
    mapfile -t envs < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["process"]["env"]))' "$bundle/config.json")
    port=$(pkg_free_port)
    env -i "${envs[@]}" PW_PORT="$port" PW_BIND_ADDRESS=127.0.0.1 \
        chroot --userspec=10001:10001 "$bundle/rootfs" /usr/local/bin/pypowerwall-server --demo \
        >"$PKG_ROOT/target/oci-run.log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    ok=0
    for _ in $(seq 1 60); do
        # The image's Healthcheck test, as Docker would run it inside the container.
        if env -i "${envs[@]}" PW_PORT="$port" chroot --userspec=10001:10001 "$bundle/rootfs" \
            /usr/local/bin/pypowerwall-server healthcheck 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.5
    done
    [ "$ok" = 1 ] || {
        cat "$PKG_ROOT/target/oci-run.log" >&2
        pkg_die "the image's healthcheck never passed"
    }
    curl -fsS "http://127.0.0.1:$port/aggregates" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d["site"]["instant_power"], (int, float))'
    kill $pid
    wait $pid 2>/dev/null || true
    trap - EXIT
    echo "run: the amd64 image's files run as uid 10001 (chroot, --demo); its healthcheck exits 0; /aggregates answers"
fi
ls -l "$PKG_DIST/pypowerwall-server-$version-oci.tar" | awk '{print "archive: " $5 " bytes " $9}'
