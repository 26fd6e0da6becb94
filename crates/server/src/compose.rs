//! The composition root: the one place that knows every concrete adapter.

use std::path::Path;
use std::sync::Arc;

use api::observability::Metrics;
use api::state::{AppState, ClientLimiter, Lifecycle, RateLimiter, ReadinessCache, Shared};
use app::{
    Applications, BootstrapEntry, DeliveryWorker, Dependencies, ExpirySweeper, Retention, Sessions,
    WebhookDependencies, Webhooks,
};
use keyring::Keyring;
use memory::{MemoryApplicationStore, MemorySessionStore, MemoryTokenStore};
use ports::{
    AccessTokenStore, ApplicationStore, Clock, IdGenerator, LaunchLinks, RandomIds, SecretSealer,
    SessionStore, SystemClock, WebhookSender, WebhookStore, WidgetGateway,
};
use postgres::{PgApplicationStore, PgSessionStore, PgTokenStore, PoolSettings};
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
}

/// A demo application created for a zero-configuration run.
pub struct DemoApp {
    /// Its API key.
    pub api_key: String,
    /// Its API secret.
    pub api_secret: SecretString,
}

/// The in-process emulator, kept alive for the life of the process.
#[cfg(feature = "emulator")]
pub type EmbeddedEmulator = transak_emulator::Emulator;
/// Without the `emulator` feature there is no in-process emulator.
#[cfg(not(feature = "emulator"))]
pub type EmbeddedEmulator = std::convert::Infallible;

/// Everything a running instance owns.
pub struct Runtime {
    /// The HTTP state.
    pub state: AppState,
    /// The retention task (to spawn).
    pub retention: Retention,
    /// The webhook delivery worker (to spawn).
    pub deliveries: DeliveryWorker,
    /// The expiry sweeper (to spawn).
    pub sweeper: ExpirySweeper,
    /// The in-process emulator, kept alive for the life of the process.
    pub emulator: Option<EmbeddedEmulator>,
    /// The demo application of a zero-configuration run.
    pub demo: Option<DemoApp>,
    /// One line saying what this instance runs on.
    pub description: String,
    /// The Postgres pool, when on Postgres (for its metrics).
    pub pool: Option<sqlx::PgPool>,
}

/// The stores of one backend.
pub struct Stores {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Webhook endpoints, session events, deliveries (the same store as `sessions`: an
    /// event is written with its change).
    pub webhooks: Arc<dyn WebhookStore>,
    /// Applications.
    pub applications: Arc<dyn ApplicationStore>,
    /// The shared upstream token.
    pub tokens: Arc<dyn AccessTokenStore>,
    /// The Postgres pool, when on Postgres (for its metrics).
    pub pool: Option<sqlx::PgPool>,
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
pub async fn stores(
    config: &Config,
    sealer: Arc<dyn SecretSealer>,
) -> Result<Stores, StartupError> {
    match &config.database_url {
        None => {
            let sessions = Arc::new(MemorySessionStore::new());
            Ok(Stores {
                sessions: sessions.clone(),
                webhooks: sessions,
                applications: Arc::new(MemoryApplicationStore::new()),
                tokens: Arc::new(MemoryTokenStore::new()),
                pool: None,
            })
        }
        Some(url) => {
            let pool = postgres::pool(
                url.expose_secret(),
                PoolSettings {
                    max_connections: config.db_max_connections,
                    ..PoolSettings::default()
                },
            )
            .map_err(|e| StartupError::Database(e.to_string()))?;
            if config.migrate_on_start {
                postgres::migrate(&pool).await.map_err(|e| {
                    StartupError::Database(format!("could not apply the migrations: {e}"))
                })?;
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
            let sessions = Arc::new(PgSessionStore::new(pool.clone()));
            Ok(Stores {
                sessions: sessions.clone(),
                webhooks: sessions,
                applications: Arc::new(PgApplicationStore::new(pool.clone())),
                tokens: Arc::new(PgTokenStore::new(pool.clone(), sealer)),
                pool: Some(pool),
            })
        }
    }
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

/// The application use cases over the configured stores and keys.
pub fn applications(
    store: Arc<dyn ApplicationStore>,
    sealer: Arc<dyn SecretSealer>,
    clock: Arc<dyn Clock>,
) -> Applications {
    Applications::new(store, sealer, clock, Arc::new(RandomIds))
}

/// Builds a running instance from its configuration.
///
/// # Errors
///
/// See [`StartupError`].
pub async fn build(config: &Config) -> Result<Runtime, StartupError> {
    build_with_clock(config, Arc::new(SystemClock)).await
}

/// [`build`] with another clock (tests move time forward instead of sleeping).
///
/// # Errors
///
/// See [`StartupError`].
pub async fn build_with_clock(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Runtime, StartupError> {
    let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
    let keys = Arc::new(keyring(config)?);
    let sealer: Arc<dyn SecretSealer> = keys.clone();
    let stores = stores(config, sealer.clone()).await?;
    let db_pool = stores.pool.clone();
    let links: Arc<dyn LaunchLinks> = keys;

    let (transak_config, emulator, upstream_text) = upstream(config).await?;
    let gateway: Arc<dyn WidgetGateway> = Arc::new(
        TransakGateway::new(transak_config, stores.tokens.clone(), clock.clone())
            .map_err(|e| StartupError::Upstream(e.to_string()))?,
    );

    let applications = applications(stores.applications.clone(), sealer.clone(), clock.clone());
    if let Some(path) = &config.apps_file {
        applications
            .bootstrap(read_apps_file(path)?)
            .await
            .map_err(|e| StartupError::Applications(e.to_string()))?;
    }
    // A key that cannot open what is stored would answer `500` to every application: refuse
    // to start instead, naming the key ids involved.
    let report = applications
        .check_keys()
        .await
        .map_err(|e| StartupError::Applications(e.to_string()))?;
    if !report.ok() {
        return Err(StartupError::Keys(report.describe()));
    }
    if config.database_url.is_some() && report.checked == 0 {
        let hint = "no applications yet: create one with `widget-sessions apps create NAME` (it prints the API key and secret once)";
        tracing::warn!("{hint}");
        println!("{hint}");
    }
    let demo = if config.database_url.is_none() && config.apps_file.is_none() {
        let issued = applications
            .create("demo", None, None)
            .await
            .map_err(|e| StartupError::Applications(e.to_string()))?;
        Some(DemoApp {
            api_key: issued.api_key,
            api_secret: issued.api_secret,
        })
    } else {
        None
    };

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
        store: stores.webhooks.clone(),
        sessions: stores.sessions.clone(),
        sender,
        encoder: Arc::new(api::http::webhooks::JsonEvents),
        sealer,
        clock: clock.clone(),
        ids: ids.clone(),
    };
    let webhooks = Webhooks::new(webhook_deps.clone(), config.webhooks.clone());
    let deliveries = DeliveryWorker::new(webhook_deps.clone(), config.webhooks.clone());
    let sweeper = ExpirySweeper::new(webhook_deps, config.webhooks.sweep_every);

    let sessions = Sessions::new(
        Dependencies {
            store: stores.sessions.clone(),
            gateway: gateway.clone(),
            clock: clock.clone(),
            ids,
            links,
        },
        config.policy,
        config.claims,
    );
    let retention = Retention::new(
        stores.sessions.clone(),
        clock.clone(),
        config.retention,
        1000,
    );
    let store_text = if config.database_url.is_some() {
        "Postgres"
    } else {
        "in-memory store"
    };
    let state = AppState(Arc::new(Shared {
        sessions: Arc::new(sessions),
        applications,
        webhooks,
        orders: app::Orders::new(
            gateway.clone(),
            stores.sessions.clone(),
            clock.clone(),
            Arc::new(RandomIds),
        ),
        store: stores.sessions,
        gateway,
        clock,
        rules: config.rules.clone(),
        public_base: config.public_base(),
        limiter: RateLimiter::new(config.rate_limit),
        clients: ClientLimiter::new(config.client_limits.clone()),
        limits: config.http_limits,
        readiness: ReadinessCache::new(ReadinessCache::PING),
        key_check: ReadinessCache::new(ReadinessCache::KEYS),
        lifecycle: Lifecycle::default(),
        metrics: Metrics::install(),
    }));
    Ok(Runtime {
        state,
        retention,
        deliveries,
        sweeper,
        emulator,
        demo,
        description: format!("{store_text}, {upstream_text}"),
        pool: db_pool,
    })
}

/// The gateway's configuration, the in-process emulator if one was started, and a
/// description.
async fn upstream(
    config: &Config,
) -> Result<(TransakConfig, Option<EmbeddedEmulator>, String), StartupError> {
    match &config.upstream {
        Upstream::InProcessEmulator => in_process_emulator(config).await,
        Upstream::Remote(r) => {
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
            let c = b
                .build()
                .map_err(|e| StartupError::Upstream(e.to_string()))?;
            Ok((c, None, format!("Transak {} environment", r.environment)))
        }
    }
}

#[cfg(feature = "emulator")]
async fn in_process_emulator(
    config: &Config,
) -> Result<(TransakConfig, Option<EmbeddedEmulator>, String), StartupError> {
    // Its widget's orders come back to this service, as Transak's would.
    let emulator = transak_emulator::spawn(transak_emulator::EmulatorConfig {
        webhook_url: Some(format!("{}/webhooks/transak", config.public_base())),
        ..transak_emulator::EmulatorConfig::default()
    })
    .await
    .map_err(|e| StartupError::Emulator(e.to_string()))?;
    let url =
        url::Url::parse(&emulator.base_url()).map_err(|e| StartupError::Emulator(e.to_string()))?;
    let c = TransakConfig::builder(
        Environment::Emulator,
        transak_emulator::DEFAULT_API_KEY,
        SecretString::from(transak_emulator::DEFAULT_API_SECRET),
        "localhost",
    )
    .gateway_url(url.clone())
    .api_url(url)
    .request_timeout(config.upstream_timeout)
    .max_retries(config.upstream_retries)
    .build()
    .map_err(|e| StartupError::Upstream(e.to_string()))?;
    let text = format!("in-process Transak emulator at {}", emulator.base_url());
    Ok((c, Some(emulator), text))
}

#[cfg(not(feature = "emulator"))]
async fn in_process_emulator(
    _config: &Config,
) -> Result<(TransakConfig, Option<EmbeddedEmulator>, String), StartupError> {
    // The configuration refuses this combination; kept as a clear error all the same.
    let _ = Environment::Emulator;
    Err(StartupError::Emulator(
        "this build has no in-process emulator (built without the `emulator` feature)".into(),
    ))
}

/// One entry of `WIDGET_SESSIONS_APPS_FILE`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppEntry {
    name: String,
    api_key: String,
    api_secret: String,
}

/// Reads `WIDGET_SESSIONS_APPS_FILE`: a JSON array of `{"name", "apiKey", "apiSecret"}`.
///
/// # Errors
///
/// [`StartupError::AppsFile`] when it cannot be read or is not that shape.
pub fn read_apps_file(path: &Path) -> Result<Vec<BootstrapEntry>, StartupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StartupError::AppsFile(format!("cannot read {}: {e}", path.display())))?;
    let entries: Vec<AppEntry> = serde_json::from_str(&text).map_err(|e| {
        StartupError::AppsFile(format!(
            "{}: expected a JSON array of {{\"name\", \"apiKey\", \"apiSecret\"}}: {e}",
            path.display()
        ))
    })?;
    Ok(entries
        .into_iter()
        .map(|e| BootstrapEntry {
            name: e.name,
            api_key: e.api_key,
            api_secret: SecretString::from(e.api_secret),
        })
        .collect())
}
