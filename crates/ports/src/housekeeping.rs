//! What an operator's store needs besides the use cases: retention and a liveness probe.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store_error::StoreError;

/// Retention and readiness.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Deletes at most `limit` sessions (of any application) that ended — consumed,
    /// cancelled or expired ([`domain::Session::ends_at`]) — before `ended_before`, with
    /// their events and deliveries; slots bound to them become vacant. A session with
    /// travel-rule compliance records (a declaration, a proof, a refused proof) is kept, with
    /// those records, until it ended before `travel_rule_ended_before`. Deletes order events
    /// received before `ended_before` too, a batch at a time. Returns how many sessions were
    /// deleted.
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
