//! Partner applications: authentication, and everything an operator does with them.
//!
//! The HTTP edge extracts the `api-key` and `Authorization` headers and calls
//! [`Applications::authenticate`]; the admin commands and the start-up bootstrap call the
//! other methods. Every stored application is built by one function here, with its secret
//! sealed by the [`SecretSealer`] port and bound to the application.

use std::sync::Arc;

use ::signing::request::{self as signing, AuthorizationError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::ApplicationId;
use ports::{
    ApiKeyDigest, Application, ApplicationError, ApplicationRecord, ApplicationSettings,
    ApplicationStatus, ApplicationStore, Caller, Clock, NewApplication, Randomness, RequestNonce,
    SealContext, SealError, SecretSealer, StoreError,
};
use secrecy::{ExposeSecret as _, SecretString};
use tracing::{info, instrument};

use crate::credential_cache::CredentialCache;

/// The prefix of every generated API key, so a leaked key is recognisable.
pub const API_KEY_PREFIX: &str = "wsk_";
/// The prefix of every generated API secret.
pub const API_SECRET_PREFIX: &str = "wss_";
/// The least length of an API key or secret given by an operator (generated ones are 47).
pub const MIN_CREDENTIAL_LEN: usize = 16;
pub use ports::{MAX_REQUEST_AGE_MS, MAX_REQUEST_LEAD_MS};

/// One signed request, as the edge read it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The `api-key` header.
    pub api_key: &'a str,
    /// The `Authorization` header.
    pub authorization: &'a str,
    /// The method.
    pub method: &'a str,
    /// The path below `/api/v1` with its query string, as received.
    pub path_and_query: &'a str,
    /// The body as received.
    pub body: &'a [u8],
}

/// Who a request was authenticated as, and the signature that proved it (for the replay
/// check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The application, its name and settings.
    pub caller: Caller,
    /// The request's signature, remembered until `unix_ms + MAX_REQUEST_AGE_MS` so it is
    /// accepted once.
    pub signature: [u8; 32],
    /// The request's timestamp.
    pub unix_ms: i64,
}

impl VerifiedRequest {
    /// The request's signature as a replay-protection nonce: remembered until the request's
    /// timestamp leaves the accepted window (5 minutes after it).
    pub fn nonce(&self) -> RequestNonce {
        let until = self.unix_ms.saturating_add(MAX_REQUEST_AGE_MS);
        RequestNonce {
            application: self.caller.application,
            signature: self.signature,
            expires_at: DateTime::<Utc>::from_timestamp_millis(until)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            durable: false,
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `Authorization` is not `HMAC <unix-ms>:<64 hex>`.
    #[error("Authorization: {0}")]
    Malformed(#[from] AuthorizationError),
    /// The timestamp is outside the accepted window.
    #[error(
        "the signature's timestamp is more than 5 minutes old or more than 30 seconds ahead of the server's clock ({now_ms} ms since the epoch)"
    )]
    StaleTimestamp {
        /// The server's clock.
        now_ms: i64,
    },
    /// Unknown API key or wrong signature (indistinguishable from outside).
    #[error("the api-key or the signature is not valid")]
    InvalidCredentials,
    /// The application is disabled.
    #[error("this application is disabled")]
    Disabled,
    /// The application's secret cannot be opened (a configuration problem: see the log).
    #[error("the secret of application {application} cannot be opened: {cause}")]
    Sealing {
        /// The application.
        application: ApplicationId,
        /// Why.
        cause: SealError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Credentials shown to the operator once.
pub struct IssuedCredentials {
    /// The application.
    pub application: Application,
    /// The API key.
    pub api_key: String,
    /// The API secret.
    pub api_secret: SecretString,
}

/// One application of the bootstrap file.
#[derive(Clone)]
pub struct BootstrapEntry {
    /// Its name.
    pub name: String,
    /// Its API key.
    pub api_key: String,
    /// Its API secret.
    pub api_secret: SecretString,
    /// Its settings.
    pub settings: ApplicationSettings,
}

/// Why an administrative operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// A name or credential breaks the rules.
    #[error("{0}")]
    Invalid(String),
    /// No application with that name.
    #[error("no application named {0:?}")]
    NotFound(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] ApplicationError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(ApplicationError::Store(e))
    }
}

/// The application use cases.
#[derive(Clone)]
pub struct Applications {
    store: Arc<dyn ApplicationStore>,
    sealer: Arc<dyn SecretSealer>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Randomness>,
    cache: Arc<CredentialCache>,
}

impl Applications {
    /// The use cases over these ports, with a credential cache of the default size.
    pub fn new(
        store: Arc<dyn ApplicationStore>,
        sealer: Arc<dyn SecretSealer>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Randomness>,
    ) -> Self {
        Self {
            store,
            sealer,
            clock,
            ids,
            cache: Arc::new(CredentialCache::default()),
        }
    }

    /// Authenticates one signed request (contract §6): the timestamp is within 5 minutes back and
    /// 30 seconds ahead, the key is known, the signature is right (compared in constant time)
    /// and the application is enabled. An unknown key costs the same HMAC as a known one.
    ///
    /// This does not check for replays: the caller records [`VerifiedRequest::signature`]
    /// with its store, atomically with the request's own work where it can.
    ///
    /// # Errors
    ///
    /// See [`AuthError`].
    #[instrument(skip_all)]
    pub async fn authenticate(
        &self,
        request: SignedRequest<'_>,
    ) -> Result<VerifiedRequest, AuthError> {
        let parsed = signing::parse_authorization(request.authorization)?;
        let now_ms = self.clock.now().timestamp_millis();
        if !timestamp_acceptable(parsed.unix_ms, now_ms) {
            return Err(AuthError::StaleTimestamp { now_ms });
        }
        let digest = ApiKeyDigest::of(request.api_key);
        let found = self.lookup(&digest).await?;
        let verified = signing::verify(
            found
                .as_ref()
                .map_or(UNKNOWN_KEY_SECRET, |c| c.secret.expose_secret().as_bytes()),
            &parsed,
            request.method,
            request.path_and_query,
            request.body,
        );
        let Some(credentials) = found.filter(|_| verified) else {
            return Err(AuthError::InvalidCredentials);
        };
        if credentials.status == ApplicationStatus::Disabled {
            return Err(AuthError::Disabled);
        }
        Ok(VerifiedRequest {
            caller: Caller {
                application: credentials.application,
                name: credentials.name,
                settings: credentials.settings,
            },
            signature: parsed.signature,
            unix_ms: parsed.unix_ms,
        })
    }

    async fn lookup(
        &self,
        digest: &ApiKeyDigest,
    ) -> Result<Option<crate::credential_cache::Credentials>, AuthError> {
        if let Some(hit) = self.cache.get(digest) {
            return Ok(hit);
        }
        let found = match self.store.find_by_api_key(digest).await? {
            None => None,
            Some(record) => {
                let id = record.application.id;
                let secret = self
                    .sealer
                    .open(&record.secret, SealContext::Application(id))
                    .map_err(|cause| AuthError::Sealing {
                        application: id,
                        cause,
                    })?;
                Some(crate::credential_cache::Credentials {
                    application: id,
                    name: record.application.name.clone(),
                    settings: record.application.settings,
                    status: record.application.status,
                    secret,
                })
            }
        };
        self.cache.put(*digest, found.clone());
        Ok(found)
    }

    /// The one constructor of a stored application.
    fn new_application(
        &self,
        name: &str,
        api_key: &str,
        secret: &SecretString,
        settings: ApplicationSettings,
    ) -> NewApplication {
        let id = self.ids.application_id();
        NewApplication {
            id,
            name: name.to_string(),
            api_key: ApiKeyDigest::of(api_key),
            secret: self.sealer.seal(secret, SealContext::Application(id)),
            settings,
            now: self.clock.now(),
        }
    }

    fn credential(&self, prefix: &str) -> String {
        let random = secrecy::zeroize::Zeroizing::new(self.ids.secret_bytes());
        let mut out = String::with_capacity(prefix.len() + 43);
        out.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(random.as_slice(), &mut out);
        out
    }

    /// Creates an application; credentials are generated unless given.
    ///
    /// # Errors
    ///
    /// [`AdminError::Invalid`] for an empty or long name or a short credential;
    /// [`ApplicationError::NameTaken`] / [`ApplicationError::ApiKeyTaken`] on clashes.
    #[instrument(skip_all, fields(name = %name))]
    pub async fn create(
        &self,
        name: &str,
        api_key: Option<String>,
        api_secret: Option<SecretString>,
        settings: ApplicationSettings,
    ) -> Result<IssuedCredentials, AdminError> {
        check_name(name)?;
        let api_key = api_key.unwrap_or_else(|| self.credential(API_KEY_PREFIX));
        let api_secret =
            api_secret.unwrap_or_else(|| SecretString::from(self.credential(API_SECRET_PREFIX)));
        check_credentials(name, &api_key, &api_secret)?;
        let application = self
            .store
            .create(self.new_application(name, &api_key, &api_secret, settings))
            .await?;
        info!(application = %application.id, "application created");
        Ok(IssuedCredentials {
            application,
            api_key,
            api_secret,
        })
    }

    /// Every application, by name.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn list(&self) -> Result<Vec<Application>, AdminError> {
        Ok(self.store.list().await?)
    }

    /// The application named `name`.
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`], or the store's.
    pub async fn named(&self, name: &str) -> Result<Application, AdminError> {
        Ok(self.find(name).await?.application)
    }

    async fn find(&self, name: &str) -> Result<ApplicationRecord, AdminError> {
        self.store
            .find_by_name(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(name.to_string()))
    }

    /// New credentials for an application; the old ones stop working at once (within the
    /// credential cache's few seconds on other instances).
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`], or the store's.
    #[instrument(skip_all, fields(name = %name))]
    pub async fn rotate(&self, name: &str) -> Result<IssuedCredentials, AdminError> {
        let record = self.find(name).await?;
        let id = record.application.id;
        let api_key = self.credential(API_KEY_PREFIX);
        let api_secret = SecretString::from(self.credential(API_SECRET_PREFIX));
        let application = self
            .store
            .rotate(
                id,
                ApiKeyDigest::of(&api_key),
                self.sealer.seal(&api_secret, SealContext::Application(id)),
                self.clock.now(),
            )
            .await?;
        info!(application = %id, "application credentials rotated");
        Ok(IssuedCredentials {
            application,
            api_key,
            api_secret,
        })
    }

    /// Replaces an application's settings (sessions created before keep theirs).
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`], or the store's.
    #[instrument(skip_all, fields(name = %name))]
    pub async fn update(
        &self,
        name: &str,
        settings: ApplicationSettings,
    ) -> Result<Application, AdminError> {
        let record = self.find(name).await?;
        let application = self
            .store
            .set_settings(record.application.id, settings)
            .await?;
        info!(application = %application.id, "application settings updated");
        Ok(application)
    }

    /// Enables or disables an application.
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`], or the store's.
    #[instrument(skip_all, fields(name = %name, enabled))]
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<Application, AdminError> {
        let record = self.find(name).await?;
        let status = if enabled {
            ApplicationStatus::Active
        } else {
            ApplicationStatus::Disabled
        };
        Ok(self.store.set_status(record.application.id, status).await?)
    }

    /// Creates the listed applications, or brings existing ones (by name) to the listed
    /// credentials: the list is the source of truth for the applications it names. Safe to
    /// run from several instances starting at once.
    ///
    /// # Errors
    ///
    /// The first entry that cannot be applied, by name.
    pub async fn bootstrap(&self, entries: Vec<BootstrapEntry>) -> Result<(), AdminError> {
        for entry in entries {
            check_name(&entry.name)?;
            check_credentials(&entry.name, &entry.api_key, &entry.api_secret)?;
            match self.store.find_by_name(&entry.name).await? {
                Some(record) => {
                    if record.application.settings != entry.settings {
                        self.store
                            .set_settings(record.application.id, entry.settings.clone())
                            .await?;
                    }
                    if self.matches(&record, &entry).await? {
                        continue;
                    }
                    let id = record.application.id;
                    self.store
                        .rotate(
                            id,
                            ApiKeyDigest::of(&entry.api_key),
                            self.sealer
                                .seal(&entry.api_secret, SealContext::Application(id)),
                            self.clock.now(),
                        )
                        .await?;
                }
                None => {
                    let new = self.new_application(
                        &entry.name,
                        &entry.api_key,
                        &entry.api_secret,
                        entry.settings.clone(),
                    );
                    match self.store.create(new).await {
                        Ok(_) => {}
                        // Another instance starting at the same moment created it first, with
                        // the same file: what it stored is exactly what we would have.
                        Err(ApplicationError::NameTaken(_) | ApplicationError::ApiKeyTaken) => {
                            let theirs = self.find(&entry.name).await?;
                            if !self.matches(&theirs, &entry).await? {
                                return Err(AdminError::Store(ApplicationError::NameTaken(
                                    entry.name.clone(),
                                )));
                            }
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            info!(application = %entry.name, "application from the apps file is ready");
        }
        Ok(())
    }

    /// Whether a stored application already has the entry's credentials.
    async fn matches(
        &self,
        record: &ApplicationRecord,
        entry: &BootstrapEntry,
    ) -> Result<bool, AdminError> {
        let same_key = self
            .store
            .find_by_api_key(&ApiKeyDigest::of(&entry.api_key))
            .await?
            .is_some_and(|r| r.application.id == record.application.id);
        let same_secret = self
            .sealer
            .open(
                &record.secret,
                SealContext::Application(record.application.id),
            )
            .is_ok_and(|s| s.expose_secret() == entry.api_secret.expose_secret());
        Ok(same_key && same_secret)
    }
}

/// A secret no application has, for the HMAC computed when the key is unknown (so an unknown
/// key costs the same work as a known one).
const UNKNOWN_KEY_SECRET: &[u8] = b"wss_unknown-key-placeholder-never-verifies";

/// Whether a request's timestamp is at most 5 minutes old and at most 30 seconds ahead.
///
/// ```
/// use app::timestamp_acceptable;
/// let now = 1_700_000_000_000;
/// assert!(timestamp_acceptable(now - 300_000, now));
/// assert!(!timestamp_acceptable(now - 300_001, now));
/// assert!(timestamp_acceptable(now + 30_000, now));
/// assert!(!timestamp_acceptable(now + 30_001, now));
/// ```
pub fn timestamp_acceptable(unix_ms: i64, now_ms: i64) -> bool {
    let age = i128::from(now_ms) - i128::from(unix_ms);
    (-i128::from(MAX_REQUEST_LEAD_MS)..=i128::from(MAX_REQUEST_AGE_MS)).contains(&age)
}

fn check_name(name: &str) -> Result<(), AdminError> {
    let n = name.trim();
    if n.is_empty() || n != name || name.chars().count() > 100 {
        return Err(AdminError::Invalid(format!(
            "application name {name:?}: 1 to 100 characters, no surrounding spaces"
        )));
    }
    Ok(())
}

fn check_credentials(name: &str, key: &str, secret: &SecretString) -> Result<(), AdminError> {
    if key.len() < MIN_CREDENTIAL_LEN || secret.expose_secret().len() < MIN_CREDENTIAL_LEN {
        return Err(AdminError::Invalid(format!(
            "application {name:?}: the API key and secret must be at least {MIN_CREDENTIAL_LEN} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_window_is_five_minutes_back_and_thirty_seconds_ahead() {
        let now = 1_700_000_000_000;
        assert!(timestamp_acceptable(now, now));
        assert!(timestamp_acceptable(now - 300_000, now));
        assert!(!timestamp_acceptable(now - 300_001, now));
        assert!(timestamp_acceptable(now + 30_000, now));
        assert!(!timestamp_acceptable(now + 30_001, now));
    }

    #[test]
    fn the_timestamp_window_never_overflows() {
        assert!(!timestamp_acceptable(i64::MIN, i64::MAX));
        assert!(!timestamp_acceptable(i64::MAX, i64::MIN));
        assert!(!timestamp_acceptable(i64::MIN, 0));
        assert!(timestamp_acceptable(i64::MAX, i64::MAX));
        assert!(timestamp_acceptable(i64::MIN, i64::MIN));
        assert!(timestamp_acceptable(i64::MAX - 300_000, i64::MAX));
    }

    #[test]
    fn names_and_credentials_are_checked() {
        assert!(check_name("acme").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(" acme").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
        let ok = SecretString::from("s".repeat(16));
        assert!(check_credentials("a", &"k".repeat(16), &ok).is_ok());
        assert!(check_credentials("a", "short", &ok).is_err());
        assert!(check_credentials("a", &"k".repeat(16), &SecretString::from("short")).is_err());
    }
}
