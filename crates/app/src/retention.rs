//! Retention: ended sessions older than the retention period are deleted, in bounded batches,
//! and the nonces of requests whose timestamp left the accepted window are forgotten.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ports::{Clock, Housekeeping, RequestLog, StoreError};
use tracing::{debug, info, warn};

/// Deletes sessions that ended (consumed, cancelled or expired) more than `retention` ago,
/// `batch` at a time so no single statement holds many rows locked.
#[derive(Clone)]
pub struct Retention {
    housekeeping: Arc<dyn Housekeeping>,
    requests: Arc<dyn RequestLog>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    travel_rule_retention: Duration,
    batch: u32,
}

impl Retention {
    /// How long ended sessions are kept, unless configured: 90 days.
    pub const DEFAULT_PERIOD: Duration = Duration::from_secs(90 * 24 * 3600);

    /// A retention task over these stores.
    pub fn new(
        housekeeping: Arc<dyn Housekeeping>,
        requests: Arc<dyn RequestLog>,
        clock: Arc<dyn Clock>,
        retention: Duration,
        batch: u32,
    ) -> Self {
        Self {
            housekeeping,
            requests,
            clock,
            retention,
            travel_rule_retention: crate::TravelRuleSettings::DEFAULT_RETENTION,
            batch: batch.max(1),
        }
    }

    /// The retention with this retention of travel-rule compliance records (sessions that
    /// have them are kept as long).
    pub fn with_travel_rule_retention(mut self, retention: Duration) -> Self {
        self.travel_rule_retention = retention;
        self
    }

    /// Purges until a batch comes back short; returns how many sessions were deleted.
    ///
    /// # Errors
    ///
    /// The store's error; batches already purged stay purged.
    pub async fn run_once(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let forgotten = self.requests.forget_before(now).await?;
        if forgotten > 0 {
            debug!(
                forgotten,
                "retention: forgot the nonces of requests past their window"
            );
        }
        let cutoff = now - TimeDelta::from_std(self.retention).unwrap_or(TimeDelta::MAX);
        let travel_rule_cutoff = now
            .checked_sub_signed(
                TimeDelta::from_std(self.travel_rule_retention).unwrap_or(TimeDelta::MAX),
            )
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut total = 0;
        loop {
            let n = self
                .housekeeping
                .purge(cutoff, travel_rule_cutoff, self.batch)
                .await?;
            total += n;
            if n < u64::from(self.batch) {
                break;
            }
            // Let other work in between batches.
            tokio::task::yield_now().await;
        }
        if total > 0 {
            info!(purged = total, "retention: purged ended sessions");
        }
        Ok(total)
    }

    /// Runs [`Retention::run_once`] every `every`, forever; failures are logged and retried
    /// at the next tick.
    pub async fn run_forever(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.run_once().await {
                warn!(error = %e, "retention: purge failed; retrying at the next tick");
            }
        }
    }
}
