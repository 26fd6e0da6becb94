//! Process-level harness shared by `scale_out`, `faults` and `secrets`: real
//! `widget-sessions` processes (the binary Cargo built for these tests), configured only
//! through environment variables, on a fresh Postgres database, with the Transak emulator
//! running inside the test process as their standalone upstream.
//!
//! Every process is killed (`SIGKILL`) when its [`Instance`] is dropped, so no process
//! outlives a failing test. Each process writes its stdout and stderr to a log file in a
//! scratch directory that is removed on drop unless the test is panicking or
//! `KEEP_PROOF_LOGS` is set (the path is printed then).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../common/mod.rs"]
mod common;
pub use common::http::Http;
#[allow(unused_imports)] // Not every test binary receives webhooks.
pub use common::receiver::{Received, Receiver};
pub use common::resp::Resp;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use transak_emulator::{Emulator, EmulatorConfig};

/// The session resources, below `/api/v1` (what is signed).
pub const SESSIONS: &str = "/travel-rule/widget-sessions";

/// How long a process may take to answer `/readyz` with `200`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The application every instance is started with (through `WIDGET_SESSIONS_APPS_FILE`).
pub const APP_NAME: &str = "proof-app";
/// Its API key.
pub const APP_KEY: &str = "proof-app-key-0123456789abcdef";
/// Its API secret.
pub const APP_SECRET: &str = "proof-app-secret-0123456789abcdef-do-not-log";

/// A mainnet bech32 address (BIP-173 test vector).
pub const BTC_ADDRESS: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

/// A create-or-reuse body for `user` (BTC on BTC, an on-chain counterparty).
pub fn create_body(user: uuid::Uuid) -> Value {
    json!({
        "userId": user.to_string(),
        "currency": "BTC",
        "network": "BTC",
        "counterpartyAddress": BTC_ADDRESS,
    })
}

/// A port that was free a moment ago (bind `127.0.0.1:0`, read it, drop the listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scratch directory removed on drop, unless the thread is panicking (then its path is
/// printed so the logs can be read).
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new, empty directory under the temp dir.
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("KEEP_PROOF_LOGS").is_some() {
            eprintln!("process logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What the instances of one test share: a fresh database, the at-rest key, the apps file
/// and the emulator.
pub struct Deployment {
    /// The Transak emulator (in this process), the instances' upstream.
    pub emulator: Emulator,
    /// The test database (dropped after the instances: declared before them in tests).
    pub db: testkit::pg::TestDatabase,
    /// `WIDGET_SESSIONS_SECRET_KEY`.
    pub secret_key: String,
    scratch: Scratch,
    apps_file: PathBuf,
}

impl Deployment {
    /// A fresh database, a fresh emulator, an apps file with [`APP_KEY`] / [`APP_SECRET`].
    pub async fn new() -> Self {
        Self::on(testkit::pg::fresh_database().await).await
    }

    /// [`Deployment::new`] on `db` (e.g. on a cluster of the test's own).
    pub async fn on(db: testkit::pg::TestDatabase) -> Self {
        let emulator = transak_emulator::spawn(EmulatorConfig::default())
            .await
            .unwrap();
        let scratch = Scratch::new("widget-sessions-proof");
        let apps_file = scratch.path().join("apps.json");
        std::fs::write(
            &apps_file,
            json!([{ "name": APP_NAME, "apiKey": APP_KEY, "apiSecret": APP_SECRET }]).to_string(),
        )
        .unwrap();
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            emulator,
            db,
            secret_key: base64::engine::general_purpose::STANDARD.encode(key),
            scratch,
            apps_file,
        }
    }

    /// The environment of one instance listening on `listen` (`host:port`): Postgres, the
    /// at-rest key, the apps file, the external emulator, no rate limit, JSON logs at
    /// `info` (override with `extra`, which wins).
    pub fn env(&self, listen: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let upstream = self.emulator.base_url();
        let mut vars: Vec<(String, String)> = [
            ("WIDGET_SESSIONS_LISTEN", listen),
            ("DATABASE_URL", self.db.url.as_str()),
            ("WIDGET_SESSIONS_SECRET_KEY", self.secret_key.as_str()),
            (
                "WIDGET_SESSIONS_APPS_FILE",
                self.apps_file.to_str().unwrap(),
            ),
            ("TRANSAK_ENVIRONMENT", "emulator"),
            ("TRANSAK_GATEWAY_URL", upstream.as_str()),
            ("TRANSAK_API_URL", upstream.as_str()),
            ("WIDGET_SESSIONS_RATE_LIMIT", "0"),
            ("WIDGET_SESSIONS_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,sqlx=warn"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push(((*k).to_string(), (*v).to_string()));
        }
        vars
    }

    /// Starts instance `name` with [`Deployment::env`] plus `extra`, and waits until its
    /// `/readyz` answers `200`.
    pub async fn start(&self, name: &str, extra: &[(&str, &str)]) -> Instance {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let env = self.env(&listen, extra);
        Instance::start(
            name,
            &listen,
            env,
            &self.scratch.path().join(format!("{name}.log")),
        )
        .await
    }

    /// Runs the binary once with `args`, [`Deployment::env`] plus `extra`, and `stdin`;
    /// returns (exit success, stdout, stderr).
    pub async fn run(
        &self,
        args: &[&str],
        extra: &[(&str, &str)],
        stdin: &str,
    ) -> (bool, String, String) {
        use tokio::io::AsyncWriteExt as _;
        let mut command = Command::new(env!("CARGO_BIN_EXE_widget-sessions"));
        command
            .args(args)
            .env_clear()
            .envs(self.env("127.0.0.1:0", extra))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("the command finished within 60 s")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts instance `name` and returns its log once it exited (for start-ups that must
    /// fail); panics if it is still running after 30 s.
    pub async fn start_expecting_exit(&self, name: &str, extra: &[(&str, &str)]) -> (bool, String) {
        let (ok, out, err) = self.run(&["serve"], extra, "").await;
        let _ = name;
        (ok, format!("{out}{err}"))
    }

    /// `select count(*)` of a table of the test database.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("select count(*) from {table}");
        sqlx::query_scalar(&sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// A connection URL for the `postgres` maintenance database of the test database's
    /// server (to switch the test database off and on).
    pub fn maintenance_url(&self) -> String {
        let mut url = url::Url::parse(&self.db.url).unwrap();
        url.set_path("/postgres");
        url.to_string()
    }
}

/// One running `widget-sessions` process. Killed on drop.
pub struct Instance {
    /// Its name in messages.
    pub name: String,
    /// How to call it.
    pub http: Http,
    child: Child,
    log: PathBuf,
}

impl std::ops::Deref for Instance {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Instance {
    /// Starts the binary with exactly `env` (nothing inherited but `PATH`), stdout and
    /// stderr appended to `log`, and waits for `/readyz` to answer `200`.
    pub async fn start(name: &str, listen: &str, env: Vec<(String, String)>, log: &Path) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let err = out.try_clone().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_widget-sessions"));
        command
            .arg("serve")
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let child = command.spawn().unwrap();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut instance = Self {
            name: name.to_string(),
            http: Http {
                base: format!("http://{listen}"),
                client,
                clock: None,
            },
            child,
            log: log.to_path_buf(),
        };
        instance.wait_ready(READY_TIMEOUT).await;
        instance
    }

    /// Polls `/readyz` until `200` with the upstream credentials usable (the start-up warm-up
    /// obtained an access token); panics (with the log) after `timeout` or if the process
    /// exits.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited before it was ready ({status}).\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let readyz = format!("{}/readyz", self.base);
            let last = match self.client.get(readyz).send().await {
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    let upstream_ok = serde_json::from_str::<Value>(&text)
                        .is_ok_and(|v| v["checks"]["upstream"] == "ok");
                    if status == StatusCode::OK && upstream_ok {
                        return;
                    }
                    format!("{status}: {text}")
                }
                Err(e) => e.to_string(),
            };
            assert!(
                started.elapsed() < timeout,
                "{} not ready after {timeout:?} (last: {last}).\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM (what an orchestrator sends to stop an instance).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the process is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits for the process to exit; panics (with the log) after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "{} still running after {timeout:?}.\n{}",
                self.name,
                self.log_tail()
            ),
        }
    }

    /// `kill -9`, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.logs();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = format!(
            "--- last lines of {} ({}) ---\n",
            self.name,
            self.log.display()
        );
        for line in &lines[lines.len().saturating_sub(40)..] {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// Sends a request and reads the whole response (the process's log tail on failure).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        self.http
            .try_send(request)
            .await
            .unwrap_or_else(|e| panic!("{}: request failed: {e}\n{}", self.name, self.log_tail()))
    }

    /// A request signed with the [`APP_KEY`] / [`APP_SECRET`] (path below `/api/v1`, with
    /// its query string). A non-empty body is sent as `application/json`.
    pub fn signed(&self, method: &str, path: &str, body: &str) -> reqwest::RequestBuilder {
        self.http
            .signed_request(APP_KEY, APP_SECRET, method, path, body)
    }

    /// [`Instance::signed`] with a timestamp `ahead_ms` ahead of now.
    pub fn signed_ahead(
        &self,
        method: &str,
        path: &str,
        body: &str,
        ahead_ms: i64,
    ) -> reqwest::RequestBuilder {
        self.http
            .signed_request_ahead(APP_KEY, APP_SECRET, method, path, body, ahead_ms)
    }

    /// `POST` create-or-reuse.
    pub async fn create(&self, body: &Value) -> Resp {
        self.send(self.signed("POST", SESSIONS, &body.to_string()))
            .await
    }

    /// `GET` the list of `user`'s sessions.
    pub async fn list_for(&self, user: uuid::Uuid) -> Resp {
        self.send(self.signed("GET", &format!("{SESSIONS}?userId={user}"), ""))
            .await
    }

    /// `POST …/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> Resp {
        self.send(self.signed("POST", &format!("{SESSIONS}/{id}/cancel"), ""))
            .await
    }

    /// An unsigned `GET` of a path on this instance.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// `GET /readyz`'s status.
    pub async fn ready_status(&self) -> u16 {
        self.get("/readyz").await.status.as_u16()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The launch path `/w/<token>` of a `widgetUrl`.
pub fn launch_path(widget_url: &str) -> String {
    let at = widget_url
        .find("/w/")
        .unwrap_or_else(|| panic!("no /w/ in {widget_url}"));
    widget_url[at..].to_string()
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
