#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo: a Python virtualenv with the reference
# pypowerwall library (for tests/interop.rs) and Debian's mosquitto broker + clients (for
# tests/mqtt.rs, which starts its own broker on free loopback ports; no system service is
# needed or left running). Idempotent; safe to run on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ] || ! command -v mosquitto_passwd >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        mosquitto mosquitto-clients >/dev/null
    # The tests run their own broker; stop the packaged one if the package started it.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
        $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
fi
echo "mosquitto ready: $( (/usr/sbin/mosquitto -h 2>/dev/null || mosquitto -h 2>/dev/null) | head -1)"
VENV=target/interop-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pypowerwall" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "pypowerwall==0.22.2"
fi
"$VENV/bin/python" -c "import pypowerwall; print('pypowerwall', pypowerwall.__version__, 'ready in $VENV')"
