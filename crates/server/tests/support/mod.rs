//! The end-to-end harness: the whole service (`server::application::Application`, as the
//! binary runs it) on `127.0.0.1:0`, with a test clock and a Transak emulator of the
//! harness's own injected as its upstream, on the in-memory store or on a fresh Postgres
//! database.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../common/mod.rs"]
mod common;
pub use common::http::Http;
#[allow(unused_imports)] // Not every test binary receives webhooks.
pub use common::receiver::{Received, Receiver};
pub use common::resp::Resp;

use std::collections::HashMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use api::state::AppState;
use app::DeliveryWorker;
use base64::Engine as _;
use serde_json::{Value, json};
use server::application::{Application, Stop};
use server::compose::{self, Overrides};
use server::config::Config;
use testkit::clock::TestClock;
use tokio::task::JoinHandle;
use transak_emulator::Emulator;

/// The session resources, below `/api/v1` (what is signed).
pub const SESSIONS: &str = "/travel-rule/widget-sessions";

/// Which store the instance runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// No `DATABASE_URL`.
    Memory,
    /// A fresh migrated database from `testkit::pg`.
    Postgres,
}

/// One application's credentials (from the apps file).
#[derive(Debug, Clone)]
pub struct Creds {
    /// Its name in the apps file.
    pub name: &'static str,
    /// `api-key`.
    pub key: String,
    /// The HMAC secret.
    pub secret: String,
}

/// The applications every instance is started with.
pub fn app_a() -> Creds {
    Creds {
        name: "app-a",
        key: "e2e-app-a-key-0123456789".into(),
        secret: "e2e-app-a-secret-0123456789abcdef".into(),
    }
}

/// The second application (tenancy).
pub fn app_b() -> Creds {
    Creds {
        name: "app-b",
        key: "e2e-app-b-key-0123456789".into(),
        secret: "e2e-app-b-secret-0123456789abcdef".into(),
    }
}

/// A third application, never used by the harness itself (tests may disable it); its
/// customers always prove ownership of their own self-hosted wallets (its apps-file entry sets
/// `ownershipProofPolicy` to `ALWAYS`).
pub fn app_c() -> Creds {
    Creds {
        name: "app-c",
        key: "e2e-app-c-key-0123456789".into(),
        secret: "e2e-app-c-secret-0123456789abcdef".into(),
    }
}

/// An application that runs the hosted travel-rule step (`hostedTravelRule` in its apps-file
/// entry), framed by any origin.
pub fn app_h() -> Creds {
    Creds {
        name: "app-h",
        key: "e2e-app-h-key-0123456789".into(),
        secret: "e2e-app-h-secret-0123456789abcdef".into(),
    }
}

/// An application that runs the hosted travel-rule step and lets only
/// `https://partner.example` frame it (`frameAncestors`).
pub fn app_f() -> Creds {
    Creds {
        name: "app-f",
        key: "e2e-app-f-key-0123456789".into(),
        secret: "e2e-app-f-secret-0123456789abcdef".into(),
    }
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn with(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "widget-sessions-e2e-apps-{}.json",
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Requests of the session API, signed as one of the applications.
impl Http {
    /// A signed request (path below `/api/v1`, with its query string).
    pub async fn signed(&self, who: &Creds, method: &str, path: &str, body: &str) -> Resp {
        self.send(self.signed_request(&who.key, &who.secret, method, path, body))
            .await
    }

    /// `POST` create-or-reuse.
    pub async fn create(&self, who: &Creds, body: &Value) -> Resp {
        self.signed(who, "POST", SESSIONS, &body.to_string()).await
    }

    /// `POST` create-or-reuse that must answer `status`; returns the body.
    pub async fn create_ok(&self, who: &Creds, body: &Value, status: u16) -> Value {
        let r = self.create(who, body).await;
        r.expect(status);
        r.json()
    }

    /// `GET` one session.
    pub async fn get_session(&self, who: &Creds, id: &str) -> Resp {
        self.signed(who, "GET", &format!("{SESSIONS}/{id}"), "")
            .await
    }

    /// `POST …/cancel`.
    pub async fn cancel(&self, who: &Creds, id: &str) -> Resp {
        self.signed(who, "POST", &format!("{SESSIONS}/{id}/cancel"), "")
            .await
    }

    /// `GET` the list with this query string (without `?`).
    pub async fn list(&self, who: &Creds, query: &str) -> Resp {
        let path = if query.is_empty() {
            SESSIONS.to_string()
        } else {
            format!("{SESSIONS}?{query}")
        };
        self.signed(who, "GET", &path, "").await
    }
}

/// A running instance.
pub struct TestApp {
    /// How to call it.
    pub http: Http,
    /// Its upstream: an emulator of the harness's own (the instance reaches it over HTTP).
    pub emulator: Arc<Emulator>,
    /// Its state (to reach the use cases directly where a test must, e.g. to disable an app).
    pub state: AppState,
    /// Which store it runs on.
    pub store: Store,
    /// Application A.
    pub a: Creds,
    /// Application B.
    pub b: Creds,
    /// The variables it was configured with.
    pub vars: HashMap<String, String>,
    /// The test database (Postgres runs only), to inspect what is stored.
    pub database: Option<testkit::pg::TestDatabase>,
    /// The instance's clock: real time, moved forward by tests instead of sleeping.
    pub clock: Arc<TestClock>,
    /// A delivery worker over the instance's stores, for rounds on demand.
    worker: DeliveryWorker,
    server: JoinHandle<bool>,
    _apps_file: TempFile,
}

impl Deref for TestApp {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// Spawns an instance on `store` with the defaults plus `extra` variables.
    pub async fn spawn(store: Store, extra: &[(&str, &str)]) -> TestApp {
        let emulator = transak_emulator::spawn(transak_emulator::EmulatorConfig::default())
            .await
            .unwrap();
        Self::spawn_with_upstream(store, extra, emulator).await
    }

    /// [`TestApp::spawn`] with `emulator` as the upstream (set up as the test needs before
    /// the instance first calls it: the instance obtains an access token as it starts).
    pub async fn spawn_with_upstream(
        store: Store,
        extra: &[(&str, &str)],
        emulator: Emulator,
    ) -> TestApp {
        server::telemetry::init_test_tracing();
        let apps = [app_a(), app_b(), app_c(), app_h(), app_f()]
            .iter()
            .map(|c| {
                let mut entry = json!({"name": c.name, "apiKey": c.key, "apiSecret": c.secret});
                match c.name {
                    "app-c" => entry["ownershipProofPolicy"] = json!("ALWAYS"),
                    "app-h" => entry["hostedTravelRule"] = json!(true),
                    "app-f" => {
                        entry["hostedTravelRule"] = json!(true);
                        entry["frameAncestors"] = json!(["https://partner.example"]);
                    }
                    _ => {}
                }
                entry
            })
            .collect::<Vec<_>>();
        let apps_file = TempFile::with(&Value::Array(apps).to_string());

        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("WIDGET_SESSIONS_LISTEN".into(), "127.0.0.1:0".into());
        vars.insert(
            "WIDGET_SESSIONS_APPS_FILE".into(),
            apps_file.0.display().to_string(),
        );
        let database = match store {
            Store::Memory => None,
            Store::Postgres => {
                let db = testkit::pg::fresh_database().await;
                vars.insert("DATABASE_URL".into(), db.url.clone());
                let key: [u8; 32] = rand::random();
                vars.insert(
                    "WIDGET_SESSIONS_SECRET_KEY".into(),
                    base64::engine::general_purpose::STANDARD.encode(key),
                );
                vars.insert("WIDGET_SESSIONS_DB_MAX_CONNECTIONS".into(), "8".into());
                // With a database, Transak must be configured (the harness injects its own).
                vars.insert("TRANSAK_ENVIRONMENT".into(), "emulator".into());
                Some(db)
            }
        };
        for (k, v) in extra {
            vars.insert((*k).to_string(), (*v).to_string());
        }

        let clock = Arc::new(TestClock::new());
        let emulator = Arc::new(emulator);
        let running = start(&vars, clock.clone(), &emulator).await;
        // The emulator's widget reports orders to this instance, as Transak would.
        emulator.set_webhook_url(format!("{}/webhooks/transak", running.http.base));
        TestApp {
            http: running.http,
            clock,
            emulator,
            state: running.state,
            store,
            a: app_a(),
            b: app_b(),
            vars,
            worker: running.worker,
            server: running.server,
            _apps_file: apps_file,
            database,
        }
    }

    /// Another API instance with the same configuration (same database, same apps file, same
    /// clock), whose upstream is this instance's emulator.
    pub async fn second_instance(&self) -> Instance {
        let running = start(&self.vars, self.clock.clone(), &self.emulator).await;
        Instance {
            http: running.http,
            state: running.state,
            server: running.server,
        }
    }

    /// Runs delivery rounds on demand until no delivery is due any more (each one attempted,
    /// by this harness or by the instance's own worker): after it, every event so far has
    /// reached every endpoint that answers, and nothing else is on its way but scheduled
    /// retries.
    pub async fn drain_deliveries(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            self.worker.deliver_due().await.unwrap();
            if self.due_deliveries().await == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deliveries are still due after 20 s"
            );
            // Another worker holds the rest: let it finish them.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// How many deliveries are due now and not yet attempted to the end.
    pub async fn due_deliveries(&self) -> u64 {
        self.worker.due_now().await.unwrap()
    }
}

/// A further API instance (see [`TestApp::second_instance`]).
pub struct Instance {
    /// How to call it.
    pub http: Http,
    /// Its state.
    pub state: AppState,
    server: JoinHandle<bool>,
}

impl Deref for Instance {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What [`start`] started.
struct Running {
    http: Http,
    state: AppState,
    worker: DeliveryWorker,
    server: JoinHandle<bool>,
}

/// Builds an instance from `vars` (through `Config::from_vars` and `Application::build`, as
/// the binary does) with `clock` and `emulator` injected, and runs it until the test ends.
async fn start(
    vars: &HashMap<String, String>,
    clock: Arc<TestClock>,
    emulator: &Emulator,
) -> Running {
    let config = Config::from_vars(vars).unwrap_or_else(|e| panic!("{e}"));
    let upstream = compose::emulator_config(&config, &emulator.base_url()).unwrap();
    let app = Application::build(
        config,
        Overrides {
            clock: Some(clock.clone()),
            upstream: Some(upstream),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        app.demo().is_none(),
        "no demo application with an apps file"
    );
    assert!(
        app.emulator().is_none(),
        "the upstream is the harness's emulator"
    );
    let http = Http::new(app.public_base().to_string()).with_clock(clock);
    let state = app.state().clone();
    let worker = app.delivery_worker();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending::<Stop>()));
    Running {
        http,
        state,
        worker,
        server,
    }
}

/// Asserts a problem document: status, content type, `code`, `type`, and non-empty `title`
/// and `detail`. Returns the document.
#[track_caller]
pub fn assert_problem(r: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(
        r.status.as_u16(),
        status,
        "unexpected status; body: {}",
        r.text
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "body: {}",
        r.text
    );
    let p = r.json();
    assert_eq!(p["status"], status, "{p}");
    assert_eq!(p["code"], code, "{p}");
    assert_eq!(
        p["type"],
        format!("tag:widget-sessions,2026:problem:{code}"),
        "{p}"
    );
    assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    p
}

/// A `401` with this code and a `WWW-Authenticate` challenge.
#[track_caller]
pub fn assert_unauthorized(r: &Resp, code: &str) -> Value {
    let p = assert_problem(r, 401, code);
    assert_eq!(
        r.header("www-authenticate"),
        Some("HMAC realm=\"widget-sessions\"")
    );
    p
}

/// A `400 validation_failed`; returns its `(field, code)` pairs, each checked to have a
/// message.
#[track_caller]
pub fn validation_errors(r: &Resp) -> Vec<(String, String)> {
    let p = assert_problem(r, 400, "validation_failed");
    let errors = p["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors member: {p}"));
    assert!(!errors.is_empty(), "{p}");
    errors
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            (
                e["field"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `(field, code)` as owned strings.
pub fn fe(field: &str, code: &str) -> (String, String) {
    (field.to_string(), code.to_string())
}

/// The launch token of a `widgetUrl`.
pub fn token_of(widget_url: &str) -> &str {
    widget_url.rsplit_once("/w/").unwrap().1
}

/// `target/ownership-signers-npm/node_modules`: the domain's independent bitcoin signers
/// (bip322-js, bitcoinjs-message) installed with `npm ci` from their committed lockfile.
pub fn signer_modules() -> PathBuf {
    let signers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../domain/tests/signers");
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ownership-signers-npm");
    let lock = std::fs::read_to_string(signers.join("package-lock.json")).unwrap();
    let stamp = dir.join("installed-package-lock.json");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(signers.join(file), dir.join(file)).unwrap();
        }
        let status = std::process::Command::new("npm")
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for this test (apt-get install nodejs npm)");
        assert!(status.success(), "npm ci in {}", dir.display());
        std::fs::write(&stamp, lock).unwrap();
    }
    dir.join("node_modules")
}

/// Runs the independent signer `sign.js` with `command` and `input`.
pub fn bitcoin_signer(command: &str, input: &Value) -> Value {
    use std::io::Write as _;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../domain/tests/signers/sign.js");
    let mut child = std::process::Command::new("node")
        .arg(script)
        .arg(command)
        .env("NODE_PATH", signer_modules())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node is needed for this test (apt-get install nodejs)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sign.js {command} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A fresh secp256k1 key and its EVM address (lower case).
pub struct EvmKey(bitcoin::secp256k1::SecretKey);

impl EvmKey {
    pub fn new() -> Self {
        loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(k) = bitcoin::secp256k1::SecretKey::from_slice(&bytes) {
                return Self(k);
            }
        }
    }

    pub fn address(&self) -> String {
        let public = self
            .0
            .public_key(&bitcoin::secp256k1::Secp256k1::new())
            .serialize_uncompressed();
        let hash = <sha3::Keccak256 as sha3::Digest>::digest(&public[1..]);
        format!("0x{}", hex::encode(&hash[12..]))
    }

    /// EIP-191 `personal_sign` of `message`: r ‖ s ‖ v (27/28), hex.
    pub fn personal_sign(&self, message: &str) -> String {
        use sha3::Digest as _;
        let mut h = sha3::Keccak256::new();
        h.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
        h.update(message.as_bytes());
        let digest: [u8; 32] = h.finalize().into();
        let signature = bitcoin::secp256k1::Secp256k1::new()
            .sign_ecdsa_recoverable(&bitcoin::secp256k1::Message::from_digest(digest), &self.0);
        let (id, rs) = signature.serialize_compact();
        let mut out = rs.to_vec();
        out.push(27 + u8::try_from(id.to_i32()).unwrap());
        format!("0x{}", hex::encode(out))
    }
}
