//! What every handler shares.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use domain::{ApplicationId, Rules};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ports::{Clock, SessionService, SessionStore, WidgetGateway};

use crate::observability::Metrics;

/// Shared state: cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

/// The services and settings behind [`AppState`].
pub struct Shared {
    /// The use cases.
    pub sessions: Arc<dyn SessionService>,
    /// Applications (authentication).
    pub applications: app::Applications,
    /// The session store (readiness ping).
    pub store: Arc<dyn SessionStore>,
    /// The upstream (readiness check).
    pub gateway: Arc<dyn WidgetGateway>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Validation rules.
    pub rules: Rules,
    /// Base of launch links, no trailing slash.
    pub public_base: String,
    /// Per-application rate limit; `None` when disabled.
    pub limiter: Option<RateLimiter>,
    /// Prometheus.
    pub metrics: Metrics,
}

/// Requests per second per application on this instance, burst twice that.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<ApplicationId>,
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (disabled).
    pub fn new(per_second: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        })
    }

    /// `Err(wait)` when the application is over its limit.
    pub fn check(&self, app: ApplicationId) -> Result<(), Duration> {
        self.limiter
            .check_key(&app)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}
