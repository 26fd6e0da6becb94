//! A fresh, fully migrated Postgres database for every test.
//!
//! ```no_run
//! # async fn example() {
//! let db = testkit::pg::fresh_database().await;
//! sqlx::query("select 1").execute(&db.pool).await.unwrap();
//! // A second, independent pool on the same database (e.g. a second API instance):
//! let other = sqlx::PgPool::connect(&db.url).await.unwrap();
//! # }
//! ```
//!
//! # Which server
//!
//! - **`DATABASE_URL` set** (and not empty): that server is used. Its user must be allowed
//!   to create databases (`CREATEDB` or superuser) and the server must be PostgreSQL 13 or
//!   newer (`DROP DATABASE … WITH (FORCE)`). The database named in the URL is only used to
//!   issue `CREATE DATABASE`/`DROP DATABASE`; nothing is written to it.
//! - **otherwise**: the first call in a test process starts a throwaway cluster that every
//!   test of that process shares. `initdb` and `pg_ctl` are taken from the first `PATH`
//!   entry that has both, else from the highest `/usr/lib/postgresql/<version>/bin`. The
//!   cluster lives in a fresh `widget-sessions-pg-<random>` directory under the temp dir
//!   (`/tmp` when running as root), listens on a random free port on `127.0.0.1` (its unix
//!   socket is inside that directory, so the system's server is never touched), trusts the
//!   user `postgres`, and runs with `fsync`, `synchronous_commit` and `full_page_writes`
//!   off. `initdb` refuses to run as root, so as root the cluster runs as the `postgres`
//!   user, or — where there is none — as a system user `widget-sessions-test` that is
//!   created with `useradd`; the commands are run through `runuser`. Without the binaries
//!   (and without `DATABASE_URL`) the call panics with a message saying what to install:
//!   tests never skip silently.
//!
//! # Speed
//!
//! Migrations run once per process (and once per server, whichever process gets there
//! first) into a template database named after a hash of the embedded migrations
//! (`widget_sessions_tpl_<hash>`), so a template built from other migrations is never
//! reused. Each test then gets `CREATE DATABASE test_<random> TEMPLATE <template>`. The
//! template is built under a random name and renamed into place only once complete, and it
//! refuses connections, so concurrent processes sharing a server cannot see a half-built
//! template nor block each other's copies.
//!
//! # Cleanup
//!
//! - Dropping a [`TestDatabase`] drops its database in the background (a short-lived thread
//!   with its own runtime runs `DROP DATABASE … WITH (FORCE)`, so no async runtime is
//!   blocked). That is best effort: a drop still running when the test process exits is cut
//!   short and leaves its `test_<hex>` database behind. [`TestDatabase::close`] drops the
//!   database before returning.
//! - The throwaway cluster is removed when the test process exits, whichever way it exits
//!   (statics have no destructors): a small watchdog shell process, started with the
//!   cluster, polls the test process every half second, then shuts the server down
//!   immediately (`SIGQUIT`, what `pg_ctl stop -m immediate` sends) and deletes the
//!   directory. The watchdog ignores terminal signals and holds no pipe of the test process,
//!   so `cargo test` never waits for it.
//! - On a `DATABASE_URL` server the template databases stay (one per distinct set of
//!   migrations) and speed up later runs; a process killed while building one leaves a
//!   `widget_sessions_tmp_<hex>` database.
//!
//! Pools are never shared between calls: every `#[tokio::test]` has its own runtime, and a
//! pool must not outlive the runtime that created it. Only plain data (URLs and names) is
//! kept process-wide.
//!
//! The migrations are embedded at compile time: after adding a migration file, touch the
//! testkit crate (or any existing migration) so it is rebuilt.

use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool};
use tokio::sync::OnceCell;
use url::Url;
use uuid::Uuid;

/// The workspace's migrations (`migrations/` at the workspace root), embedded at compile
/// time. Every database from [`fresh_database`] has all of them applied.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// How long a throwaway cluster may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The message for a machine that has neither the server binaries nor `DATABASE_URL`.
const NOT_INSTALLED: &str = "PostgreSQL server binaries (initdb, pg_ctl) were not found on \
     PATH or under /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: apt-get install \
     postgresql; macOS: brew install postgresql@16) or set DATABASE_URL to a server where the \
     tests may create databases.";

/// The unprivileged user created to run the cluster when running as root on a machine
/// without a `postgres` user.
const TEST_USER: &str = "widget-sessions-test";

/// A brand-new database with every migration applied, for one test.
///
/// Dropping it drops the database in the background (best effort), disconnecting every pool
/// on it, clones of [`pool`](Self::pool) included: keep it alive until the test is done with
/// the database (e.g. as the guard of the conformance macros). See the
/// [module documentation](self) for the details.
pub struct TestDatabase {
    /// A pool on the database, created in the caller's async runtime.
    pub pool: PgPool,
    /// The connection URL of the database, to open further independent pools or
    /// connections (e.g. to simulate a second API instance).
    pub url: String,
    /// The database name; empty once the database was dropped by [`TestDatabase::close`].
    name: String,
    /// Where to connect to drop the database.
    admin_url: String,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// The database's name (`test_<32 hex digits>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes [`pool`](Self::pool) and drops the database before returning, instead of in
    /// the background as dropping does. Pools opened from [`url`](Self::url) are
    /// disconnected by the server.
    ///
    /// # Panics
    ///
    /// When the database cannot be dropped.
    pub async fn close(mut self) {
        let name = std::mem::take(&mut self.name);
        self.pool.close().await;
        if let Err(e) = drop_database(&self.admin_url, &name).await {
            panic!("could not drop the test database {name}: {e}");
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        if name.is_empty() {
            return;
        }
        let admin_url = self.admin_url.clone();
        // A thread of its own, so that no async runtime is blocked; errors are ignored
        // (cleanup is best effort, and the throwaway cluster goes away anyway).
        let _ = std::thread::Builder::new()
            .name("drop-test-database".into())
            .spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    let _ = runtime.block_on(drop_database(&admin_url, &name));
                }
            });
    }
}

/// Creates a brand-new database with every migration of the workspace applied, and a pool
/// on it.
///
/// The first call in a process picks the server (`DATABASE_URL`, or a throwaway cluster
/// started on the spot) and builds the template database; later calls only copy the
/// template. Concurrent calls, from one or many tests, are fine. See the
/// [module documentation](self) for which server is used and how everything is cleaned up.
///
/// # Panics
///
/// When no server can be had — neither `DATABASE_URL` nor the PostgreSQL server binaries
/// (the message says what to install) — or the server fails to start within 30 s (the
/// message carries the tail of its log), or a migration fails, or the database cannot be
/// created.
pub async fn fresh_database() -> TestDatabase {
    let server = server().await;
    let template = template(server).await;
    new_database(server, Some(template)).await
}

/// Like [`fresh_database`], but with no migration applied (to test migrating).
///
/// # Panics
///
/// As [`fresh_database`].
pub async fn empty_database() -> TestDatabase {
    new_database(server().await, None).await
}

async fn new_database(server: &Server, template: Option<&str>) -> TestDatabase {
    let name = format!("test_{}", Uuid::new_v4().simple());
    let admin_url = server.admin_url.to_string();
    let url = server.database_url(&name);

    let create = async {
        let mut admin = PgConnection::connect(&admin_url).await?;
        let sql = match template {
            Some(t) => format!(r#"CREATE DATABASE "{name}" TEMPLATE "{t}""#),
            None => format!(r#"CREATE DATABASE "{name}""#),
        };
        admin.execute(sql.as_str()).await?;
        admin.close().await
    };
    if let Err(e) = create.await {
        panic!("could not create the test database {name} (template {template:?}): {e}");
    }
    let pool = match PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => panic!("could not connect to the test database {url}: {e}"),
    };
    TestDatabase {
        pool,
        url,
        name,
        admin_url,
    }
}

/// The server the databases are created on. Plain data only: no pool, no connection.
#[derive(Debug)]
struct Server {
    /// A URL on which to issue `CREATE DATABASE`.
    admin_url: Url,
}

impl Server {
    /// The URL of database `name` on this server.
    fn database_url(&self, name: &str) -> String {
        let mut url = self.admin_url.clone();
        url.set_path(&format!("/{name}"));
        url.to_string()
    }
}

/// The server of this process, picked (and, if need be, started) by the first call.
async fn server() -> &'static Server {
    static SERVER: OnceCell<Result<Server, String>> = OnceCell::const_new();
    match SERVER.get_or_init(pick_server).await {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

async fn pick_server() -> Result<Server, String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let admin_url = Url::parse(url.trim())
                .map_err(|e| format!("DATABASE_URL is not a valid URL ({e}): {url}"))?;
            Ok(Server { admin_url })
        }
        _ => {
            let started = Instant::now();
            let cluster = tokio::task::spawn_blocking(start_cluster)
                .await
                .map_err(|e| format!("starting the throwaway Postgres cluster panicked: {e}"))??;
            wait_until_accepting(&cluster, started + STARTUP_TIMEOUT).await?;
            Ok(Server {
                admin_url: cluster.url,
            })
        }
    }
}

/// The name of the template database with every migration applied, built by the first call.
async fn template(server: &'static Server) -> &'static str {
    static TEMPLATE: OnceCell<Result<String, String>> = OnceCell::const_new();
    match TEMPLATE.get_or_init(|| build_template(server)).await {
        Ok(name) => name,
        Err(message) => panic!("{message}"),
    }
}

/// Makes sure `widget_sessions_tpl_<hash of the migrations>` exists, building it if need be.
///
/// It is built under a random name, then made a template that refuses connections, then
/// renamed into place; if another process renamed its own copy first, ours is dropped.
async fn build_template(server: &'static Server) -> Result<String, String> {
    let name = format!(
        "widget_sessions_tpl_{:016x}",
        migrations_hash(MIGRATOR.iter())
    );
    let context = |what: &str, e: sqlx::Error| format!("template database {name}: {what}: {e}");

    let mut admin = PgConnection::connect(server.admin_url.as_str())
        .await
        .map_err(|e| context("could not connect to the server", e))?;
    if database_exists(&mut admin, &name)
        .await
        .map_err(|e| context("could not list the databases", e))?
    {
        return Ok(name);
    }

    let building = format!("widget_sessions_tmp_{}", Uuid::new_v4().simple());
    admin
        .execute(format!(r#"CREATE DATABASE "{building}" TEMPLATE template0"#).as_str())
        .await
        .map_err(|e| context("could not create it", e))?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server.database_url(&building))
        .await
        .map_err(|e| context("could not connect to it", e))?;
    let migrated = MIGRATOR.run(&pool).await;
    pool.close().await;
    if let Err(e) = migrated {
        let _ = drop_database(server.admin_url.as_str(), &building).await;
        return Err(format!("template database {name}: a migration failed: {e}"));
    }
    admin
        .execute(
            format!(r#"ALTER DATABASE "{building}" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"#)
                .as_str(),
        )
        .await
        .map_err(|e| context("could not mark it as a template", e))?;

    // The migration connection's backend can still be exiting after `close()`; a rename
    // needs the database to have no sessions, so end any straggler and retry briefly.
    let mut attempts = 0;
    let renamed = loop {
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&building)
        .execute(&mut admin)
        .await;
        let result = admin
            .execute(format!(r#"ALTER DATABASE "{building}" RENAME TO "{name}""#).as_str())
            .await;
        match result {
            // object_in_use: "being accessed by other users".
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55006") && attempts < 100 =>
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other,
        }
    };
    match renamed {
        Ok(_) => {}
        // duplicate_database: another process finished the same template first.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {
            let _ = admin
                .execute(format!(r#"ALTER DATABASE "{building}" IS_TEMPLATE false"#).as_str())
                .await;
            let _ = admin
                .execute(format!(r#"DROP DATABASE IF EXISTS "{building}""#).as_str())
                .await;
        }
        Err(e) => return Err(context("could not rename it into place", e)),
    }
    let _ = admin.close().await;
    Ok(name)
}

async fn database_exists(admin: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut *admin)
        .await?;
    Ok(found.is_some())
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin
        .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await?;
    admin.close().await
}

/// FNV-1a over every embedded migration (version, kind, transaction mode, checksum): a
/// stable name for the template built from exactly these migrations.
fn migrations_hash<'a>(migrations: impl IntoIterator<Item = &'a Migration>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for migration in migrations {
        feed(&migration.version.to_le_bytes());
        feed(format!("{:?}", migration.migration_type).as_bytes());
        feed(&[u8::from(migration.no_tx)]);
        feed(&migration.checksum);
    }
    hash
}

/// A started throwaway cluster.
struct Cluster {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    url: Url,
    /// The server's log file.
    log: PathBuf,
}

/// A cluster's files and how to run its programs.
struct ClusterFiles {
    /// The server binaries' directory.
    bin: PathBuf,
    /// The user the programs run as (when running as root).
    run_as: Option<User>,
    /// The cluster's directory (its data directory and log are inside).
    dir: PathBuf,
    /// The data directory.
    data: PathBuf,
    /// The server's log file.
    log: PathBuf,
}

impl ClusterFiles {
    /// Runs `program` of the server binaries with `args` in the cluster's directory, as the
    /// cluster's user.
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let program = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new(find_system_program("runuser")?);
                command.args(["-u", &user.name, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run {}: {e}", program.display()))
    }

    /// `pg_ctl start` on `port`, waiting until it is up.
    fn start(&self, port: u16) -> Result<Output, String> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &[
                "start",
                "--wait",
                "--timeout",
                &STARTUP_TIMEOUT.as_secs().to_string(),
                "--pgdata",
                &path(&self.data),
                "--log",
                &path(&self.log),
                "-o",
                &format!("-p {port}"),
            ],
        )
    }
}

/// Makes a throwaway cluster's files (blocking): initdb into a fresh temp dir, and a
/// watchdog that removes it when this process exits.
fn init_cluster() -> Result<ClusterFiles, String> {
    let bin = find_server_binaries().ok_or_else(|| NOT_INSTALLED.to_owned())?;
    let run_as = if effective_uid()? == 0 {
        Some(unprivileged_user()?)
    } else {
        None
    };

    let dir = make_cluster_dir(run_as.as_ref())?;
    spawn_watchdog(&dir)?;
    let files = ClusterFiles {
        data: dir.join("data"),
        log: dir.join("server.log"),
        bin,
        run_as,
        dir,
    };
    let path = |p: &Path| p.to_string_lossy().into_owned();

    let initdb = files.run(
        "initdb",
        &[
            "--pgdata",
            &path(&files.data),
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
    )?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed ({}):\n{}{}",
            initdb.status,
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let settings = format!(
        "\n# widget-sessions testkit: a throwaway cluster for tests\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         max_connections = 300\n\
         shared_buffers = 128MB\n",
        path(&files.dir).replace('\'', "''")
    );
    append(&files.data.join("postgresql.conf"), &settings)?;
    Ok(files)
}

/// Starts `files`' cluster on a free port; returns the port.
fn start_on_a_free_port(files: &ClusterFiles) -> Result<u16, String> {
    // The free port may be taken by someone else before the server binds it: retry.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let port = free_port()?;
        let start = files.start(port)?;
        if start.status.success() {
            return Ok(port);
        }
        let server_log = std::fs::read_to_string(&files.log).unwrap_or_default();
        let port_taken =
            server_log.contains("could not bind") || server_log.contains("Address already in use");
        if !port_taken || attempts >= 5 {
            return Err(format!(
                "the throwaway Postgres cluster in {} did not start ({}):\n{}{}\n{}",
                files.dir.display(),
                start.status,
                String::from_utf8_lossy(&start.stdout),
                String::from_utf8_lossy(&start.stderr),
                log_tail(&files.log)
            ));
        }
    }
}

fn cluster_url(port: u16) -> Result<Url, String> {
    Url::parse(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .map_err(|e| format!("bad cluster URL: {e}"))
}

/// Starts a throwaway cluster (blocking): initdb into a fresh temp dir, a watchdog that
/// removes it when this process exits, then `pg_ctl start` on a free port.
fn start_cluster() -> Result<Cluster, String> {
    let files = init_cluster()?;
    let port = start_on_a_free_port(&files)?;
    Ok(Cluster {
        url: cluster_url(port)?,
        log: files.log,
    })
}

/// A throwaway cluster of one test's own, to crash and start again (the shared cluster of
/// [`fresh_database`] serves every other test of the process and must not be disturbed).
/// Always a cluster of its own, `DATABASE_URL` or not; removed when the process exits. Its
/// commits wait for the WAL to reach the operating system (`synchronous_commit = on`), so
/// they survive a crash of the server.
pub struct OwnedCluster {
    files: ClusterFiles,
    port: u16,
    cluster: Cluster,
}

impl OwnedCluster {
    /// Starts one.
    ///
    /// # Panics
    ///
    /// As [`fresh_database`] without `DATABASE_URL`.
    pub async fn start() -> OwnedCluster {
        let started = Instant::now();
        let made = tokio::task::spawn_blocking(|| -> Result<(ClusterFiles, u16, Url), String> {
            let files = init_cluster()?;
            // A commit survives a crash of the server here (not of the machine: `fsync`
            // stays off), as it does on a production server.
            append(
                &files.data.join("postgresql.conf"),
                "synchronous_commit = on\n",
            )?;
            let port = start_on_a_free_port(&files)?;
            Ok((files, port, cluster_url(port)?))
        })
        .await
        .unwrap_or_else(|e| Err(format!("starting a Postgres cluster panicked: {e}")));
        let (files, port, url) = made.unwrap_or_else(|e| panic!("{e}"));
        let cluster = Cluster {
            url,
            log: files.log.clone(),
        };
        if let Err(e) = wait_until_accepting(&cluster, started + STARTUP_TIMEOUT).await {
            panic!("{e}");
        }
        OwnedCluster {
            files,
            port,
            cluster,
        }
    }

    /// A brand-new database on this cluster with every migration applied.
    ///
    /// # Panics
    ///
    /// When the database cannot be created or migrated.
    pub async fn fresh_database(&self) -> TestDatabase {
        let server = Server {
            admin_url: self.cluster.url.clone(),
        };
        let db = new_database(&server, None).await;
        if let Err(e) = MIGRATOR.run(&db.pool).await {
            panic!("a migration failed: {e}");
        }
        db
    }

    /// Crashes the server: `pg_ctl stop -m immediate` (every backend quits at once, no
    /// checkpoint; the next start runs crash recovery, which empties unlogged tables).
    ///
    /// # Panics
    ///
    /// When `pg_ctl` fails.
    pub async fn crash(&self) {
        let data = self.files.data.to_string_lossy().into_owned();
        let out = self.blocking(move |files| {
            files.run(
                "pg_ctl",
                &["stop", "-m", "immediate", "--wait", "--pgdata", &data],
            )
        });
        let out = out.await;
        assert!(
            out.status.success(),
            "pg_ctl stop -m immediate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server again on the same port (after [`OwnedCluster::crash`]) and waits
    /// until it accepts connections.
    ///
    /// # Panics
    ///
    /// When it does not start.
    pub async fn restart(&self) {
        let port = self.port;
        let out = self.blocking(move |files| files.start(port)).await;
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            log_tail(&self.files.log)
        );
        if let Err(e) = wait_until_accepting(&self.cluster, Instant::now() + STARTUP_TIMEOUT).await
        {
            panic!("{e}");
        }
    }

    /// Runs `f` on the cluster's files off the async runtime.
    async fn blocking(
        &self,
        f: impl FnOnce(&ClusterFiles) -> Result<Output, String> + Send + 'static,
    ) -> Output {
        let files = ClusterFiles {
            bin: self.files.bin.clone(),
            run_as: self.files.run_as.as_ref().map(|u| User {
                name: u.name.clone(),
                uid: u.uid,
                gid: u.gid,
            }),
            dir: self.files.dir.clone(),
            data: self.files.data.clone(),
            log: self.files.log.clone(),
        };
        tokio::task::spawn_blocking(move || f(&files))
            .await
            .unwrap_or_else(|e| Err(format!("pg_ctl panicked: {e}")))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Polls until the cluster accepts connections, or fails with the tail of its log.
async fn wait_until_accepting(cluster: &Cluster, deadline: Instant) -> Result<(), String> {
    loop {
        match PgConnection::connect(cluster.url.as_str()).await {
            Ok(connection) => {
                let _ = connection.close().await;
                return Ok(());
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "the throwaway Postgres cluster at {} did not accept connections within \
                     {} s (last error: {e})\n{}",
                    cluster.url,
                    STARTUP_TIMEOUT.as_secs(),
                    log_tail(&cluster.log)
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`: the first `PATH` entry with both, else the
/// highest `/usr/lib/postgresql/<version>/bin` with both.
fn find_server_binaries() -> Option<PathBuf> {
    find_server_binaries_in(
        std::env::var_os("PATH").as_deref(),
        Path::new("/usr/lib/postgresql"),
    )
}

fn find_server_binaries_in(path: Option<&std::ffi::OsStr>, versions: &Path) -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = path.and_then(|path| std::env::split_paths(path).find(|dir| has_both(dir))) {
        return Some(dir);
    }
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(versions)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = name
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The effective user id, from `/proc/self/status`, else from `id -u`.
fn effective_uid() -> Result<u32, String> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        // "Uid:\t<real>\t<effective>\t<saved>\t<filesystem>"
        let effective = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if let Some(uid) = effective {
            return Ok(uid);
        }
    }
    id(&["-u"])?.ok_or_else(|| "`id -u` failed: cannot tell whether this is root".to_owned())
}

/// `id <args>` as a number, `None` when `id` fails (e.g. no such user).
fn id(args: &[&str]) -> Result<Option<u32>, String> {
    let output = Command::new("id")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `id`: {e}"))?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .flatten())
}

/// An unprivileged user to run the cluster as.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

/// The `postgres` user if there is one, else [`TEST_USER`], created if need be.
fn unprivileged_user() -> Result<User, String> {
    let lookup = |name: &str| -> Result<Option<User>, String> {
        match (id(&["-u", name])?, id(&["-g", name])?) {
            (Some(uid), Some(gid)) if uid != 0 => Ok(Some(User {
                name: name.to_owned(),
                uid,
                gid,
            })),
            _ => Ok(None),
        }
    };
    if let Some(user) = lookup("postgres")? {
        return Ok(user);
    }
    if let Some(user) = lookup(TEST_USER)? {
        return Ok(user);
    }
    let useradd = Command::new(find_system_program("useradd")?)
        .args([
            "--system",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
            TEST_USER,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run useradd: {e}"))?;
    // Exit status 9: another test process created it meanwhile.
    if !useradd.status.success() && useradd.status.code() != Some(9) {
        return Err(format!(
            "running as root, where initdb refuses to run, and there is no `postgres` user; \
             creating the user {TEST_USER} failed ({}): {}",
            useradd.status,
            String::from_utf8_lossy(&useradd.stderr)
        ));
    }
    lookup(TEST_USER)?.ok_or_else(|| format!("the user {TEST_USER} was created but is not found"))
}

/// A program that may live in an `sbin` directory missing from `PATH`.
fn find_system_program(name: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "running as root, where initdb refuses to run, and `{name}` (util-linux / \
                 passwd) was not found to run the cluster as an unprivileged user; install it \
                 or set DATABASE_URL"
            )
        })
}

/// A new directory `widget-sessions-pg-<random>` with mode 0700, owned by `run_as` if given
/// (then under `/tmp`, which every user can traverse).
fn make_cluster_dir(run_as: Option<&User>) -> Result<PathBuf, String> {
    let parent = match run_as {
        Some(_) => PathBuf::from("/tmp"),
        None => {
            // The socket path (<dir>/.s.PGSQL.<port>) must stay under ~100 bytes.
            let temp = std::env::temp_dir();
            if temp.as_os_str().len() > 60 {
                PathBuf::from("/tmp")
            } else {
                temp
            }
        }
    };
    let random = Uuid::new_v4().simple().to_string();
    let dir = parent.join(format!("widget-sessions-pg-{}", &random[..12]));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
            .map_err(|e| format!("could not hand {} to {}: {e}", dir.display(), user.name))?;
    }
    Ok(dir)
}

/// The watchdog: waits for this process to end, then shuts the cluster in `$2` down
/// immediately (SIGQUIT, escalated to SIGKILL after 10 s) and deletes the directory.
const WATCHDOG: &str = r#"
trap '' HUP INT QUIT TERM PIPE
while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
pidfile="$2/data/postmaster.pid"
if [ -f "$pidfile" ]; then
  pm=$(head -n 1 "$pidfile")
  if [ -n "$pm" ] && kill -QUIT "$pm" 2>/dev/null; then
    i=0
    while kill -0 "$pm" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pm" 2>/dev/null
  fi
fi
rm -rf "$2" 2>/dev/null || { sleep 1; rm -rf "$2"; }
"#;

/// Starts [`WATCHDOG`] for `dir`, detached: its own process group (no terminal signals),
/// stdio on `/dev/null` (so it holds none of the test binary's pipes).
fn spawn_watchdog(dir: &Path) -> Result<(), String> {
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("widget-sessions-pg-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("could not start the cleanup watchdog (sh): {e}"))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("could not find a free port on 127.0.0.1: {e}"))
}

fn append(file: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("could not write {}: {e}", file.display()))
}

/// The last lines of the server log, for error messages.
fn log_tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            format!("--- last lines of {} ---\n{tail}", log.display())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            format!("(no server log at {})", log.display())
        }
        Err(e) => format!("(could not read the server log {}: {e})", log.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory with fake server binaries in the given subdirectories.
    fn scratch(bins: &[(&str, &[&str])]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("testkit-pg-unit-{}", Uuid::new_v4()));
        for (dir, programs) in bins {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            for program in *programs {
                std::fs::write(root.join(dir).join(program), "").unwrap();
            }
        }
        root
    }

    #[test]
    fn binaries_come_from_path_first_then_the_highest_version() {
        let both: &[&str] = &["initdb", "pg_ctl"];
        let root = scratch(&[
            ("path-a", &["initdb"]),
            ("path-b", both),
            ("lib/9.6/bin", both),
            ("lib/15/bin", both),
            ("lib/16/bin", &["pg_ctl"]),
            ("lib/notaversion/bin", both),
        ]);
        let lib = root.join("lib");
        let path = std::env::join_paths([root.join("path-a"), root.join("path-b")]).unwrap();
        assert_eq!(
            find_server_binaries_in(Some(&path), &lib),
            Some(root.join("path-b"))
        );
        let path = std::env::join_paths([root.join("path-a")]).unwrap();
        assert_eq!(
            find_server_binaries_in(Some(&path), &lib),
            Some(root.join("lib/15/bin"))
        );
        assert_eq!(
            find_server_binaries_in(None, &root.join("path-a")),
            None,
            "incomplete installations do not count"
        );
        assert_eq!(find_server_binaries_in(None, &root.join("missing")), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_template_name_depends_on_the_migrations() {
        let ours: Vec<Migration> = MIGRATOR.iter().cloned().collect();
        assert!(!ours.is_empty());
        let hash = migrations_hash(&ours);
        assert_eq!(hash, migrations_hash(MIGRATOR.iter()));

        let mut edited = ours.clone();
        edited[0].checksum.to_mut()[0] ^= 1;
        assert_ne!(migrations_hash(&edited), hash);

        let mut added = ours.clone();
        added.push(ours[0].clone());
        added.last_mut().unwrap().version += 1;
        assert_ne!(migrations_hash(&added), hash);
    }
}
