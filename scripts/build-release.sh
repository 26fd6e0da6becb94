#!/usr/bin/env bash
# The production build: the `widget-sessions` binary in release mode, exactly as locked in
# Cargo.lock, without the in-process Transak emulator (a production instance talks to Transak
# and refuses to start without its settings). The container image (Dockerfile) runs this, and
# CI runs it too, so what CI builds is what ships.
#
# WIDGET_SESSIONS_FEATURES adds cargo features, e.g. `otel` (OpenTelemetry trace export).
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
if [[ -n "${WIDGET_SESSIONS_FEATURES:-}" ]]; then
    features=(--features "$WIDGET_SESSIONS_FEATURES")
fi
cargo build --release --locked -p widget-sessions --bin widget-sessions --no-default-features "${features[@]}"
