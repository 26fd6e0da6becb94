//! `apps …`: create, list, rotate, disable and enable applications in the database.

use domain::ApplicationId;
use ports::{ApiKeyDigest, ApplicationStatus, Clock, NewApplication, SystemClock};
use secrecy::ExposeSecret;

use crate::compose;
use crate::config::Config;
use crate::security;

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Create an application (credentials generated unless given).
    Create {
        /// Unique name.
        name: String,
        /// Use this API key instead of a generated one.
        api_key: Option<String>,
        /// Use this secret instead of a generated one.
        api_secret: Option<String>,
    },
    /// List applications.
    List,
    /// New credentials for an application (the old ones stop working).
    Rotate {
        /// Its name.
        name: String,
    },
    /// Refuse the application's requests.
    Disable {
        /// Its name.
        name: String,
    },
    /// Accept the application's requests again.
    Enable {
        /// Its name.
        name: String,
    },
}

/// Runs an admin action against the configured database.
///
/// # Errors
///
/// A message for the operator.
pub async fn run(config: &Config, action: Action) -> Result<(), String> {
    if config.database_url.is_none() {
        return Err(
            "application commands manage the applications stored in Postgres: set DATABASE_URL (and WIDGET_SESSIONS_SECRET_KEY)"
                .into(),
        );
    }
    let stores = compose::stores(config).await.map_err(|e| e.to_string())?;
    let sealer = compose::sealer(config).map_err(|e| e.to_string())?;
    let apps = stores.applications;
    let clock = SystemClock;
    let find = |name: String| {
        let apps = apps.clone();
        async move {
            apps.find_by_name(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no application named {name:?}"))
        }
    };
    match action {
        Action::Create {
            name,
            api_key,
            api_secret,
        } => {
            let api_key = api_key.unwrap_or_else(security::generate_api_key);
            let secret = api_secret
                .map(secrecy::SecretString::from)
                .unwrap_or_else(security::generate_api_secret);
            let app = apps
                .create(NewApplication {
                    id: ApplicationId::from_uuid(uuid::Uuid::now_v7()),
                    name,
                    api_key: ApiKeyDigest::of(&api_key),
                    secret: sealer.seal(&secret),
                    now: clock.now(),
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("created application {:?} ({})", app.name, app.id);
            println!("api key:    {api_key}");
            println!("api secret: {}", secret.expose_secret());
            println!("(the secret is stored sealed and cannot be shown again)");
        }
        Action::List => {
            let list = apps.list().await.map_err(|e| e.to_string())?;
            println!(
                "{:<24} {:<38} {:<9} {:<26} rotated",
                "name", "id", "status", "created"
            );
            for a in list {
                println!(
                    "{:<24} {:<38} {:<9} {:<26} {}",
                    a.name,
                    a.id.to_string(),
                    a.status.as_str(),
                    a.created_at.to_rfc3339(),
                    a.rotated_at.to_rfc3339()
                );
            }
        }
        Action::Rotate { name } => {
            let record = find(name).await?;
            let api_key = security::generate_api_key();
            let secret = security::generate_api_secret();
            apps.rotate(
                record.application.id,
                ApiKeyDigest::of(&api_key),
                sealer.seal(&secret),
                clock.now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "rotated {:?}; the old credentials stop working (within 10 s on running instances)",
                record.application.name
            );
            println!("api key:    {api_key}");
            println!("api secret: {}", secret.expose_secret());
        }
        Action::Disable { name } => {
            let record = find(name).await?;
            apps.set_status(record.application.id, ApplicationStatus::Disabled)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "disabled {:?} (effective within 10 s on running instances)",
                record.application.name
            );
        }
        Action::Enable { name } => {
            let record = find(name).await?;
            apps.set_status(record.application.id, ApplicationStatus::Active)
                .await
                .map_err(|e| e.to_string())?;
            println!("enabled {:?}", record.application.name);
        }
    }
    Ok(())
}
