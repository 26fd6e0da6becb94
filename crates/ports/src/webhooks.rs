//! Session events (a transactional outbox), webhook endpoints, and the deliveries of each
//! event to each endpoint.
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
//! Instances claim due deliveries under a lease ([`WebhookStore::claim_deliveries`]: each
//! delivery to one instance at a time), send them, and record each attempt
//! ([`WebhookStore::record_attempt`]). A delivery whose instance died is claimed again once
//! its lease lapses. [`WebhookStore::wait_for_deliveries`] wakes a worker when new
//! deliveries were written (on any instance).
//!
//! [`SessionStore::fulfil`]: crate::SessionStore::fulfil
//! [`SessionStore::launch`]: crate::SessionStore::launch
//! [`SessionStore::cancel`]: crate::SessionStore::cancel
//! [`SessionStore::sweep_expired`]: crate::SessionStore::sweep_expired

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, EventId, EventType, SessionId, WebhookEndpointId, WebhookUrl, WebhookUrlError,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::application_store::EncryptedSecret;
use crate::session_store::{StoreError, StoredSession};

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

/// A partner's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// `we_…`.
    pub id: WebhookEndpointId,
    /// The owning application.
    pub application: ApplicationId,
    /// Where events are POSTed.
    pub url: WebhookUrl,
    /// The event types it receives; empty: all.
    pub event_types: Vec<EventType>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// Whether it receives events of type `kind`.
    pub fn receives(&self, kind: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&kind)
    }
}

/// Why an endpoint could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The application already has the most endpoints allowed.
    #[error("the application already has {0} webhook endpoints, the most allowed")]
    TooMany(u32),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// What to claim in [`WebhookStore::claim_deliveries`].
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
    /// The most deliveries of one endpoint to return.
    pub per_endpoint: u32,
    /// Endpoints to leave out (this worker is already as busy with them as it may be).
    pub skip_endpoints: Vec<WebhookEndpointId>,
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
    /// The secret it replaced, while deliveries are still signed with both (24 h after a
    /// rotation).
    pub previous_secret: Option<EncryptedSecret>,
}

/// How an attempt ended, as recorded by [`WebhookStore::record_attempt`].
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

/// Webhook endpoints, session events and their deliveries.
///
/// # Errors
///
/// [`StoreError::Unavailable`] when the store cannot be reached; [`StoreError::Unexpected`]
/// for anything else.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Registers `endpoint` with its sealed `secret`, unless the application already has
    /// `limit` endpoints ([`EndpointError::TooMany`]).
    ///
    /// # Concurrency
    ///
    /// Concurrent registrations never take an application past `limit`.
    async fn create_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: EncryptedSecret,
        limit: u32,
    ) -> Result<(), EndpointError>;

    /// The application's endpoints, oldest first.
    async fn list_endpoints(
        &self,
        application: ApplicationId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Deletes an endpoint; its pending deliveries become [`DeliveryStatus::Failed`].
    /// `false` when the application has no such endpoint.
    async fn delete_endpoint(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
    ) -> Result<bool, StoreError>;

    /// Replaces an endpoint's secret with `secret`; the current one keeps signing
    /// deliveries (alongside) until `previous_until`. If an earlier rotation's previous
    /// secret still signs at `now`, that one is kept instead: a rotation repeated (say, after
    /// its answer was lost) never drops the secret the partner actually has. `None` when
    /// there is no such endpoint.
    async fn rotate_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        secret: EncryptedSecret,
        now: DateTime<Utc>,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// A session's events, oldest first, each with its deliveries; empty for an unknown
    /// session (or another application's).
    async fn session_events(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Claims up to `query.limit` pending deliveries that are due and not under a live
    /// lease, oldest due first, at most `query.per_endpoint` per endpoint, none of
    /// `query.skip_endpoints`; deliveries to deleted endpoints are never returned.
    ///
    /// # Concurrency
    ///
    /// Concurrent claims (any number of workers on any number of instances) never return
    /// the same delivery while its lease lasts.
    async fn claim_deliveries(&self, query: &ClaimQuery) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records an attempt of a delivery this worker claimed and ends its lease. `false`
    /// (nothing recorded) when the delivery is not claimed by `attempt.owner` any more.
    async fn record_attempt(&self, attempt: &Attempt) -> Result<bool, StoreError>;

    /// Ends `owner`'s leases on `keys` without an attempt (shutdown): they are due again at
    /// once, for any worker.
    async fn release_deliveries(&self, owner: Uuid, keys: &[DeliveryKey])
    -> Result<(), StoreError>;

    /// Makes an event's failed deliveries (to `endpoint` only, if given) pending again, due
    /// at `now`, with a fresh attempt count; returns how many.
    async fn redeliver(
        &self,
        event: EventId,
        endpoint: Option<WebhookEndpointId>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// How many pending deliveries are due at `now` (the backlog).
    async fn due_deliveries(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Waits until deliveries may have been written (by any instance) since the last call,
    /// or `timeout`. A spurious or missed wake-up only delays a delivery until the worker's
    /// next timer tick.
    async fn wait_for_deliveries(&self, timeout: Duration);
}

/// A webhook on its way out.
#[derive(Debug)]
pub struct OutboundWebhook {
    /// Where.
    pub url: WebhookUrl,
    /// The event id (`webhook-id`).
    pub event: EventId,
    /// The body, exactly as signed and sent.
    pub body: Vec<u8>,
    /// The secrets to sign with (`whsec_…`): one signature each.
    pub secrets: Vec<SecretString>,
}

/// Why a webhook could not be sent (no answer from the endpoint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The host does not resolve to public addresses only (checked at every delivery).
    #[error(transparent)]
    Refused(#[from] WebhookUrlError),
    /// No answer within the timeout.
    #[error("no answer within the timeout")]
    Timeout,
    /// Connection, TLS or protocol failure, in a few words.
    #[error("{0}")]
    Transport(String),
}

/// Sends webhooks (Standard Webhooks headers and signatures) and checks where they may go.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs the webhook; the HTTP status of the answer (any status: the caller judges it).
    /// Redirects are not followed.
    ///
    /// # Errors
    ///
    /// [`SendError`] when there was no answer.
    async fn send(&self, webhook: &OutboundWebhook) -> Result<u16, SendError>;

    /// Whether webhooks may be sent to `url` now: its host resolves, and only to public
    /// addresses unless private networks are allowed.
    ///
    /// # Errors
    ///
    /// [`WebhookUrlError::NotPublic`] or [`WebhookUrlError::Invalid`] (does not resolve).
    async fn check(&self, url: &WebhookUrl) -> Result<(), WebhookUrlError>;
}

/// Turns an event into the body partners receive (the API's JSON).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait EventEncoder: Send + Sync {
    /// The body of `event`'s deliveries: the same bytes for every attempt.
    fn encode(&self, event: &SessionEvent) -> Vec<u8>;
}
