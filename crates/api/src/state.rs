//! What every handler shares.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName};
use domain::{ApplicationId, Rules};
use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use ports::{Clock, Housekeeping, SessionService, WidgetGateway};

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
    /// The at-rest keys over every sealed value (the key check of readiness).
    pub keys: app::AtRestKeys,
    /// Webhook endpoints and session events.
    pub webhooks: app::Webhooks,
    /// Transak's order events.
    pub orders: app::Orders,
    /// Travel-rule declarations and ownership proofs.
    pub travel_rule: app::TravelRule,
    /// The store's readiness ping.
    pub housekeeping: Arc<dyn Housekeeping>,
    /// The upstream (its credentials' state, for readiness reports).
    pub gateway: Arc<dyn WidgetGateway>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Validation rules.
    pub rules: Rules,
    /// Base of launch links, no trailing slash.
    pub public_base: String,
    /// Per-application rate limit; `None` when disabled.
    pub limiter: Option<RateLimiter>,
    /// Per-client-address and global limits in front of authentication and launch links.
    pub clients: ClientLimiter,
    /// Request and body-read timeouts.
    pub limits: HttpLimits,
    /// The last database ping, reused for a moment by readiness checks.
    pub readiness: ReadinessCache,
    /// The last check that the configured keys open every stored secret.
    pub key_check: ReadinessCache,
    /// Whether the instance is shutting down.
    pub lifecycle: Lifecycle,
    /// Prometheus.
    pub metrics: Metrics,
}

/// Timeouts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From the request head to the response head.
    pub request_timeout: Duration,
    /// Reading the request body.
    pub body_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Whether the instance is shutting down: readiness turns `503` at once.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
}

impl Lifecycle {
    /// From now on the instance reports itself not ready.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether [`Lifecycle::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The last result of a readiness check, trusted for a while so that a flood of `/readyz`
/// costs one check per period.
#[derive(Debug)]
pub struct ReadinessCache {
    ttl: Duration,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
    /// One check at a time: `/readyz` is public, and a burst of probes when the result
    /// expires must not become a burst of database scans.
    checking: tokio::sync::Mutex<()>,
}

impl ReadinessCache {
    /// The database ping's period.
    pub const PING: Duration = Duration::from_secs(1);
    /// The key check's period.
    pub const KEYS: Duration = Duration::from_secs(30);

    /// A cache trusting a result for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            last: Mutex::new(None),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached result if fresh; otherwise runs `check` — one caller at a time, the others
    /// waiting for its result — remembers it and logs it with `on_change` when it differs
    /// from the one before.
    pub async fn get_or_check<F, Fut>(
        &self,
        check: F,
        on_change: impl FnOnce(&Result<(), String>),
    ) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        if let Some(cached) = self.get() {
            return cached;
        }
        let _turn = self.checking.lock().await;
        if let Some(cached) = self.get() {
            return cached;
        }
        let result = check().await;
        if self.put(result.clone()) {
            on_change(&result);
        }
        result
    }

    /// The cached result, if fresh.
    pub fn get(&self) -> Option<Result<(), String>> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, r)| r.clone())
    }

    /// Remembers a result; returns whether it differs from the one remembered before (the
    /// first result counts as a change only when it is a failure).
    pub fn put(&self, result: Result<(), String>) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let changed = match last.as_ref() {
            Some((_, previous)) => *previous != result,
            None => result.is_err(),
        };
        *last = Some((Instant::now(), result));
        changed
    }
}

/// Limits on the work anyone can make the instance do before knowing who they are: per
/// client address, and in all.
pub struct ClientLimiter {
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    global: Option<DefaultDirectRateLimiter>,
    /// The header a trusted proxy sets to the client's address (its last value is used).
    client_ip_header: Option<HeaderName>,
}

/// Settings of a [`ClientLimiter`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientLimits {
    /// Requests per second per client address (burst twice that); 0 disables.
    pub per_client: u32,
    /// Requests per second in all (burst twice that); 0 disables.
    pub global: u32,
    /// Read the client's address from this header (set by a trusted proxy) instead of the
    /// connection's peer.
    pub client_ip_header: Option<HeaderName>,
}

impl ClientLimits {
    /// Requests per second per client address, unless configured.
    pub const DEFAULT_PER_CLIENT: u32 = 500;
    /// Requests per second in all, unless configured.
    pub const DEFAULT_GLOBAL: u32 = 10_000;
}

fn quota(per_second: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl ClientLimiter {
    /// A limiter with these settings.
    pub fn new(limits: ClientLimits) -> Self {
        Self {
            per_client: quota(limits.per_client).map(DefaultKeyedRateLimiter::keyed),
            global: quota(limits.global).map(DefaultDirectRateLimiter::direct),
            client_ip_header: limits.client_ip_header,
        }
    }

    /// The client's address: the configured header's last value if it is an address,
    /// otherwise the connection's peer.
    pub fn client(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> IpAddr {
        self.client_ip_header
            .as_ref()
            .and_then(|h| headers.get_all(h).iter().next_back())
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
            .or(peer)
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// `Err(wait)` when the client (or everyone) is over the limit.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        // The limiter's own clock: building a clock (`DefaultClock::default()`) calibrates
        // it, which costs more than the rest of a request's limiting.
        if let Some(limiter) = &self.per_client {
            limiter
                .check_key(&client)
                .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))?;
        }
        if let Some(limiter) = &self.global {
            limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))?;
        }
        Ok(())
    }

    /// Forgets clients that have not been seen lately (call periodically).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_client {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Requests per second per application on this instance, burst twice that.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<ApplicationId>,
}

impl RateLimiter {
    /// Requests per second per application per instance, unless configured.
    pub const DEFAULT_PER_SECOND: u32 = 100;

    /// `None` when `per_second` is 0 (disabled).
    pub fn new(per_second: u32) -> Option<Self> {
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota(per_second)?),
        })
    }

    /// `Err(wait)` when the application is over its limit.
    pub fn check(&self, app: ApplicationId) -> Result<(), Duration> {
        self.limiter
            .check_key(&app)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::ReadinessCache;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A burst of probes when the result has expired runs the check once.
    #[tokio::test]
    async fn concurrent_probes_run_one_check() {
        let cache = Arc::new(ReadinessCache::new(Duration::from_secs(30)));
        let runs = Arc::new(AtomicUsize::new(0));
        let probes: Vec<_> = (0..16)
            .map(|_| {
                let (cache, runs) = (cache.clone(), runs.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_check(
                            || async {
                                runs.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Err("down".to_string())
                            },
                            |_| {},
                        )
                        .await
                })
            })
            .collect();
        for p in probes {
            assert_eq!(p.await.unwrap(), Err("down".to_string()));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
