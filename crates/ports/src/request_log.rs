//! The signatures of accepted requests: a signed request is accepted once (contract §6).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ApplicationId;

use crate::store_error::StoreError;

/// How far in the past a request's timestamp may be.
pub const MAX_REQUEST_AGE_MS: i64 = 300_000;
/// How far in the future a request's timestamp may be (clock skew).
pub const MAX_REQUEST_LEAD_MS: i64 = 30_000;

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
///
/// # A log that lost its memory
///
/// A store may keep the signatures of creates and reads where a crash can lose them (on
/// Postgres an unlogged table, which a crash or a failover empties). Such a log must then
/// refuse, as replays, every such request signed before it noticed the loss (whose
/// `expires_at` is not after the time it noticed plus [`MAX_REQUEST_AGE_MS`] and
/// [`MAX_REQUEST_LEAD_MS`]), so that a request captured before the crash cannot be
/// replayed after it. Durable records (`durable`) are never lost.
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
