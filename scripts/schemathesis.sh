#!/usr/bin/env bash
# Property-based API testing with schemathesis against the live service's OpenAPI document.
# Bounded; run from anywhere:
#
#     bash scripts/schemathesis.sh            # or: just schemathesis
#
# What it does:
#   1. a Python venv in target/schemathesis-venv (gitignored with /target) with schemathesis 4.x;
#   2. `cargo build -p widget-sessions`, then starts target/debug/widget-sessions on a free
#      127.0.0.1 port: in-memory store, in-process Transak emulator, rate limit off, and one
#      application from a temporary WIDGET_SESSIONS_APPS_FILE;
#   3. checks that a request signed by scripts/schemathesis_hooks.py is accepted (2xx);
#   4. runs `schemathesis run` on /api/v1/openapi.json, every request signed by the hooks file;
#   5. stops the service on exit, whatever happens.
#
# Knobs (environment):
#   SCHEMATHESIS_MAX_TIME       total time budget of the run, seconds          (default 180)
#   SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase             (default 100)
#   SCHEMATHESIS_WORKERS        concurrent workers (default 1: with 2, hypothesis 6.x
#                               sometimes fails with "AST constructor recursion depth mismatch")
#   SCHEMATHESIS_CHECKS         --checks value                                 (default below)
#   SCHEMATHESIS_SEED           --seed, for a reproducible run                 (default random)
#   SCHEMATHESIS_VERSION        pip requirement                                (default 'schemathesis>=4,<5')
#   SCHEMATHESIS_EXTRA_ARGS     appended to `schemathesis run` (word-split)
#
# Output: target/schemathesis/ — run.log (schemathesis' own report), server.log (the
# service's JSON logs: every 5xx has its cause there), server-summary.txt (responses per
# route and status, ERROR lines), report/ (junit.xml, ndjson events). `st replay <id>` works
# from target/schemathesis while the service still runs (i.e. not after this script).
# Exit status: schemathesis' (non-zero when it found failures).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MAX_TIME="${SCHEMATHESIS_MAX_TIME:-180}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
WORKERS="${SCHEMATHESIS_WORKERS:-1}"
# Every check schemathesis 4 has, except object_level_authorization (it needs a second
# identity, which this run does not configure).
CHECKS="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,positive_data_acceptance,missing_required_header,unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability,ignored_auth}"
REQUIREMENT="${SCHEMATHESIS_VERSION:-schemathesis>=4,<5}"

VENV="$ROOT/target/schemathesis-venv"
OUT="$ROOT/target/schemathesis"
mkdir -p "$OUT"
rm -rf "$OUT/report"

log() { printf '[schemathesis.sh] %s\n' "$*" >&2; }

# --- 1. schemathesis ---------------------------------------------------------------------
if [[ ! -x "$VENV/bin/schemathesis" ]]; then
    log "creating $VENV and installing $REQUIREMENT"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$REQUIREMENT"
fi
log "$("$VENV/bin/schemathesis" --version)"

# --- 2. the service ----------------------------------------------------------------------
log "building the service (cargo build -p widget-sessions)"
cargo build --quiet -p widget-sessions
BIN="$ROOT/target/debug/widget-sessions"

TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"
API_KEY="wsk_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
API_SECRET="wss_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
printf '[{"name":"schemathesis","apiKey":"%s","apiSecret":"%s"}]\n' "$API_KEY" "$API_SECRET" >"$TMP/apps.json"

log "starting $BIN on $BASE (in-memory store, in-process Transak emulator)"
# Only what this run needs; DATABASE_URL and TRANSAK_* are removed so a developer's shell
# cannot point the run at a real database or the real Transak.
env -u DATABASE_URL -u TRANSAK_ENVIRONMENT -u TRANSAK_API_KEY -u TRANSAK_API_SECRET \
    -u TRANSAK_REFERRER_DOMAIN -u TRANSAK_GATEWAY_URL -u TRANSAK_API_URL \
    -u WIDGET_SESSIONS_CONFIG_FILE \
    WIDGET_SESSIONS_LISTEN="127.0.0.1:$PORT" \
    WIDGET_SESSIONS_APPS_FILE="$TMP/apps.json" \
    WIDGET_SESSIONS_RATE_LIMIT=0 \
    WIDGET_SESSIONS_LOG_FORMAT=json \
    "$BIN" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!

for i in $(seq 300); do
    if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the service exited during start-up; its output:"; cat "$OUT/server.log" >&2; exit 1
    fi
    if [[ $i == 300 ]]; then log "the service did not answer /healthz within 30 s"; exit 1; fi
    sleep 0.1
done

# --- 3. the hooks' signatures are accepted -----------------------------------------------
export ST_API_KEY="$API_KEY" ST_API_SECRET="$API_SECRET"
log "checking that signed requests are accepted"
ST_HOOKS_CHECK=1 "$VENV/bin/python" - "$BASE" "$ROOT/scripts/schemathesis_hooks.py" <<'PY'
import importlib.util, json, sys
import requests

base, hooks_path = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("hooks_check", hooks_path)
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)
auth = hooks.from_env()
body = {"userId": "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44", "currency": "BTC", "network": "BTC",
        "counterpartyAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}
checks = [
    ("POST", "/api/v1/travel-rule/widget-sessions", {"json": body}, {200, 201}),
    ("GET", "/api/v1/travel-rule/widget-sessions", {"params": {"limit": 5, "status": "ACTIVE"}}, {200}),
]
created = None
for method, path, kwargs, ok in checks:
    r = requests.request(method, base + path, auth=auth, timeout=10, **kwargs)
    print(f"  {method} {r.request.path_url} -> {r.status_code}", file=sys.stderr)
    if r.status_code not in ok:
        sys.exit(f"signed {method} {path} answered {r.status_code}: {r.text}")
    if method == "POST":
        created = r.json()["id"]
for method, path, ok in [("GET", f"/api/v1/travel-rule/widget-sessions/{created}", {200}),
                         ("POST", f"/api/v1/travel-rule/widget-sessions/{created}/cancel", {200})]:
    r = requests.request(method, base + path, auth=auth, timeout=10)
    print(f"  {method} {r.request.path_url} -> {r.status_code}", file=sys.stderr)
    if r.status_code not in ok:
        sys.exit(f"signed {method} {path} answered {r.status_code}: {r.text}")
# And an unsigned / badly signed request is refused, so the checks above mean something.
r = requests.get(base + "/api/v1/travel-rule/widget-sessions", timeout=10,
                 headers={"api-key": auth.api_key, "Authorization": "HMAC 1:" + "0" * 64})
if r.status_code != 401:
    sys.exit(f"a badly signed request answered {r.status_code}, not 401")
print("  badly signed -> 401", file=sys.stderr)
PY

# --- 4. schemathesis ---------------------------------------------------------------------
SEED_ARGS=()
[[ -n "${SCHEMATHESIS_SEED:-}" ]] && SEED_ARGS=(--seed "$SCHEMATHESIS_SEED")
# shellcheck disable=SC2206 # word splitting wanted
EXTRA_ARGS=(${SCHEMATHESIS_EXTRA_ARGS:-})
log "running schemathesis (max ${MAX_TIME}s, ${MAX_EXAMPLES} examples per operation, ${WORKERS} workers)"
set +e
# From $OUT, so schemathesis' and hypothesis' working directories (.schemathesis/ for
# `st replay`, .hypothesis/) land in target/ rather than in the repository.
(cd "$OUT" && SCHEMATHESIS_HOOKS="$ROOT/scripts/schemathesis_hooks.py" \
    "$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.json" \
    --url "$BASE" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers "$WORKERS" \
    --request-timeout 10 --continue-on-failure \
    --generation-database none \
    --report junit,ndjson --report-dir "$OUT/report" \
    --no-color --output-truncate false \
    "${SEED_ARGS[@]}" "${EXTRA_ARGS[@]}") 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
set -e

# What the service itself saw: responses per route and status, and any ERROR log lines.
python3 - "$OUT/server.log" <<'PY' | tee "$OUT/server-summary.txt" >&2
import collections, json, sys
statuses, errors = collections.Counter(), []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if event.get("level") == "ERROR":
        errors.append(line.strip())
    if event.get("message") == "finished processing request":
        span = event.get("span") or {}
        statuses[(span.get("method", "?"), span.get("route") or "(no route)", event.get("status"))] += 1
print(f"[schemathesis.sh] responses sent by the service ({sum(statuses.values())} in all):")
for (method, route, status), n in sorted(statuses.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
    mark = "  <-- 5xx" if isinstance(status, int) and status >= 500 else ""
    print(f"  {n:6}  {status}  {method} {route}{mark}")
print(f"[schemathesis.sh] ERROR lines in the service log: {len(errors)}")
for line in errors[:20]:
    print("  " + line[:400])
PY
log "schemathesis report: $OUT/run.log, $OUT/report/; service log: $OUT/server.log"
log "schemathesis exit status: $status"
exit "$status"
