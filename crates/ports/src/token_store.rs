//! The one upstream access token every API instance shares.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::application_store::EncryptedSecret;
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

/// Which of an account's access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSlot {
    /// The token in use.
    Current,
    /// The token the last refresh replaced.
    Previous,
}

/// One access token as sealed at rest, for the at-rest key check and reseal. `Debug` shows
/// only the key id and the length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAccessToken {
    /// The upstream account (`{environment}:{api key}`).
    pub account: String,
    /// Current or previous.
    pub slot: TokenSlot,
    /// The sealed token.
    pub token: EncryptedSecret,
    /// When a previous token was replaced (`None` for the current one).
    pub replaced_at: Option<DateTime<Utc>>,
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
    /// The current token of `account`, if one was ever saved. A previous token that the
    /// configured keys cannot open is left out (it only verifies late order webhooks).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached;
    /// [`StoreError::Unexpected`] when a token is stored but the configured at-rest keys
    /// cannot open it: the caller must not refresh over it (a refresh upstream invalidates
    /// the token that the instances holding the right key use).
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

    /// Every account's tokens as sealed at rest, current and previous. A store that keeps
    /// tokens only in its own process memory seals nothing and lists nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn sealed_tokens(&self) -> Result<Vec<SealedAccessToken>, StoreError>;

    /// Replaces one sealed token of `account` with the same token sealed anew (at-rest key
    /// rotation), only if the stored one in that slot is still `current`. Returns whether it
    /// was replaced.
    ///
    /// # Concurrency
    ///
    /// A compare-and-swap: a refresh or another reseal since the read wins.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn reseal_token(
        &self,
        account: &str,
        slot: TokenSlot,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError>;

    /// Forgets one sealed token of `account` that no configured key opens (its key is
    /// lost), only if the stored one in that slot is still `current`: forgetting the current
    /// token forgets the previous one too, and the next instance that needs a token
    /// refreshes it. Returns whether it was forgotten. The version and the refresh lease
    /// stay.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn forget_token(
        &self,
        account: &str,
        slot: TokenSlot,
        current: &EncryptedSecret,
    ) -> Result<bool, StoreError>;
}
