# Everyday commands. `just --list` shows them all.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Everything CI runs, in the same order.
ci:
    bash .ci/run

# The whole test suite (what README.md shows).
test:
    cargo test --workspace

# Lints as CI runs them.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Benchmarks (release build); figures go into docs/benchmarks.md.
bench:
    cargo bench -p widget-sessions-api --bench parse
    cargo bench -p widget-sessions-domain --bench ownership

# API docs for the domain crate, opened in a browser.
doc:
    cargo doc -p widget-sessions-domain --no-deps --open

# Postgres tests only (a throwaway cluster is started unless DATABASE_URL is set).
test-pg:
    cargo test -p widget-sessions-postgres -p widget-sessions-testkit

# Create (or recreate) a local development database and migrate it as the service does
# (`widget-sessions migrate`). Uses DATABASE_URL's server; e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/widget_sessions_dev
db-dev:
    psql "${DATABASE_URL%/*}/postgres" -v ON_ERROR_STOP=1 -q -c "drop database if exists ${DATABASE_URL##*/} with (force)" -c "create database ${DATABASE_URL##*/}"
    cargo run -q -p widget-sessions -- migrate

# Regenerate sqlx's offline query data after changing a query or adding a migration (uses a
# scratch database on DATABASE_URL's server, or 127.0.0.1:5432). Commit crates/postgres/.sqlx.
sqlx-prepare:
    bash scripts/sqlx-prepare.sh

# Fuzz the hostile-input parsers (request bodies, bolt11 invoices, HMAC headers, Transak order webhooks, ownership proofs) with cargo-fuzz:
# FUZZ_SECONDS (default 60) per target, FUZZ_TARGETS="parse_request …" to pick. See scripts/fuzz.sh.
fuzz:
    bash scripts/fuzz.sh

# Property-based API tests: schemathesis against the running service's OpenAPI document, every
# request HMAC-signed (bounded: SCHEMATHESIS_MAX_TIME, default 180 s). See scripts/schemathesis.sh.
schemathesis:
    bash scripts/schemathesis.sh

# Where a create's time goes in the store, statement by statement (Postgres on
# DATABASE_URL's server or 127.0.0.1:5432, database widget_sessions_bench_create_path).
bench-create-path:
    cargo bench -p widget-sessions-postgres --bench create_path

# HTTP benchmark of the service: release build, Postgres (DATABASE_URL's server or
# 127.0.0.1:5432, database widget_sessions_bench), wrk + pgbench; about 10 minutes.
# Figures go into docs/benchmarks.md ("HTTP service"). Knobs: see scripts/bench.sh.
bench-http:
    bash scripts/bench.sh

# Webhook delivery benchmark (release build, Postgres on DATABASE_URL's server or
# 127.0.0.1:5432): events per second to one endpoint with 1 and 3 instances, latency from
# event to 2xx. Figures go into docs/benchmarks.md ("Webhook delivery").
bench-webhooks:
    python3 bench/webhooks.py

# A/B benchmark of the hot paths against an earlier commit, in one run (about 20 minutes with
# both release builds): reuse throughput and p99, pgbench of each reuse statement, create
# overhead at 1 connection. Figures go into docs/benchmarks.md.
bench-ab base:
    python3 bench/ab.py {{base}}

# A real browser: headless Chromium opens a partner page that embeds a launch link with
# Transak's browser SDK and completes the order (installs Chromium and the npm packages in
# browser/ when missing). See scripts/browser-test.sh.
browser-test:
    bash scripts/browser-test.sh
