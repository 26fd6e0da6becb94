#!/usr/bin/env bash
# A real browser opens a launch link: headless Chromium lands on the (emulated) Transak widget
# page; opening the same link again shows our "already used" page. Screenshots of both go to
# target/e2e-browser/.
#
# Needs Debian's chromium (installed here with apt-get when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/e2e-browser
mkdir -p "$out"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "chromium is not installed (Debian: apt-get install chromium)" >&2
    exit 1
  fi
fi

cargo build -q -p widget-sessions
bin=target/debug/widget-sessions

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key="wsk_browser_test_key_0123456789"
secret="wss_browser_test_secret_0123456789"
apps=$(mktemp)
printf '[{"name":"browser","apiKey":"%s","apiSecret":"%s"}]' "$key" "$secret" > "$apps"

WIDGET_SESSIONS_LISTEN=127.0.0.1:$port WIDGET_SESSIONS_APPS_FILE=$apps WIDGET_SESSIONS_LOG_FORMAT=json \
  "$bin" > "$out/service.log" 2>&1 &
service=$!
profile=$(mktemp -d)
trap 'kill $service 2>/dev/null || true; rm -rf "$apps" "$profile"' EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

body='{"userId":"7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44","currency":"BTC","network":"BTC","counterpartyAddress":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}'
answer=$("$bin" request --url "http://127.0.0.1:$port" --api-key "$key" --api-secret "$secret" \
  POST /travel-rule/widget-sessions "$body")
link=$(printf '%s\n' "$answer" | sed -n 's/.*"widgetUrl": "\([^"]*\)".*/\1/p')
[ -n "$link" ] || { echo "no widgetUrl in: $answer" >&2; exit 1; }

chrome() {
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run \
    --disable-component-update --disable-sync --disable-quic --user-data-dir="$profile" "$@" 2>/dev/null
}

first=$(chrome --dump-dom "$link")
if ! grep -q "Transak widget (emulator)" <<<"$first"; then
  echo "FAIL: the first open did not land on the widget page:" >&2
  printf '%s\n' "$first" | head -20 >&2
  exit 1
fi
echo "ok: the first open redirected to the Transak widget page"

second=$(chrome --dump-dom "$link")
if ! grep -q "This link has already been used" <<<"$second"; then
  echo "FAIL: the second open did not show the 'already used' page:" >&2
  printf '%s\n' "$second" | head -20 >&2
  exit 1
fi
echo "ok: the second open showed our 'already used' page"

# Screenshots, for people: a fresh link (consumed by this very open) and the used one.
fresh=$("$bin" request --url "http://127.0.0.1:$port" --api-key "$key" --api-secret "$secret" \
  POST /travel-rule/widget-sessions "${body/bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4/1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa}" \
  | sed -n 's/.*"widgetUrl": "\([^"]*\)".*/\1/p')
chrome --window-size=900,700 --screenshot="$out/widget.png" "$fresh" >/dev/null || true
chrome --window-size=900,700 --screenshot="$out/already-used.png" "$fresh" >/dev/null || true
echo "screenshots: $out/widget.png, $out/already-used.png"
echo "2 passed, 0 failed"
