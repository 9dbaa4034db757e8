#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo: a Python virtualenv with the reference
# pypowerwall library (for tests/interop.rs), schemathesis in its own virtualenv (for
# tests/schemathesis.rs, scripts/schemathesis-deps.sh), Debian's `prometheus` package (promtool and the
# prometheus binary, for tests/metrics.rs) and Debian's mosquitto broker + clients (for
# tests/mqtt.rs, which starts its own broker on free loopback ports). No system service is
# started or left running. Idempotent; safe to run on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/interop-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pypowerwall" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "pypowerwall==0.22.2"
fi
"$VENV/bin/python" -c "import pypowerwall; print('pypowerwall', pypowerwall.__version__, 'ready in $VENV')"

# schemathesis (tests/schemathesis.rs).
scripts/schemathesis-deps.sh

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Installs Debian packages whose system service must not start: the tests start their own
# instances on 127.0.0.1 (policy-rc.d exit 101 forbids starting services during the install).
install_without_service() {
    if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $SUDO apt-get update
    fi
    POLICY=/usr/sbin/policy-rc.d
    SAVED=""
    if [ -e "$POLICY" ]; then
        SAVED=$(mktemp)
        $SUDO cp -p "$POLICY" "$SAVED"
    fi
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    status=0
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$@" || status=$?
    if [ -n "$SAVED" ]; then
        $SUDO cp -p "$SAVED" "$POLICY"
        rm -f "$SAVED"
    else
        $SUDO rm -f "$POLICY"
    fi
    [ "$status" -eq 0 ] || exit "$status"
    # Where systemd runs, make sure the packaged service stays off.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now "$1" >/dev/null 2>&1 || true
    fi
}

# Prometheus (tests/metrics.rs).
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    install_without_service prometheus
fi
promtool --version 2>&1 | head -1
prometheus --version 2>&1 | head -1

# Mosquitto (tests/mqtt.rs).
if { ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; } \
    || ! command -v mosquitto_passwd >/dev/null 2>&1; then
    install_without_service mosquitto mosquitto-clients
fi
echo "mosquitto ready: $( (/usr/sbin/mosquitto -h 2>/dev/null || mosquitto -h 2>/dev/null) | head -1)"
