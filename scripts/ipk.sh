#!/usr/bin/env bash
# Builds installable OpenWrt .ipk packages (opkg: OpenWrt 24.10 and earlier) from the prebuilt
# static release binaries, the way OpenWrt's ipkg-build does (gzip'd tar of debian-binary,
# data.tar.gz, control.tar.gz), then inspects them. For OpenWrt 25.x (apk) build the package
# with the SDK from openwrt/pypowerwall-server/Makefile (openwrt/README.md).
#
#   scripts/ipk.sh                                   all binaries in dist/, default architectures
#   scripts/ipk.sh --target aarch64-unknown-linux-musl --arch aarch64_cortex-a53
#
# The package architecture must be one the router's opkg accepts (`opkg print-architecture`).
# The binary is static, so any architecture name of the same CPU family works; the defaults are:
#   x86_64-unknown-linux-musl        x86_64
#   aarch64-unknown-linux-musl       aarch64_generic         (e.g. aarch64_cortex-a53, -a72)
#   armv7-unknown-linux-musleabihf   arm_cortex-a7_neon-vfpv4 (e.g. arm_cortex-a9_vfpv3-d16)
#   mipsel-unknown-linux-musl        mipsel_24kc             (ramips: MT7621, MT7628; e.g. mipsel_74kc)
#   mips-unknown-linux-musl          mips_24kc               (ath79, lantiq: e.g. mips_74kc)
# Contents, package name, version, section, license and service user come from the feed
# Makefile (openwrt/pypowerwall-server/Makefile), so the two packages agree.
# Output: dist/pypowerwall-server_VERSION-rRELEASE_ARCH.ipk
set -euo pipefail
source "$(dirname "$0")/packaging/lib.sh"
cd "$PKG_ROOT"

declare -A default_arch=([x86_64-unknown-linux-musl]=x86_64 [aarch64-unknown-linux-musl]=aarch64_generic
    [armv7-unknown-linux-musleabihf]=arm_cortex-a7_neon-vfpv4 [mipsel-unknown-linux-musl]=mipsel_24kc
    [mips-unknown-linux-musl]=mips_24kc)
targets=()
arch_override=""
while [ $# -gt 0 ]; do
    case "$1" in
    --target)
        targets+=("$2")
        shift
        ;;
    --arch)
        arch_override="$2"
        shift
        ;;
    -h | --help)
        sed -n '2,21p' "$0"
        exit 0
        ;;
    *) pkg_die "unknown argument $1 (try --help)" ;;
    esac
    shift
done
if [ ${#targets[@]} -eq 0 ]; then
    for t in "${PKG_TARGETS[@]}"; do [ -x "$(pkg_bin "$t")" ] && targets+=("$t"); done
fi
[ ${#targets[@]} -gt 0 ] || pkg_die "no binaries in $PKG_DIST: run scripts/release.sh first"
[ -z "$arch_override" ] || [ ${#targets[@]} -eq 1 ] || pkg_die "--arch goes with one --target"
pkg_apt python3 busybox

feed=openwrt/pypowerwall-server
mk() { sed -n "s/^\s*$1:=\(.*\)$/\1/p" "$feed/Makefile" | head -n1; }
name="$(mk PKG_NAME)"
version="$(mk PKG_VERSION)-r$(mk PKG_RELEASE)"
[ "$(mk PKG_VERSION)" = "$(pkg_version)" ] || pkg_die "PKG_VERSION $(mk PKG_VERSION) in $feed/Makefile is not Cargo.toml's $(pkg_version)"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
tar_args=(--format=gnu --numeric-owner --owner=0 --group=0 --sort=name --mtime="@$epoch")

build_ipk() {
    local t="$1" arch="$2" stage out installed
    stage="$PKG_ROOT/target/ipk/$arch"
    rm -rf "$stage"
    mkdir -p "$stage/data/usr/bin" "$stage/data/etc/init.d" "$stage/data/etc/config" "$stage/control" "$stage/pkg"
    # Same files and modes as Package/pypowerwall-server/install (INSTALL_BIN 0755, INSTALL_CONF 0600).
    install -m 0755 "$(pkg_bin "$t")" "$stage/data/usr/bin/pypowerwall-server"
    install -m 0755 "$feed/files/pypowerwall-server.init" "$stage/data/etc/init.d/pypowerwall-server"
    install -m 0600 "$feed/files/pypowerwall-server.config" "$stage/data/etc/config/pypowerwall-server"
    (cd "$stage/data" && tar "${tar_args[@]}" -cf - .) | gzip -n -9 >"$stage/pkg/data.tar.gz"
    installed=$(zcat "$stage/pkg/data.tar.gz" | wc -c)

    # control, conffiles, postinst and prerm as OpenWrt's package-pack.mk writes them.
    cat >"$stage/control/control" <<EOF
Package: $name
Version: $version
Source: feeds/pypowerwall/$name
SourceName: $name
License: $(mk PKG_LICENSE)
Section: $(mk '  SECTION')
SourceDateEpoch: $epoch
Require-User: $(mk '  USERID')
Maintainer: $(mk PKG_MAINTAINER)
Architecture: $arch
Installed-Size: $installed
Description:  Tesla Powerwall gateway server (pypowerwall proxy drop-in). Static binary for $t.
 Watches Tesla Powerwall gateways and serves their data with the URLs and JSON of the
 pypowerwall proxy. Configure in /etc/config/pypowerwall-server; it listens on port 8675.
EOF
    echo "/etc/config/pypowerwall-server" >"$stage/control/conffiles"
    cat >"$stage/control/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
EOF
    cat >"$stage/control/prerm" <<'EOF'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
EOF
    chmod 0644 "$stage/control/control" "$stage/control/conffiles"
    chmod 0755 "$stage/control/postinst" "$stage/control/prerm"
    (cd "$stage/control" && tar "${tar_args[@]}" -cf - .) | gzip -n -9 >"$stage/pkg/control.tar.gz"
    echo "2.0" >"$stage/pkg/debian-binary"
    out="$PKG_DIST/${name}_${version}_${arch}.ipk"
    (cd "$stage/pkg" && tar "${tar_args[@]}" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) | gzip -n -9 >"$out"
    echo "$out"
}

for t in "${targets[@]}"; do
    arch="${arch_override:-${default_arch[$t]:-}}"
    [ -n "$arch" ] || pkg_die "no OpenWrt architecture for $t: give --arch"
    out="$(build_ipk "$t" "$arch")"
    python3 scripts/packaging/ipk_check.py "$out" "$t"
done
