#!/usr/bin/env bash
# Bounded cargo-fuzz runs of every fuzz target in fuzz/.
#
#     bash scripts/fuzz.sh                    # or: just fuzz — every target, 60 s each
#     FUZZ_SECONDS=600 bash scripts/fuzz.sh parse_request
#     FUZZ_TARGETS=hmac_header just fuzz
#
# Knobs (environment):
#   FUZZ_SECONDS     time per target, seconds (libFuzzer -max_total_time)      (default 60)
#   FUZZ_SANITIZER   address | none (address falls back to none if it cannot build) (default address)
#   FUZZ_TMIN_RUNS   attempts when minimising a crash (cargo fuzz tmin -r)    (default 10000)
#   FUZZ_TARGETS     space-separated targets to run (default: all); arguments take precedence
#
# Each target fuzzes from its committed seeds (fuzz/corpus/<target>/, read-only here) and a
# scratch corpus (fuzz/corpus-run/<target>/, gitignored, kept between runs so later runs start
# where earlier ones stopped). Logs go to fuzz/logs/<target>.log; crashing inputs to
# fuzz/artifacts/<target>/ (both gitignored). A crash is minimised with `cargo fuzz tmin` and
# its reproducer command printed. Exit status: 1 if any target crashed, else 0.
#
# Why RUSTC_BOOTSTRAP=1: cargo-fuzz builds the targets with unstable compiler flags
# (`-Zsanitizer=address`, plus `-Cpasses=sancov-module` and friends for libFuzzer's coverage
# instrumentation), which rustc accepts only on a nightly toolchain. The project builds with
# the stable toolchain, and no other can be fetched here. RUSTC_BOOTSTRAP=1 tells the stable
# compiler to accept nightly-only flags, as the Rust project's own bootstrap does. It is set for this
# script's cargo invocations only, with a separate target directory (fuzz/target), so the
# normal workspace build never sees it. If the stable toolchain cannot build with a
# sanitizer, the script falls back to `--sanitizer none` (plain libFuzzer with coverage
# instrumentation: panics and assertion failures are still found, memory errors in unsafe
# code of dependencies are not) and says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-address}"
TMIN_RUNS="${FUZZ_TMIN_RUNS:-10000}"
ALL_TARGETS=(parse_request decode_invoice hmac_header order_webhook ownership_proof)
if (($#)); then
    TARGETS=("$@")
elif [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a TARGETS <<<"$FUZZ_TARGETS"
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

log() { printf '[fuzz.sh] %s\n' "$*" >&2; }

for target in "${TARGETS[@]}"; do
    if [[ ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
        log "no such target: $target (have: ${ALL_TARGETS[*]})"; exit 2
    fi
done

# Largest input per target: above Invoice::MAX_LEN (7089) for invoices, so the length guard
# is exercised; bodies well past any valid request.
max_len() {
    case "$1" in
        parse_request) echo 8192 ;;
        decode_invoice) echo 8192 ;;
        order_webhook) echo 70000 ;; # above the 64 KiB body limit
        *) echo 4096 ;;
    esac
}

# --- tooling -----------------------------------------------------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz is missing: cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi
log "$(cargo fuzz --version), $(rustc --version)"

export RUSTC_BOOTSTRAP=1 # see the header: nightly-only flags on the stable compiler

log "building the fuzz targets (sanitizer: $SANITIZER; first build takes a few minutes)"
if ! cargo fuzz build --sanitizer "$SANITIZER"; then
    if [[ "$SANITIZER" == none ]]; then
        log "the fuzz targets do not build"; exit 2
    fi
    log "WARNING: building with --sanitizer $SANITIZER failed on this toolchain;" \
        "falling back to --sanitizer none (no AddressSanitizer)"
    SANITIZER=none
    cargo fuzz build --sanitizer none
fi

# --- runs --------------------------------------------------------------------------------
mkdir -p fuzz/logs
summary=()
crashed=0
for target in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus-run/$target" "fuzz/artifacts/$target"
    logfile="fuzz/logs/$target.log"
    dict=()
    [[ -f "fuzz/dicts/$target.dict" ]] && dict=("-dict=fuzz/dicts/$target.dict")
    cmd=(cargo fuzz run --sanitizer "$SANITIZER" "$target"
        "fuzz/corpus-run/$target" "fuzz/corpus/$target"
        -- "-max_total_time=$SECONDS_PER_TARGET" "-max_len=$(max_len "$target")"
        -timeout=10 -print_final_stats=1 "${dict[@]}")
    log "running $target for ${SECONDS_PER_TARGET}s: RUSTC_BOOTSTRAP=1 ${cmd[*]}"
    set +e
    "${cmd[@]}" >"$logfile" 2>&1
    status=$?
    set -e

    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logfile" | tail -1 | awk '{print $2}')
    per_sec=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$logfile" | tail -1 | awk '{print $2}')
    last=$(grep -E '^#[0-9]+' "$logfile" | tail -1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[^ ]+).*/\1/p' <<<"$last")
    artifact=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$logfile" | tail -1)

    if [[ $status -eq 0 ]]; then
        result="ok"
    else
        crashed=1
        result="FAILED (exit $status)"
        if [[ -n "$artifact" ]]; then
            result="CRASH: $artifact"
            log "$target crashed; its log: $logfile"
            grep -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY" "$logfile" | head -5 >&2 || true
            log "minimising $artifact (cargo fuzz tmin -r $TMIN_RUNS)"
            if cargo fuzz tmin --sanitizer "$SANITIZER" -r "$TMIN_RUNS" "$target" "$artifact" \
                >"fuzz/logs/$target.tmin.log" 2>&1; then
                minimised=$(sed -nE "s/.*(fuzz\/artifacts\/$target\/minimized-from-[0-9a-f]+).*/\1/p" \
                    "fuzz/logs/$target.tmin.log" | tail -1)
                if [[ -n "$minimised" ]]; then
                    result="CRASH: $minimised (minimised from $artifact)"
                    artifact="$minimised"
                fi
            else
                log "tmin failed; see fuzz/logs/$target.tmin.log"
            fi
            log "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $SANITIZER $target $artifact"
            log "input: $(python3 -c 'import sys; print(repr(open(sys.argv[1], "rb").read()))' "$artifact")"
        fi
    fi
    summary+=("$(printf '%-15s %6ss  execs=%-10s exec/s=%-7s cov=%-5s corpus=%-12s %s' \
        "$target" "$SECONDS_PER_TARGET" "${execs:-?}" "${per_sec:-?}" "${cov:-?}" "${corp:-?}" "$result")")
done

log "summary (sanitizer: $SANITIZER; logs in fuzz/logs/):"
printf '  %s\n' "${summary[@]}" >&2
exit "$crashed"
