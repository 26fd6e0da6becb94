//! The signatures of accepted requests: a signed request is accepted once (contract §6).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ApplicationId;

use crate::store_error::StoreError;

/// An accepted request's signature, remembered until its timestamp leaves the accepted
/// window so that the same signed request is accepted once (contract §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestNonce {
    /// The calling application.
    pub application: ApplicationId,
    /// The request's HMAC.
    pub signature: [u8; 32],
    /// When the signature's timestamp leaves the accepted window; the nonce may be forgotten
    /// after that.
    pub expires_at: DateTime<Utc>,
    /// Whether the record must survive a store crash. Requests that change something other
    /// than a session (registering a webhook endpoint, rotating its secret, …) are recorded
    /// durably: replayed after a crash they would hand out a new secret. Creates and reads
    /// are not (a replay of those returns what the caller already had).
    pub durable: bool,
}
/// The request log: every accepted request's signature until its window ends. The create
/// path records its request inside [`crate::SessionStore::reuse_or_claim`] (one round
/// trip); every other signed request records it here.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait RequestLog: Send + Sync {
    /// Records an accepted request's signature; `false` if it was recorded before (a
    /// replay). One round trip; no wait for a durable write unless `nonce.durable`.
    ///
    /// # Concurrency
    ///
    /// Of concurrent calls with the same signature, exactly one gets `true`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn remember(&self, nonce: &RequestNonce) -> Result<bool, StoreError>;

    /// Forgets recorded signatures whose window ended before `before`; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn forget_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
