#!/usr/bin/env bash
# Installs schemathesis (PyPI, pinned) into its own virtualenv, target/schemathesis-venv, for
# tests/schemathesis.rs (the OpenAPI conformance test). Called by scripts/test-deps.sh; the test
# calls it too when the virtualenv is missing. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.32.5
VENV=target/schemathesis-venv
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
"$VENV/bin/schemathesis" --version
