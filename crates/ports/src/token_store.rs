//! The one upstream access token every API instance shares.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::store_error::StoreError;

/// The stored access token of one upstream account.
#[derive(Debug, Clone)]
pub struct StoredAccessToken {
    /// The bearer token (a JWT). `Debug` redacts it.
    pub token: SecretString,
    /// When the upstream says it expires.
    pub expires_at: DateTime<Utc>,
    /// Increases by one at every refresh; tells "the token that just failed" from "a token
    /// another instance already refreshed".
    pub version: i64,
    /// The token this one replaced, and when: the upstream signs its webhooks with the access
    /// token, so events signed just before a refresh still verify with it for a grace period.
    pub previous: Option<PreviousAccessToken>,
}

/// A replaced access token.
#[derive(Debug, Clone)]
pub struct PreviousAccessToken {
    /// The token (a JWT). `Debug` redacts it.
    pub token: SecretString,
    /// When it was replaced.
    pub replaced_at: DateTime<Utc>,
}

/// Shared storage for the upstream access token, keyed by upstream account (environment and
/// API key), with a refresh lease so one instance refreshes at a time.
///
/// Refreshing upstream invalidates the previous token, so all instances must use the stored
/// one; an instance that finds it stale takes the lease, refreshes and saves, while the
/// others re-read.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait AccessTokenStore: Send + Sync {
    /// The current token of `account`, if one was ever saved.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn current(&self, account: &str) -> Result<Option<StoredAccessToken>, StoreError>;

    /// Takes the refresh lease of `account` for `holder` until `lease_until`, if nobody holds
    /// an unexpired lease at `now`. Returns whether `holder` now holds it.
    ///
    /// # Concurrency
    ///
    /// Atomic: of any number of concurrent callers (on any instance), at most one gets `true`
    /// while the lease is unexpired.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn try_lease_refresh(
        &self,
        account: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Saves a freshly refreshed token and releases `holder`'s lease; the version becomes the
    /// previous one plus one (1 for the first token), and the token it replaces becomes
    /// [`StoredAccessToken::previous`], replaced at `now`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when `holder` no longer holds the lease (it expired and
    /// another instance took it): the token is not saved. [`StoreError::Unavailable`] when
    /// the store cannot be reached.
    async fn save_refreshed(
        &self,
        account: &str,
        holder: Uuid,
        token: SecretString,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError>;

    /// Releases `holder`'s lease without saving (the refresh failed). Releasing a lease one
    /// does not hold does nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn release_refresh(&self, account: &str, holder: Uuid) -> Result<(), StoreError>;
}
