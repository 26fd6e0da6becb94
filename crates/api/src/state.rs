//! What every handler shares.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::{ApplicationId, Rules};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ports::{
    ApiKeyDigest, ApplicationRecord, ApplicationStore, Clock, SessionService, SessionStore,
    WidgetGateway,
};
use secrecy::SecretString;

use crate::observability::Metrics;
use crate::security::SecretSealer;

/// Shared state: cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

/// The services and settings behind [`AppState`].
pub struct Shared {
    /// The use cases.
    pub sessions: Arc<dyn SessionService>,
    /// Applications (authentication).
    pub applications: Arc<dyn ApplicationStore>,
    /// The session store (readiness ping).
    pub store: Arc<dyn SessionStore>,
    /// The upstream (readiness check).
    pub gateway: Arc<dyn WidgetGateway>,
    /// Opens application secrets.
    pub sealer: Arc<SecretSealer>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Validation rules.
    pub rules: Rules,
    /// Base of launch links, no trailing slash.
    pub public_base: String,
    /// Recently verified credentials.
    pub credentials: CredentialCache,
    /// Per-application rate limit; `None` when disabled.
    pub limiter: Option<RateLimiter>,
    /// Prometheus.
    pub metrics: Metrics,
}

/// An application and its opened HMAC secret.
#[derive(Clone)]
pub struct Credentials {
    /// The record (status included).
    pub record: ApplicationRecord,
    /// The opened secret.
    pub secret: SecretString,
}

/// Application lookups by API key, cached briefly (rotations and disables take effect
/// within [`CredentialCache::TTL`] on every instance).
pub struct CredentialCache {
    entries: Mutex<HashMap<ApiKeyDigest, (Instant, Option<Credentials>)>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl CredentialCache {
    /// How long a lookup (found or not) is trusted.
    pub const TTL: Duration = Duration::from_secs(10);
    const MAX_ENTRIES: usize = 10_000;

    /// A cached lookup, if fresh. `Some(None)` means "known not to exist".
    pub fn get(&self, key: &ApiKeyDigest) -> Option<Option<Credentials>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, c)| c.clone())
    }

    /// Remembers a lookup.
    pub fn put(&self, key: ApiKeyDigest, value: Option<Credentials>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
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
