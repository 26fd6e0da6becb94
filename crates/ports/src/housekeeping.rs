//! What an operator's store needs besides the use cases: retention and a liveness probe.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store_error::StoreError;

/// Retention and readiness.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Purges sessions (of any application) that ended — consumed, cancelled or expired
    /// ([`domain::Session::ends_at`]) — before `ended_before`, at most `limit` at a time of
    /// each kind: a session without travel-rule compliance records (a declaration, a proof, a
    /// refused proof) is deleted with its events and deliveries, and a slot bound to it
    /// becomes vacant; a session with them loses its events and deliveries but stays, with
    /// its records, until it also ended before `travel_rule_ended_before`, then goes whole.
    /// Deletes order events received before `ended_before` too, a batch at a time. Returns how
    /// many sessions were deleted or lost their events (a session is counted once, never
    /// again).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn purge(
        &self,
        ended_before: DateTime<Utc>,
        travel_rule_ended_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Whether the store answers (for readiness checks).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), StoreError>;
}
