//! Session events (a transactional outbox) and the deliveries of each event to each
//! webhook endpoint.
//!
//! # The outbox
//!
//! A session's state changes — the mint ([`SessionStore::fulfil`]), the first open of its
//! link ([`SessionStore::launch`]), a cancel ([`SessionStore::cancel`]), its expiry
//! ([`SessionStore::sweep_expired`]) — each write a [`SessionEvent`] **in the same
//! transaction** (on Postgres, the same statement) as the change, together with one
//! delivery per endpoint of the application subscribed to the event's type. A change that
//! fails writes no event; an event exists only with its change.
//!
//! # Delivery
//!
//! Instances claim due deliveries under a lease ([`DeliveryQueue::claim`]: each
//! delivery to one instance at a time), send them, and record each attempt
//! ([`DeliveryQueue::record_attempt`]). A delivery whose instance died is claimed again once
//! its lease lapses. [`DeliveryQueue::wait`] wakes a worker when new
//! deliveries were written (on any instance).
//!
//! [`SessionStore::fulfil`]: crate::SessionStore::fulfil
//! [`SessionStore::launch`]: crate::SessionStore::launch
//! [`SessionStore::cancel`]: crate::SessionStore::cancel
//! [`SessionStore::sweep_expired`]: crate::SessionStore::sweep_expired

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, EventType, SessionId, WebhookEndpointId, WebhookUrl};
use uuid::Uuid;

use crate::application_store::EncryptedSecret;
use crate::session_store::StoredSession;
use crate::store_error::StoreError;

/// Something that happened to a session, with the session as it was right after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    /// `evt_…`; the `webhook-id` of its deliveries.
    pub id: EventId,
    /// What happened.
    pub kind: EventType,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The session right after the change.
    pub session: StoredSession,
}

/// Where one event stands with one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not delivered yet; an attempt is due at `next_attempt_at`.
    Pending,
    /// An attempt got a `2xx`.
    Delivered,
    /// Every attempt the retry schedule allows failed (or the endpoint was deleted).
    Failed,
}

impl DeliveryStatus {
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Failed => "FAILED",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One event's delivery to one endpoint, as the events endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The endpoint.
    pub endpoint: WebhookEndpointId,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status_code: Option<u16>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An event with its deliveries: a session's audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The event.
    pub event: SessionEvent,
    /// Its deliveries, one per endpoint it was addressed to.
    pub deliveries: Vec<Delivery>,
}

/// Which delivery: an event to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    /// The owning application.
    pub application: ApplicationId,
    /// The event.
    pub event: EventId,
    /// The endpoint.
    pub endpoint: WebhookEndpointId,
}

/// What to claim in [`DeliveryQueue::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimQuery {
    /// Deliveries due at or before this instant (and not under another live lease).
    pub now: DateTime<Utc>,
    /// The claiming worker (one per instance).
    pub owner: Uuid,
    /// The lease: until then no one else claims what this call returns.
    pub lease_until: DateTime<Utc>,
    /// The most deliveries to return.
    pub limit: u32,
    /// The most deliveries of one endpoint this worker may have in flight: a claim returns
    /// at most this many less those in [`ClaimQuery::endpoint_in_flight`].
    pub per_endpoint: u32,
    /// The endpoints this worker has deliveries in flight to, with how many.
    pub endpoint_in_flight: Vec<(WebhookEndpointId, u32)>,
    /// The most deliveries of one application this worker may have in flight: a claim
    /// returns at most this many less those in [`ClaimQuery::application_in_flight`].
    pub per_application: u32,
    /// The applications this worker has deliveries in flight for, with how many.
    pub application_in_flight: Vec<(ApplicationId, u32)>,
}

/// A claimed delivery, with what it takes to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// Which.
    pub key: DeliveryKey,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The event.
    pub event: SessionEvent,
    /// The endpoint's URL.
    pub url: WebhookUrl,
    /// The endpoint's signing secret, sealed.
    pub secret: EncryptedSecret,
    /// The secret it replaced, while deliveries are still signed with both (for the
    /// lifetime its rotation gave it: 24 h by default).
    pub previous_secret: Option<EncryptedSecret>,
}

/// How an attempt ended, as recorded by [`DeliveryQueue::record_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A `2xx`: delivered.
    Delivered,
    /// Failed; try again at this instant.
    RetryAt(DateTime<Utc>),
    /// Failed, and the schedule allows no more attempts.
    Failed,
}

/// One attempt of a claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Which delivery.
    pub key: DeliveryKey,
    /// The worker that claimed it (an attempt of a delivery claimed by another worker since
    /// is not recorded).
    pub owner: Uuid,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// The HTTP status, if the endpoint answered.
    pub status_code: Option<u16>,
    /// What went wrong, in a few words (no secrets, no URL query).
    pub error: Option<String>,
    /// What happens next.
    pub outcome: AttemptOutcome,
}

/// The events of a session with their deliveries: its audit trail.
///
/// # Errors
///
/// [`StoreError::Unavailable`] when the store cannot be reached; [`StoreError::Unexpected`]
/// for anything else.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// A session's events, oldest first, each with its deliveries; empty for an unknown
    /// session (or another application's).
    async fn session_events(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Vec<EventRecord>, StoreError>;
}

/// The queue of deliveries: claimed under a lease by the delivery workers of every instance.
///
/// # Errors
///
/// [`StoreError::Unavailable`] when the store cannot be reached; [`StoreError::Unexpected`]
/// for anything else.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `query.limit` pending deliveries that are due and not under a live
    /// lease, oldest due first, at most `query.per_endpoint` per endpoint less what
    /// `query.endpoint_in_flight` says is in flight to it, and at most
    /// `query.per_application` per application less
    /// what `query.application_in_flight` says is in flight for it (an application at its
    /// cap is passed over, so the others' due deliveries are claimed instead of waiting
    /// behind it); deliveries to deleted endpoints are never returned.
    ///
    /// # Concurrency
    ///
    /// Concurrent claims (any number of workers on any number of instances) never return
    /// the same delivery while its lease lasts.
    async fn claim(&self, query: &ClaimQuery) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records an attempt of a delivery this worker claimed and ends its lease. `false`
    /// (nothing recorded) when the delivery is not claimed by `attempt.owner` any more.
    async fn record_attempt(&self, attempt: &Attempt) -> Result<bool, StoreError>;

    /// Ends `owner`'s leases on `keys` without an attempt (shutdown): they are due again at
    /// once, for any worker.
    async fn release(&self, owner: Uuid, keys: &[DeliveryKey]) -> Result<(), StoreError>;

    /// Makes an event's failed deliveries (to `endpoint` only, if given) pending again, due
    /// at `now`, with a fresh attempt count; returns how many.
    async fn redeliver(
        &self,
        event: EventId,
        endpoint: Option<WebhookEndpointId>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// How many pending deliveries are due at `now` (the backlog).
    async fn due_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Waits until deliveries may have been written (by any instance) since the last call,
    /// or `timeout`. A spurious or missed wake-up only delays a delivery until the worker's
    /// next timer tick.
    async fn wait(&self, timeout: Duration);
}
