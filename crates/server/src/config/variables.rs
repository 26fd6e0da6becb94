//! Every variable the binary reads, each declared once: its name (the constant's), its doc
//! (the one-line doc comment), its format (the type: what it holds, how it is written,
//! whether it is a secret), its default (the owning crate's constant), its range or the
//! owning crate's rule, and who reads it. [`VARIABLES`] lists them in this order.
//!
//! Variables are read only through these declarations ([`super::setting::Reader`] takes a
//! [`Setting`], not a name), so a variable cannot be read without being listed.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use domain::{BitcoinNetwork, LedgerTable, RetrySchedule, ReusePolicy};
use transak::TransakConfig;

use super::format::{
    Address, AtRestKey, AtRestKeys, BaseUrl, Days, FilePath, Flag, JsonObject, Millis, Number,
    Parsed, PostgresUrl, Secret, Secs, Text,
};
use super::setting::{Scope, Setting, Variable};
use crate::http_server::ConnectionSettings;
use crate::telemetry::{DEFAULT_LOG_FILTER, DEFAULT_SERVICE_NAME, LogFormat};

/// Declares each setting as a constant named after its variable, documented by its one-line
/// doc comment, and lists them all in [`VARIABLES`].
macro_rules! variables {
    ($(
        #[doc = $doc:literal]
        $name:ident: $format:ty = $setting:expr;
    )*) => {
        $(
            #[doc = $doc]
            pub const $name: Setting<$format> = $setting.declare(stringify!($name), $doc);
        )*

        /// Every variable the binary reads, in the order `widget-sessions env` lists them.
        pub const VARIABLES: &[&dyn Variable] = &[$(&$name),*];
    };
}

variables! {
    /// listen address
    WIDGET_SESSIONS_LISTEN: Address =
        Setting::new(|| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080)))
            .example("0.0.0.0:8080");
    /// base of launch links
    WIDGET_SESSIONS_PUBLIC_URL: Option<BaseUrl> =
        Setting::optional("`http://` + listen address").example("https://sessions.example.com");
    /// Postgres; migrations run at start-up
    DATABASE_URL: Option<PostgresUrl> = Setting::optional("unset: in-memory store");
    /// `false`: do not migrate at start-up (run `widget-sessions migrate` before rolling out); refuse to start if migrations are pending
    WIDGET_SESSIONS_MIGRATE_ON_START: Flag = Setting::new(|| true);
    /// `staging`, `production` or `emulator`
    TRANSAK_ENVIRONMENT: Option<Parsed<transak::Environment>> =
        Setting::optional("`emulator` (in-process) when nothing else is set; required otherwise");
    /// partner API key
    TRANSAK_API_KEY: Option<Text> = Setting::optional("required for staging/production");
    /// partner API secret
    TRANSAK_API_SECRET: Option<Secret> = Setting::optional("required for staging/production");
    /// `referrerDomain` sent with every widget
    TRANSAK_REFERRER_DOMAIN: Option<Text> = Setting::optional("required for staging/production");
    /// base of Create Widget URL (both URLs set with `emulator`: an external emulator)
    TRANSAK_GATEWAY_URL: Option<BaseUrl> = Setting::optional("per environment");
    /// base of Refresh Access Token
    TRANSAK_API_URL: Option<BaseUrl> = Setting::optional("per environment");
    /// extra `widgetParams`, a JSON object
    TRANSAK_WIDGET_PARAMS: JsonObject = Setting::new(serde_json::Map::new)
        .example(r#"{"themeColor":"000000"}"#)
        .rule(|params| TransakConfig::check_extra_widget_params(params).map_err(|e| e.to_string()));
    /// timeout of one upstream attempt
    TRANSAK_TIMEOUT_MS: Millis = Setting::new(|| transak::DEFAULT_REQUEST_TIMEOUT)
        .rule(|timeout| TransakConfig::check_request_timeout(*timeout).map_err(|e| e.to_string()));
    /// upstream retries after the first attempt (connection errors, 5xx)
    TRANSAK_MAX_RETRIES: Number<u32> = Setting::new(|| transak::DEFAULT_MAX_RETRIES)
        .rule(|retries| TransakConfig::check_max_retries(*retries).map_err(|e| e.to_string()));
    /// JSON array of `{"name", "apiKey", "apiSecret"}` applications to create or keep at start-up
    WIDGET_SESSIONS_APPS_FILE: Option<FilePath> = Setting::optional("unset");
    /// 32 random bytes, base64: seals secrets at rest and signs launch links
    WIDGET_SESSIONS_SECRET_KEY: Option<AtRestKey> =
        Setting::optional("generated for in-memory runs; required with Postgres");
    /// earlier at-rest keys, comma-separated: still open secrets and launch links (key rotation)
    WIDGET_SESSIONS_OLD_SECRET_KEYS: Option<AtRestKeys> = Setting::optional("unset");
    /// session lifetime
    WIDGET_SESSIONS_SESSION_TTL_SECS: Secs = Setting::new(|| ReusePolicy::DEFAULT_TTL)
        .range(1, ReusePolicy::MAX_TTL.as_secs());
    /// least remaining life for reuse (at most the session lifetime)
    WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS: Secs =
        Setting::new(|| ReusePolicy::DEFAULT_MIN_REMAINING);
    /// requests per second per application per instance (burst twice that); `0` disables
    WIDGET_SESSIONS_RATE_LIMIT: Number<u32> =
        Setting::new(|| api::state::RateLimiter::DEFAULT_PER_SECOND);
    /// requests per second per client address to signed routes and launch links (burst twice that); `0` disables
    WIDGET_SESSIONS_CLIENT_RATE_LIMIT: Number<u32> =
        Setting::new(|| api::state::ClientLimits::DEFAULT_PER_CLIENT);
    /// requests per second in all to signed routes and launch links, per instance; `0` disables
    WIDGET_SESSIONS_GLOBAL_RATE_LIMIT: Number<u32> =
        Setting::new(|| api::state::ClientLimits::DEFAULT_GLOBAL);
    /// a header your proxy sets to the client address (its last value is used)
    WIDGET_SESSIONS_CLIENT_IP_HEADER: Option<Parsed<axum::http::HeaderName>> =
        Setting::optional("unset: the connection's peer").example("x-forwarded-for");
    /// a client must send a request head within this time
    WIDGET_SESSIONS_HEADER_READ_TIMEOUT_SECS: Secs =
        Setting::new(|| ConnectionSettings::default().header_read_timeout).range(1, 300);
    /// a client must send a request body within this time (`408`)
    WIDGET_SESSIONS_BODY_TIMEOUT_SECS: Secs =
        Setting::new(|| api::state::HttpLimits::default().body_timeout).range(1, 300);
    /// longest time to answer a request (`503`); must exceed the claim wait plus the worst upstream call
    WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS: Secs =
        Setting::new(|| api::state::HttpLimits::default().request_timeout).range(1, 3600);
    /// open connections per instance; more clients wait in the listen backlog
    WIDGET_SESSIONS_MAX_CONNECTIONS: Number<usize> =
        Setting::new(|| ConnectionSettings::default().max_connections).range(1, 1_000_000);
    /// after SIGTERM, how long the instance keeps serving while reporting not ready
    WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS: Secs =
        Setting::new(|| Duration::from_secs(5)).range(0, 3600);
    /// then, how long in-flight requests get to finish
    WIDGET_SESSIONS_SHUTDOWN_GRACE_SECS: Secs =
        Setting::new(|| ConnectionSettings::default().shutdown_grace).range(0, 3600);
    /// serve `/metrics` on this address only (not on the main listener)
    WIDGET_SESSIONS_METRICS_LISTEN: Option<Address> =
        Setting::optional("unset: `/metrics` on the main listener").example("0.0.0.0:9090");
    /// ended sessions (and their events and deliveries) older than this are purged
    WIDGET_SESSIONS_RETENTION_DAYS: Days =
        Setting::new(|| app::Retention::DEFAULT_PERIOD).range(1, 36_500);
    /// how long after its creation a session accepts travel-rule declarations and ownership proofs
    WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS: Secs =
        Setting::new(|| app::TravelRuleSettings::DEFAULT_WINDOW).range(60, 30 * 86_400);
    /// declarations and ownership proofs are kept this long after their session ended, whatever `WIDGET_SESSIONS_RETENTION_DAYS` says
    WIDGET_SESSIONS_TRAVEL_RULE_RETENTION_DAYS: Days =
        Setting::new(|| app::TravelRuleSettings::DEFAULT_RETENTION).range(1, 36_500);
    /// `true`: webhook URLs may use `http` and reach loopback and private addresses (local runs and tests only)
    WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS: Option<Flag> =
        Setting::optional("`true` for in-memory runs, `false` with Postgres");
    /// seconds between webhook attempts, comma-separated: the whole schedule (one retry after each, then `FAILED`)
    WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE: Parsed<RetrySchedule> =
        Setting::new(RetrySchedule::default).example("5,30,120");
    /// longest wait for a webhook endpoint's answer
    WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS: Millis =
        Setting::new(|| webhook_sender::SenderSettings::default().timeout).range(100, 60_000);
    /// how often a delivery worker looks for due deliveries when nothing woke it (new events wake it at once)
    WIDGET_SESSIONS_WEBHOOK_POLL_MS: Millis =
        Setting::new(|| app::WebhookSettings::default().tick).range(10, 3_600_000);
    /// how long an instance holds a delivery it claimed before another may take it over (must exceed the webhook timeout)
    WIDGET_SESSIONS_WEBHOOK_LEASE_SECS: Secs =
        Setting::new(|| app::WebhookSettings::default().lease).range(1, 3600);
    /// webhook deliveries one application (all its endpoints together) may have in flight per instance, of the instance's 64: applications with slow endpoints cannot hold up the others'
    WIDGET_SESSIONS_WEBHOOK_MAX_IN_FLIGHT_PER_APPLICATION: Number<u32> =
        Setting::new(|| app::WebhookSettings::default().per_application)
            .range(1, app::WebhookSettings::DEFAULT_MAX_IN_FLIGHT as u64);
    /// how often each instance looks for sessions that expired, to emit `session.expired`
    WIDGET_SESSIONS_EXPIRY_SWEEP_SECS: Secs =
        Setting::new(|| app::WebhookSettings::default().sweep_every).range(1, 300);
    /// `mainnet`, `testnet`, `signet` or `regtest` (invoice and address checks)
    WIDGET_SESSIONS_BITCOIN_NETWORK: Parsed<BitcoinNetwork> = Setting::new(BitcoinNetwork::default);
    /// the ledger table, `CURRENCY:NETWORK` pairs, comma-separated
    WIDGET_SESSIONS_LEDGER: Parsed<LedgerTable> =
        Setting::new(LedgerTable::default).example("BTC:BTC,USDC:ETH");
    /// how long a minting request holds its key (must outlast the worst upstream call)
    WIDGET_SESSIONS_CLAIM_LEASE_SECS: Secs =
        Setting::new(|| app::ClaimSettings::default().lease).range(1, 3600);
    /// how long an identical request waits for a mint in progress before `503`
    WIDGET_SESSIONS_CLAIM_WAIT_SECS: Secs =
        Setting::new(|| app::ClaimSettings::default().wait).range(1, 300);
    /// database connections per instance
    WIDGET_SESSIONS_DB_MAX_CONNECTIONS: Number<u32> =
        Setting::new(|| postgres::PoolSettings::default().max_connections).range(1, 1000);
    /// `json`, `pretty` or `auto` (JSON when standard output is not a terminal)
    WIDGET_SESSIONS_LOG_FORMAT: Parsed<LogFormat> = Setting::new(LogFormat::default);
    /// log filter, e.g. `debug` or `info,widget_sessions=debug`
    RUST_LOG: Text = Setting::new(|| DEFAULT_LOG_FILTER.to_string()).scope(Scope::Process);
    /// export traces with OpenTelemetry over OTLP/HTTP to this collector (`/v1/traces` is appended; needs a build with the `otel` feature)
    OTEL_EXPORTER_OTLP_ENDPOINT: Option<BaseUrl> =
        Setting::optional("unset: no trace export").example("http://127.0.0.1:4318");
    /// the `service.name` of exported traces
    OTEL_SERVICE_NAME: Text = Setting::new(|| DEFAULT_SERVICE_NAME.to_string());
    /// a `KEY=VALUE` file read first; the environment wins
    WIDGET_SESSIONS_CONFIG_FILE: Option<FilePath> =
        Setting::optional("unset").scope(Scope::Process);
    /// the service's base URL
    WIDGET_SESSIONS_URL: Text =
        Setting::new(|| format!("http://{}", WIDGET_SESSIONS_LISTEN.default_value()))
            .scope(Scope::Caller);
    /// the application's API key
    WIDGET_SESSIONS_API_KEY: Option<Text> =
        Setting::optional("none (or `--api-key`)").scope(Scope::Caller);
    /// the application's API secret
    WIDGET_SESSIONS_API_SECRET: Option<Secret> =
        Setting::optional("none (or `--api-secret`)").scope(Scope::Caller);
}
