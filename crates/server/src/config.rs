//! Configuration: environment variables (and optionally a `KEY=VALUE` file), validated at
//! start-up. Every problem is reported at once, each with what to set.
//!
//! [`VARIABLES`] is the one list of every variable the binary reads: [`Config::from_vars`]
//! reads through it (reading a variable that is not listed is itself a configuration
//! problem, so a test fails), `widget-sessions env` prints it, and README's table is
//! generated from it (`widget-sessions env --markdown`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::{BitcoinNetwork, LedgerTable, ReusePolicy, Rules};
use secrecy::SecretString;
use url::Url;

use crate::telemetry::{LogFormat, TraceExport};

/// Which part of the binary reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `serve` (and the admin subcommands, which share the database settings).
    Service,
    /// The `request` subcommand.
    Request,
}

/// One configuration variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// Its name.
    pub name: &'static str,
    /// What it sets.
    pub meaning: &'static str,
    /// Its default, in words.
    pub default: &'static str,
    /// A secret: it may also be given as a file, `{name}_FILE`, and is never printed.
    pub secret: bool,
    /// Who reads it.
    pub scope: Scope,
}

const fn var(name: &'static str, meaning: &'static str, default: &'static str) -> Var {
    Var {
        name,
        meaning,
        default,
        secret: false,
        scope: Scope::Service,
    }
}

const fn secret(name: &'static str, meaning: &'static str, default: &'static str) -> Var {
    Var {
        secret: true,
        ..var(name, meaning, default)
    }
}

const fn request(name: &'static str, meaning: &'static str, default: &'static str) -> Var {
    Var {
        scope: Scope::Request,
        ..var(name, meaning, default)
    }
}

/// Every variable the binary reads.
pub const VARIABLES: &[Var] = &[
    var(
        "WIDGET_SESSIONS_LISTEN",
        "listen address",
        "`127.0.0.1:8080`",
    ),
    var(
        "WIDGET_SESSIONS_PUBLIC_URL",
        "base of launch links",
        "`http://` + listen address",
    ),
    secret(
        "DATABASE_URL",
        "Postgres; migrations run at start-up",
        "unset: in-memory store",
    ),
    var(
        "WIDGET_SESSIONS_MIGRATE_ON_START",
        "`false`: do not migrate at start-up (run `widget-sessions migrate` before rolling out); refuse to start if migrations are pending",
        "`true`",
    ),
    var(
        "TRANSAK_ENVIRONMENT",
        "`staging`, `production` or `emulator`",
        "`emulator` (in-process) when nothing else is set; required otherwise",
    ),
    var(
        "TRANSAK_API_KEY",
        "partner API key",
        "required for staging/production",
    ),
    secret(
        "TRANSAK_API_SECRET",
        "partner API secret",
        "required for staging/production",
    ),
    var(
        "TRANSAK_REFERRER_DOMAIN",
        "`referrerDomain` sent with every widget",
        "required for staging/production",
    ),
    var(
        "TRANSAK_GATEWAY_URL",
        "base of Create Widget URL (both URLs set with `emulator`: an external emulator)",
        "per environment",
    ),
    var(
        "TRANSAK_API_URL",
        "base of Refresh Access Token",
        "per environment",
    ),
    var(
        "TRANSAK_WIDGET_PARAMS",
        "extra `widgetParams`, a JSON object, e.g. `{\"themeColor\":\"000000\"}`",
        "`{}`",
    ),
    var(
        "TRANSAK_TIMEOUT_MS",
        "timeout of one upstream attempt",
        "`5000`",
    ),
    var(
        "TRANSAK_MAX_RETRIES",
        "upstream retries after the first attempt (connection errors, 5xx)",
        "`2`",
    ),
    var(
        "WIDGET_SESSIONS_APPS_FILE",
        "JSON array of `{\"name\", \"apiKey\", \"apiSecret\"}` applications to create or keep at start-up",
        "unset",
    ),
    secret(
        "WIDGET_SESSIONS_SECRET_KEY",
        "32 random bytes, base64: seals secrets at rest and signs launch links",
        "generated for in-memory runs; required with Postgres",
    ),
    secret(
        "WIDGET_SESSIONS_OLD_SECRET_KEYS",
        "earlier at-rest keys, comma-separated: still open secrets and launch links (key rotation)",
        "unset",
    ),
    var(
        "WIDGET_SESSIONS_SESSION_TTL_SECS",
        "session lifetime, 1 to 300",
        "`300`",
    ),
    var(
        "WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS",
        "least remaining life for reuse",
        "`60`",
    ),
    var(
        "WIDGET_SESSIONS_RATE_LIMIT",
        "requests per second per application per instance (burst twice that); `0` disables",
        "`100`",
    ),
    var(
        "WIDGET_SESSIONS_CLIENT_RATE_LIMIT",
        "requests per second per client address to signed routes and launch links (burst twice that); `0` disables",
        "`500`",
    ),
    var(
        "WIDGET_SESSIONS_GLOBAL_RATE_LIMIT",
        "requests per second in all to signed routes and launch links, per instance; `0` disables",
        "`10000`",
    ),
    var(
        "WIDGET_SESSIONS_CLIENT_IP_HEADER",
        "a header your proxy sets to the client address (its last value is used), e.g. `x-forwarded-for`",
        "unset: the connection's peer",
    ),
    var(
        "WIDGET_SESSIONS_HEADER_READ_TIMEOUT_SECS",
        "a client must send a request head within this time",
        "`10`",
    ),
    var(
        "WIDGET_SESSIONS_BODY_TIMEOUT_SECS",
        "a client must send a request body within this time (`408`)",
        "`10`",
    ),
    var(
        "WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS",
        "longest time to answer a request (`503`); must exceed the claim wait plus the worst upstream call",
        "`60`",
    ),
    var(
        "WIDGET_SESSIONS_MAX_CONNECTIONS",
        "open connections per instance; more clients wait in the listen backlog",
        "`1024`",
    ),
    var(
        "WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS",
        "after SIGTERM, how long the instance keeps serving while reporting not ready",
        "`5`",
    ),
    var(
        "WIDGET_SESSIONS_SHUTDOWN_GRACE_SECS",
        "then, how long in-flight requests get to finish",
        "`20`",
    ),
    var(
        "WIDGET_SESSIONS_METRICS_LISTEN",
        "serve `/metrics` on this address only (not on the main listener)",
        "unset: `/metrics` on the main listener",
    ),
    var(
        "WIDGET_SESSIONS_RETENTION_DAYS",
        "ended sessions (and their events and deliveries) older than this are purged",
        "`90`",
    ),
    var(
        "WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS",
        "`true`: webhook URLs may use `http` and reach loopback and private addresses (local runs and tests only)",
        "`true` for in-memory runs, `false` with Postgres",
    ),
    var(
        "WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE",
        "seconds between webhook attempts, comma-separated, e.g. `5,30,120`: the whole schedule (one retry after each, then `FAILED`)",
        "5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 2 h until 24 h after the event",
    ),
    var(
        "WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS",
        "longest wait for a webhook endpoint's answer",
        "`10000`",
    ),
    var(
        "WIDGET_SESSIONS_WEBHOOK_POLL_MS",
        "how often a delivery worker looks for due deliveries when nothing woke it (new events wake it at once)",
        "`1000`",
    ),
    var(
        "WIDGET_SESSIONS_WEBHOOK_LEASE_SECS",
        "how long an instance holds a delivery it claimed before another may take it over (must exceed the webhook timeout)",
        "`30`",
    ),
    var(
        "WIDGET_SESSIONS_EXPIRY_SWEEP_SECS",
        "how often each instance looks for sessions that expired, to emit `session.expired`",
        "`5`",
    ),
    var(
        "WIDGET_SESSIONS_BITCOIN_NETWORK",
        "`mainnet`, `testnet`, `signet` or `regtest` (invoice and address checks)",
        "`mainnet`",
    ),
    var(
        "WIDGET_SESSIONS_LEDGER",
        "the ledger table, `CURRENCY:NETWORK,…`",
        "`BTC:BTC,ETH:ETH,POL:POLYGON,SOL:SOL,BNB:BSC,TRX:TRON,USDC:ETH,USDT:ETH`",
    ),
    var(
        "WIDGET_SESSIONS_CLAIM_LEASE_SECS",
        "how long a minting request holds its key (must outlast the worst upstream call)",
        "`30`",
    ),
    var(
        "WIDGET_SESSIONS_CLAIM_WAIT_SECS",
        "how long an identical request waits for a mint in progress before `503`",
        "`25`",
    ),
    var(
        "WIDGET_SESSIONS_DB_MAX_CONNECTIONS",
        "database connections per instance",
        "`16`",
    ),
    var(
        "WIDGET_SESSIONS_LOG_FORMAT",
        "`json`, `pretty` or `auto` (JSON when standard output is not a terminal)",
        "`auto`",
    ),
    var(
        "RUST_LOG",
        "log filter, e.g. `debug` or `info,widget_sessions=debug`",
        "`info,sqlx=warn,tower_http=info`",
    ),
    var(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "export traces with OpenTelemetry over OTLP/HTTP to this collector (`/v1/traces` is appended), e.g. `http://127.0.0.1:4318`; needs a build with the `otel` feature",
        "unset: no trace export",
    ),
    var(
        "OTEL_SERVICE_NAME",
        "the `service.name` of exported traces",
        "`widget-sessions`",
    ),
    var(
        "WIDGET_SESSIONS_CONFIG_FILE",
        "a `KEY=VALUE` file read first; the environment wins",
        "unset",
    ),
    request(
        "WIDGET_SESSIONS_URL",
        "`request`: the service's base URL",
        "`http://127.0.0.1:8080`",
    ),
    request(
        "WIDGET_SESSIONS_API_KEY",
        "`request`: the application's API key",
        "none (or `--api-key`)",
    ),
    Var {
        secret: true,
        ..request(
            "WIDGET_SESSIONS_API_SECRET",
            "`request`: the application's API secret",
            "none (or `--api-secret`)",
        )
    },
];

/// The standalone emulator's default partner credentials (`transak-emulator`'s
/// `DEFAULT_API_KEY` and `DEFAULT_API_SECRET`), used for an external emulator when none are
/// configured.
const EMULATOR_API_KEY: &str = "emulator-api-key";
const EMULATOR_API_SECRET: &str = "emulator-api-secret";

/// Where the upstream is.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// Start a Transak emulator inside this process (zero-configuration runs).
    InProcessEmulator,
    /// A Transak environment (or an external emulator) over HTTP.
    Remote(Box<RemoteUpstream>),
}

/// A Transak environment reached over HTTP.
#[derive(Debug, Clone)]
pub struct RemoteUpstream {
    /// staging, production or emulator.
    pub environment: transak::Environment,
    /// Partner API key.
    pub api_key: String,
    /// Partner API secret.
    pub api_secret: SecretString,
    /// `referrerDomain` sent with every widget.
    pub referrer_domain: String,
    /// Override of the Create Widget URL base.
    pub gateway_url: Option<Url>,
    /// Override of the Refresh Token base.
    pub api_url: Option<Url>,
    /// Extra widget params (`TRANSAK_WIDGET_PARAMS`, a JSON object).
    pub extra_widget_params: serde_json::Map<String, serde_json::Value>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Base of launch links (`{public_url}/w/{token}`); `None`: `http://` and the address the
    /// instance listens on.
    pub public_url: Option<Url>,
    /// Postgres; `None` runs on the in-memory store.
    pub database_url: Option<SecretString>,
    /// The upstream.
    pub upstream: Upstream,
    /// Applications to create (or keep) at start-up.
    pub apps_file: Option<PathBuf>,
    /// The at-rest key (base64 of 32 bytes); `None` only for in-memory runs (a key is
    /// generated).
    pub secret_key: Option<SecretString>,
    /// TTL and least remaining life for reuse.
    pub policy: ReusePolicy,
    /// Requests per second per application per instance (burst twice that); 0 disables.
    pub rate_limit: u32,
    /// Ended sessions older than this are purged.
    pub retention: Duration,
    /// Ledger table and bitcoin network.
    pub rules: Rules,
    /// Log format.
    pub log_format: LogFormat,
    /// Where traces are exported, if anywhere.
    pub traces: Option<TraceExport>,
    /// Most database connections per instance.
    pub db_max_connections: u32,
    /// Claim protocol tuning (lease, wait).
    pub claims: app::ClaimSettings,
    /// Per-attempt upstream timeout.
    pub upstream_timeout: Duration,
    /// Upstream retries after the first attempt.
    pub upstream_retries: u32,
    /// Earlier at-rest keys (base64), still used to open and to check launch links.
    pub old_secret_keys: Vec<SecretString>,
    /// Limits in front of authentication and launch links.
    pub client_limits: api::state::ClientLimits,
    /// Request and body timeouts.
    pub http_limits: api::state::HttpLimits,
    /// Header-read timeout, connection cap, shutdown grace.
    pub connections: crate::http_server::ConnectionSettings,
    /// Where `/metrics` is served on its own, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether `serve` applies pending migrations at start-up.
    pub migrate_on_start: bool,
    /// After SIGTERM, how long to keep serving while reporting not ready.
    pub shutdown_delay: Duration,
    /// Webhook endpoints, delivery and the expiry sweep.
    pub webhooks: app::WebhookSettings,
    /// Longest wait for a webhook endpoint's answer.
    pub webhook_timeout: Duration,
    /// The travel-rule window and the retention of compliance records.
    pub travel_rule: app::TravelRuleSettings,
}

/// Every configuration problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Reads variables through [`VARIABLES`], collecting problems.
struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    problems: RefCell<Vec<String>>,
    read: RefCell<Vec<&'static str>>,
}

impl Reader<'_> {
    fn problem(&self, p: impl Into<String>) {
        self.problems.borrow_mut().push(p.into());
    }

    /// The trimmed, non-empty value of a listed variable; for a secret, `{name}_FILE` names a
    /// file holding it instead.
    fn get(&self, name: &str) -> Option<String> {
        let Some(var) = VARIABLES.iter().find(|v| v.name == name) else {
            self.problem(format!(
                "{name} is read but not listed among the variables (a bug in this build)"
            ));
            return None;
        };
        self.read.borrow_mut().push(var.name);
        let direct = self
            .vars
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if !var.secret {
            return direct;
        }
        let file_var = format!("{name}_FILE");
        let file = self
            .vars
            .get(&file_var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.problem(format!("set {name} or {file_var}, not both"));
                None
            }
            (Some(v), None) => Some(v),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => Some(text.trim().to_string()).filter(|v| !v.is_empty()),
                Err(e) => {
                    self.problem(format!("{file_var}={path:?} cannot be read: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn number(&self, name: &str, default: u64) -> u64 {
        match self.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problem(format!("{name}={v:?} must be a whole number"));
                default
            }),
        }
    }
}

/// Only the database URL (`DATABASE_URL` or `DATABASE_URL_FILE`): what `migrate` needs, so
/// that migrating before a rollout does not require the service's other settings.
///
/// # Errors
///
/// The variable is set both ways, its file cannot be read, or it is not a Postgres URL.
pub fn database_url_from_vars(
    vars: &HashMap<String, String>,
) -> Result<Option<SecretString>, ConfigError> {
    let r = Reader {
        vars,
        problems: RefCell::new(Vec::new()),
        read: RefCell::new(Vec::new()),
    };
    let url = r.get("DATABASE_URL");
    if let Some(url) = &url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        r.problem("DATABASE_URL must be a postgres:// or postgresql:// URL");
    }
    let problems = r.problems.into_inner();
    if problems.is_empty() {
        Ok(url.map(SecretString::from))
    } else {
        Err(ConfigError(problems))
    }
}

impl Config {
    /// Reads the process environment (and `WIDGET_SESSIONS_CONFIG_FILE`, if set).
    ///
    /// # Errors
    ///
    /// Every problem, with what to set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_vars()?)
    }

    /// Builds the configuration from a map of variables.
    ///
    /// # Errors
    ///
    /// Every problem, with what to set.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::read(vars).0
    }

    /// The configuration, and the names of the variables that were read.
    fn read(vars: &HashMap<String, String>) -> (Result<Self, ConfigError>, Vec<&'static str>) {
        let r = Reader {
            vars,
            problems: RefCell::new(Vec::new()),
            read: RefCell::new(Vec::new()),
        };
        let config = Self::build(&r);
        (config, r.read.into_inner())
    }

    fn build(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let listen = match r.get("WIDGET_SESSIONS_LISTEN") {
            None => default_listen,
            Some(v) => v.parse().unwrap_or_else(|_| {
                r.problem(format!(
                    "WIDGET_SESSIONS_LISTEN={v:?} is not an address; use HOST:PORT, e.g. 0.0.0.0:8080"
                ));
                default_listen
            }),
        };
        let public_url = match r.get("WIDGET_SESSIONS_PUBLIC_URL") {
            None => None,
            Some(v) => match Url::parse(&v) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.query().is_none() =>
                {
                    Some(u)
                }
                _ => {
                    r.problem(format!(
                        "WIDGET_SESSIONS_PUBLIC_URL={v:?} must be an http(s) URL without a query, e.g. https://sessions.example.com"
                    ));
                    None
                }
            },
        };

        let database_url = r.get("DATABASE_URL");
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            r.problem("DATABASE_URL must be a postgres:// or postgresql:// URL");
        }
        let secret_key = r.get("WIDGET_SESSIONS_SECRET_KEY");
        if database_url.is_some() && secret_key.is_none() {
            r.problem(
                "WIDGET_SESSIONS_SECRET_KEY is required with DATABASE_URL (secrets are sealed with it); \
                 generate one with `openssl rand -base64 32` and keep it safe",
            );
        }
        if let Some(key) = &secret_key
            && let Err(e) = keyring::Keyring::check_key(key)
        {
            r.problem(format!("WIDGET_SESSIONS_SECRET_KEY {e}"));
        }

        let old_secret_keys: Vec<String> = r
            .get("WIDGET_SESSIONS_OLD_SECRET_KEYS")
            .map(|v| {
                v.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for (i, key) in old_secret_keys.iter().enumerate() {
            if let Err(e) = keyring::Keyring::check_key(key) {
                r.problem(format!(
                    "WIDGET_SESSIONS_OLD_SECRET_KEYS, key {}: {e}",
                    i + 1
                ));
            }
        }
        if secret_key.is_none() && !old_secret_keys.is_empty() {
            r.problem("WIDGET_SESSIONS_OLD_SECRET_KEYS needs WIDGET_SESSIONS_SECRET_KEY (the current key)");
        }

        let upstream = upstream(r, database_url.is_some());

        let ttl = r.number("WIDGET_SESSIONS_SESSION_TTL_SECS", 300);
        let min_remaining = r.number("WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS", 60);
        let policy = ReusePolicy::new(Duration::from_secs(ttl), Duration::from_secs(min_remaining))
            .unwrap_or_else(|e| {
                r.problem(format!(
                    "WIDGET_SESSIONS_SESSION_TTL_SECS / WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS: {e}"
                ));
                ReusePolicy::default()
            });
        let rate_limit =
            u32::try_from(r.number("WIDGET_SESSIONS_RATE_LIMIT", 100)).unwrap_or_else(|_| {
                r.problem("WIDGET_SESSIONS_RATE_LIMIT is too large");
                100
            });
        let retention_days = r.number("WIDGET_SESSIONS_RETENTION_DAYS", 90);
        if retention_days == 0 || retention_days > 36_500 {
            r.problem("WIDGET_SESSIONS_RETENTION_DAYS must be between 1 and 36500");
        }
        let db_max_connections = u32::try_from(r.number("WIDGET_SESSIONS_DB_MAX_CONNECTIONS", 16))
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .unwrap_or_else(|| {
                r.problem("WIDGET_SESSIONS_DB_MAX_CONNECTIONS must be between 1 and 1000");
                16
            });

        let lease = r.number("WIDGET_SESSIONS_CLAIM_LEASE_SECS", 30);
        let wait = r.number("WIDGET_SESSIONS_CLAIM_WAIT_SECS", 25);
        let timeout_ms = r.number("TRANSAK_TIMEOUT_MS", 5000);
        let retries = r.number("TRANSAK_MAX_RETRIES", 2);
        if !(100..=300_000).contains(&timeout_ms) {
            r.problem("TRANSAK_TIMEOUT_MS must be between 100 and 300000");
        }
        if retries > 10 {
            r.problem("TRANSAK_MAX_RETRIES must be at most 10");
        }
        if wait == 0 || wait > 300 {
            r.problem("WIDGET_SESSIONS_CLAIM_WAIT_SECS must be between 1 and 300");
        }
        // A live minter must never lose its claim: the lease has to outlast the worst mint
        // (every attempt timing out, plus backoff of at most 2 s per retry).
        let worst_mint_ms = timeout_ms.saturating_mul(retries + 1) + 2_000 * retries;
        if lease.saturating_mul(1000) <= worst_mint_ms || lease > 3600 {
            r.problem(format!(
                "WIDGET_SESSIONS_CLAIM_LEASE_SECS={lease} must exceed the worst upstream call ({} s: TRANSAK_TIMEOUT_MS × (TRANSAK_MAX_RETRIES + 1) + backoff) and be at most 3600",
                worst_mint_ms.div_ceil(1000)
            ));
        }

        let per_client = u32::try_from(r.number("WIDGET_SESSIONS_CLIENT_RATE_LIMIT", 500))
            .unwrap_or_else(|_| {
                r.problem("WIDGET_SESSIONS_CLIENT_RATE_LIMIT is too large");
                500
            });
        let global = u32::try_from(r.number("WIDGET_SESSIONS_GLOBAL_RATE_LIMIT", 10_000))
            .unwrap_or_else(|_| {
                r.problem("WIDGET_SESSIONS_GLOBAL_RATE_LIMIT is too large");
                10_000
            });
        let client_ip_header = r.get("WIDGET_SESSIONS_CLIENT_IP_HEADER").and_then(|h| {
            axum::http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                .map_err(|_| {
                    r.problem(format!(
                        "WIDGET_SESSIONS_CLIENT_IP_HEADER={h:?} is not a header name"
                    ))
                })
                .ok()
        });
        let bounded = |name: &str, default: u64, min: u64, max: u64| {
            let v = r.number(name, default);
            if !(min..=max).contains(&v) {
                r.problem(format!("{name} must be between {min} and {max}"));
            }
            v.clamp(min, max)
        };
        let header_read = bounded("WIDGET_SESSIONS_HEADER_READ_TIMEOUT_SECS", 10, 1, 300);
        let body_timeout = bounded("WIDGET_SESSIONS_BODY_TIMEOUT_SECS", 10, 1, 300);
        let request_timeout = bounded("WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS", 60, 1, 3600);
        let max_connections = bounded("WIDGET_SESSIONS_MAX_CONNECTIONS", 1024, 1, 1_000_000);
        let grace = bounded("WIDGET_SESSIONS_SHUTDOWN_GRACE_SECS", 20, 0, 3600);
        let shutdown_delay = bounded("WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS", 5, 0, 3600);
        // A create may wait for another request's mint, then mint itself: the request timeout
        // must not cut that short (the client would retry a create that is still running).
        if request_timeout.saturating_mul(1000) <= wait.saturating_mul(1000) + worst_mint_ms {
            r.problem(format!(
                "WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS={request_timeout} must exceed WIDGET_SESSIONS_CLAIM_WAIT_SECS plus the worst upstream call ({} s)",
                (wait * 1000 + worst_mint_ms).div_ceil(1000)
            ));
        }
        let metrics_listen = r.get("WIDGET_SESSIONS_METRICS_LISTEN").and_then(|v| {
            v.parse::<SocketAddr>()
                .map_err(|_| {
                    r.problem(format!(
                        "WIDGET_SESSIONS_METRICS_LISTEN={v:?} is not an address; use HOST:PORT, e.g. 0.0.0.0:9090"
                    ))
                })
                .ok()
        });

        let bitcoin = match r.get("WIDGET_SESSIONS_BITCOIN_NETWORK") {
            None => BitcoinNetwork::Mainnet,
            Some(v) => v.parse().unwrap_or_else(|e| {
                r.problem(format!("WIDGET_SESSIONS_BITCOIN_NETWORK: {e}"));
                BitcoinNetwork::Mainnet
            }),
        };
        let ledger = match r.get("WIDGET_SESSIONS_LEDGER") {
            None => LedgerTable::default(),
            Some(v) => v.parse().unwrap_or_else(|e| {
                r.problem(format!(
                    "WIDGET_SESSIONS_LEDGER: {e} (expected CURRENCY:NETWORK pairs, e.g. BTC:BTC,USDC:ETH)"
                ));
                LedgerTable::default()
            }),
        };
        let log_format = match r.get("WIDGET_SESSIONS_LOG_FORMAT").as_deref() {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                r.problem(format!(
                    "WIDGET_SESSIONS_LOG_FORMAT={other:?} must be json, pretty or auto"
                ));
                LogFormat::Auto
            }
        };
        let traces = trace_export(r);
        let (webhooks, webhook_timeout) = webhook_settings(r, database_url.is_none());
        let apps_file = r.get("WIDGET_SESSIONS_APPS_FILE").map(PathBuf::from);
        let migrate_on_start = match r.get("WIDGET_SESSIONS_MIGRATE_ON_START").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                r.problem(format!(
                    "WIDGET_SESSIONS_MIGRATE_ON_START={other:?} must be true or false"
                ));
                true
            }
        };

        let problems = r.problems.borrow().clone();
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Config {
            listen,
            public_url,
            database_url: database_url.map(SecretString::from),
            upstream,
            apps_file,
            secret_key: secret_key.map(SecretString::from),
            policy,
            rate_limit,
            retention: Duration::from_secs(retention_days * 86_400),
            rules: Rules::new(ledger, bitcoin),
            log_format,
            traces,
            db_max_connections,
            claims: app::ClaimSettings {
                lease: Duration::from_secs(lease),
                wait: Duration::from_secs(wait),
                ..app::ClaimSettings::default()
            },
            upstream_timeout: Duration::from_millis(timeout_ms),
            upstream_retries: u32::try_from(retries).unwrap_or(2),
            old_secret_keys: old_secret_keys
                .into_iter()
                .map(SecretString::from)
                .collect(),
            client_limits: api::state::ClientLimits {
                per_client,
                global,
                client_ip_header,
            },
            http_limits: api::state::HttpLimits {
                request_timeout: Duration::from_secs(request_timeout),
                body_timeout: Duration::from_secs(body_timeout),
            },
            connections: crate::http_server::ConnectionSettings {
                header_read_timeout: Duration::from_secs(header_read),
                max_connections: usize::try_from(max_connections).unwrap_or(1024),
                shutdown_grace: Duration::from_secs(grace),
            },
            metrics_listen,
            migrate_on_start,
            shutdown_delay: Duration::from_secs(shutdown_delay),
            webhooks,
            webhook_timeout,
            travel_rule: app::TravelRuleSettings::default(),
        })
    }

    /// The public base of launch links without a trailing slash, for an instance listening on
    /// `listening` (the configured public URL, or `http://` and that address).
    pub fn public_base(&self, listening: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{listening}"),
        }
    }
}

/// The webhook settings and the sender's timeout. Private networks are allowed by default
/// only on the in-memory store (local runs).
fn webhook_settings(r: &Reader<'_>, in_memory: bool) -> (app::WebhookSettings, Duration) {
    let allow_private_networks = match r
        .get("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS")
        .as_deref()
    {
        None => in_memory,
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            r.problem(format!(
                "WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS={other:?} must be true or false"
            ));
            false
        }
    };
    let mut settings = app::WebhookSettings {
        allow_private_networks,
        ..app::WebhookSettings::default()
    };
    if let Some(v) = r.get("WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE") {
        match domain::RetrySchedule::parse(&v) {
            Ok(schedule) => settings.schedule = schedule,
            Err(e) => r.problem(format!("WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE={v:?}: {e}")),
        }
    }
    let timeout_ms = r.number("WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS", 10_000);
    if !(100..=60_000).contains(&timeout_ms) {
        r.problem("WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS must be between 100 and 60000");
    }
    let lease = r.number("WIDGET_SESSIONS_WEBHOOK_LEASE_SECS", 30);
    if !(1..=3600).contains(&lease) {
        r.problem("WIDGET_SESSIONS_WEBHOOK_LEASE_SECS must be between 1 and 3600");
    } else if lease.saturating_mul(1000) <= timeout_ms {
        // A lease that ends while the attempt still runs hands the delivery to another
        // instance: it would be sent twice.
        r.problem(format!(
            "WIDGET_SESSIONS_WEBHOOK_LEASE_SECS={lease} must exceed WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS={timeout_ms}"
        ));
    }
    settings.lease = Duration::from_secs(lease.clamp(1, 3600));
    let poll = r.number("WIDGET_SESSIONS_WEBHOOK_POLL_MS", 1000);
    if !(10..=3_600_000).contains(&poll) {
        r.problem("WIDGET_SESSIONS_WEBHOOK_POLL_MS must be between 10 and 3600000");
    }
    settings.tick = Duration::from_millis(poll.clamp(10, 3_600_000));
    let sweep = r.number("WIDGET_SESSIONS_EXPIRY_SWEEP_SECS", 5);
    if !(1..=300).contains(&sweep) {
        r.problem("WIDGET_SESSIONS_EXPIRY_SWEEP_SECS must be between 1 and 300");
    }
    settings.sweep_every = Duration::from_secs(sweep.clamp(1, 300));
    (
        settings,
        Duration::from_millis(timeout_ms.clamp(100, 60_000)),
    )
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`; an endpoint in a build that cannot
/// export is a problem, not silently ignored.
fn trace_export(r: &Reader<'_>) -> Option<TraceExport> {
    let service_name = r
        .get("OTEL_SERVICE_NAME")
        .unwrap_or_else(|| "widget-sessions".to_string());
    let endpoint = r.get("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    if !cfg!(feature = "otel") {
        r.problem(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but this build does not export traces: build with `--features otel`, or unset it",
        );
        return None;
    }
    match Url::parse(&endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Some(TraceExport {
                endpoint: u,
                service_name,
            })
        }
        _ => {
            r.problem(format!(
                "OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?} must be an http(s) URL, e.g. http://127.0.0.1:4318"
            ));
            None
        }
    }
}

/// The process environment over the `WIDGET_SESSIONS_CONFIG_FILE`, if one is set.
///
/// # Errors
///
/// The file cannot be read or parsed.
pub fn process_vars() -> Result<HashMap<String, String>, ConfigError> {
    let mut vars: HashMap<String, String> = HashMap::new();
    if let Ok(path) = std::env::var("WIDGET_SESSIONS_CONFIG_FILE") {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError(vec![format!(
                "WIDGET_SESSIONS_CONFIG_FILE={path} cannot be read: {e}"
            )])
        })?;
        vars.extend(parse_env_file(&text).map_err(|e| ConfigError(vec![format!("{path}: {e}")]))?);
    }
    vars.extend(std::env::vars());
    Ok(vars)
}

const ENVIRONMENTS: &str = "staging, production or emulator";

fn upstream(r: &Reader<'_>, with_database: bool) -> Upstream {
    let key = r.get("TRANSAK_API_KEY");
    let secret = r.get("TRANSAK_API_SECRET");
    let referrer = r.get("TRANSAK_REFERRER_DOMAIN");
    let gateway_url = r.get("TRANSAK_GATEWAY_URL");
    let api_url = r.get("TRANSAK_API_URL");
    let extras = match r.get("TRANSAK_WIDGET_PARAMS") {
        None => serde_json::Map::new(),
        Some(v) => match serde_json::from_str::<serde_json::Value>(&v) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                r.problem(
                    "TRANSAK_WIDGET_PARAMS must be a JSON object, e.g. {\"themeColor\":\"000000\"}",
                );
                serde_json::Map::new()
            }
        },
    };
    let environment = match r.get("TRANSAK_ENVIRONMENT") {
        Some(v) => match v.parse::<transak::Environment>() {
            Ok(e) => e,
            Err(_) => {
                r.problem(format!("TRANSAK_ENVIRONMENT={v:?} must be {ENVIRONMENTS}"));
                return Upstream::InProcessEmulator;
            }
        },
        None if key.is_some() || secret.is_some() || gateway_url.is_some() || api_url.is_some() => {
            r.problem(format!(
                "TRANSAK_ENVIRONMENT must be set ({ENVIRONMENTS}) when Transak credentials or URLs are given"
            ));
            return Upstream::InProcessEmulator;
        }
        None if with_database => {
            r.problem(
                "DATABASE_URL is set but Transak is not configured: set TRANSAK_ENVIRONMENT=staging or \
                 production with TRANSAK_API_KEY, TRANSAK_API_SECRET and TRANSAK_REFERRER_DOMAIN \
                 (or TRANSAK_ENVIRONMENT=emulator to use the emulator on purpose)",
            );
            return Upstream::InProcessEmulator;
        }
        None => transak::Environment::Emulator,
    };
    if environment == transak::Environment::Emulator && gateway_url.is_none() && api_url.is_none() {
        if !cfg!(feature = "emulator") {
            r.problem(
                "this build has no in-process Transak emulator (built without the `emulator` feature): \
                 set TRANSAK_ENVIRONMENT=staging or production with credentials, or point \
                 TRANSAK_GATEWAY_URL and TRANSAK_API_URL at a standalone emulator",
            );
        }
        return Upstream::InProcessEmulator;
    }
    let require = |name: &str, v: Option<String>| {
        v.unwrap_or_else(|| {
            r.problem(format!(
                "{name} is required with TRANSAK_ENVIRONMENT={environment}"
            ));
            String::new()
        })
    };
    let (key, secret, referrer) = if environment == transak::Environment::Emulator {
        (
            key.unwrap_or_else(|| EMULATOR_API_KEY.to_string()),
            secret.unwrap_or_else(|| EMULATOR_API_SECRET.to_string()),
            referrer.unwrap_or_else(|| "localhost".to_string()),
        )
    } else {
        (
            require("TRANSAK_API_KEY", key),
            require("TRANSAK_API_SECRET", secret),
            require("TRANSAK_REFERRER_DOMAIN", referrer),
        )
    };
    if environment == transak::Environment::Emulator && (gateway_url.is_none() || api_url.is_none())
    {
        r.problem(
            "TRANSAK_GATEWAY_URL and TRANSAK_API_URL must both be set to use an external emulator (or neither, for the in-process one)",
        );
    }
    let parse_url = |name: &str, v: Option<String>| {
        v.and_then(|v| match Url::parse(&v) {
            Ok(u) => Some(u),
            Err(e) => {
                r.problem(format!("{name}={v:?} is not a URL: {e}"));
                None
            }
        })
    };
    Upstream::Remote(Box::new(RemoteUpstream {
        environment,
        api_key: key,
        api_secret: SecretString::from(secret),
        referrer_domain: referrer,
        gateway_url: parse_url("TRANSAK_GATEWAY_URL", gateway_url),
        api_url: parse_url("TRANSAK_API_URL", api_url),
        extra_widget_params: extras,
    }))
}

/// Parses a `KEY=VALUE` file: blank lines and `#` comments ignored, optional `export `
/// prefix, values optionally in single or double quotes.
fn parse_env_file(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", n + 1))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

/// `widget-sessions env`: one line per variable.
pub fn listing() -> String {
    let mut out = String::new();
    for v in VARIABLES {
        let file = if v.secret {
            format!(" (or {}_FILE)", v.name)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:<42} {}{file} (default: {})\n",
            v.name,
            v.meaning.replace('`', ""),
            v.default.replace('`', "")
        ));
    }
    out
}

/// `widget-sessions env --markdown`: README's table of variables.
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | meaning | default |\n|---|---|---|\n");
    for v in VARIABLES {
        let name = if v.secret {
            format!("`{0}` (or `{0}_FILE`)", v.name)
        } else {
            format!("`{}`", v.name)
        };
        out.push_str(&format!("| {name} | {} | {} |\n", v.meaning, v.default));
    }
    out
}

#[cfg(test)]
mod tests;
