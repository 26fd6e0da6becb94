//! Webhooks: partners' endpoints ([`Webhooks`]), the delivery worker that sends session
//! events to them ([`DeliveryWorker`]), and the sweeper that emits `session.expired`
//! ([`ExpirySweeper`]). Written against the ports only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, EventId, EventType, PreviousSecretLifetime, RetrySchedule, SessionId,
    WebhookEndpointId, WebhookUrl, WebhookUrlError,
};
use ports::{
    Attempt, AttemptOutcome, ClaimQuery, Clock, DeliveryKey, DeliveryQueue, DueDelivery,
    EndpointError, EndpointStore, EventEncoder, EventLog, EventRecord, OutboundWebhook, Randomness,
    SealContext, SecretSealer, SendError, SessionStore, StoreError, WebhookEndpoint, WebhookSender,
};
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use uuid::Uuid;

/// The prefix of webhook signing secrets (Standard Webhooks).
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// Counter `widget_sessions_webhook_attempts_total{result}`: every attempt, by how it ended
/// (`delivered`, `rejected` (a non-2xx answer), `timeout`, `refused` (not a public
/// address), `error`).
pub const ATTEMPTS: &str = "widget_sessions_webhook_attempts_total";
/// Counter `widget_sessions_webhook_deliveries_total{outcome}`: deliveries that ended,
/// `delivered` or `failed`.
pub const DELIVERIES: &str = "widget_sessions_webhook_deliveries_total";
/// Histogram `widget_sessions_webhook_delivery_latency_seconds`: from the event to the `2xx`.
pub const LATENCY: &str = "widget_sessions_webhook_delivery_latency_seconds";
/// Gauge `widget_sessions_webhook_backlog`: pending deliveries that are due.
pub const BACKLOG: &str = "widget_sessions_webhook_backlog";
/// Counter `widget_sessions_events_total{type}`: `session.expired` events emitted by the
/// sweeper (the other types are counted where their change is).
pub const EXPIRED: &str = "widget_sessions_sessions_expired_total";

/// Describes the metrics of this module.
pub fn describe_metrics() {
    metrics::describe_counter!(ATTEMPTS, "Webhook delivery attempts, by result.");
    metrics::describe_counter!(
        DELIVERIES,
        "Webhook deliveries that ended: delivered, or failed after every allowed attempt."
    );
    metrics::describe_histogram!(
        LATENCY,
        metrics::Unit::Seconds,
        "Time from an event to the 2xx of its delivery."
    );
    metrics::describe_gauge!(BACKLOG, "Pending webhook deliveries that are due now.");
    metrics::describe_counter!(EXPIRED, "session.expired events emitted by the sweeper.");
}

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Allow `http` and non-public addresses (local runs and tests only).
    pub allow_private_networks: bool,
    /// Most endpoints per application.
    pub max_endpoints: u32,
    /// When failed deliveries are tried again.
    pub schedule: RetrySchedule,
    /// How long a worker holds a claimed delivery before another may take it over. Must
    /// exceed the sender's timeout.
    pub lease: Duration,
    /// Deliveries in flight per worker.
    pub max_in_flight: u32,
    /// Deliveries in flight per worker to one endpoint.
    pub per_endpoint: u32,
    /// Deliveries in flight per worker for one application (all its endpoints together), so
    /// that applications with slow endpoints cannot take every slot and hold up the others'.
    pub per_application: u32,
    /// How often a worker looks for due deliveries without being woken.
    pub tick: Duration,
    /// How often the expiry sweeper runs.
    pub sweep_every: Duration,
}

impl WebhookSettings {
    /// Deliveries in flight per worker, by default.
    pub const DEFAULT_MAX_IN_FLIGHT: u32 = 64;
    /// Deliveries in flight per worker for one application, by default: a quarter of the
    /// worker's slots, so at least four applications must be slow at once before any other
    /// waits for a slot.
    pub const DEFAULT_PER_APPLICATION: u32 = 16;
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            max_endpoints: 10,
            schedule: RetrySchedule::default(),
            lease: Duration::from_secs(30),
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            per_endpoint: 4,
            per_application: Self::DEFAULT_PER_APPLICATION,
            tick: Duration::from_secs(1),
            sweep_every: Duration::from_secs(5),
        }
    }
}

/// Why an endpoint operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The URL cannot be used.
    #[error(transparent)]
    Url(#[from] WebhookUrlError),
    /// The application has the most endpoints allowed.
    #[error("the application already has {0} webhook endpoints, the most allowed")]
    TooMany(u32),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EndpointError> for WebhookError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::TooMany(n) => WebhookError::TooMany(n),
            EndpointError::Store(e) => WebhookError::Store(e),
        }
    }
}

/// An endpoint with its secret, shown once (registration and rotation).
#[derive(Debug)]
pub struct EndpointWithSecret {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`.
    pub secret: SecretString,
}

/// Everything the webhook use cases need.
#[derive(Clone)]
pub struct WebhookDependencies {
    /// Webhook endpoints.
    pub endpoints: Arc<dyn EndpointStore>,
    /// Sessions' events with their deliveries.
    pub events: Arc<dyn EventLog>,
    /// The delivery queue.
    pub deliveries: Arc<dyn DeliveryQueue>,
    /// Sessions (the expiry sweep, the events endpoint's 404).
    pub sessions: Arc<dyn SessionStore>,
    /// The wire.
    pub sender: Arc<dyn WebhookSender>,
    /// The body partners receive.
    pub encoder: Arc<dyn EventEncoder>,
    /// Endpoint secrets at rest.
    pub sealer: Arc<dyn SecretSealer>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn Randomness>,
}

fn seal_context(application: ApplicationId, endpoint: WebhookEndpointId) -> SealContext {
    SealContext::WebhookEndpoint {
        application,
        endpoint: endpoint.as_uuid(),
    }
}

/// The endpoint use cases: register, list, delete, rotate a secret; a session's events.
#[derive(Clone)]
pub struct Webhooks {
    deps: WebhookDependencies,
    settings: WebhookSettings,
}

impl Webhooks {
    /// The use cases over these ports.
    pub fn new(deps: WebhookDependencies, settings: WebhookSettings) -> Self {
        Self { deps, settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    fn new_secret(&self) -> SecretString {
        SecretString::from(format!(
            "{WEBHOOK_SECRET_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(self.deps.random.secret_bytes())
        ))
    }

    /// Registers an endpoint; its secret is returned here only.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Url`] for a URL that breaks the rules or whose host does not resolve
    /// to public addresses only; [`WebhookError::TooMany`]; [`WebhookError::Store`].
    pub async fn create_endpoint(
        &self,
        application: ApplicationId,
        url: &str,
        event_types: Vec<EventType>,
    ) -> Result<EndpointWithSecret, WebhookError> {
        let url = WebhookUrl::parse(url, self.settings.allow_private_networks)?;
        self.deps.sender.check(&url).await?;
        let mut event_types = event_types;
        event_types.sort();
        event_types.dedup();
        let endpoint = WebhookEndpoint {
            id: self.deps.random.endpoint_id(),
            application,
            url,
            event_types,
            created_at: self.deps.clock.now(),
        };
        let secret = self.new_secret();
        let sealed = self
            .deps
            .sealer
            .seal(&secret, seal_context(application, endpoint.id));
        self.deps
            .endpoints
            .create(&endpoint, sealed, self.settings.max_endpoints)
            .await?;
        info!(endpoint_id = %endpoint.id, host = %endpoint.url.origin(), "webhook endpoint registered");
        Ok(EndpointWithSecret { endpoint, secret })
    }

    /// The application's endpoints.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn list_endpoints(
        &self,
        application: ApplicationId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.deps.endpoints.list(application).await
    }

    /// Deletes an endpoint; `false` if the application has none by that id.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn delete_endpoint(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
    ) -> Result<bool, StoreError> {
        let deleted = self.deps.endpoints.delete(application, id).await?;
        if deleted {
            info!(endpoint_id = %id, "webhook endpoint deleted");
        }
        Ok(deleted)
    }

    /// A new secret for an endpoint (returned here only). The secret it replaces — the one
    /// last handed out — keeps signing deliveries alongside it for `previous_lifetime` (not
    /// at all for [`PreviousSecretLifetime::NONE`]); any older secret stops now. `None` if
    /// the application has no such endpoint.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn rotate_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        previous_lifetime: PreviousSecretLifetime,
    ) -> Result<Option<EndpointWithSecret>, StoreError> {
        self.new_endpoint_secret(application, id, previous_lifetime)
            .await
    }

    /// A new secret for an endpoint (returned here only) that replaces the current one at
    /// once: the old secret signs no further delivery. For an operator whose at-rest key is
    /// lost (the old secret no longer opens) or whose partner's secret leaked. `None` if the
    /// application has no such endpoint.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn replace_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
    ) -> Result<Option<EndpointWithSecret>, StoreError> {
        self.new_endpoint_secret(application, id, PreviousSecretLifetime::NONE)
            .await
    }

    async fn new_endpoint_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        previous_lifetime: PreviousSecretLifetime,
    ) -> Result<Option<EndpointWithSecret>, StoreError> {
        let secret = self.new_secret();
        let sealed = self
            .deps
            .sealer
            .seal(&secret, seal_context(application, id));
        let now = self.deps.clock.now();
        let until = now + TimeDelta::seconds(i64::from(previous_lifetime.as_secs()));
        let rotated = self
            .deps
            .endpoints
            .rotate_secret(application, id, sealed, until)
            .await?;
        Ok(rotated.map(|endpoint| {
            info!(endpoint_id = %id, previous_secret_signs_for_secs = previous_lifetime.as_secs(),
                "webhook secret rotated");
            EndpointWithSecret { endpoint, secret }
        }))
    }

    /// A session's events with their deliveries, oldest first; `None` for an unknown session
    /// (or another application's).
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn session_events(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Option<Vec<EventRecord>>, StoreError> {
        if self
            .deps
            .sessions
            .get(application, session)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        self.deps
            .events
            .session_events(application, session)
            .await
            .map(Some)
    }

    /// Makes an event's failed deliveries pending again (to `endpoint` only, if given).
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn redeliver(
        &self,
        event: EventId,
        endpoint: Option<WebhookEndpointId>,
    ) -> Result<u64, StoreError> {
        self.deps
            .deliveries
            .redeliver(event, endpoint, self.deps.clock.now())
            .await
    }
}

/// How one attempt ended, for metrics and logs.
fn attempt_result(result: &Result<u16, SendError>) -> &'static str {
    match result {
        Ok(code) if (200..300).contains(code) => "delivered",
        Ok(_) => "rejected",
        Err(SendError::Timeout) => "timeout",
        Err(SendError::Refused(_)) => "refused",
        Err(SendError::Transport(_)) => "error",
    }
}

/// Deliveries this worker has in flight, per endpoint and per application.
#[derive(Default)]
struct InFlight {
    total: u32,
    per_endpoint: HashMap<WebhookEndpointId, u32>,
    per_application: HashMap<ApplicationId, u32>,
    keys: HashMap<DeliveryKey, ()>,
}

/// Sends due deliveries: claims them (under a lease, so that each goes to one instance),
/// sends each with its own task, records each attempt, and schedules retries. One per
/// instance runs until the instance stops ([`DeliveryWorker::run`]); a round can also be run
/// on demand ([`DeliveryWorker::deliver_due`]). A clone is the same worker (same owner, same
/// bounds).
#[derive(Clone)]
pub struct DeliveryWorker {
    deps: WebhookDependencies,
    settings: WebhookSettings,
    owner: Uuid,
    in_flight: Arc<Mutex<InFlight>>,
}

impl DeliveryWorker {
    /// A worker (with an owner id of its own) over these ports.
    pub fn new(deps: WebhookDependencies, settings: WebhookSettings) -> Self {
        let owner = Uuid::from_bytes(
            deps.random.secret_bytes()[..16]
                .try_into()
                .unwrap_or([0u8; 16]),
        );
        Self {
            deps,
            settings,
            owner,
            in_flight: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs until `stop` turns `true`: then claims nothing more, lets attempts in flight
    /// finish for up to `grace`, and releases the leases of those that did not.
    pub async fn run(self, mut stop: watch::Receiver<bool>, grace: Duration) {
        let worker = Arc::new(self);
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut backlog_at = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let (claimed, asked) = match worker.claim().await {
                Ok(claimed) => claimed,
                Err(e) => {
                    warn!(error = %e, "webhook deliveries: claiming failed; trying again shortly");
                    (Vec::new(), 0)
                }
            };
            let got = claimed.len() as u32;
            for delivery in claimed {
                let w = worker.clone();
                tasks.spawn(async move { w.attempt(delivery).await });
            }
            let saturated = worker.capacity() == 0;
            if backlog_at.elapsed() >= Duration::from_secs(10) {
                backlog_at = tokio::time::Instant::now();
                if let Ok(n) = worker
                    .deps
                    .deliveries
                    .due_count(worker.deps.clock.now())
                    .await
                {
                    metrics::gauge!(BACKLOG).set(n as f64);
                }
            }
            if got > 0 && got == asked && !saturated {
                // A full batch: there may be more due right away.
                continue;
            }
            // Woken by a new delivery, the timer, or an attempt ending: an ended attempt frees
            // a slot of its endpoint, which may have more due right away (waiting for the
            // timer would drain a backlog at one batch per tick).
            tokio::select! {
                () = worker.deps.deliveries.wait(worker.settings.tick), if !saturated => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                // A dropped sender means stop too.
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        // Stop: finish what is in flight, within the grace period.
        let finished =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
                .await
                .is_ok();
        if !finished {
            tasks.abort_all();
            let keys: Vec<DeliveryKey> = worker.lock().keys.keys().copied().collect();
            if !keys.is_empty() {
                let _ = worker.deps.deliveries.release(worker.owner, &keys).await;
                info!(
                    released = keys.len(),
                    "webhook deliveries released at shutdown"
                );
            }
        }
    }

    /// One round on demand: claims what is due now (within this worker's bounds), attempts
    /// each delivery and records the attempt, and again until nothing due is left to claim.
    /// Deliveries another worker holds are left to it; retries scheduled for later are not
    /// due. Returns how many attempts were made. (Tests use it to drain the queue instead
    /// of waiting for the background worker.)
    ///
    /// # Errors
    ///
    /// The store's, when claiming fails; attempts already made stay recorded.
    pub async fn deliver_due(&self) -> Result<u64, StoreError> {
        let worker = Arc::new(self.clone());
        let mut total = 0;
        loop {
            let (claimed, _) = worker.claim().await?;
            if claimed.is_empty() {
                return Ok(total);
            }
            total += claimed.len() as u64;
            let mut tasks = JoinSet::new();
            for delivery in claimed {
                let w = worker.clone();
                tasks.spawn(async move { w.attempt(delivery).await });
            }
            while tasks.join_next().await.is_some() {}
        }
    }

    /// How many deliveries are due now and not yet attempted to the end (the backlog).
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn due_now(&self) -> Result<u64, StoreError> {
        self.deps.deliveries.due_count(self.deps.clock.now()).await
    }

    fn capacity(&self) -> u32 {
        self.settings
            .max_in_flight
            .saturating_sub(self.lock().total)
    }

    /// Claims what this worker has room for; the claimed deliveries and how many were asked
    /// for.
    async fn claim(&self) -> Result<(Vec<DueDelivery>, u32), StoreError> {
        let (limit, endpoint_in_flight, application_in_flight) = {
            let f = self.lock();
            let endpoints: Vec<(WebhookEndpointId, u32)> =
                f.per_endpoint.iter().map(|(e, n)| (*e, *n)).collect();
            let applications: Vec<(ApplicationId, u32)> =
                f.per_application.iter().map(|(a, n)| (*a, *n)).collect();
            (
                self.settings.max_in_flight.saturating_sub(f.total),
                endpoints,
                applications,
            )
        };
        if limit == 0 {
            return Ok((Vec::new(), 0));
        }
        let now = self.deps.clock.now();
        let claimed = self
            .deps
            .deliveries
            .claim(&ClaimQuery {
                now,
                owner: self.owner,
                lease_until: now + TimeDelta::from_std(self.settings.lease).unwrap_or_default(),
                limit,
                per_endpoint: self.settings.per_endpoint,
                endpoint_in_flight,
                per_application: self.settings.per_application,
                application_in_flight,
            })
            .await?;
        let mut f = self.lock();
        for d in &claimed {
            f.total += 1;
            *f.per_endpoint.entry(d.key.endpoint).or_default() += 1;
            *f.per_application.entry(d.key.application).or_default() += 1;
            f.keys.insert(d.key, ());
        }
        Ok((claimed, limit))
    }

    fn done(&self, key: DeliveryKey) {
        let mut f = self.lock();
        f.total = f.total.saturating_sub(1);
        if let Some(n) = f.per_endpoint.get_mut(&key.endpoint) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                f.per_endpoint.remove(&key.endpoint);
            }
        }
        if let Some(n) = f.per_application.get_mut(&key.application) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                f.per_application.remove(&key.application);
            }
        }
        f.keys.remove(&key);
    }

    /// One attempt of a claimed delivery, recorded.
    async fn attempt(&self, d: DueDelivery) {
        let key = d.key;
        let context = seal_context(key.application, key.endpoint);
        let mut secrets = Vec::with_capacity(2);
        for sealed in std::iter::once(&d.secret).chain(d.previous_secret.as_ref()) {
            match self.deps.sealer.open(sealed, context) {
                Ok(secret) => secrets.push(secret),
                Err(e) => warn!(event_id = %key.event, endpoint_id = %key.endpoint, error = %e,
                    "a webhook secret cannot be opened with the configured keys"),
            }
        }
        let result = if secrets.is_empty() {
            Err(SendError::Transport(
                "the endpoint's secret cannot be opened with the configured keys".into(),
            ))
        } else {
            let body = self.deps.encoder.encode(&d.event);
            self.deps
                .sender
                .send(&OutboundWebhook {
                    url: d.url.clone(),
                    event: key.event,
                    body,
                    secrets,
                })
                .await
        };
        let now = self.deps.clock.now();
        let attempt = d.attempts + 1;
        let label = attempt_result(&result);
        metrics::counter!(ATTEMPTS, "result" => label).increment(1);
        let outcome = if label == "delivered" {
            let latency = (now - d.event.created_at).to_std().unwrap_or_default();
            metrics::histogram!(LATENCY).record(latency.as_secs_f64());
            metrics::counter!(DELIVERIES, "outcome" => "delivered").increment(1);
            AttemptOutcome::Delivered
        } else {
            match self.settings.schedule.next_attempt(
                d.event.created_at,
                attempt,
                now,
                self.deps.random.jitter(),
            ) {
                Some(at) => AttemptOutcome::RetryAt(at),
                None => {
                    metrics::counter!(DELIVERIES, "outcome" => "failed").increment(1);
                    AttemptOutcome::Failed
                }
            }
        };
        let (status_code, error) = match &result {
            Ok(code) => (Some(*code), None),
            Err(e) => (None, Some(e.to_string())),
        };
        match outcome {
            AttemptOutcome::Delivered => info!(event_id = %key.event, endpoint_id = %key.endpoint,
                attempt, status = ?status_code, "webhook delivered"),
            AttemptOutcome::RetryAt(at) => {
                warn!(event_id = %key.event, endpoint_id = %key.endpoint,
                attempt, status = ?status_code, error = ?error, host = %d.url.origin(),
                next_attempt_at = %at, "webhook attempt failed; will retry")
            }
            AttemptOutcome::Failed => warn!(event_id = %key.event, endpoint_id = %key.endpoint,
                attempt, status = ?status_code, error = ?error, host = %d.url.origin(),
                "webhook delivery failed for good"),
        }
        let recorded = self
            .deps
            .deliveries
            .record_attempt(&Attempt {
                key,
                owner: self.owner,
                at: now,
                status_code,
                error,
                outcome,
            })
            .await;
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                debug!(event_id = %key.event, "the delivery's lease had passed to another worker")
            }
            Err(e) => warn!(event_id = %key.event, error = %e,
                "recording a webhook attempt failed; the delivery is retried after its lease"),
        }
        self.done(key);
    }
}

/// Emits `session.expired` for sessions that passed their expiry while ACTIVE. Runs on every
/// instance; the store makes each session's event exactly-once.
pub struct ExpirySweeper {
    deps: WebhookDependencies,
    every: Duration,
    batch: usize,
}

impl ExpirySweeper {
    /// A sweeper running every `every`.
    pub fn new(deps: WebhookDependencies, every: Duration) -> Self {
        Self {
            deps,
            every,
            batch: 200,
        }
    }

    /// One sweep: until a batch comes back short; how many events were emitted.
    ///
    /// # Errors
    ///
    /// The store's; events already emitted stay emitted.
    pub async fn run_once(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let now: DateTime<Utc> = self.deps.clock.now();
            let ids: Vec<EventId> = (0..self.batch)
                .map(|_| self.deps.random.event_id())
                .collect();
            let n = self.deps.sessions.sweep_expired(now, &ids).await?;
            total += n;
            if n < self.batch as u64 {
                break;
            }
        }
        if total > 0 {
            metrics::counter!(EXPIRED).increment(total);
            debug!(
                expired = total,
                "expiry sweep emitted session.expired events"
            );
        }
        Ok(total)
    }

    /// Sweeps every `every` until `stop` turns `true`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // A dropped sender means stop too.
                changed = stop.changed() => if changed.is_err() { return },
            }
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.run_once().await {
                warn!(error = %e, "expiry sweep failed; retrying at the next tick");
            }
        }
    }
}
