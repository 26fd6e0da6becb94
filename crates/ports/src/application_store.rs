//! Partner applications and their credentials.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ApplicationId;
use sha2::{Digest, Sha256};

use crate::store_error::StoreError;

/// Whether an application may call the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplicationStatus {
    /// Requests are accepted.
    Active,
    /// Requests are refused (`403 application_disabled`).
    Disabled,
}

impl ApplicationStatus {
    /// `"active"` or `"disabled"`, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Active => "active",
            ApplicationStatus::Disabled => "disabled",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// SHA-256 of an API key: the only form in which keys are stored and looked up.
///
/// ```
/// use ports::ApiKeyDigest;
/// assert_eq!(ApiKeyDigest::of("k"), ApiKeyDigest::of("k"));
/// assert_ne!(ApiKeyDigest::of("k"), ApiKeyDigest::of("K"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyDigest(pub [u8; 32]);

impl ApiKeyDigest {
    /// The digest of an API key.
    pub fn of(api_key: &str) -> Self {
        Self(Sha256::digest(api_key.as_bytes()).into())
    }
}

impl fmt::Debug for ApiKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyDigest(…)")
    }
}

/// A secret encrypted at rest (AEAD) by a [`SecretSealer`](crate::SecretSealer): an
/// application's HMAC secret, a webhook endpoint's signing secret, the upstream token.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedSecret {
    /// Which at-rest key sealed it (for key rotation).
    pub key_id: String,
    /// Nonce followed by ciphertext and tag.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for EncryptedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptedSecret(key_id={}, {} bytes)",
            self.key_id,
            self.sealed.len()
        )
    }
}

/// What an application chose for its sessions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplicationSettings {
    /// When its customers must prove that they control a self-hosted wallet of their own
    /// (snapshotted on each session when it is created).
    pub proof_policy: domain::ProofPolicy,
    /// Whether its launch links ask the customer for the travel-rule record first, and who
    /// may frame that page (snapshotted on each session when it is created).
    pub hosted: domain::HostedStep,
}

/// A partner application, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Its id; every session row carries it.
    pub id: ApplicationId,
    /// A unique, human-chosen name.
    pub name: String,
    /// Active or disabled.
    pub status: ApplicationStatus,
    /// Its settings.
    pub settings: ApplicationSettings,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its credentials were last set (creation or rotation).
    pub rotated_at: DateTime<Utc>,
}

/// An application with its sealed secret, as authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRecord {
    /// The application.
    pub application: Application,
    /// Its HMAC secret, sealed.
    pub secret: EncryptedSecret,
}

/// An application to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    /// Its id.
    pub id: ApplicationId,
    /// A unique name.
    pub name: String,
    /// Digest of its API key (unique).
    pub api_key: ApiKeyDigest,
    /// Its sealed HMAC secret.
    pub secret: EncryptedSecret,
    /// Its settings.
    pub settings: ApplicationSettings,
    /// Now.
    pub now: DateTime<Utc>,
}

/// Failures of application administration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationError {
    /// Another application has this name.
    #[error("an application named {0:?} already exists")]
    NameTaken(String),
    /// Another application has this API key.
    #[error("another application already uses this API key")]
    ApiKeyTaken,
    /// No application with that name or id.
    #[error("no such application")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The partner applications.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait ApplicationStore: Send + Sync {
    /// The application whose API key has this digest, active or not.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn find_by_api_key(
        &self,
        api_key: &ApiKeyDigest,
    ) -> Result<Option<ApplicationRecord>, StoreError>;

    /// The application with this name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn find_by_name(&self, name: &str) -> Result<Option<ApplicationRecord>, StoreError>;

    /// Creates an application.
    ///
    /// # Errors
    ///
    /// [`ApplicationError::NameTaken`], [`ApplicationError::ApiKeyTaken`] on clashes (checked
    /// atomically, so two concurrent creates of one name give one success);
    /// [`ApplicationError::Store`] otherwise.
    async fn create(&self, new: NewApplication) -> Result<Application, ApplicationError>;

    /// Every application, by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn list(&self) -> Result<Vec<Application>, StoreError>;

    /// Replaces an application's API key and secret (the old ones stop working at once).
    ///
    /// # Errors
    ///
    /// [`ApplicationError::NotFound`], [`ApplicationError::ApiKeyTaken`],
    /// [`ApplicationError::Store`].
    async fn rotate(
        &self,
        id: ApplicationId,
        api_key: ApiKeyDigest,
        secret: EncryptedSecret,
        now: DateTime<Utc>,
    ) -> Result<Application, ApplicationError>;

    /// Every application with its sealed secret, by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn list_records(&self) -> Result<Vec<ApplicationRecord>, StoreError>;

    /// Replaces an application's sealed secret with the same secret sealed anew (key
    /// rotation), only if the stored one is still `current`. Returns whether it was replaced.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn reseal(
        &self,
        id: ApplicationId,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError>;

    /// Enables or disables an application.
    ///
    /// # Errors
    ///
    /// [`ApplicationError::NotFound`], [`ApplicationError::Store`].
    async fn set_status(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<Application, ApplicationError>;

    /// Replaces an application's settings.
    ///
    /// # Errors
    ///
    /// [`ApplicationError::NotFound`], [`ApplicationError::Store`].
    async fn set_settings(
        &self,
        id: ApplicationId,
        settings: ApplicationSettings,
    ) -> Result<Application, ApplicationError>;
}
