#!/usr/bin/env bash
# Installs what the headless UI test (tests/ui.rs → tests/ui/check.mjs) needs: Debian's chromium
# (playwright-core drives it; no browser is ever downloaded) and the npm packages of tests/ui.
# Idempotent; safe to run on a fresh machine. Needs root (or sudo) only when chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

cd tests/ui
# playwright-core never downloads a browser; make sure nothing else tries either.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
else
    npm install --no-audit --no-fund --loglevel=error
fi
node -e "console.log('playwright-core', require('playwright-core/package.json').version, 'ready in tests/ui')"
