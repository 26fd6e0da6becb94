#!/usr/bin/env bash
# Regenerates sqlx's offline query data (crates/postgres/.sqlx) after a query or a migration
# changed: applies the migrations to a scratch database on DATABASE_URL's server (default
# postgres://postgres@127.0.0.1:5432), checks the Postgres crate against it, and drops it.
# Commit crates/postgres/.sqlx afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
server=${server%/*}
db=widget_sessions_sqlx_prepare_$$
psql "$server/postgres" -v ON_ERROR_STOP=1 -q -c "create database $db"
trap 'psql "$server/postgres" -q -c "drop database if exists $db" >/dev/null' EXIT
url="$server/$db"
cargo run -q -p widget-sessions -- migrate --database-url "$url" >/dev/null 2>&1 ||
    for f in migrations/*.sql; do psql "$url" -v ON_ERROR_STOP=1 -q -f "$f"; done
rm -rf crates/postgres/.sqlx && mkdir -p crates/postgres/.sqlx
touch crates/postgres/src/lib.rs
DATABASE_URL="$url" SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/crates/postgres/.sqlx" \
    cargo check -q -p widget-sessions-postgres
echo "regenerated crates/postgres/.sqlx ($(ls crates/postgres/.sqlx | wc -l) queries)"
