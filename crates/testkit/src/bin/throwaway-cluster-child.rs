//! Starts the throwaway Postgres cluster (two fresh databases), prints its data directory,
//! postmaster pid and start-up timings, then exits. Run by the test
//! `the_throwaway_cluster_is_removed_when_the_process_exits` (`crates/testkit/tests/pg.rs`),
//! which checks that the cluster is gone after this process ends. Ignores `DATABASE_URL`
//! only if the caller removes it.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use testkit::pg::fresh_database;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let db = fresh_database().await;
    let first = started.elapsed();
    let started = Instant::now();
    let _second = fresh_database().await;
    let second = started.elapsed();
    let data: String = sqlx::query_scalar("select current_setting('data_directory')")
        .fetch_one(&db.pool)
        .await?;
    let pid_file = std::fs::read_to_string(Path::new(&data).join("postmaster.pid"))?;
    let postmaster_pid = pid_file.lines().next().ok_or("empty postmaster.pid")?;
    println!("CLUSTER_DATA={data}");
    println!("POSTMASTER_PID={postmaster_pid}");
    println!("TIMINGS first={first:?} second={second:?}");
    Ok(())
}
