//! The composition root: the one place that knows every concrete adapter.

use std::path::Path;
use std::sync::Arc;

use app::{Dependencies, Retention, Sessions};
use domain::ApplicationId;
use memory::{MemoryApplicationStore, MemorySessionStore, MemoryTokenStore};
use ports::{
    AccessTokenStore, ApiKeyDigest, ApplicationError, ApplicationStore, Clock, IdGenerator,
    NewApplication, RandomIds, SessionStore, SystemClock, WidgetGateway,
};
use postgres::{PgApplicationStore, PgSessionStore, PgTokenStore, PoolSettings};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use transak::{Environment, TransakConfig, TransakGateway};
use transak_emulator::{Emulator, EmulatorConfig};

use crate::config::{Config, Upstream};
use crate::observability::Metrics;
use crate::security::{self, SecretSealer};
use crate::state::{AppState, CredentialCache, RateLimiter, Shared};

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
}

/// A demo application created for a zero-configuration run.
pub struct DemoApp {
    /// Its API key.
    pub api_key: String,
    /// Its API secret.
    pub api_secret: SecretString,
}

/// Everything a running instance owns.
pub struct Runtime {
    /// The HTTP state.
    pub state: AppState,
    /// The retention task (to spawn).
    pub retention: Retention,
    /// The in-process emulator, kept alive for the life of the process.
    pub emulator: Option<Emulator>,
    /// The demo application of a zero-configuration run.
    pub demo: Option<DemoApp>,
    /// One line saying what this instance runs on.
    pub description: String,
}

/// The stores of one backend.
pub struct Stores {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Applications.
    pub applications: Arc<dyn ApplicationStore>,
    /// The shared upstream token.
    pub tokens: Arc<dyn AccessTokenStore>,
}

/// Opens (and migrates) the configured stores.
///
/// # Errors
///
/// [`StartupError::Database`] when Postgres cannot be reached or migrated.
pub async fn stores(config: &Config) -> Result<Stores, StartupError> {
    match &config.database_url {
        None => Ok(Stores {
            sessions: Arc::new(MemorySessionStore::new()),
            applications: Arc::new(MemoryApplicationStore::new()),
            tokens: Arc::new(MemoryTokenStore::new()),
        }),
        Some(url) => {
            let pool = postgres::pool(
                url.expose_secret(),
                PoolSettings {
                    max_connections: config.db_max_connections,
                    ..PoolSettings::default()
                },
            )
            .map_err(|e| StartupError::Database(e.to_string()))?;
            postgres::migrate(&pool).await.map_err(|e| {
                StartupError::Database(format!("could not apply the migrations: {e}"))
            })?;
            Ok(Stores {
                sessions: Arc::new(PgSessionStore::new(pool.clone())),
                applications: Arc::new(PgApplicationStore::new(pool.clone())),
                tokens: Arc::new(PgTokenStore::new(pool)),
            })
        }
    }
}

/// The at-rest sealer: from `WIDGET_SESSIONS_SECRET_KEY`, or a fresh key for in-memory runs.
///
/// # Errors
///
/// [`StartupError::Applications`] when the key is unusable (already validated by the config).
pub fn sealer(config: &Config) -> Result<SecretSealer, StartupError> {
    match &config.secret_key {
        Some(k) => SecretSealer::from_base64(k.expose_secret())
            .map_err(|e| StartupError::Applications(e.to_string())),
        None => Ok(SecretSealer::generate()),
    }
}

/// Builds a running instance from its configuration.
///
/// # Errors
///
/// See [`StartupError`].
pub async fn build(config: &Config) -> Result<Runtime, StartupError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
    let stores = stores(config).await?;
    let sealer = Arc::new(sealer(config)?);

    let (transak_config, emulator, upstream_text) = match &config.upstream {
        Upstream::InProcessEmulator => {
            let emulator = transak_emulator::spawn(EmulatorConfig::default())
                .await
                .map_err(|e| StartupError::Emulator(e.to_string()))?;
            let url = url::Url::parse(&emulator.base_url())
                .map_err(|e| StartupError::Emulator(e.to_string()))?;
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
            (c, Some(emulator), text)
        }
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
            let text = format!("Transak {} environment", r.environment);
            (c, None, text)
        }
    };
    let gateway: Arc<dyn WidgetGateway> = Arc::new(
        TransakGateway::new(transak_config, stores.tokens.clone(), clock.clone())
            .map_err(|e| StartupError::Upstream(e.to_string()))?,
    );

    if let Some(path) = &config.apps_file {
        bootstrap_apps(path, stores.applications.as_ref(), &sealer, clock.as_ref()).await?;
    }
    let demo = if config.database_url.is_none() && config.apps_file.is_none() {
        Some(create_demo_app(stores.applications.as_ref(), &sealer, clock.as_ref()).await?)
    } else {
        None
    };

    let sessions = Sessions::new(
        Dependencies {
            store: stores.sessions.clone(),
            gateway: gateway.clone(),
            clock: clock.clone(),
            ids,
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
        applications: stores.applications,
        store: stores.sessions,
        gateway,
        sealer,
        clock,
        rules: config.rules.clone(),
        public_base: config.public_base(),
        credentials: CredentialCache::default(),
        limiter: RateLimiter::new(config.rate_limit),
        metrics: Metrics::install(),
    }));
    Ok(Runtime {
        state,
        retention,
        emulator,
        demo,
        description: format!("{store_text}, {upstream_text}"),
    })
}

/// One entry of `WIDGET_SESSIONS_APPS_FILE`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppEntry {
    name: String,
    api_key: String,
    api_secret: String,
}

/// Creates the applications of the file, or brings existing ones (by name) to the file's
/// credentials. The file is the source of truth for the applications it names.
async fn bootstrap_apps(
    path: &Path,
    store: &dyn ApplicationStore,
    sealer: &SecretSealer,
    clock: &dyn Clock,
) -> Result<(), StartupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StartupError::AppsFile(format!("cannot read {}: {e}", path.display())))?;
    let entries: Vec<AppEntry> = serde_json::from_str(&text).map_err(|e| {
        StartupError::AppsFile(format!(
            "{}: expected a JSON array of {{\"name\", \"apiKey\", \"apiSecret\"}}: {e}",
            path.display()
        ))
    })?;
    for entry in entries {
        if entry.name.trim().is_empty() || entry.api_key.len() < 16 || entry.api_secret.len() < 16 {
            return Err(StartupError::AppsFile(format!(
                "application {:?}: name must not be empty and apiKey/apiSecret must be at least 16 characters",
                entry.name
            )));
        }
        let secret = SecretString::from(entry.api_secret);
        let digest = ApiKeyDigest::of(&entry.api_key);
        let now = clock.now();
        let existing = store
            .find_by_name(&entry.name)
            .await
            .map_err(|e| StartupError::Applications(e.to_string()))?;
        let result = match existing {
            Some(record) => {
                let same_key = store
                    .find_by_api_key(&digest)
                    .await
                    .map_err(|e| StartupError::Applications(e.to_string()))?
                    .is_some_and(|r| r.application.id == record.application.id);
                let same_secret = sealer
                    .open(&record.secret)
                    .is_ok_and(|s| s.expose_secret() == secret.expose_secret());
                if same_key && same_secret {
                    continue;
                }
                store
                    .rotate(record.application.id, digest, sealer.seal(&secret), now)
                    .await
                    .map(|_| ())
            }
            None => match store
                .create(NewApplication {
                    id: ApplicationId::from_uuid(uuid::Uuid::now_v7()),
                    name: entry.name.clone(),
                    api_key: digest,
                    secret: sealer.seal(&secret),
                    now,
                })
                .await
            {
                // Another instance starting at the same moment created it first, with the
                // same file: what it stored is exactly what we would have.
                Err(ApplicationError::NameTaken(_)) | Err(ApplicationError::ApiKeyTaken) => {
                    let theirs = store
                        .find_by_name(&entry.name)
                        .await
                        .map_err(|e| StartupError::Applications(e.to_string()))?;
                    let same_key = store
                        .find_by_api_key(&digest)
                        .await
                        .map_err(|e| StartupError::Applications(e.to_string()))?;
                    match (theirs, same_key) {
                        (Some(a), Some(b)) if a.application.id == b.application.id => Ok(()),
                        _ => Err(ApplicationError::NameTaken(entry.name.clone())),
                    }
                }
                other => other.map(|_| ()),
            },
        };
        result.map_err(|e: ApplicationError| {
            StartupError::Applications(format!("{}: {e}", entry.name))
        })?;
        tracing::info!(application = %entry.name, "application from the apps file is ready");
    }
    Ok(())
}

async fn create_demo_app(
    store: &dyn ApplicationStore,
    sealer: &SecretSealer,
    clock: &dyn Clock,
) -> Result<DemoApp, StartupError> {
    let api_key = security::generate_api_key();
    let api_secret = security::generate_api_secret();
    store
        .create(NewApplication {
            id: ApplicationId::from_uuid(uuid::Uuid::now_v7()),
            name: "demo".into(),
            api_key: ApiKeyDigest::of(&api_key),
            secret: sealer.seal(&api_secret),
            now: clock.now(),
        })
        .await
        .map_err(|e| StartupError::Applications(e.to_string()))?;
    Ok(DemoApp {
        api_key,
        api_secret,
    })
}
