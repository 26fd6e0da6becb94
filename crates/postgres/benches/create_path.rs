//! Where the time of a create goes in the store, statement by statement, at one request at a
//! time (the create-path latency the HTTP benchmark reports at 1 connection).
//!
//! ```sh
//! cargo bench -p widget-sessions-postgres --bench create_path     # or: just bench-create-path
//! ```
//!
//! Needs a running Postgres server with its own settings (`DATABASE_URL`'s, else
//! `postgres://postgres@127.0.0.1:5432/postgres`): unlike the tests' throwaway cluster, which
//! runs without `fsync`, it measures the server as deployed. It creates the database
//! `widget_sessions_bench_create_path`, migrates it, and drops it at the end.
//!
//! Per create, as `Sessions::create_or_reuse` runs it against an empty slot: the light reuse
//! statement (records the request, finds no session), the full one (claims the slot), then
//! `fulfil` (the session, the slot, the `session.created` event; committed synchronously).
//! Each figure is the median (and p90) over `BENCH_CREATE_PATH_N` creates (default 2 000) per
//! variant, the variants interleaved create by create so that they see the same machine:
//!
//! - `claim`: `reuse_or_claim` on a vacant key (two statements);
//! - `fulfil`: `fulfil`, synchronous commit (the server's default);
//! - `fulfil, async commit`: the same on connections with `synchronous_commit = off`: the
//!   difference is the wait for the WAL flush;
//! - `fulfil, 1 endpoint`: with a webhook endpoint registered (a delivery row and a
//!   `NOTIFY` more);
//! - `round trip`: `select 1` on the same pool; `round trip, 1-connection pool`: the same on
//!   a pool of one connection, where each statement also waits for sqlx's ping of the
//!   connection the previous one returned (sqlx 0.8 pings every connection it takes back);
//! - `fdatasync`: an 8 kB write and `fdatasync` of a file in the temporary directory (what a
//!   WAL flush waits for, when the temporary directory is on the database's disk).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::time::{Duration, Instant};

use chrono::Utc;
use ports::{EncryptedSecret, EndpointStore as _, ReuseOutcome, SessionStore, WebhookEndpoint};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use testkit::fixtures::{new_session, nonce, request, reuse_query};

const DB: &str = "widget_sessions_bench_create_path";

#[derive(Default)]
struct Series(Vec<Duration>);

impl Series {
    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn pool(options: &PgConnectOptions, max: u32) -> PgPool {
    let pool = postgres::pool(
        "postgres://unused",
        postgres::PoolSettings {
            max_connections: max,
            acquire_timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    pool.set_connect_options(options.clone());
    pool
}

/// One create through `store` for user `n`: (claim, fulfil).
async fn create(
    store: &dyn SessionStore,
    n: u128,
    application: domain::ApplicationId,
) -> (Duration, Duration) {
    let r = request(n, false);
    let now = Utc::now();
    let mut q = reuse_query(application, &r, now, 1);
    q.nonce = Some(nonce(application));
    let started = Instant::now();
    assert_eq!(
        store.reuse_or_claim(&q).await.unwrap(),
        ReuseOutcome::Claimed
    );
    let claimed = started.elapsed();
    let id = domain::SessionId::from_uuid(uuid::Uuid::now_v7());
    let new = new_session(application, id, &r, now);
    let started = Instant::now();
    store.fulfil(application, q.claim, new).await.unwrap();
    (claimed, started.elapsed())
}

fn fdatasync_once(file: &mut std::fs::File, block: &[u8]) -> Duration {
    use std::io::Seek as _;
    let started = Instant::now();
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.write_all(block).unwrap();
    file.sync_data().unwrap();
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BENCH_CREATE_PATH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let server = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin: PgConnectOptions = server.parse().unwrap();
    let admin_pool = PgPool::connect_with(admin.clone()).await.unwrap();
    sqlx::query(&format!("drop database if exists {DB} with (force)"))
        .execute(&admin_pool)
        .await
        .unwrap();
    sqlx::query(&format!("create database {DB}"))
        .execute(&admin_pool)
        .await
        .unwrap();
    let options = admin.clone().database(DB);
    let sync = pool(&options, 16).await;
    postgres::migrate(&sync).await.unwrap();
    let asynchronous = pool(
        &options.clone().options([("synchronous_commit", "off")]),
        16,
    )
    .await;
    let single = pool(&options, 1).await;

    // Two applications: one with a webhook endpoint, one without.
    let plain = domain::ApplicationId::from_uuid(uuid::Uuid::from_u128(0xA));
    let hooked = domain::ApplicationId::from_uuid(uuid::Uuid::from_u128(0xB));
    let endpoints = postgres::PgStore::new(sync.clone());
    for app in [plain, hooked] {
        sqlx::query(
            "insert into applications (id, name, api_key_digest, secret_key_id, secret_sealed, status, created_at, rotated_at)
             values ($1, $2, sha256($2::bytea), 'k', '\\x00', 'active', now(), now())",
        )
        .bind(app.as_uuid())
        .bind(format!("bench-{}", app.as_uuid()))
        .execute(&sync)
        .await
        .unwrap();
    }
    endpoints
        .create(
            &WebhookEndpoint {
                id: domain::WebhookEndpointId::from_uuid(uuid::Uuid::now_v7()),
                application: hooked,
                url: domain::WebhookUrl::parse("https://hooks.example.com/widget-sessions", false)
                    .unwrap(),
                event_types: Vec::new(),
                created_at: Utc::now(),
            },
            EncryptedSecret {
                key_id: "k".into(),
                sealed: vec![0; 40],
            },
            10,
        )
        .await
        .unwrap();

    let sync_store = postgres::PgStore::new(sync.clone());
    let async_store = postgres::PgStore::new(asynchronous.clone());
    let (mut claim, mut fulfil, mut fulfil_async, mut fulfil_hooked) = (
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
    );
    let (mut round_trip, mut round_trip_single, mut flush) =
        (Series::default(), Series::default(), Series::default());
    let dir = std::env::temp_dir();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(0)
        .open(dir.join("widget-sessions-bench-fdatasync"))
        .unwrap();
    let block = vec![0x5a_u8; 8192];

    // Warm-up: connections open, plans cached.
    for i in 0..50u128 {
        create(&sync_store, 1_000_000 + i, plain).await;
        create(&async_store, 2_000_000 + i, plain).await;
    }
    let started = Instant::now();
    for i in 0..n as u128 {
        let (c, f) = create(&sync_store, 10_000_000 + i, plain).await;
        claim.0.push(c);
        fulfil.0.push(f);
        let (_, f) = create(&async_store, 20_000_000 + i, plain).await;
        fulfil_async.0.push(f);
        let (_, f) = create(&sync_store, 30_000_000 + i, hooked).await;
        fulfil_hooked.0.push(f);
        let t = Instant::now();
        sqlx::query("select 1").execute(&sync).await.unwrap();
        round_trip.0.push(t.elapsed());
        let t = Instant::now();
        sqlx::query("select 1").execute(&single).await.unwrap();
        round_trip_single.0.push(t.elapsed());
        flush.0.push(fdatasync_once(&mut file, &block));
    }
    let took = started.elapsed();

    let settings: Vec<(String, String)> = sqlx::query_as(
        "select name, setting from pg_settings where name in ('synchronous_commit', 'fsync', 'wal_sync_method') order by name",
    )
    .fetch_all(&sync)
    .await
    .unwrap();
    println!(
        "create path, {n} creates per variant in {:.1} s; server: {}",
        took.as_secs_f64(),
        settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    println!("| step | p50 | p90 |");
    println!("|---|---:|---:|");
    for (name, s) in [
        ("claim (light reuse statement, then the full one)", &claim),
        ("fulfil", &fulfil),
        ("fulfil, async commit", &fulfil_async),
        (
            "fulfil, 1 endpoint (a delivery and a NOTIFY more)",
            &fulfil_hooked,
        ),
        ("round trip (`select 1`)", &round_trip),
        (
            "round trip, 1-connection pool (waits for the release ping)",
            &round_trip_single,
        ),
        ("fdatasync of 8 kB (temporary directory)", &flush),
    ] {
        println!(
            "| {name} | {:.3} ms | {:.3} ms |",
            ms(s.percentile(0.5)),
            ms(s.percentile(0.9))
        );
    }
    let p50 = |s: &Series| ms(s.percentile(0.5));
    println!();
    println!(
        "store time per create: {:.3} ms (claim + fulfil); of which the WAL flush wait (fulfil − fulfil async): {:.3} ms; the statements without it: {:.3} ms ({:.1} round trips' worth)",
        p50(&claim) + p50(&fulfil),
        p50(&fulfil) - p50(&fulfil_async),
        p50(&claim) + p50(&fulfil_async),
        (p50(&claim) + p50(&fulfil_async)) / p50(&round_trip),
    );
    println!(
        "the release ping, seen serially: {:.3} ms per statement (1-connection pool − pool)",
        p50(&round_trip_single) - p50(&round_trip)
    );

    sync.close().await;
    asynchronous.close().await;
    single.close().await;
    sqlx::query(&format!("drop database if exists {DB} with (force)"))
        .execute(&admin_pool)
        .await
        .unwrap();
    let _ = std::fs::remove_file(dir.join("widget-sessions-bench-fdatasync"));
}
