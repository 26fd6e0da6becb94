//! The per-test Postgres harness: fresh, isolated, migrated databases, on the server named by
//! `DATABASE_URL` or — without it — on a throwaway cluster that vanishes with the process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{PgPool, Row as _};
use testkit::pg::{MIGRATOR, fresh_database};
use uuid::Uuid;

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn insert_application(pool: &PgPool, name: &str) {
    sqlx::query(
        "insert into applications
             (id, name, api_key_digest, secret_key_id, secret_sealed, status, created_at, rotated_at)
         values ($1, $2, $3, 'k1', '\\x00', 'active', now(), now())",
    )
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(Uuid::new_v4().as_bytes().repeat(2))
    .execute(pool)
    .await
    .unwrap();
}

async fn application_names(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("select name from applications order by name")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn database_exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn concurrent_calls_give_distinct_empty_migrated_databases() {
    let (a, b) = tokio::join!(fresh_database(), fresh_database());
    assert_ne!(a.url, b.url);
    assert_ne!(a.name(), b.name());

    for db in [&a, &b] {
        let current: String = sqlx::query_scalar("select current_database()")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(current, db.name());
        assert_eq!(count(&db.pool, "sessions").await, 0);
        assert_eq!(count(&db.pool, "applications").await, 0);
        let applied: Vec<i64> =
            sqlx::query_scalar("select version from _sqlx_migrations where success order by 1")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        let embedded: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(applied, embedded);
    }

    insert_application(&a.pool, "only-in-a").await;
    assert_eq!(application_names(&a.pool).await, ["only-in-a"]);
    assert!(application_names(&b.pool).await.is_empty());
}

#[tokio::test]
async fn a_second_pool_from_the_url_sees_the_same_database() {
    let db = fresh_database().await;
    let second = PgPool::connect(&db.url).await.unwrap();

    insert_application(&db.pool, "from-the-first").await;
    assert_eq!(application_names(&second).await, ["from-the-first"]);
    insert_application(&second, "from-the-second").await;
    assert_eq!(
        application_names(&db.pool).await,
        ["from-the-first", "from-the-second"]
    );

    // Independent pools: closing one leaves the other working.
    second.close().await;
    assert_eq!(count(&db.pool, "applications").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_each_get_their_own_database() {
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            tokio::spawn(async move {
                let db = fresh_database().await;
                insert_application(&db.pool, &format!("app-{i}")).await;
                let names = application_names(&db.pool).await;
                (db.name().to_owned(), names)
            })
        })
        .collect();
    let mut databases = HashSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (name, names) = task.await.unwrap();
        assert_eq!(names, [format!("app-{i}")]);
        assert!(databases.insert(name));
    }
}

#[tokio::test]
async fn close_drops_the_database_and_dropping_does_so_in_the_background() {
    let observer = fresh_database().await;

    let closed = fresh_database().await;
    let closed_name = closed.name().to_owned();
    assert!(database_exists(&observer.pool, &closed_name).await);
    closed.close().await;
    assert!(!database_exists(&observer.pool, &closed_name).await);

    let dropped = fresh_database().await;
    let dropped_name = dropped.name().to_owned();
    drop(dropped);
    let deadline = Instant::now() + Duration::from_secs(10);
    while database_exists(&observer.pool, &dropped_name).await {
        assert!(
            Instant::now() < deadline,
            "{dropped_name} still exists 10 s after its TestDatabase was dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_server_is_database_url_or_else_a_throwaway_cluster() {
    let db = fresh_database().await;
    match std::env::var("DATABASE_URL") {
        Ok(given) if !given.trim().is_empty() => {
            let given = url::Url::parse(&given).unwrap();
            let ours = url::Url::parse(&db.url).unwrap();
            assert_eq!(ours.host_str(), given.host_str());
            assert_eq!(ours.port(), given.port());
        }
        _ => {
            // Not the machine's own server: a cluster of ours, with the test settings.
            let row = sqlx::query(
                "select current_setting('data_directory') as data,
                        current_setting('fsync') as fsync,
                        current_setting('max_connections') as max_connections,
                        current_setting('listen_addresses') as listen",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            let data: String = row.get("data");
            assert!(
                data.contains("/widget-sessions-pg-"),
                "not a throwaway cluster: data directory {data}"
            );
            assert_eq!(row.get::<String, _>("fsync"), "off");
            assert_eq!(row.get::<String, _>("max_connections"), "300");
            assert_eq!(row.get::<String, _>("listen"), "127.0.0.1");
            assert!(db.url.starts_with("postgres://postgres@127.0.0.1:"));
        }
    }
}

#[test]
fn the_throwaway_cluster_is_removed_when_the_process_exits() {
    // A separate process (src/bin/throwaway-cluster-child.rs) starts a cluster and exits.
    let output = Command::new(env!("CARGO_BIN_EXE_throwaway-cluster-child"))
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output() // returns only once nothing (no watchdog, no server) holds the pipes
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|line| line.split_once(key).map(|(_, value)| value))
            .unwrap_or_else(|| panic!("no {key} in the child's output: {stdout}"))
            .to_owned()
    };
    let data = value("CLUSTER_DATA=");
    let dir = Path::new(&data).parent().unwrap().to_owned();
    let postmaster_pid = value("POSTMASTER_PID=");
    eprintln!("{}", value("TIMINGS "));

    let alive = |pid: &str| {
        Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(&postmaster_pid) || dir.exists() {
        assert!(
            Instant::now() < deadline,
            "20 s after the child exited: postmaster {postmaster_pid} alive: {}, {} exists: {}",
            alive(&postmaster_pid),
            dir.display(),
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
