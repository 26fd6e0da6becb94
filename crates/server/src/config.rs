//! Configuration: environment variables (and optionally a `KEY=VALUE` file), validated at
//! start-up. Every problem is reported at once, each naming its variable.
//!
//! Each variable is declared once, in [`variables`]: its name, its format (what it holds,
//! how it is written, whether it is a secret), its default (the owning crate's constant),
//! its range or the owning crate's rule, who reads it and its one-line doc. Variables are
//! read only through those declarations ([`setting::Reader`]); from them derive the parsing
//! and the checks of each variable with their messages, `widget-sessions env` ([`listing`])
//! and README's table ([`markdown_table`]). What spans several variables (the claim lease
//! against the worst upstream call, the Transak environment's rules, …) is checked here, in
//! [`Config::from_vars`].

pub mod format;
pub mod setting;
pub mod variables;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::{ReusePolicy, Rules};
use secrecy::SecretString;
use transak::TransakConfig;
use url::Url;

use self::setting::{Reader, Setting};
use self::variables::*;
use crate::telemetry::{LogFormat, TraceExport};

pub use self::setting::{Description, Variable};
pub use self::variables::VARIABLES;

/// The Transak emulator's default partner API key (`transak-emulator`'s `DEFAULT_API_KEY`,
/// known here also in builds without the emulator), used for an external emulator when none
/// is configured.
pub const EMULATOR_API_KEY: &str = "emulator-api-key";
/// The Transak emulator's default partner API secret (`transak-emulator`'s
/// `DEFAULT_API_SECRET`).
pub const EMULATOR_API_SECRET: &str = "emulator-api-secret";

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

/// Only the database URL (`DATABASE_URL` or `DATABASE_URL_FILE`): what `migrate` needs, so
/// that migrating before a rollout does not require the service's other settings.
///
/// # Errors
///
/// The variable is set both ways, its file cannot be read, or it is not a Postgres URL.
pub fn database_url_from_vars(
    vars: &HashMap<String, String>,
) -> Result<Option<SecretString>, ConfigError> {
    let r = Reader::new(vars);
    let url = r.value(&DATABASE_URL);
    r.finish().map(|()| url)
}

/// The API secret of the `request` and `listen` subcommands when not given on the command
/// line: `WIDGET_SESSIONS_API_SECRET`, or the file `WIDGET_SESSIONS_API_SECRET_FILE` names.
///
/// # Errors
///
/// The variable is set both ways, or its file cannot be read.
pub fn api_secret_from_vars(
    vars: &HashMap<String, String>,
) -> Result<Option<SecretString>, ConfigError> {
    let r = Reader::new(vars);
    let secret = r.value(&WIDGET_SESSIONS_API_SECRET);
    r.finish().map(|()| secret)
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
        let r = Reader::new(vars);
        let config = Self::build(&r);
        let config = r.finish().map(|()| config).map_err(in_declaration_order);
        (config, r.read())
    }

    /// Reads every setting of the service and checks what spans several of them; the
    /// problems are in `r`.
    fn build(r: &Reader<'_>) -> Self {
        let with_database = r.is_set(&DATABASE_URL);
        let database_url = r.value(&DATABASE_URL);
        let secret_key = r.value(&WIDGET_SESSIONS_SECRET_KEY);
        let with_key = r.is_set(&WIDGET_SESSIONS_SECRET_KEY);
        if with_database && !with_key {
            r.problem(
                "WIDGET_SESSIONS_SECRET_KEY is required with DATABASE_URL (secrets are sealed with it); \
                 generate one with `openssl rand -base64 32` and keep it safe",
            );
        }
        let old_secret_keys = r
            .value(&WIDGET_SESSIONS_OLD_SECRET_KEYS)
            .unwrap_or_default();
        if !with_key && r.is_set(&WIDGET_SESSIONS_OLD_SECRET_KEYS) {
            r.problem(
                "WIDGET_SESSIONS_OLD_SECRET_KEYS needs WIDGET_SESSIONS_SECRET_KEY (the current key)",
            );
        }
        let (upstream_timeout, upstream_retries, claims, request_timeout) = call_timing(r);
        let (webhooks, webhook_timeout) = webhook_settings(r, !with_database);

        Config {
            listen: r.value(&WIDGET_SESSIONS_LISTEN),
            public_url: r.value(&WIDGET_SESSIONS_PUBLIC_URL),
            database_url,
            upstream: upstream(r, with_database),
            apps_file: r.value(&WIDGET_SESSIONS_APPS_FILE),
            secret_key,
            policy: reuse_policy(r),
            rate_limit: r.value(&WIDGET_SESSIONS_RATE_LIMIT),
            retention: r.value(&WIDGET_SESSIONS_RETENTION_DAYS),
            rules: Rules::new(
                r.value(&WIDGET_SESSIONS_LEDGER),
                r.value(&WIDGET_SESSIONS_BITCOIN_NETWORK),
            ),
            log_format: r.value(&WIDGET_SESSIONS_LOG_FORMAT),
            traces: trace_export(r),
            db_max_connections: r.value(&WIDGET_SESSIONS_DB_MAX_CONNECTIONS),
            claims,
            upstream_timeout,
            upstream_retries,
            old_secret_keys,
            client_limits: api::state::ClientLimits {
                per_client: r.value(&WIDGET_SESSIONS_CLIENT_RATE_LIMIT),
                global: r.value(&WIDGET_SESSIONS_GLOBAL_RATE_LIMIT),
                client_ip_header: r.value(&WIDGET_SESSIONS_CLIENT_IP_HEADER),
            },
            http_limits: api::state::HttpLimits {
                request_timeout,
                body_timeout: r.value(&WIDGET_SESSIONS_BODY_TIMEOUT_SECS),
            },
            connections: crate::http_server::ConnectionSettings {
                header_read_timeout: r.value(&WIDGET_SESSIONS_HEADER_READ_TIMEOUT_SECS),
                max_connections: r.value(&WIDGET_SESSIONS_MAX_CONNECTIONS),
                shutdown_grace: r.value(&WIDGET_SESSIONS_SHUTDOWN_GRACE_SECS),
            },
            metrics_listen: r.value(&WIDGET_SESSIONS_METRICS_LISTEN),
            migrate_on_start: r.value(&WIDGET_SESSIONS_MIGRATE_ON_START),
            shutdown_delay: r.value(&WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS),
            webhooks,
            webhook_timeout,
            travel_rule: travel_rule_settings(r),
        }
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

/// The problems in the order the variables they start with are declared (and listed).
fn in_declaration_order(ConfigError(mut problems): ConfigError) -> ConfigError {
    let names: Vec<&str> = VARIABLES.iter().map(|v| v.describe().name).collect();
    problems.sort_by_key(|p| {
        names
            .iter()
            .position(|name| p.starts_with(name))
            .unwrap_or(names.len())
    });
    ConfigError(problems)
}

/// The value of a setting already found valid, or its default when it was refused (the
/// configuration then has a problem and is not used).
fn or_default<F: format::Format>(value: Option<F::Value>, setting: &Setting<F>) -> F::Value {
    value.unwrap_or_else(|| setting.default_value())
}

/// The TTL and the least remaining life for reuse, as the domain accepts them together.
fn reuse_policy(r: &Reader<'_>) -> ReusePolicy {
    let ttl = r.checked(&WIDGET_SESSIONS_SESSION_TTL_SECS);
    let min_remaining = r.checked(&WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS);
    let (Some(ttl), Some(min_remaining)) = (ttl, min_remaining) else {
        return ReusePolicy::default();
    };
    ReusePolicy::new(ttl, min_remaining).unwrap_or_else(|e| {
        r.problem(format!(
            "{}={} with {}={}: {e}",
            WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS.name(),
            min_remaining.as_secs(),
            WIDGET_SESSIONS_SESSION_TTL_SECS.name(),
            ttl.as_secs()
        ));
        ReusePolicy::default()
    })
}

/// The upstream call's timeout and retries, and what must outlast the worst call (every
/// attempt timing out, plus backoff: [`TransakConfig::worst_case_call_with`]): the claim
/// lease, and the request timeout after the claim wait.
fn call_timing(r: &Reader<'_>) -> (Duration, u32, app::ClaimSettings, Duration) {
    let timeout = r.checked(&TRANSAK_TIMEOUT_MS);
    let retries = r.checked(&TRANSAK_MAX_RETRIES);
    let lease = r.checked(&WIDGET_SESSIONS_CLAIM_LEASE_SECS);
    let wait = r.checked(&WIDGET_SESSIONS_CLAIM_WAIT_SECS);
    let request_timeout = r.checked(&WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS);
    if let (Some(timeout), Some(retries)) = (timeout, retries) {
        // The gateway's own rules for this timing (its token refresh must outlast it too).
        if let Err(e) = TransakConfig::check_call_timing(timeout, retries) {
            r.problem(format!(
                "{}={} with {}={retries}: {e}",
                TRANSAK_TIMEOUT_MS.name(),
                timeout.as_millis(),
                TRANSAK_MAX_RETRIES.name()
            ));
        }
        let worst = TransakConfig::worst_case_call_with(timeout, retries);
        // A live minter must never lose its claim: the lease has to outlast the worst mint.
        if let Some(lease) = lease
            && lease <= worst
        {
            r.problem(format!(
                "{}={} must exceed the worst upstream call ({worst:?}: {} × ({} + 1) + backoff)",
                WIDGET_SESSIONS_CLAIM_LEASE_SECS.name(),
                lease.as_secs(),
                TRANSAK_TIMEOUT_MS.name(),
                TRANSAK_MAX_RETRIES.name(),
            ));
        }
        // A create may wait for another request's mint, then mint itself: the request
        // timeout must not cut that short (the client would retry a create still running).
        if let (Some(wait), Some(request_timeout)) = (wait, request_timeout)
            && request_timeout <= wait + worst
        {
            r.problem(format!(
                "{}={} must exceed {} plus the worst upstream call ({:?})",
                WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS.name(),
                request_timeout.as_secs(),
                WIDGET_SESSIONS_CLAIM_WAIT_SECS.name(),
                wait + worst
            ));
        }
    }
    let claims = app::ClaimSettings {
        lease: or_default(lease, &WIDGET_SESSIONS_CLAIM_LEASE_SECS),
        wait: or_default(wait, &WIDGET_SESSIONS_CLAIM_WAIT_SECS),
        ..app::ClaimSettings::default()
    };
    (
        or_default(timeout, &TRANSAK_TIMEOUT_MS),
        or_default(retries, &TRANSAK_MAX_RETRIES),
        claims,
        or_default(request_timeout, &WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS),
    )
}

/// The travel-rule window and the retention of compliance records.
fn travel_rule_settings(r: &Reader<'_>) -> app::TravelRuleSettings {
    let window = r.checked(&WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS);
    let retention = r.checked(&WIDGET_SESSIONS_RETENTION_DAYS);
    // A session purged while its window is still open would answer a late declaration with
    // 404 instead of recording it.
    if let (Some(window), Some(retention)) = (window, retention)
        && window >= retention
    {
        r.problem(format!(
            "{}={} must be shorter than {}={} days",
            WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS.name(),
            window.as_secs(),
            WIDGET_SESSIONS_RETENTION_DAYS.name(),
            retention.as_secs() / 86_400
        ));
    }
    app::TravelRuleSettings {
        window: or_default(window, &WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS),
        retention: r.value(&WIDGET_SESSIONS_TRAVEL_RULE_RETENTION_DAYS),
    }
}

/// The webhook settings and the sender's timeout. Private networks are allowed by default
/// only on the in-memory store (local runs).
fn webhook_settings(r: &Reader<'_>, in_memory: bool) -> (app::WebhookSettings, Duration) {
    let timeout = r.checked(&WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS);
    let lease = r.checked(&WIDGET_SESSIONS_WEBHOOK_LEASE_SECS);
    // A lease that ends while the attempt still runs hands the delivery to another instance:
    // it would be sent twice.
    if let (Some(timeout), Some(lease)) = (timeout, lease)
        && lease <= timeout
    {
        r.problem(format!(
            "{}={} must exceed {}={}",
            WIDGET_SESSIONS_WEBHOOK_LEASE_SECS.name(),
            lease.as_secs(),
            WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS.name(),
            timeout.as_millis()
        ));
    }
    let settings = app::WebhookSettings {
        allow_private_networks: r
            .value(&WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS)
            .unwrap_or(in_memory),
        schedule: r.value(&WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE),
        lease: or_default(lease, &WIDGET_SESSIONS_WEBHOOK_LEASE_SECS),
        tick: r.value(&WIDGET_SESSIONS_WEBHOOK_POLL_MS),
        per_application: r.value(&WIDGET_SESSIONS_WEBHOOK_MAX_IN_FLIGHT_PER_APPLICATION),
        sweep_every: r.value(&WIDGET_SESSIONS_EXPIRY_SWEEP_SECS),
        ..app::WebhookSettings::default()
    };
    (
        settings,
        or_default(timeout, &WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS),
    )
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`; an endpoint in a build that cannot
/// export is a problem, not silently ignored.
fn trace_export(r: &Reader<'_>) -> Option<TraceExport> {
    let service_name = r.value(&OTEL_SERVICE_NAME);
    if !cfg!(feature = "otel") {
        if r.is_set(&OTEL_EXPORTER_OTLP_ENDPOINT) {
            r.problem(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but this build does not export traces: build with `--features otel`, or unset it",
            );
        }
        return None;
    }
    Some(TraceExport {
        endpoint: r.value(&OTEL_EXPORTER_OTLP_ENDPOINT)?,
        service_name,
    })
}

/// The process environment over the `WIDGET_SESSIONS_CONFIG_FILE`, if one is set.
///
/// # Errors
///
/// The file cannot be read or parsed.
pub fn process_vars() -> Result<HashMap<String, String>, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let r = Reader::new(&env);
    let file = r.value(&WIDGET_SESSIONS_CONFIG_FILE);
    r.finish()?;
    let mut vars: HashMap<String, String> = HashMap::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError(vec![format!(
                "WIDGET_SESSIONS_CONFIG_FILE={} cannot be read: {e}",
                path.display()
            )])
        })?;
        vars.extend(
            parse_env_file(&text)
                .map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))?,
        );
    }
    vars.extend(env);
    Ok(vars)
}

const ENVIRONMENTS: &str = "staging, production or emulator";

fn upstream(r: &Reader<'_>, with_database: bool) -> Upstream {
    let key = r.value(&TRANSAK_API_KEY);
    let secret = r.value(&TRANSAK_API_SECRET);
    let referrer = r.value(&TRANSAK_REFERRER_DOMAIN);
    let gateway_url = r.value(&TRANSAK_GATEWAY_URL);
    let api_url = r.value(&TRANSAK_API_URL);
    let extras = r.value(&TRANSAK_WIDGET_PARAMS);
    let given = r.is_set(&TRANSAK_API_KEY)
        || r.is_set(&TRANSAK_API_SECRET)
        || r.is_set(&TRANSAK_GATEWAY_URL)
        || r.is_set(&TRANSAK_API_URL);
    let environment = match r.checked(&TRANSAK_ENVIRONMENT) {
        // Refused: the problem says which values are accepted.
        None => return Upstream::InProcessEmulator,
        Some(Some(environment)) => environment,
        Some(None) if given => {
            r.problem(format!(
                "TRANSAK_ENVIRONMENT must be set ({ENVIRONMENTS}) when Transak credentials or URLs are given"
            ));
            return Upstream::InProcessEmulator;
        }
        Some(None) if with_database => {
            r.problem(
                "DATABASE_URL is set but Transak is not configured: set TRANSAK_ENVIRONMENT=staging or \
                 production with TRANSAK_API_KEY, TRANSAK_API_SECRET and TRANSAK_REFERRER_DOMAIN \
                 (or TRANSAK_ENVIRONMENT=emulator to use the emulator on purpose)",
            );
            return Upstream::InProcessEmulator;
        }
        Some(None) => transak::Environment::Emulator,
    };
    let external = r.is_set(&TRANSAK_GATEWAY_URL) || r.is_set(&TRANSAK_API_URL);
    if environment == transak::Environment::Emulator && !external {
        if !cfg!(feature = "emulator") {
            r.problem(
                "this build has no in-process Transak emulator (built without the `emulator` feature): \
                 set TRANSAK_ENVIRONMENT=staging or production with credentials, or point \
                 TRANSAK_GATEWAY_URL and TRANSAK_API_URL at a standalone emulator",
            );
        }
        return Upstream::InProcessEmulator;
    }
    let (key, secret, referrer) = if environment == transak::Environment::Emulator {
        if !(r.is_set(&TRANSAK_GATEWAY_URL) && r.is_set(&TRANSAK_API_URL)) {
            r.problem(
                "TRANSAK_GATEWAY_URL and TRANSAK_API_URL must both be set to use an external emulator (or neither, for the in-process one)",
            );
        }
        (
            key.unwrap_or_else(|| EMULATOR_API_KEY.to_string()),
            secret.unwrap_or_else(|| SecretString::from(EMULATOR_API_SECRET)),
            referrer.unwrap_or_else(|| "localhost".to_string()),
        )
    } else {
        let required = |setting: &str| {
            r.problem(format!(
                "{setting} is required with TRANSAK_ENVIRONMENT={environment}"
            ));
        };
        if !r.is_set(&TRANSAK_API_KEY) {
            required(TRANSAK_API_KEY.name());
        }
        if !r.is_set(&TRANSAK_API_SECRET) {
            required(TRANSAK_API_SECRET.name());
        }
        if !r.is_set(&TRANSAK_REFERRER_DOMAIN) {
            required(TRANSAK_REFERRER_DOMAIN.name());
        }
        (
            key.unwrap_or_default(),
            secret.unwrap_or_else(|| SecretString::from("")),
            referrer.unwrap_or_default(),
        )
    };
    Upstream::Remote(Box::new(RemoteUpstream {
        environment,
        api_key: key,
        api_secret: secret,
        referrer_domain: referrer,
        gateway_url,
        api_url,
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
    for d in VARIABLES.iter().map(|v| v.describe()) {
        let file = if d.secret {
            format!(" (or {}_FILE)", d.name)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:<42} {}{file} (default: {})\n",
            d.name,
            d.meaning().replace('`', ""),
            d.default.replace('`', "")
        ));
    }
    out
}

/// `widget-sessions env --markdown`: README's table of variables.
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | meaning | default |\n|---|---|---|\n");
    for d in VARIABLES.iter().map(|v| v.describe()) {
        let name = if d.secret {
            format!("`{0}` (or `{0}_FILE`)", d.name)
        } else {
            format!("`{}`", d.name)
        };
        out.push_str(&format!("| {name} | {} | {} |\n", d.meaning(), d.default));
    }
    out
}

#[cfg(test)]
mod tests;
