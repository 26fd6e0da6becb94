#!/usr/bin/env bash
# The real-browser end-to-end tests (crates/server/tests/browser.rs): headless Chromium opens a
# partner page embedding a launch link through Transak's browser SDK (@transak/transak-sdk
# from npm, bundled with esbuild), completes the order in the emulated widget, and the test
# checks the page's SDK events, the partner's signed webhooks, the session's order and the
# "already used" page; then the hosted travel-rule step (browser/hosted.mjs): EVM and Solana
# customers with injected wallets (ethers, tweetnacl), one without JavaScript pasting a
# BIP-322 signature, a plain open that consumes nothing, and axe-core on every state of the
# page. SCREENSHOTS=<dir> saves the page's states as PNG (docs/hosted-*.png come from it).
#
# Installs what is missing: Debian's chromium (apt-get, as root) and browser/'s npm packages
# (`npm ci`; no browser is ever downloaded: playwright-core drives the system's Chromium).
# CHROMIUM overrides the browser's path (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "$CHROMIUM is missing: apt-get install chromium, or set CHROMIUM" >&2
    exit 1
  fi
fi

# playwright-core and the SDK need Node.js 20 or later (the machine's; Debian 12's is 18).
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
  echo "Node.js 20 or later and npm are needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# Installed again whenever the lockfile changed since the last install.
stamp=browser/node_modules/.installed-package-lock.json
if [ ! -d browser/node_modules ] || ! cmp -s browser/package-lock.json "$stamp"; then
  echo "== npm ci (browser/)"
  (cd browser && npm ci --no-audit --no-fund)
  cp browser/package-lock.json "$stamp"
fi

echo "== the browser test"
cargo clippy -q -p widget-sessions --features browser-test --test browser -- -D warnings
cargo test -p widget-sessions --features browser-test --test browser -- --nocapture
