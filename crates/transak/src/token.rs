//! The shared access token: an in-memory copy for the hot path, the shared store as the
//! source of truth, and the store's refresh lease so one instance refreshes at a time.
//!
//! Every refresh upstream invalidates the previous token, so an instance never refreshes
//! unless it holds the lease, and re-reads the store (rather than refreshing again) whenever
//! another instance may have refreshed already.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ports::{AccessTokenStore, Clock, GatewayError, StoreError, StoredAccessToken, UpstreamStatus};
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::{DEFAULT_RETRY_AFTER, TransakConfig};
use crate::wire::RefreshedToken;

/// Counter of upstream refreshes by the lease holder, labelled `outcome`.
const TOKEN_REFRESHES: &str = "widget_sessions_upstream_token_refreshes_total";
/// Gauge: 1 when the last attempt to obtain a token succeeded, 0 when it failed.
const UPSTREAM_UP: &str = "widget_sessions_upstream_up";

/// The token state of one gateway instance.
pub(crate) struct TokenState {
    account: String,
    holder: Uuid,
    store: Arc<dyn AccessTokenStore>,
    clock: Arc<dyn Clock>,
    margin: TimeDelta,
    lease: Duration,
    poll: Duration,
    /// The token in use, with its store version: read without touching the store while fresh.
    cached: RwLock<Option<Arc<StoredAccessToken>>>,
    /// One task per instance goes to the store and the lease at a time; the others wait here
    /// and then find the token it obtained in `cached`.
    gate: tokio::sync::Mutex<()>,
    /// After a failed proactive refresh, the current (still valid) token is used without
    /// trying again until this instant.
    cool_down_until: Mutex<Option<Instant>>,
    /// After a failed refresh with no valid token to fall back on, no refresh is tried again
    /// before this instant; the pause doubles at each failure (up to [`MAX_BACKOFF`]), so bad
    /// credentials cannot make the service hammer the upstream.
    backoff: Mutex<Option<(Instant, Duration)>>,
    /// What the last attempt to obtain a token found.
    status: Mutex<UpstreamStatus>,
}

/// The first pause after a failed refresh.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between refresh attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl TokenState {
    pub(crate) fn new(
        config: &TransakConfig,
        store: Arc<dyn AccessTokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            account: config.token_account(),
            holder: Uuid::new_v4(),
            store,
            clock,
            margin: TimeDelta::from_std(config.refresh_margin()).unwrap_or(TimeDelta::MAX),
            lease: config.refresh_lease(),
            poll: config.token_poll_interval(),
            cached: RwLock::new(None),
            gate: tokio::sync::Mutex::new(()),
            cool_down_until: Mutex::new(None),
            backoff: Mutex::new(None),
            status: Mutex::new(UpstreamStatus::Unknown),
        }
    }

    /// What the last attempt to obtain a token found.
    pub(crate) fn status(&self) -> UpstreamStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the outcome of obtaining a token (for readiness and metrics).
    fn observe(
        &self,
        result: Result<Arc<StoredAccessToken>, GatewayError>,
    ) -> Result<Arc<StoredAccessToken>, GatewayError> {
        let status = match &result {
            Ok(_) => UpstreamStatus::Ready,
            Err(e) => UpstreamStatus::Failing {
                reason: generic_reason(e),
            },
        };
        metrics::gauge!(UPSTREAM_UP).set(if result.is_ok() { 1.0 } else { 0.0 });
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
        result
    }

    /// `Some(wait)` while refreshing is paused after failures.
    fn backing_off(&self) -> Option<Duration> {
        let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.and_then(|(until, _)| until.checked_duration_since(Instant::now()))
    }

    fn refresh_failed(&self) {
        let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        let step = backoff.map_or(FIRST_BACKOFF, |(_, step)| (step * 2).min(MAX_BACKOFF));
        *backoff = Some((Instant::now() + step, step));
    }

    fn refresh_succeeded(&self) {
        *self.backoff.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn account(&self) -> &str {
        &self.account
    }

    pub(crate) fn holder(&self) -> Uuid {
        self.holder
    }

    /// A token to call the upstream with: the cached one while it is fresh (no store read),
    /// otherwise see [`TokenState::obtain`].
    pub(crate) async fn current<F, Fut>(
        &self,
        refresh: F,
    ) -> Result<Arc<StoredAccessToken>, GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RefreshedToken, GatewayError>>,
    {
        if let Some(token) = self.cached() {
            let now = self.clock.now();
            if self.is_fresh(&token, now) || (token.expires_at > now && self.cooling_down()) {
                return Ok(token);
            }
        }
        self.obtain(None, refresh).await
    }

    /// A replacement for `rejected`, which the upstream just refused with `401`: a newer
    /// stored token if another instance already refreshed, otherwise a refresh (through the
    /// lease).
    pub(crate) async fn replace_rejected<F, Fut>(
        &self,
        rejected: &StoredAccessToken,
        refresh: F,
    ) -> Result<Arc<StoredAccessToken>, GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RefreshedToken, GatewayError>>,
    {
        {
            let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
            if cached
                .as_ref()
                .is_some_and(|t| t.version == rejected.version)
            {
                *cached = None;
            }
        }
        self.obtain(Some(rejected.version), refresh).await
    }

    /// The slow path. Under the instance gate:
    ///
    /// 1. the cached token, if another task obtained an acceptable one meanwhile;
    /// 2. re-read the store: an acceptable stored token is used as is, and so is one newer
    ///    than the version first seen here (another instance just refreshed);
    /// 3. otherwise try the lease: the holder refreshes upstream and saves (releasing the
    ///    lease if the refresh fails);
    /// 4. without the lease, wait one poll interval and go back to 2. Another instance is
    ///    refreshing; if it fails and releases the lease, or dies and its lease expires, this
    ///    instance takes the lease over on a later round.
    ///
    /// Gives up after two leases. When a proactive refresh fails (or the wait gives up) while
    /// the stored token is still valid, that token is used and refreshing pauses briefly.
    async fn obtain<F, Fut>(
        &self,
        rejected: Option<i64>,
        refresh: F,
    ) -> Result<Arc<StoredAccessToken>, GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RefreshedToken, GatewayError>>,
    {
        let _gate = self.gate.lock().await;
        if let Some(token) = self.cached() {
            if self.acceptable(&token, rejected, self.clock.now()) {
                return Ok(token);
            }
        }
        let result = self.obtain_under_gate(rejected, refresh).await;
        self.observe(result)
    }

    async fn obtain_under_gate<F, Fut>(
        &self,
        rejected: Option<i64>,
        refresh: F,
    ) -> Result<Arc<StoredAccessToken>, GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RefreshedToken, GatewayError>>,
    {
        let give_up = Instant::now() + self.lease.saturating_mul(2);
        // A token newer than both the refused one and the first one seen here was saved by
        // another instance while this one waited: use it even if it is already within the
        // margin (refreshing again would invalidate it).
        let mut floor = rejected;
        let mut first_read = true;
        let mut waited = false;
        loop {
            let stored = self.read().await?;
            let now = self.clock.now();
            if let Some(token) = stored.as_ref() {
                let newer = !first_read
                    && floor.is_none_or(|f| token.version > f)
                    && token.expires_at > now;
                if newer || self.acceptable(token, rejected, now) {
                    return Ok(self.keep(Arc::new(token.clone())));
                }
            }
            if first_read {
                floor = floor.max(stored.as_ref().map(|t| t.version));
                first_read = false;
            }
            // Still valid, and not the token the upstream refused: usable if refreshing fails.
            let fallback = stored.filter(|t| rejected.is_none() && t.expires_at > now);
            if let Some(wait) = self.backing_off() {
                return self.fall_back(
                    fallback,
                    GatewayError::Unavailable {
                        retry_after: wait.max(Duration::from_secs(1)),
                        reason: "obtaining a Transak access token failed recently; trying again after a pause"
                            .to_string(),
                    },
                );
            }

            let lease_until = TimeDelta::from_std(self.lease)
                .ok()
                .and_then(|lease| now.checked_add_signed(lease))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let leased = self
                .store
                .try_lease_refresh(&self.account, self.holder, now, lease_until)
                .await
                .map_err(store_error)?;
            if leased {
                // Double-check under the lease: another instance may have saved a token and
                // released its lease between our read and our lease. Refreshing now would
                // invalidate that fresh token, so use it instead.
                if let Some(token) = self.read().await? {
                    let now = self.clock.now();
                    let newer = floor.is_none_or(|f| token.version > f) && token.expires_at > now;
                    if newer || self.acceptable(&token, rejected, now) {
                        if let Err(e) = self.store.release_refresh(&self.account, self.holder).await
                        {
                            tracing::warn!(error = %e, "could not release the refresh lease; it will lapse");
                        }
                        return Ok(self.keep(Arc::new(token)));
                    }
                }
                match self.refresh_and_save(&refresh).await {
                    Ok(Some(token)) => return Ok(self.keep(token)),
                    // The lease expired and another instance took it: wait for its token.
                    Ok(None) => {}
                    Err(err) => return self.fall_back(fallback, err),
                }
            } else if !waited {
                tracing::debug!("another instance is refreshing the access token; waiting");
                waited = true;
            }

            if Instant::now() >= give_up {
                return self.fall_back(
                    fallback,
                    GatewayError::Unavailable {
                        retry_after: DEFAULT_RETRY_AFTER,
                        reason: "timed out waiting for another instance to refresh the Transak \
                                 access token"
                            .to_string(),
                    },
                );
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Refreshes upstream while holding the lease and saves the result. `Ok(None)` when the
    /// store says the lease was lost (nothing saved).
    async fn refresh_and_save<F, Fut>(
        &self,
        refresh: &F,
    ) -> Result<Option<Arc<StoredAccessToken>>, GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RefreshedToken, GatewayError>>,
    {
        let refreshed = match refresh().await {
            Ok(refreshed) => refreshed,
            Err(err) => {
                count_refresh("failed");
                self.refresh_failed();
                self.release().await;
                return Err(err);
            }
        };
        let now = self.clock.now();
        if refreshed.expires_at <= now {
            count_refresh("failed");
            self.refresh_failed();
            self.release().await;
            return Err(GatewayError::Unexpected(
                "Transak returned an access token that has already expired (check the clock)"
                    .to_string(),
            ));
        }
        count_refresh("ok");
        self.refresh_succeeded();
        if refreshed.expires_at - now <= self.margin {
            tracing::warn!(
                expires_at = %refreshed.expires_at,
                "the refreshed access token expires within the refresh margin; the margin is \
                 too long for this upstream"
            );
        }
        match self
            .store
            .save_refreshed(
                &self.account,
                self.holder,
                refreshed.token,
                refreshed.expires_at,
                now,
            )
            .await
        {
            Ok(saved) => {
                tracing::info!(
                    version = saved.version,
                    expires_at = %saved.expires_at,
                    "refreshed the Transak access token"
                );
                Ok(Some(Arc::new(saved)))
            }
            Err(StoreError::Conflict(_)) => {
                tracing::warn!("the refresh lease expired before the new access token was saved");
                Ok(None)
            }
            Err(err) => {
                self.release().await;
                Err(store_error(err))
            }
        }
    }

    async fn release(&self) {
        if let Err(err) = self.store.release_refresh(&self.account, self.holder).await {
            // The lease then simply expires.
            tracing::warn!(error = %err, "could not release the refresh lease");
        }
    }

    fn fall_back(
        &self,
        fallback: Option<StoredAccessToken>,
        err: GatewayError,
    ) -> Result<Arc<StoredAccessToken>, GatewayError> {
        let Some(token) = fallback else {
            return Err(err);
        };
        let pause = match &err {
            GatewayError::Unavailable { retry_after, .. } => *retry_after,
            _ => DEFAULT_RETRY_AFTER,
        };
        tracing::warn!(
            error = %err,
            expires_at = %token.expires_at,
            "could not refresh the Transak access token; using the current one until it \
             expires"
        );
        *self
            .cool_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + pause);
        Ok(self.keep(Arc::new(token)))
    }

    /// The token as stored now (current and previous), bypassing this instance's cache.
    pub(crate) async fn stored(&self) -> Result<Option<StoredAccessToken>, GatewayError> {
        self.read().await
    }

    /// The version of the token this instance uses, if it has one.
    pub(crate) fn cached_version(&self) -> Option<i64> {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|t| t.version)
    }

    /// Now, by the gateway's clock.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    async fn read(&self) -> Result<Option<StoredAccessToken>, GatewayError> {
        self.store.current(&self.account).await.map_err(store_error)
    }

    fn cached(&self) -> Option<Arc<StoredAccessToken>> {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keep(&self, token: Arc<StoredAccessToken>) -> Arc<StoredAccessToken> {
        *self.cached.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&token));
        token
    }

    fn cooling_down(&self) -> bool {
        self.cool_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }

    fn is_fresh(&self, token: &StoredAccessToken, now: DateTime<Utc>) -> bool {
        token.expires_at - now > self.margin
    }

    /// Fresh, or — after a `401` — any valid token newer than the refused one.
    fn acceptable(
        &self,
        token: &StoredAccessToken,
        rejected: Option<i64>,
        now: DateTime<Utc>,
    ) -> bool {
        match rejected {
            None => self.is_fresh(token, now),
            Some(version) => token.version > version && token.expires_at > now,
        }
    }
}

/// Describes the token metrics to the installed recorder.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        TOKEN_REFRESHES,
        "Upstream access-token refreshes attempted by the holder of the refresh lease."
    );
    metrics::describe_gauge!(
        UPSTREAM_UP,
        "1 when the last attempt to obtain a Transak access token succeeded, 0 when it failed."
    );
}

/// What an operator may read about a failure to obtain a token: the kind of failure, never
/// the upstream's own words (which could echo a credential).
fn generic_reason(e: &GatewayError) -> String {
    match e {
        GatewayError::Rejected {
            status: 401 | 403, ..
        } => "Transak refused this service's partner credentials".to_string(),
        GatewayError::Rejected { status, .. } => {
            format!("Transak refused the access-token refresh (HTTP {status})")
        }
        GatewayError::Unavailable { .. } => {
            "Transak or the access-token store is unavailable".to_string()
        }
        GatewayError::Unexpected(_) => {
            "obtaining a Transak access token failed unexpectedly (see the logs)".to_string()
        }
    }
}

/// Counts one upstream refresh by the lease holder: `ok` when it returned a token that is
/// still valid (saving it is the store's business), `failed` otherwise.
fn count_refresh(outcome: &'static str) {
    metrics::counter!(TOKEN_REFRESHES, "outcome" => outcome).increment(1);
}

/// Store failures while handling the token: an unreachable store is an outage (`503`), the
/// rest is unexpected.
pub(crate) fn store_error(err: StoreError) -> GatewayError {
    match err {
        StoreError::Unavailable(reason) => GatewayError::Unavailable {
            retry_after: DEFAULT_RETRY_AFTER,
            reason: format!("access-token store unavailable: {reason}"),
        },
        StoreError::Conflict(reason) | StoreError::Unexpected(reason) => {
            GatewayError::Unexpected(format!("access-token store failed: {reason}"))
        }
    }
}
