//! [`AccessTokenStore`] in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ports::{
    AccessTokenStore, EncryptedSecret, PreviousAccessToken, SealedAccessToken, StoreError,
    StoredAccessToken, TokenSlot,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::state::lock;

#[derive(Default)]
struct TokenEntry {
    token: Option<StoredAccessToken>,
    lease: Option<(Uuid, DateTime<Utc>)>,
}

/// The shared upstream access token, in memory: held in this process only, so nothing is
/// sealed (and nothing survives the process).
#[derive(Default)]
pub struct MemoryTokenStore {
    inner: Mutex<HashMap<String, TokenEntry>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Who holds `account`'s refresh lease, and until when (for tests and diagnostics). A
    /// lapsed lease stays recorded until it is taken over.
    pub fn lease(&self, account: &str) -> Option<(Uuid, DateTime<Utc>)> {
        lock(&self.inner).get(account).and_then(|e| e.lease)
    }
}

#[async_trait]
impl AccessTokenStore for MemoryTokenStore {
    async fn current(&self, account: &str) -> Result<Option<StoredAccessToken>, StoreError> {
        Ok(lock(&self.inner).get(account).and_then(|e| e.token.clone()))
    }

    async fn try_lease_refresh(
        &self,
        account: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut map = lock(&self.inner);
        let entry = map.entry(account.to_string()).or_default();
        let free = entry
            .lease
            .is_none_or(|(h, until)| h == holder || until <= now);
        if free {
            entry.lease = Some((holder, lease_until));
        }
        Ok(free)
    }

    async fn save_refreshed(
        &self,
        account: &str,
        holder: Uuid,
        token: SecretString,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError> {
        let mut map = lock(&self.inner);
        let entry = map.entry(account.to_string()).or_default();
        if entry.lease.is_none_or(|(h, _)| h != holder) {
            return Err(StoreError::Conflict(
                "the refresh lease is held by someone else".into(),
            ));
        }
        let version = entry.token.as_ref().map_or(1, |t| t.version + 1);
        let stored = StoredAccessToken {
            token,
            expires_at,
            version,
            previous: entry.token.take().map(|t| PreviousAccessToken {
                token: t.token,
                replaced_at: now,
            }),
        };
        entry.token = Some(stored.clone());
        entry.lease = None;
        Ok(stored)
    }

    async fn release_refresh(&self, account: &str, holder: Uuid) -> Result<(), StoreError> {
        let mut map = lock(&self.inner);
        if let Some(entry) = map.get_mut(account)
            && entry.lease.is_some_and(|(h, _)| h == holder)
        {
            entry.lease = None;
        }
        Ok(())
    }

    async fn sealed_tokens(&self) -> Result<Vec<SealedAccessToken>, StoreError> {
        Ok(Vec::new())
    }

    async fn reseal_token(
        &self,
        _account: &str,
        _slot: TokenSlot,
        _current: &EncryptedSecret,
        _resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn forget_token(
        &self,
        _account: &str,
        _slot: TokenSlot,
        _current: &EncryptedSecret,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}
