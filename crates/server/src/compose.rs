//! The composition root: the one place that knows every concrete adapter. [`UseCases`] wires
//! the stores, keys, upstream and webhook sender of a configuration into the use cases; the
//! running service ([`crate::application::Application`]) and the admin subcommands
//! ([`crate::admin`]) both start from it.

use std::path::Path;
use std::sync::Arc;

use app::{
    Applications, AtRestKeys, BootstrapEntry, DeliveryWorker, Dependencies, ExpirySweeper, Orders,
    Retention, Sessions, WebhookDependencies, Webhooks,
};
use keyring::Keyring;
use ports::{
    Clock, LaunchLinks, Randomness, SecretSealer, Stores, SystemClock, SystemRandomness,
    WebhookSender, WidgetGateway,
};
use postgres::PoolSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use transak::{Environment, TransakConfig, TransakGateway};
use webhook_sender::{HttpWebhookSender, SenderSettings};

use crate::config::{Config, Upstream};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(String),
    /// The upstream configuration is unusable.
    #[error("Transak configuration: {0}")]
    Upstream(String),
    /// The applications file is unusable.
    #[error("WIDGET_SESSIONS_APPS_FILE: {0}")]
    AppsFile(String),
    /// The in-process emulator did not start.
    #[error("in-process Transak emulator: {0}")]
    Emulator(String),
    /// Applications could not be created.
    #[error("applications: {0}")]
    Applications(String),
    /// The at-rest key is unusable.
    #[error("WIDGET_SESSIONS_SECRET_KEY: {0}")]
    Keys(String),
    /// The webhook sender could not be built.
    #[error("webhooks: {0}")]
    Webhooks(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; set WIDGET_SESSIONS_LISTEN to a free address")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The in-process emulator, kept alive for the life of the process.
#[cfg(feature = "emulator")]
pub type EmbeddedEmulator = transak_emulator::Emulator;
/// Without the `emulator` feature there is no in-process emulator.
#[cfg(not(feature = "emulator"))]
pub type EmbeddedEmulator = std::convert::Infallible;

/// What a caller that embeds the service (the tests) puts in place of the configured
/// adapters.
#[derive(Default)]
pub struct Overrides {
    /// The clock (tests move time forward instead of sleeping); the system clock if `None`.
    pub clock: Option<Arc<dyn Clock>>,
    /// Where Transak is, in place of the configured upstream (e.g. an emulator the caller
    /// started and controls).
    pub upstream: Option<TransakConfig>,
}

/// The backend's stores, and the Postgres pool when on Postgres (for its metrics).
pub struct Backend {
    /// Every store port.
    pub stores: Stores,
    /// The pool.
    pub pool: Option<sqlx::PgPool>,
}

/// Every use case of one instance, over the configured adapters.
pub struct UseCases {
    /// Create-or-reuse, get, list, cancel, launch.
    pub sessions: Arc<Sessions>,
    /// Authentication and the applications' lifecycle.
    pub applications: Applications,
    /// Webhook endpoints, a session's events, redelivery.
    pub webhooks: Webhooks,
    /// Transak's order events.
    pub orders: Orders,
    /// Travel-rule declarations and ownership proofs.
    pub travel_rule: app::TravelRule,
    /// Retention of ended sessions and of the request log.
    pub retention: Retention,
    /// What the delivery workers and the expiry sweeper run on.
    pub webhook_deps: WebhookDependencies,
    /// The stores.
    pub stores: Stores,
    /// The upstream.
    pub gateway: Arc<dyn WidgetGateway>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// The at-rest keys over every sealed value (the key checks of start-up and readiness,
    /// reseal).
    pub keys: AtRestKeys,
    /// The in-process emulator, when the configuration asks for one.
    pub emulator: Option<EmbeddedEmulator>,
    /// One line saying what this instance runs on.
    pub description: String,
    /// The Postgres pool, when on Postgres.
    pub pool: Option<sqlx::PgPool>,
}

impl UseCases {
    /// The use cases of `config` (with `overrides` in place of configured adapters), for an
    /// instance whose launch links start with `public_base`. Opens (and, unless told not to,
    /// migrates) the database, and starts the in-process emulator if the configuration asks
    /// for one; starts nothing else.
    ///
    /// # Errors
    ///
    /// See [`StartupError`].
    pub async fn build(
        config: &Config,
        public_base: &str,
        overrides: Overrides,
    ) -> Result<Self, StartupError> {
        let clock = overrides
            .clock
            .unwrap_or_else(|| Arc::new(SystemClock) as Arc<dyn Clock>);
        let random: Arc<dyn Randomness> = Arc::new(SystemRandomness);
        let keys = Arc::new(keyring(config)?);
        let sealer: Arc<dyn SecretSealer> = keys.clone();
        let Backend { stores, pool } = backend(config, sealer.clone()).await?;
        let links: Arc<dyn LaunchLinks> = keys.clone();

        let (transak_config, emulator, upstream_text) = match overrides.upstream {
            Some(c) => (c, None, "an injected upstream".to_string()),
            None => upstream(config, public_base).await?,
        };
        let gateway: Arc<dyn WidgetGateway> = Arc::new(
            TransakGateway::new(transak_config, stores.tokens.clone(), clock.clone())
                .map_err(|e| StartupError::Upstream(e.to_string()))?,
        );

        let applications = Applications::new(
            stores.applications.clone(),
            sealer.clone(),
            clock.clone(),
            random.clone(),
        );
        let at_rest = at_rest_keys(&stores, sealer.clone(), clock.clone());
        let sender: Arc<dyn WebhookSender> = Arc::new(
            HttpWebhookSender::new(
                SenderSettings {
                    timeout: config.webhook_timeout,
                    allow_private_networks: config.webhooks.allow_private_networks,
                },
                clock.clone(),
            )
            .map_err(StartupError::Webhooks)?,
        );
        let webhook_deps = WebhookDependencies {
            endpoints: stores.endpoints.clone(),
            events: stores.events.clone(),
            deliveries: stores.deliveries.clone(),
            sessions: stores.sessions.clone(),
            sender,
            encoder: Arc::new(api::http::webhooks::JsonEvents),
            sealer,
            clock: clock.clone(),
            random: random.clone(),
        };
        let webhooks = Webhooks::new(webhook_deps.clone(), config.webhooks.clone());
        let sessions = Sessions::new(
            Dependencies {
                store: stores.sessions.clone(),
                requests: stores.requests.clone(),
                gateway: gateway.clone(),
                clock: clock.clone(),
                random: random.clone(),
                links,
            },
            config.policy,
            config.claims,
        )
        .with_travel_rule(config.travel_rule);
        let travel_rule = app::TravelRule::new(
            stores.sessions.clone(),
            stores.travel_rule.clone(),
            clock.clone(),
            random.clone(),
            config.travel_rule,
        );
        let retention = Retention::new(
            stores.housekeeping.clone(),
            stores.requests.clone(),
            clock.clone(),
            config.retention,
            1000,
        )
        .with_travel_rule_retention(config.travel_rule.retention);
        let orders = Orders::new(
            gateway.clone(),
            stores.orders.clone(),
            clock.clone(),
            random,
        );
        let store_text = if pool.is_some() {
            "Postgres"
        } else {
            "in-memory store"
        };
        Ok(Self {
            sessions: Arc::new(sessions),
            applications,
            webhooks,
            orders,
            travel_rule,
            retention,
            webhook_deps,
            stores,
            gateway,
            clock,
            keys: at_rest,
            emulator,
            description: format!("{store_text}, {upstream_text}"),
            pool,
        })
    }

    /// A webhook delivery worker (each has an owner id of its own).
    pub fn delivery_worker(&self, config: &Config) -> DeliveryWorker {
        DeliveryWorker::new(self.webhook_deps.clone(), config.webhooks.clone())
    }

    /// The expiry sweeper.
    pub fn expiry_sweeper(&self, config: &Config) -> ExpirySweeper {
        ExpirySweeper::new(self.webhook_deps.clone(), config.webhooks.sweep_every)
    }
}

/// The at-rest keys over every sealed value of `stores`: a previous Transak access token is in
/// use for as long as it verifies order webhooks.
pub fn at_rest_keys(
    stores: &Stores,
    sealer: Arc<dyn SecretSealer>,
    clock: Arc<dyn Clock>,
) -> AtRestKeys {
    AtRestKeys::new(stores, sealer, clock, transak::orders::PREVIOUS_TOKEN_GRACE)
}

/// Applies the migrations to the configured database and returns which ones were pending.
///
/// # Errors
///
/// [`StartupError::Database`] when there is no database or it cannot be migrated.
pub async fn migrate(database_url: Option<&SecretString>) -> Result<Vec<i64>, StartupError> {
    let Some(url) = database_url else {
        return Err(StartupError::Database(
            "migrations apply to Postgres: set DATABASE_URL".into(),
        ));
    };
    let pool = postgres::pool(url.expose_secret(), PoolSettings::default())
        .map_err(|e| StartupError::Database(e.to_string()))?;
    let pending = postgres::pending_migrations(&pool)
        .await
        .map_err(|e| StartupError::Database(e.to_string()))?;
    postgres::migrate(&pool)
        .await
        .map_err(|e| StartupError::Database(format!("could not apply the migrations: {e}")))?;
    Ok(pending)
}

/// Opens (and, unless told not to, migrates) the configured stores.
///
/// # Errors
///
/// [`StartupError::Database`] when Postgres cannot be reached or migrated.
async fn backend(config: &Config, sealer: Arc<dyn SecretSealer>) -> Result<Backend, StartupError> {
    let Some(url) = &config.database_url else {
        return Ok(Backend {
            stores: memory::stores(),
            pool: None,
        });
    };
    let pool = postgres::pool(
        url.expose_secret(),
        PoolSettings {
            max_connections: config.db_max_connections,
            ..PoolSettings::default()
        },
    )
    .map_err(|e| StartupError::Database(e.to_string()))?;
    if config.migrate_on_start {
        postgres::migrate(&pool)
            .await
            .map_err(|e| StartupError::Database(format!("could not apply the migrations: {e}")))?;
    } else {
        let pending = postgres::pending_migrations(&pool)
            .await
            .map_err(|e| StartupError::Database(e.to_string()))?;
        if !pending.is_empty() {
            return Err(StartupError::Database(format!(
                "the database lacks migrations {pending:?} and WIDGET_SESSIONS_MIGRATE_ON_START is false: run `widget-sessions migrate` first"
            )));
        }
    }
    Ok(Backend {
        stores: postgres::stores(pool.clone(), sealer),
        pool: Some(pool),
    })
}

/// The at-rest keys: from `WIDGET_SESSIONS_SECRET_KEY`, or a fresh key for in-memory runs.
///
/// # Errors
///
/// [`StartupError::Keys`] when a key is unusable (already validated by the configuration).
pub fn keyring(config: &Config) -> Result<Keyring, StartupError> {
    match &config.secret_key {
        Some(k) => {
            let old: Vec<&str> = config
                .old_secret_keys
                .iter()
                .map(|k| k.expose_secret())
                .collect();
            Keyring::from_base64(k.expose_secret(), &old)
                .map_err(|(_, e)| StartupError::Keys(e.to_string()))
        }
        None => Ok(Keyring::generate()),
    }
}

/// The gateway's configuration, the in-process emulator if one was started, and a
/// description.
async fn upstream(
    config: &Config,
    public_base: &str,
) -> Result<(TransakConfig, Option<EmbeddedEmulator>, String), StartupError> {
    match &config.upstream {
        Upstream::InProcessEmulator => in_process_emulator(config, public_base).await,
        Upstream::Remote(r) => {
            let c = remote_upstream(config, r)?;
            Ok((c, None, format!("Transak {} environment", r.environment)))
        }
    }
}

/// The gateway's configuration for a configured (not in-process) upstream.
///
/// # Errors
///
/// [`StartupError::Upstream`] when the Transak adapter refuses the configuration.
pub fn remote_upstream(
    config: &Config,
    r: &crate::config::RemoteUpstream,
) -> Result<TransakConfig, StartupError> {
    let mut b = TransakConfig::builder(
        r.environment,
        r.api_key.clone(),
        r.api_secret.clone(),
        r.referrer_domain.clone(),
    )
    .extra_widget_params(r.extra_widget_params.clone())
    .request_timeout(config.upstream_timeout)
    .max_retries(config.upstream_retries);
    if let Some(u) = &r.gateway_url {
        b = b.gateway_url(u.clone());
    }
    if let Some(u) = &r.api_url {
        b = b.api_url(u.clone());
    }
    b.build().map_err(|e| StartupError::Upstream(e.to_string()))
}

#[cfg(feature = "emulator")]
async fn in_process_emulator(
    config: &Config,
    public_base: &str,
) -> Result<(TransakConfig, Option<EmbeddedEmulator>, String), StartupError> {
    // Its widget's orders come back to this service, as Transak's would.
    let emulator = transak_emulator::spawn(transak_emulator::EmulatorConfig {
        webhook_url: Some(format!("{public_base}/webhooks/transak")),
        ..transak_emulator::EmulatorConfig::default()
    })
    .await
    .map_err(|e| StartupError::Emulator(e.to_string()))?;
    let c = emulator_config(config, &emulator.base_url())?;
    let text = format!("in-process Transak emulator at {}", emulator.base_url());
    Ok((c, Some(emulator), text))
}

#[cfg(not(feature = "emulator"))]
async fn in_process_emulator(
    _config: &Config,
    _public_base: &str,
) -> Result<(TransakConfig, Option<EmbeddedEmulator>, String), StartupError> {
    // The configuration refuses this combination; kept as a clear error all the same.
    Err(StartupError::Emulator(
        "this build has no in-process emulator (built without the `emulator` feature)".into(),
    ))
}

/// The gateway's configuration for an emulator at `base_url` (both of its bases) with the
/// emulator's default credentials, and the configured timeout and retries.
///
/// # Errors
///
/// [`StartupError::Upstream`] when the URL is not one.
pub fn emulator_config(config: &Config, base_url: &str) -> Result<TransakConfig, StartupError> {
    let url = url::Url::parse(base_url).map_err(|e| StartupError::Upstream(e.to_string()))?;
    TransakConfig::builder(
        Environment::Emulator,
        crate::config::EMULATOR_API_KEY,
        SecretString::from(crate::config::EMULATOR_API_SECRET),
        "localhost",
    )
    .gateway_url(url.clone())
    .api_url(url)
    .request_timeout(config.upstream_timeout)
    .max_retries(config.upstream_retries)
    .build()
    .map_err(|e| StartupError::Upstream(e.to_string()))
}

/// One entry of `WIDGET_SESSIONS_APPS_FILE`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppEntry {
    name: String,
    api_key: String,
    api_secret: String,
    #[serde(default)]
    ownership_proof_policy: Option<String>,
    #[serde(default)]
    hosted_travel_rule: bool,
    #[serde(default)]
    frame_ancestors: Vec<String>,
}

/// The members of an apps file's entry.
const APPS_FILE_MEMBERS: [&str; 6] = [
    "name",
    "apiKey",
    "apiSecret",
    "ownershipProofPolicy",
    "hostedTravelRule",
    "frameAncestors",
];

/// Parses the apps file. A problem is told by where it is (line, column, the member) and
/// what kind it is, never by serde's message, which quotes the offending value (an API
/// secret, say).
fn parse_apps_file(text: &str) -> Result<Vec<AppEntry>, String> {
    let describe = |e: &serde_json::Error, at: Option<String>| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax => "not valid JSON",
            Category::Eof => "the file ends early",
            Category::Data => "a member is missing, unknown, or of the wrong type",
            Category::Io => "cannot be read",
        };
        // The member only for a value that is not what it should be (a syntax error is
        // told by its line and column).
        let at = at
            .filter(|_| e.classify() == Category::Data)
            .map(|p| format!(", at {p}"))
            .unwrap_or_default();
        format!("line {}, column {}{at}: {what}", e.line(), e.column())
    };
    // Where in the file: entry indexes, and member names the file format defines (any other
    // name is the operator's text, and could be anything).
    let at = |path: &serde_path_to_error::Path| {
        use serde_path_to_error::Segment;
        let mut out = String::new();
        for segment in path {
            match segment {
                Segment::Seq { index } => out.push_str(&format!("[{index}]")),
                Segment::Map { key } if APPS_FILE_MEMBERS.contains(&key.as_str()) => {
                    out.push_str(&format!(".{key}"));
                }
                Segment::Map { .. } | Segment::Enum { .. } | Segment::Unknown => {
                    out.push_str(" (a member of another name)");
                    break;
                }
            }
        }
        (!out.is_empty()).then_some(out)
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let entries: Vec<AppEntry> =
        serde_path_to_error::deserialize(&mut de).map_err(|e| describe(e.inner(), at(e.path())))?;
    de.end().map_err(|e| describe(&e, None))?;
    Ok(entries)
}

/// Reads `WIDGET_SESSIONS_APPS_FILE`: a JSON array of `{"name", "apiKey", "apiSecret"}`, each
/// optionally with `"ownershipProofPolicy"` (`ALWAYS` or `WHEN_FORCED`, the default),
/// `"hostedTravelRule"` (`true` or `false`, the default) and `"frameAncestors"` (an array of
/// origins allowed to frame the hosted page; default any).
///
/// # Errors
///
/// [`StartupError::AppsFile`] when it cannot be read or is not that shape.
pub fn read_apps_file(path: &Path) -> Result<Vec<BootstrapEntry>, StartupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StartupError::AppsFile(format!("cannot read {}: {e}", path.display())))?;
    let entries = parse_apps_file(&text).map_err(|problem| {
        StartupError::AppsFile(format!(
            "{}: {problem}; expected a JSON array of {{\"name\", \"apiKey\", \"apiSecret\"}}, each optionally with \"ownershipProofPolicy\"",
            path.display()
        ))
    })?;
    entries
        .into_iter()
        .map(|e| {
            let proof_policy = match e.ownership_proof_policy.as_deref() {
                None => domain::ProofPolicy::default(),
                Some(p) => domain::ProofPolicy::parse(p).map_err(|_| {
                    StartupError::AppsFile(format!(
                        "{}: application {:?}: ownershipProofPolicy must be ALWAYS or WHEN_FORCED",
                        path.display(),
                        e.name
                    ))
                })?,
            };
            let frame_ancestors = domain::FrameAncestors::parse(&e.frame_ancestors.join(" "))
                .map_err(|_| {
                    StartupError::AppsFile(format!(
                        "{}: application {:?}: frameAncestors must be origins such as https://partner.example (http or https, no path), at most {}",
                        path.display(),
                        e.name,
                        domain::MAX_FRAME_ANCESTORS
                    ))
                })?;
            Ok(BootstrapEntry {
                name: e.name,
                api_key: e.api_key,
                api_secret: SecretString::from(e.api_secret),
                settings: ports::ApplicationSettings {
                    proof_policy,
                    hosted: domain::HostedStep {
                        enabled: e.hosted_travel_rule,
                        frame_ancestors,
                    },
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of an apps file that does not parse, for a file with `contents`.
    fn apps_file_error(contents: &str) -> String {
        let path = std::env::temp_dir().join(format!(
            "widget-sessions-apps-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, contents).unwrap();
        let result = read_apps_file(&path);
        std::fs::remove_file(&path).unwrap();
        match result {
            Ok(_) => panic!("{contents} parsed"),
            Err(e) => e.to_string(),
        }
    }

    /// serde's messages quote the offending value; the apps file holds API secrets, so its
    /// errors say where the problem is, never what the value was.
    #[test]
    fn an_apps_file_that_does_not_parse_never_quotes_a_value() {
        let cases = [
            // A secret given as a number.
            (
                r#"[{"name": "acme", "apiKey": "wsk_key-0123456789abc", "apiSecret": 73519842066153920}]"#,
                "73519842066153920",
                "line 1, column 83, at [0].apiSecret",
            ),
            // An entry that is only the secret.
            (
                r#"[{"name": "acme", "apiKey": "wsk_key-0123456789abc", "apiSecret": "wss_a"},
                   "wss_the-secret-on-its-own-line"]"#,
                "wss_the-secret-on-its-own-line",
                "line 2, column 51, at [1]",
            ),
            // A secret as a member's name.
            (
                r#"[{"name": "acme", "apiKey": "wsk_key-0123456789abc", "wss_secret-as-a-name": "x"}]"#,
                "wss_secret-as-a-name",
                "line 1, column 75, at [0] (a member of another name)",
            ),
            // A syntax error right after a secret.
            (
                r#"[{"name": "acme", "apiKey": "wsk_key-0123456789abc", "apiSecret": "wss_before-the-error" x}]"#,
                "wss_before-the-error",
                "line 1, column 90: not valid JSON",
            ),
            // Something after the array.
            (
                r#"[] "wss_trailing-secret""#,
                "wss_trailing-secret",
                "line 1, column 4",
            ),
        ];
        for (contents, secret, expected) in cases {
            let e = apps_file_error(contents);
            assert!(!e.contains(secret), "{e}");
            assert!(e.contains(expected), "{e}");
            assert!(e.starts_with("WIDGET_SESSIONS_APPS_FILE: "), "{e}");
        }
    }

    #[test]
    fn a_well_formed_apps_file_is_read() {
        let path = std::env::temp_dir().join(format!(
            "widget-sessions-apps-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(
            &path,
            r#"[{"name": "acme", "apiKey": "wsk_key-0123456789abc", "apiSecret": "wss_secret-0123456789", "ownershipProofPolicy": "ALWAYS"}]"#,
        )
        .unwrap();
        let entries = read_apps_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "acme");
        assert_eq!(
            entries[0].settings.proof_policy,
            domain::ProofPolicy::Always
        );
        assert_eq!(entries[0].settings.hosted, domain::HostedStep::off());
    }

    #[test]
    fn the_apps_file_sets_the_hosted_step() {
        let path = std::env::temp_dir().join(format!(
            "widget-sessions-apps-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(
            &path,
            r#"[{"name": "acme", "apiKey": "wsk_key-0123456789abc", "apiSecret": "wss_secret-0123456789", "hostedTravelRule": true, "frameAncestors": ["https://Partner.example"]}]"#,
        )
        .unwrap();
        let entries = read_apps_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(entries[0].settings.hosted.enabled);
        assert_eq!(
            entries[0].settings.hosted.frame_ancestors.to_stored(),
            "https://partner.example"
        );
        let e = apps_file_error(
            r#"[{"name": "acme", "apiKey": "wsk_key-0123456789abc", "apiSecret": "wss_secret-0123456789", "frameAncestors": ["javascript:alert(1)"]}]"#,
        );
        assert!(e.contains("frameAncestors must be origins"), "{e}");
        assert!(!e.contains("wss_secret"), "{e}");
    }
}
