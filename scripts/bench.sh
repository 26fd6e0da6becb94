#!/usr/bin/env bash
# HTTP benchmark of the widget-sessions service: `just bench-http`.
#
# What it does (docs/benchmarks.md, "HTTP service", explains the figures):
#   1. builds widget-sessions and transak-emulator in release;
#   2. starts the emulator (0 ms latency) and the service against Postgres, in a fresh
#      database `widget_sessions_bench` (dropped and re-created) on $DATABASE_URL's server,
#      or on postgres://postgres@127.0.0.1:5432 when DATABASE_URL is unset;
#   3. RUNS iterations of: reuse path (wrk, CONNS connections) | pgbench running the same
#      reuse SQL (same connections) | create path (distinct bodies) | the bare upstream call
#      (wrk straight to the emulator) | rejection path (signed, 400);
#   4. reuse p99 at about half of peak throughput (the same connections, paced with wrk's
#      delay()), and create vs bare upstream latency at 1 connection;
#   5. the reuse path with SMALL and with BIG stored sessions (filled with SQL);
#   6. perf profiles of the reuse path and of the create path at 1 connection (when perf works);
#   7. RSS idle / peak, CPU per request per process, WAL-flush latency of the disk, a check
#      that the reuse lookup reads one index entry; a summary (bench/report.py).
# A 5 s warm-up create phase and ANALYZE (autovacuum's job, off on some dev servers) come first.
# The database is dropped at the end (BENCH_KEEP_DB=1 keeps it).
#
# Requests are HMAC-signed by bench/sign.py right before each run (signatures are valid for
# 5 minutes) and replayed by wrk through bench/wrk.lua.
#
# Needs: a Postgres server (unlike `cargo test`, which starts its own), wrk (installed with
# apt-get when missing and running as root), pgbench + psql (PostgreSQL client), python3,
# openssl, curl; perf optional.
#
# Knobs (environment): BENCH_DURATION (s per wrk run, 15), BENCH_RUNS (3),
# BENCH_PGBENCH_DURATION (20), BENCH_CONNECTIONS (16 = the service's DB pool),
# BENCH_SMALL_SESSIONS (10000), BENCH_BIG_SESSIONS (1000000), BENCH_SCALE (1),
# BENCH_PROFILE (1), BENCH_DIAG (0: 1 adds an asynchronous-commit comparison, ~2 min),
# BENCH_LATENCY_DURATION (10, the 1-connection runs), BENCH_KEEP_DB (0),
# BENCH_OUT (target/bench-http/<timestamp>).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DUR=${BENCH_DURATION:-15}
RUNS=${BENCH_RUNS:-3}
PGB_DUR=${BENCH_PGBENCH_DURATION:-20}
CONNS=${BENCH_CONNECTIONS:-16}
SMALL=${BENCH_SMALL_SESSIONS:-10000}
BIG=${BENCH_BIG_SESSIONS:-1000000}
DO_SCALE=${BENCH_SCALE:-1}
DO_PROFILE=${BENCH_PROFILE:-1}
DO_DIAG=${BENCH_DIAG:-0}
LAT_DUR=${BENCH_LATENCY_DURATION:-10}
OUT=${BENCH_OUT:-$ROOT/target/bench-http/$(date +%Y%m%dT%H%M%S)}
THREADS=2
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
STARTED=$(date +%s)

log() { printf '[bench %s +%3ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - STARTED))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing wrk (apt-get install -y wrk)"
        apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }
    else
        die "wrk is missing: apt-get install wrk (Debian/Ubuntu) or brew install wrk"
    fi
fi
for tool in pgbench psql python3 openssl curl; do
    command -v "$tool" >/dev/null || die "$tool is missing (pgbench and psql: apt-get install postgresql-client)"
done

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------
log "building (cargo build --release -p widget-sessions -p transak-emulator)"
cargo build --release -q -p widget-sessions -p transak-emulator
# What was measured: the commit, "+dirty" when the built sources differ from it.
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
git diff --quiet HEAD -- crates Cargo.toml Cargo.lock migrations 2>/dev/null || COMMIT="$COMMIT+dirty"
SVC_BIN=$ROOT/target/release/widget-sessions
EMU_BIN=$ROOT/target/release/transak-emulator

# ---------------------------------------------------------------------------------------
# Database: a fresh widget_sessions_bench on DATABASE_URL's server (or the local one)
# ---------------------------------------------------------------------------------------
SERVER_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_NAME=widget_sessions_bench
# Same server, user and query parameters; the database part replaced.
with_db() { python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$SERVER_URL" "$1"; }
ADMIN_URL=$(with_db postgres)
DB_URL=$(with_db "$DB_NAME")
psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "select 1" >/dev/null 2>&1 ||
    die "no Postgres server at ${ADMIN_URL%%\?*} (the HTTP benchmark needs a running server: set DATABASE_URL, or start one on 127.0.0.1:5432)"
log "database: fresh $DB_NAME on $(psql "$ADMIN_URL" -XAtc 'select inet_server_addr()||'"':'"'||inet_server_port()' 2>/dev/null || echo '?')"
psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "drop database if exists $DB_NAME with (force)" -c "create database $DB_NAME"
sql() { psql "$DB_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# Autovacuum keeps the planner statistics current in production. Where it is off (as on the
# project's shared development server), the bench runs ANALYZE itself after every phase that
# adds rows (analyze_db), as autovacuum would have within a minute. Without it, the service's
# long-lived connections keep the reuse statement's generic plan from when the tables were
# nearly empty, and that plan reads every session of the application on each reuse
# (docs/benchmarks.md, "HTTP service").
AUTOVACUUM=$(sql -c "show autovacuum")
[[ $AUTOVACUUM == on ]] || log "note: autovacuum is off on this server; the bench runs ANALYZE after each create phase"
analyze_db() { sql -c "analyze sessions" -c "analyze reuse_slots" -c "analyze launch_tokens"; }

# The server's postmaster (for CPU accounting), when it runs on this machine.
PG_MASTER=$(sql -c "select pid from pg_stat_activity where backend_type = 'checkpointer'" 2>/dev/null || true)
if [[ -n $PG_MASTER && -r /proc/$PG_MASTER/stat ]]; then
    PG_MASTER=$(awk '{print $4}' "/proc/$PG_MASTER/stat")
else
    PG_MASTER=""
fi

# WAL flush latency of the server's disk (every reuse and create waits for one at commit):
# an 8 kB write + fdatasync next to the data directory, when the server is local.
FSYNC_DIR=""
if [[ -n $PG_MASTER ]]; then
    FSYNC_DIR=$(dirname "$(sql -c 'show data_directory' 2>/dev/null)" 2>/dev/null || true)
    [[ -d $FSYNC_DIR && -w $FSYNC_DIR ]] || FSYNC_DIR=""
fi
fsync_probe() { # fsync_probe LABEL
    [[ -n $FSYNC_DIR ]] || return 0
    local r p50 p99 n
    r=$(python3 "$ROOT/bench/fsync_probe.py" "$FSYNC_DIR" 1) || return 0
    read -r p50 p99 n <<<"$r"
    echo "{\"label\": \"fsync-$1\", \"tool\": \"fsync\", \"p50_us\": $p50, \"p99_us\": $p99, \"n\": $n}" >>"$RESULTS"
    log "fsync ($1): 8 kB write + fdatasync p50 ${p50} µs, p99 ${p99} µs"
}

# ---------------------------------------------------------------------------------------
# Emulator and service
# ---------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
EMU_PORT=$(free_port)
SVC_PORT=$(free_port)
EMU_URL=http://127.0.0.1:$EMU_PORT
SVC_URL=http://127.0.0.1:$SVC_PORT
API_KEY=bench_$(openssl rand -hex 12)
API_SECRET=bench_$(openssl rand -hex 24)
printf '[{"name":"bench","apiKey":"%s","apiSecret":"%s"}]\n' "$API_KEY" "$API_SECRET" >"$OUT/apps.json"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${BENCH_KEEP_DB:-0} != 1 ]]; then
        psql "$ADMIN_URL" -X -q -c "drop database if exists $DB_NAME with (force)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG=warn \
    "$EMU_BIN" --listen "127.0.0.1:$EMU_PORT" >"$OUT/emulator.log" 2>&1 &
EMU_PID=$!
PIDS+=("$EMU_PID")
BARE_PORT=$(free_port)
BARE_URL=http://127.0.0.1:$BARE_PORT
env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG=warn \
    "$EMU_BIN" --listen "127.0.0.1:$BARE_PORT" >"$OUT/emulator-bare.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")

SECRET_KEY=$(openssl rand -base64 32)
# start_service DATABASE_URL PORT LOG: sets STARTED_PID.
start_service() {
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
        DATABASE_URL="$1" \
        WIDGET_SESSIONS_LISTEN="127.0.0.1:$2" \
        WIDGET_SESSIONS_RATE_LIMIT=0 WIDGET_SESSIONS_CLIENT_RATE_LIMIT=0 WIDGET_SESSIONS_GLOBAL_RATE_LIMIT=0 \
        WIDGET_SESSIONS_APPS_FILE="$OUT/apps.json" \
        WIDGET_SESSIONS_SECRET_KEY="$SECRET_KEY" \
        WIDGET_SESSIONS_LOG_FORMAT=json RUST_LOG=warn \
        TRANSAK_ENVIRONMENT=emulator TRANSAK_GATEWAY_URL="$EMU_URL" TRANSAK_API_URL="$EMU_URL" \
        "$SVC_BIN" serve >"$3" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    local _
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$STARTED_PID" 2>/dev/null || { cat "$3" >&2; die "the service exited"; }
        sleep 0.2
    done
    die "the service is not ready after 60 s (see $3)"
}
start_service "$DB_URL" "$SVC_PORT" "$OUT/service.log"
SVC_PID=$STARTED_PID
CUR_URL=$SVC_URL
CUR_PID=$SVC_PID
log "service pid $SVC_PID on $SVC_URL, emulator pid $EMU_PID on $EMU_URL"
APP_ID=$(sql -c "select id from applications where name = 'bench'")
sleep 2
IDLE_RSS=$(awk '/VmRSS/{print $2}' "/proc/$SVC_PID/status")
IDLE_HWM=$(awk '/VmHWM/{print $2}' "/proc/$SVC_PID/status")
log "idle RSS ${IDLE_RSS} kB (peak so far ${IDLE_HWM} kB)"

# ---------------------------------------------------------------------------------------
# Measurement helpers
# ---------------------------------------------------------------------------------------
# utime+stime in clock ticks of the given pids (+ reaped children for the postmaster).
ticks_of() {
    local total=0 pid f
    for pid in "$@"; do
        read -r -a f < <(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        ((${#f[@]} > 12)) || continue
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
pg_ticks() {
    [[ -n $PG_MASTER ]] || { echo 0; return; }
    local pids=() s pid ppid f total
    for s in /proc/[0-9]*/stat; do
        { read -r pid _ <"$s"; } 2>/dev/null || continue
        ppid=$(sed 's/^.*) //' "$s" 2>/dev/null | awk '{print $2}') || continue
        [[ $ppid == "$PG_MASTER" ]] && pids+=("$pid")
    done
    total=$(ticks_of "${pids[@]}")
    read -r -a f < <(sed 's/^.*) //' "/proc/$PG_MASTER/stat")
    echo $((total + f[11] + f[12] + f[13] + f[14]))
}
CLK_TCK=$(getconf CLK_TCK)
pk_stats() { sql -c "select idx_scan || '|' || idx_tup_read from pg_stat_user_indexes where indexrelname = 'sessions_pkey'"; }
# Busy ticks of the whole machine (all CPUs): to tell how much CPU other work used during a run.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
metric() { curl -s "$CUR_URL/metrics" | awk -v n="$1" '$1 == n {v = $2} END {print (v == "" ? 0 : v)}'; }
hwm_reset() { echo 5 >"/proc/$CUR_PID/clear_refs" 2>/dev/null || true; }
hwm() { awk '/VmHWM/{print $2}' "/proc/$CUR_PID/status"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# A fresh session (one create), so a reuse run has its whole 4-minute reuse window ahead.
# Sets SESSION_USER, SESSION_KEY_HEX and writes $OUT/reuse.req (the signed reuse request).
fresh_session() {
    SESSION_USER=$(python3 -c 'import uuid; print(uuid.uuid4())')
    local code
    code=$(python3 "$ROOT/bench/sign.py" curl --key "$API_KEY" --secret "$API_SECRET" --user-id "$SESSION_USER" |
        xargs -0 curl -sS -o "$OUT/fresh.json" -w '%{http_code}' "$CUR_URL/api/v1/travel-rule/widget-sessions")
    [[ $code == 201 ]] || { cat "$OUT/fresh.json" >&2; die "create answered $code, expected 201"; }
    python3 "$ROOT/bench/sign.py" fixed --key "$API_KEY" --secret "$API_SECRET" --user-id "$SESSION_USER" >"$OUT/reuse.req"
    SESSION_KEY_HEX=$(sql -c "select encode(reuse_key, 'hex') from sessions where subject_id = '$SESSION_USER'")
}

# wrk_run LABEL MODE REQUEST_FILE CONNECTIONS DURATION [key=value ...]: one wrk run; appends
# a JSON line to results.jsonl with wrk's figures, CPU per request of each process, RSS peak
# and the service's counters.
wrk_run() {
    local label=$1 mode=$2 file=$3 conns=$4 dur=$5
    shift 5
    # The service accepts a signature once: same-body runs get fresh signatures, one per
    # request, each at its own timestamp.
    if [[ $file == "$OUT/reuse.req" || $file == "$OUT/reject.req" ]]; then
        resign "$file" "$dur"
        mode=cycle
    fi
    local threads=$((conns < THREADS ? conns : THREADS))
    local target=$CUR_URL
    [[ $label == bare* ]] && target=$BARE_URL
    local out=$OUT/$label.txt
    local c0 r0 s0 p0 e0 m0 load k0 k1
    c0=$(metric widget_sessions_created_total)
    r0=$(metric widget_sessions_reused_total)
    load=$(loadavg)
    k0=$(pk_stats)
    hwm_reset
    s0=$(ticks_of "$CUR_PID"); p0=$(pg_ticks); e0=$(ticks_of "$EMU_PID" "$BARE_PID"); m0=$(busy_ticks)
    local TIMEFORMAT='%U %S'
    { time BENCH_REQUESTS="$file" BENCH_MODE="$mode" BENCH_DELAY_MS="${WRK_DELAY:-0}" wrk -t"$threads" -c"$conns" -d"${dur}s" --latency \
        -s "$ROOT/bench/wrk.lua" "$target" -- "$threads" >"$out" 2>&1; } 2>"$out.time"
    local s1 p1 e1 m1 c1 r1 peak
    s1=$(ticks_of "$CUR_PID"); p1=$(pg_ticks); e1=$(ticks_of "$EMU_PID" "$BARE_PID"); m1=$(busy_ticks)
    peak=$(hwm)
    sleep 1.1 # Postgres publishes a backend's table statistics at most once a second
    k1=$(pk_stats)
    c1=$(metric widget_sessions_created_total)
    r1=$(metric widget_sessions_reused_total)
    local line
    line=$(grep '^BENCHRESULT' "$out") || { cat "$out" >&2; die "wrk produced no result ($out)"; }
    python3 - "$label" "$line" "$conns" "$threads" "$load" "$(cat "$out.time")" "$CLK_TCK" \
        "$((s1 - s0))" "$((p1 - p0))" "$((e1 - e0))" "$((m1 - m0))" "$peak" "$c0" "$c1" "$r0" "$r1" "$k0" "$k1" "$@" >>"$RESULTS" <<'PY'
import json, sys
label, line, conns, threads, load, wrk_time, tck, svc, pg, emu, busy, peak, c0, c1, r0, r1, k0, k1, *extra = sys.argv[1:]
rec = {"label": label, "tool": "wrk", "connections": int(conns), "threads": int(threads), "load1_before": float(load)}
for kv in line.split()[1:]:
    k, v = kv.split("=")
    rec[k] = float(v)
n = rec["requests"] or 1
tck = int(tck)
u, s = (float(x) for x in wrk_time.split())
rec["cpu_us_per_req"] = {
    "service": int(svc) / tck * 1e6 / n,
    "postgres": int(pg) / tck * 1e6 / n,
    "emulator": int(emu) / tck * 1e6 / n,
    "wrk": (u + s) * 1e6 / n,
}
rec["rss_peak_kib"] = int(peak)
# CPU used by everything else on the machine during the run, in cores (0..nproc).
ours = (int(svc) + int(pg) + int(emu)) / tck + u + s
rec["other_cpu_cores"] = max(0.0, (int(busy) / tck - ours) / (rec["duration_us"] / 1e6))
# Index entries read per scan of sessions_pkey: 1 when the reuse lookup uses the whole key.
(a0, b0), (a1, b1) = (map(int, k.split("|")) for k in (k0, k1))
rec["sessions_pk_tuples_per_scan"] = (b1 - b0) / (a1 - a0) if a1 > a0 else None
rec["created"] = float(c1) - float(c0)
rec["reused"] = float(r1) - float(r0)
for kv in extra:
    k, v = kv.split("=", 1)
    rec[k] = v
print(json.dumps(rec))
PY
    tail -n1 "$RESULTS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("  %-24s c=%-3d %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  rss peak %6d KiB  other CPU %.2f cores" % (r["label"], r["connections"], r["rps"], r["p50_us"]/1000, r["p99_us"]/1000, r["rss_peak_kib"], r["other_cpu_cores"]))' >&2
}

# pgbench_run LABEL: the service's reuse statement on the current fresh session.
pgbench_run() {
    local label=$1 out=$OUT/$1.txt
    local now until lease before after p0 p1 m0 m1 load
    now=$(sql -c "select now()")
    until=$(sql -c "select now() + interval '60 seconds'")
    lease=$(sql -c "select now() + interval '30 seconds'")
    before=$(sql -c "select count(*) from launch_tokens t join sessions s on s.application_id = t.application_id and s.id = t.session_id where s.subject_id = '$SESSION_USER'")
    load=$(loadavg)
    p0=$(pg_ticks); m0=$(busy_ticks)
    local TIMEFORMAT='%U %S'
    { time pgbench -n -c "$CONNS" -j "$THREADS" -M prepared -T "$PGB_DUR" -f "$OUT/reuse.pgbench" \
        -D app="$APP_ID" -D key="\\x$SESSION_KEY_HEX" -D now="$now" -D until="$until" -D lease="$lease" -D fvo=false \
        "$DB_URL" >"$out" 2>&1; } 2>"$out.time"
    p1=$(pg_ticks); m1=$(busy_ticks)
    after=$(sql -c "select count(*) from launch_tokens t join sessions s on s.application_id = t.application_id and s.id = t.session_id where s.subject_id = '$SESSION_USER'")
    python3 - "$label" "$out" "$load" "$(cat "$out.time")" "$CLK_TCK" "$((p1 - p0))" "$before" "$after" "$((m1 - m0))" "$PGB_DUR" >>"$RESULTS" <<'PY'
import json, re, sys
label, out, load, t, tck, pg, before, after, busy, dur = sys.argv[1:]
text = open(out).read()
tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
n = re.search(r"number of transactions actually processed: (\d+)", text)
lat = re.search(r"latency average = ([0-9.]+) ms", text)
if not (tps and n):
    sys.exit("pgbench failed:\n" + text)
n = int(n.group(1))
u, s = (float(x) for x in t.split())
print(json.dumps({
    "label": label, "tool": "pgbench", "load1_before": float(load), "tps": float(tps.group(1)),
    "transactions": n, "latency_avg_ms": float(lat.group(1)) if lat else None,
    "tokens_inserted": int(after) - int(before),
    "cpu_us_per_req": {"postgres": int(pg) / int(tck) * 1e6 / n, "pgbench": (u + s) * 1e6 / n},
    "other_cpu_cores": max(0.0, (int(busy) / int(tck) - int(pg) / int(tck) - u - s) / float(dur)),
}))
PY
    tail -n1 "$RESULTS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("  %-24s c=%-3s %9.0f tx/s   (%d tokens inserted for %d transactions)  other CPU %.2f cores" % (r["label"], "'"$CONNS"'", r["tps"], r["tokens_inserted"], r["transactions"], r["other_cpu_cores"]))' >&2
}

# resign FILE SECONDS: re-signs the reuse (or rejection) request at enough distinct
# timestamps for a run of SECONDS at up to 20 000 requests per second.
resign() {
    local count=$((20000 * $2))
    ((count > 250000)) && count=250000
    if [[ $1 == "$OUT/reuse.req" ]]; then
        python3 "$ROOT/bench/sign.py" fixed --key "$API_KEY" --secret "$API_SECRET" --user-id "$SESSION_USER" --count "$count" >"$1"
    else
        python3 "$ROOT/bench/sign.py" fixed --key "$API_KEY" --secret "$API_SECRET" --body "$REJECT_BODY" --count "$count" >"$1"
    fi
}

sign_create() { # sign_create FILE SEED COUNT
    python3 "$ROOT/bench/sign.py" create --key "$API_KEY" --secret "$API_SECRET" --seed "$2" --count "$3" >"$1"
}
CREATE_COUNT=${BENCH_CREATE_COUNT:-60000}
REJECT_BODY='{"userId":"7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44","currency":"BTC","network":"ETH","counterpartyAddress":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}'

# The bare upstream call: Create Widget URL on a second emulator (the service's token is
# sealed in the database, and refreshing the first emulator's would invalidate it), with its
# own access token and widgetParams like the ones the service sends.
bare_request() {
    local token
    token=$(curl -sS -X POST "$BARE_URL/partners/api/v2/refresh-token" -H 'content-type: application/json' \
        -H 'api-secret: emulator-api-secret' --data '{"apiKey":"emulator-api-key"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])')
    [[ -n $token ]] || die "the second emulator issued no access token"
    printf 'POST\t/api/v2/auth/session\t%s\taccess-token: %s\n' \
        '{"widgetParams":{"apiKey":"emulator-api-key","referrerDomain":"localhost","cryptoCurrencyCode":"BTC","network":"bitcoin","walletAddress":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4","partnerOrderId":"01a1fef4-f79f-7251-91d9-3d8a5bcd5635","partnerCustomerId":"7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44"}}' \
        "$token" >"$OUT/bare.req"
}

python3 "$ROOT/bench/pgbench_reuse.py" >"$OUT/reuse.pgbench"

# ---------------------------------------------------------------------------------------
# 1. Main runs: reuse | pgbench | create | bare upstream | rejection, RUNS times
# ---------------------------------------------------------------------------------------
fresh_session # also makes the service fetch its upstream token
bare_request
fsync_probe start
# Warm-up: a few thousand sessions, then ANALYZE, so that no run measures plans made while the
# tables were empty (what a service that has been up for a minute with autovacuum sees).
sign_create "$OUT/create.req" "warmup-$STARTED" 20000
wrk_run "warmup-create" cycle "$OUT/create.req" "$CONNS" 5 phase=warmup path=warmup
analyze_db
for run in $(seq 1 "$RUNS"); do
    log "run $run/$RUNS (load $(loadavg))"
    fresh_session
    wrk_run "reuse-c$CONNS-r$run" fixed "$OUT/reuse.req" "$CONNS" "$DUR" phase=main run="$run" path=reuse
    pgbench_run "pgbench-c$CONNS-r$run"
    sign_create "$OUT/create.req" "main-$run-$STARTED" "$CREATE_COUNT"
    wrk_run "create-c$CONNS-r$run" cycle "$OUT/create.req" "$CONNS" "$DUR" phase=main run="$run" path=create
    analyze_db
    wrk_run "bare-c$CONNS-r$run" fixed "$OUT/bare.req" "$CONNS" "$DUR" phase=main run="$run" path=bare
    python3 "$ROOT/bench/sign.py" fixed --key "$API_KEY" --secret "$API_SECRET" --body "$REJECT_BODY" >"$OUT/reject.req"
    wrk_run "reject-c$CONNS-r$run" fixed "$OUT/reject.req" "$CONNS" "$DUR" phase=main run="$run" path=reject
done

fsync_probe after-main

# Plan check: index entries read per sessions_pkey scan during a short reuse run (1 when the
# lookup uses the whole key). Postgres publishes an idle backend's statistics within 10 s, so
# the counters are read after 11 s of quiet on each side.
fresh_session
sleep 11
k0=$(pk_stats)
resign "$OUT/reuse.req" 3
BENCH_REQUESTS="$OUT/reuse.req" BENCH_MODE=cycle wrk -t"$THREADS" -c"$CONNS" -d3s \
    -s "$ROOT/bench/wrk.lua" "$SVC_URL" -- "$THREADS" >"$OUT/plan-check.txt" 2>&1
sleep 11
k1=$(pk_stats)
python3 -c '
import json, sys
(a0, b0), (a1, b1) = (map(int, k.split("|")) for k in sys.argv[1:3])
print(json.dumps({"label": "plan-check", "sessions": int(sys.argv[3]), "sessions_pk_tuples_per_scan": (b1 - b0) / max(1, a1 - a0)}))' \
    "$k0" "$k1" "$(sql -c 'select count(*) from sessions')" >>"$RESULTS"
log "plan check: $(tail -n1 "$RESULTS")"

# ---------------------------------------------------------------------------------------
# 2. Reuse p99 at about half of peak. wrk has no rate control (wrk2's -R is not packaged),
#    so the load is paced instead: the same CONNS connections, each waiting WRK_DELAY ms
#    after every response, with the delay calibrated until throughput ~ peak / 2. One probe
#    at CONNS/2 connections shows why halving connections does not work here.
# ---------------------------------------------------------------------------------------
PEAK=$(python3 -c '
import json, statistics, sys
r = [json.loads(l) for l in open(sys.argv[1])]
print(statistics.median(x["rps"] for x in r if x.get("phase") == "main" and x.get("path") == "reuse"))' "$RESULTS")
log "half load: peak reuse $PEAK req/s"
fresh_session
wrk_run "probe-reuse-c$((CONNS / 2))" fixed "$OUT/reuse.req" $((CONNS / 2)) 5 phase=probe path=reuse
# First guess: a cycle of CONNS / (PEAK / 2) seconds per connection, minus ~4 ms of latency.
WRK_DELAY=$(python3 -c 'import sys; c, p = float(sys.argv[1]), float(sys.argv[2]); print(max(0, round(1000 * c / (p / 2) - 4)))' "$CONNS" "$PEAK")
for k in 1 2 3; do
    wrk_run "calibrate-reuse-d$WRK_DELAY" fixed "$OUT/reuse.req" "$CONNS" 5 phase=calibrate path=reuse delay_ms="$WRK_DELAY"
    rps=$(tail -n1 "$RESULTS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rps"])')
    read -r ok WRK_DELAY < <(python3 -c '
import sys
c, peak, rps, d = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
target = peak / 2
ok = abs(rps - target) <= 0.1 * target
nd = d if ok else max(0, round(d + 1000 * c * (1 / target - 1 / rps)))
print(int(ok or nd == d), nd)' "$CONNS" "$PEAK" "$rps" "$WRK_DELAY")
    [[ $ok == 1 ]] && break
done
HALF_DELAY=$WRK_DELAY
log "half load: $CONNS connections, ${HALF_DELAY} ms between requests"
for run in $(seq 1 "$RUNS"); do
    fresh_session
    wrk_run "half-reuse-d$HALF_DELAY-r$run" fixed "$OUT/reuse.req" "$CONNS" "$DUR" phase=half run="$run" path=reuse delay_ms="$HALF_DELAY"
done
WRK_DELAY=0

# ---------------------------------------------------------------------------------------
# 3. Create vs bare upstream at 1 connection (latency without queueing)
# ---------------------------------------------------------------------------------------
log "create vs bare upstream at 1 connection"
for run in $(seq 1 "$RUNS"); do
    sign_create "$OUT/create1.req" "lat-$run-$STARTED" 30000
    wrk_run "create-c1-r$run" cycle "$OUT/create1.req" 1 "$LAT_DUR" phase=latency run="$run" path=create
    analyze_db
    wrk_run "bare-c1-r$run" fixed "$OUT/bare.req" 1 "$LAT_DUR" phase=latency run="$run" path=bare
    fresh_session
    wrk_run "reuse-c1-r$run" fixed "$OUT/reuse.req" 1 "$LAT_DUR" phase=latency run="$run" path=reuse
done

# ---------------------------------------------------------------------------------------
# 3b. Diagnostic (BENCH_DIAG=1): the same paths with asynchronous commit, to show what the
#     WAL flush of each request's INSERT costs. A second instance whose connections set
#     synchronous_commit=off (connection option in DATABASE_URL; no code change), and pgbench
#     with PGOPTIONS=-csynchronous_commit=off.
# ---------------------------------------------------------------------------------------
if [[ $DO_DIAG == 1 ]]; then
    ASYNC_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); q = (p.query + "&" if p.query else "") + "options=" + u.quote("-c synchronous_commit=off"); print(u.urlunsplit(p._replace(query=q)))' "$DB_URL")
    DIAG_PORT=$(free_port)
    start_service "$ASYNC_URL" "$DIAG_PORT" "$OUT/service-async.log"
    DIAG_PID=$STARTED_PID
    CUR_URL=http://127.0.0.1:$DIAG_PORT
    CUR_PID=$DIAG_PID
    log "diagnostic: asynchronous-commit instance pid $DIAG_PID"
    for run in $(seq 1 "$RUNS"); do
        fresh_session
        wrk_run "async-reuse-c$CONNS-r$run" fixed "$OUT/reuse.req" "$CONNS" "$LAT_DUR" phase=async run="$run" path=reuse
        wrk_run "async-reuse-c1-r$run" fixed "$OUT/reuse.req" 1 "$LAT_DUR" phase=async run="$run" path=reuse-c1
        PGOPTIONS="-c synchronous_commit=off" pgbench_run "async-pgbench-c$CONNS-r$run"
        sign_create "$OUT/create1.req" "async-$run-$STARTED" 30000
        wrk_run "async-create-c1-r$run" cycle "$OUT/create1.req" 1 "$LAT_DUR" phase=async run="$run" path=create-c1
        analyze_db
    done
    kill "$DIAG_PID"; wait "$DIAG_PID" 2>/dev/null || true
    CUR_URL=$SVC_URL
    CUR_PID=$SVC_PID
fi

# ---------------------------------------------------------------------------------------
# 4. Reuse at SMALL and at BIG stored sessions
# ---------------------------------------------------------------------------------------
# fill FROM TO TOTAL: sessions FROM..TO of TOTAL (1 in 10 of the bench application, the rest
# over 9 other applications), each with its reuse slot and one launch token. Ids are
# time-ordered like UUID v7 (48-bit ms timestamp, one session per second, all ended before
# now); one in three consumed.
fill() {
    sql -v lo="$1" -v hi="$2" -v total="$3" -v app="$APP_ID" <<'SQL'
set synchronous_commit = off;
with g as (
    select g, (extract(epoch from now()) * 1000)::bigint - 600000 - (:total - g) * 1000 as ms,
           md5(g::text) as h
    from generate_series(:lo, :hi) g
), s as (
    insert into sessions (application_id, id, reuse_key, subject_kind, subject_id, currency, network,
                          counterparty_kind, counterparty, force_verify_ownership, widget_url,
                          created_at, expires_at, consumed_at)
    select case when g % 10 = 0 then :'app'::uuid
                else ('00000000-0000-0000-0000-' || lpad(to_hex(g % 10), 12, '0'))::uuid end,
           (lpad(to_hex(ms), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
           sha256(('bench-' || g)::bytea), 'user', gen_random_uuid(), 'BTC', 'BTC', 'address',
           'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', false,
           'http://127.0.0.1:9/?apiKey=emulator-api-key&sessionId=' || h,
           to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0) + interval '300 seconds',
           case when g % 3 = 0 then to_timestamp(ms / 1000.0) + interval '20 seconds' end
    from g
    returning application_id, id, reuse_key, created_at
), r as (
    insert into reuse_slots (application_id, reuse_key, session_id)
    select application_id, reuse_key, id from s
)
insert into launch_tokens (application_id, token_digest, session_id, created_at)
select application_id, sha256(uuid_send(id)), id, created_at from s;
SQL
    sql -c "vacuum analyze sessions" -c "vacuum analyze reuse_slots" -c "vacuum analyze launch_tokens"
    sql -c "checkpoint" 2>/dev/null || true
}
if [[ $DO_SCALE == 1 ]]; then
    fsync_probe before-scale
    log "scale: truncating, filling $SMALL sessions"
    sql -c "truncate launch_tokens, reuse_slots, sessions"
    fill 1 "$SMALL" "$BIG"
    echo "{\"label\": \"fill-small\", \"sessions\": $(sql -c 'select count(*) from sessions'), \"launch_tokens\": $(sql -c 'select count(*) from launch_tokens'), \"bytes\": $(sql -c "select pg_database_size(current_database())")}" >>"$RESULTS"
    for run in $(seq 1 "$RUNS"); do
        fresh_session
        wrk_run "scale-small-r$run" fixed "$OUT/reuse.req" "$CONNS" "$DUR" phase=scale size=small run="$run" path=reuse
    done
    log "scale: filling up to $BIG sessions"
    t0=$(date +%s)
    fill $((SMALL + 1)) "$BIG" "$BIG"
    log "scale: filled in $(($(date +%s) - t0)) s"
    echo "{\"label\": \"fill-big\", \"sessions\": $(sql -c 'select count(*) from sessions'), \"launch_tokens\": $(sql -c 'select count(*) from launch_tokens'), \"bytes\": $(sql -c "select pg_database_size(current_database())")}" >>"$RESULTS"
    for run in $(seq 1 "$RUNS"); do
        fresh_session
        wrk_run "scale-big-r$run" fixed "$OUT/reuse.req" "$CONNS" "$DUR" phase=scale size=big run="$run" path=reuse
    done
    fresh_session
    sql -c "explain (analyze, buffers, costs off) $(python3 "$ROOT/bench/pgbench_reuse.py" --literal "$APP_ID" "$SESSION_KEY_HEX")" >"$OUT/explain-big.txt" 2>&1 || true
fi

# ---------------------------------------------------------------------------------------
# 5. Profile of the reuse path
# ---------------------------------------------------------------------------------------
if [[ $DO_PROFILE == 1 ]] && command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
    log "profile: perf record (system-wide, 8 s) under the reuse load"
    fresh_session
    resign "$OUT/reuse.req" 12
    BENCH_REQUESTS="$OUT/reuse.req" BENCH_MODE=cycle wrk -t"$THREADS" -c"$CONNS" -d12s --latency \
        -s "$ROOT/bench/wrk.lua" "$SVC_URL" -- "$THREADS" >"$OUT/profile-wrk.txt" 2>&1 &
    WRK_PID=$!
    sleep 2
    perf record -q -a -F 997 -o "$OUT/perf.data" -- sleep 8 >/dev/null 2>&1 || true
    wait "$WRK_PID" || true
    if [[ -s $OUT/perf.data ]]; then
        perf report -i "$OUT/perf.data" --no-children --sort comm,dso --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -40 >"$OUT/profile-by-process.txt" || true
        perf report -i "$OUT/perf.data" --no-children --pid "$SVC_PID" --sort dso,sym --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | grep '%' | head -80 >"$OUT/profile-service-symbols.txt" || true
        python3 "$ROOT/bench/perf_categories.py" "$OUT/perf.data" "$SVC_PID" >"$OUT/profile-service-categories.txt" 2>/dev/null || true
    fi
    # The create path at 1 connection (where its overhead target is measured): leaf symbols
    # system-wide, then the service alone with call graphs (inclusive shares per function).
    log "profile: perf record under the create load at 1 connection (8 s + 6 s with call graphs)"
    sign_create "$OUT/create1.req" "profile-$STARTED" 30000
    BENCH_REQUESTS="$OUT/create1.req" BENCH_MODE=cycle wrk -t1 -c1 -d20s --latency \
        -s "$ROOT/bench/wrk.lua" "$SVC_URL" -- 1 >"$OUT/profile-create-wrk.txt" 2>&1 &
    WRK_PID=$!
    sleep 2
    perf record -q -a -F 997 -o "$OUT/perf-create.data" -- sleep 8 >/dev/null 2>&1 || true
    perf record -q -F 997 --call-graph dwarf,16384 -p "$SVC_PID" -o "$OUT/perf-create-graph.data" -- sleep 6 >/dev/null 2>&1 || true
    wait "$WRK_PID" || true
    if [[ -s $OUT/perf-create.data ]]; then
        perf report -i "$OUT/perf-create.data" --no-children --sort comm,dso --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -40 >"$OUT/profile-create-by-process.txt" || true
        python3 "$ROOT/bench/perf_categories.py" "$OUT/perf-create.data" "$SVC_PID" >"$OUT/profile-create-service-categories.txt" 2>/dev/null || true
    fi
    if [[ -s $OUT/perf-create-graph.data ]]; then
        perf report -i "$OUT/perf-create-graph.data" --children --sort sym --stdio --no-demangle -g none --percent-limit 2 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -120 >"$OUT/profile-create-inclusive.txt" || true
    fi
else
    log "profile: skipped (perf not available)"
fi

fsync_probe end

# ---------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------
cat >"$OUT/meta.json" <<EOF
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "commit": "$COMMIT",
 "nproc": $(nproc), "cpu": "$(lscpu | sed -n 's/^Model name: *//p' | head -1)",
 "mem_gib": $(awk '/MemTotal/{printf "%.1f", $2/1048576}' /proc/meminfo),
 "idle_rss_kib": $IDLE_RSS, "idle_hwm_kib": $IDLE_HWM, "connections": $CONNS, "duration_s": $DUR,
 "pgbench_duration_s": $PGB_DUR, "runs": $RUNS, "half_delay_ms": $HALF_DELAY,
 "small": $SMALL, "big": $BIG, "total_seconds": $(($(date +%s) - STARTED)),
 "postgres": "$(sql -c 'show server_version')", "autovacuum": "$AUTOVACUUM"}
EOF
python3 "$ROOT/bench/report.py" "$OUT" | tee "$OUT/summary.md"
log "done in $(($(date +%s) - STARTED)) s; raw results in $OUT"
