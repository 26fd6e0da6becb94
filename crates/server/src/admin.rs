//! `apps …`: create, list, rotate, disable and enable applications in the database, through
//! the application use cases.

use std::sync::Arc;

use ports::SystemClock;
use secrecy::{ExposeSecret, SecretString};

use crate::compose;
use crate::config::Config;

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
    let keyring = compose::keyring(config).map_err(|e| e.to_string())?;
    let apps = compose::applications(
        stores.applications,
        Arc::new(keyring),
        Arc::new(SystemClock),
    );
    let show = |what: &str, issued: &app::IssuedCredentials| {
        println!(
            "{what} application {:?} ({})",
            issued.application.name, issued.application.id
        );
        println!("api key:    {}", issued.api_key);
        println!("api secret: {}", issued.api_secret.expose_secret());
    };
    match action {
        Action::Create {
            name,
            api_key,
            api_secret,
        } => {
            let issued = apps
                .create(&name, api_key, api_secret.map(SecretString::from))
                .await
                .map_err(|e| e.to_string())?;
            show("created", &issued);
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
            let issued = apps.rotate(&name).await.map_err(|e| e.to_string())?;
            show("rotated", &issued);
            println!(
                "the old credentials stop working (within {} s on running instances)",
                app::CredentialCache::TTL.as_secs()
            );
        }
        Action::Disable { name } => {
            apps.set_enabled(&name, false)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "disabled {name:?} (effective within {} s on running instances)",
                app::CredentialCache::TTL.as_secs()
            );
        }
        Action::Enable { name } => {
            apps.set_enabled(&name, true)
                .await
                .map_err(|e| e.to_string())?;
            println!("enabled {name:?}");
        }
    }
    Ok(())
}
