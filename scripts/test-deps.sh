#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo: a Python virtualenv with the reference
# pypowerwall library (for tests/interop.rs). Idempotent; safe to run on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/interop-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pypowerwall" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "pypowerwall==0.22.2"
fi
"$VENV/bin/python" -c "import pypowerwall; print('pypowerwall', pypowerwall.__version__, 'ready in $VENV')"
