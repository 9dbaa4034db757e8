# Shared helpers for the packaging scripts (sourced, not run).
# Everything a packaging script needs is installed here, by name, from the registries this
# project uses: Debian packages (apt-get), Rust toolchains/targets (rustup) and PyPI (pip into a
# venv under target/). Nothing installed by hand is relied on.

PKG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PKG_DIST="${PKG_DIST:-$PKG_ROOT/dist}"
PKG_VENV="${PKG_VENV:-$PKG_ROOT/target/pkg-venv}"
# Nightly is needed only for armv7 and MIPS (-Zbuild-std). Pin a date with PKG_NIGHTLY=nightly-YYYY-MM-DD.
PKG_NIGHTLY="${PKG_NIGHTLY:-nightly}"
# The five release targets and how their binaries are run here.
PKG_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
    mipsel-unknown-linux-musl mips-unknown-linux-musl)

pkg_say() { printf '==> %s\n' "$*" >&2; }
pkg_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

pkg_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$PKG_ROOT/Cargo.toml" | head -n1; }

# pkg_apt PKG... — installs the Debian packages that are missing (apt-get update once per run).
pkg_apt() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${PKG_APT_UPDATED:-}" ]; then
        pkg_say "apt-get update"
        $sudo apt-get update -q >/dev/null
        export PKG_APT_UPDATED=1
    fi
    pkg_say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# pkg_venv — a Python venv under target/ with the pinned PyPI tools (scripts/packaging/requirements.txt).
pkg_venv() {
    local req="$PKG_ROOT/scripts/packaging/requirements.txt" stamp="$PKG_VENV/.requirements"
    if [ ! -x "$PKG_VENV/bin/python" ]; then
        pkg_apt python3-venv
        pkg_say "python venv $PKG_VENV"
        python3 -m venv "$PKG_VENV"
    fi
    if ! cmp -s "$req" "$stamp"; then
        pkg_say "pip install -r scripts/packaging/requirements.txt"
        "$PKG_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
        cp "$req" "$stamp"
    fi
}

# pkg_zig — prints the path of the zig binary shipped by the `ziglang` PyPI package.
pkg_zig() {
    pkg_venv
    "$PKG_VENV/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))'
}

# pkg_rust_target TRIPLE — adds the prebuilt std for a target (stable toolchain).
pkg_rust_target() {
    rustup target list --installed | grep -qx "$1" && return 0
    pkg_say "rustup target add $1"
    rustup target add "$1" >&2
}

# pkg_nightly — the nightly toolchain with rust-src, for -Zbuild-std.
pkg_nightly() {
    if rustup run "$PKG_NIGHTLY" rustc --version >/dev/null 2>&1 &&
        rustup component list --toolchain "$PKG_NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
        return 0
    fi
    pkg_say "rustup toolchain install $PKG_NIGHTLY --component rust-src"
    rustup toolchain install "$PKG_NIGHTLY" --profile minimal --component rust-src >&2
}

# pkg_free_port — an unused loopback TCP port.
pkg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pkg_bin TRIPLE — where scripts/release.sh puts a target's binary.
pkg_bin() { printf '%s/%s/pypowerwall-server\n' "$PKG_DIST" "$1"; }

# pkg_runner TRIPLE — the command prefix that runs a target's binary on this machine.
pkg_runner() {
    case "$1" in
    x86_64-*) echo "" ;;
    aarch64-*) echo "qemu-aarch64" ;;
    armv7-* | arm-*) echo "qemu-arm" ;;
    mipsel-*) echo "qemu-mipsel" ;;
    mips-*) echo "qemu-mips" ;;
    *) pkg_die "no runner for $1" ;;
    esac
}

# pkg_bytes FILE — size in bytes.
pkg_bytes() { stat -c %s "$1"; }

# pkg_mb BYTES — "2.99 MB" (decimal megabytes).
pkg_mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1000000 }'; }
