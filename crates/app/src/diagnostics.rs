//! What an operator's check-up (`widget-sessions doctor`) asks of a backend: whether the
//! store answers, whether the at-rest keys open every sealed value in use, whether the
//! upstream account's stored access token opens.

use ports::{AccessTokenStore, Housekeeping, StoreError, StoredAccessToken, Stores};

use crate::keys::AtRestKeys;

/// The check-up of one backend.
#[derive(Clone)]
pub struct Diagnostics {
    housekeeping: std::sync::Arc<dyn Housekeeping>,
    tokens: std::sync::Arc<dyn AccessTokenStore>,
    keys: AtRestKeys,
}

impl Diagnostics {
    /// The check-up of `stores`, with `keys` over the same stores.
    pub fn new(stores: &Stores, keys: AtRestKeys) -> Self {
        Self {
            housekeeping: stores.housekeeping.clone(),
            tokens: stores.tokens.clone(),
            keys,
        }
    }

    /// Whether the store answers.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn database(&self) -> Result<(), StoreError> {
        self.housekeeping.ping().await
    }

    /// The at-rest keys over every sealed value.
    pub fn keys(&self) -> &AtRestKeys {
        &self.keys
    }

    /// The stored access token of `account`, opened; `None` when none is stored yet.
    ///
    /// # Errors
    ///
    /// The store's: [`StoreError::Unexpected`] when the configured keys cannot open it.
    pub async fn upstream_token(
        &self,
        account: &str,
    ) -> Result<Option<StoredAccessToken>, StoreError> {
        self.tokens.current(account).await
    }
}
