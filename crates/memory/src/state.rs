//! The one state behind every session-side store of the in-memory backend, and the outbox.
//!
//! Sessions, slots, request signatures, order events, endpoints, events and deliveries live
//! under one mutex, so that a change and the event reporting it are written in one critical
//! section (the transactional outbox), whichever port makes the change.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, EventType, ReuseKeyDigest, SessionId, WebhookEndpointId};
use ports::{
    ClaimToken, DeclarationVersion, Delivery, DeliveryStatus, EncryptedSecret, ProofRecord,
    RejectedProof, RequestNonce, SessionEvent, StoredSession, UnmatchedOrder, WebhookEndpoint,
};
use tokio::sync::Notify;
use uuid::Uuid;

/// Locks a mutex; a poisoned lock is still consistent (every update is a single insert,
/// remove or field write), so it is used as it is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A reuse-key slot: bound to a session, claimed by a minter, or both.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    pub session: Option<SessionId>,
    pub claim: Option<(ClaimToken, DateTime<Utc>)>,
}

/// A webhook endpoint with its sealed secrets.
pub(crate) struct EndpointRow {
    pub endpoint: WebhookEndpoint,
    pub secret: EncryptedSecret,
    pub previous: Option<(EncryptedSecret, DateTime<Utc>)>,
}

/// One event's delivery to one endpoint.
pub(crate) struct DeliveryRow {
    pub application: ApplicationId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease: Option<(Uuid, DateTime<Utc>)>,
}

impl DeliveryRow {
    pub(crate) fn view(&self, endpoint: WebhookEndpointId) -> Delivery {
        Delivery {
            endpoint,
            status: self.status,
            attempts: self.attempts,
            last_status_code: self.last_status_code,
            last_attempt_at: self.last_attempt_at,
            next_attempt_at: self.next_attempt_at,
        }
    }
}

/// Everything the session-side stores hold.
#[derive(Default)]
pub(crate) struct State {
    pub rows: HashMap<(ApplicationId, SessionId), StoredSession>,
    pub slots: HashMap<(ApplicationId, ReuseKeyDigest), Slot>,
    /// Accepted requests' signatures, until their window ends.
    pub nonces: HashMap<(ApplicationId, [u8; 32]), DateTime<Utc>>,
    pub endpoints: BTreeMap<(ApplicationId, WebhookEndpointId), EndpointRow>,
    /// Events by id (ids are UUID v7: in creation order).
    pub events: BTreeMap<EventId, SessionEvent>,
    pub deliveries: BTreeMap<(EventId, WebhookEndpointId), DeliveryRow>,
    /// Order events received, by (order id, event id): when.
    pub orders: HashMap<(String, String), DateTime<Utc>>,
    /// The unmatched ones among them, in the order received.
    pub unmatched: Vec<UnmatchedOrder>,
    /// Travel-rule compliance records, by session.
    pub compliance: HashMap<(ApplicationId, SessionId), Compliance>,
}

/// One session's travel-rule compliance record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compliance {
    pub declarations: Vec<DeclarationVersion>,
    pub proof: Option<(ProofRecord, Option<SessionId>)>,
    pub rejected: Vec<RejectedProof>,
    /// The session's events went with the sessions' retention; it stays for its records.
    pub events_purged: bool,
}

impl State {
    /// Writes an event of `session` and a delivery to each endpoint that receives it (the
    /// outbox, in the same critical section as the change); whether any delivery was
    /// written.
    pub(crate) fn emit(
        &mut self,
        id: EventId,
        kind: EventType,
        at: DateTime<Utc>,
        session: &StoredSession,
    ) -> bool {
        let application = session.session.application_id();
        let targets: Vec<WebhookEndpointId> = self
            .endpoints
            .range((application, WebhookEndpointId::from_uuid(Uuid::nil()))..)
            .take_while(|((app, _), _)| *app == application)
            .filter(|(_, row)| row.endpoint.receives(kind))
            .map(|((_, endpoint), _)| *endpoint)
            .collect();
        // The upstream URL (a bearer) is never in an event's copy of the session.
        let mut copy = session.clone();
        copy.widget_url = None;
        self.events.insert(
            id,
            SessionEvent {
                id,
                kind,
                created_at: at,
                session: copy,
            },
        );
        for endpoint in &targets {
            self.deliveries.insert(
                (id, *endpoint),
                DeliveryRow {
                    application,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    last_status_code: None,
                    last_attempt_at: None,
                    next_attempt_at: Some(at),
                    lease: None,
                },
            );
        }
        !targets.is_empty()
    }

    /// Records a nonce; `false` if it was recorded before.
    pub(crate) fn remember(&mut self, nonce: &RequestNonce) -> bool {
        match self.nonces.entry((nonce.application, nonce.signature)) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(nonce.expires_at);
                true
            }
        }
    }
}

/// The session side of the in-memory backend: one store implementing [`ports::SessionStore`],
/// [`ports::RequestLog`], [`ports::OrderLog`], [`ports::Housekeeping`],
/// [`ports::TravelRuleStore`],
/// [`ports::EndpointStore`], [`ports::EventLog`] and [`ports::DeliveryQueue`] over one
/// [`State`], each port in its own module.
#[derive(Default)]
pub struct MemoryStore {
    pub(crate) inner: Mutex<State>,
    /// Wakes delivery workers when deliveries were written.
    deliveries_written: Notify,
    /// The applications, for whether one is enabled (launch links of a disabled one do not
    /// open); without them every application is.
    applications: Option<std::sync::Arc<crate::MemoryApplicationStore>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that asks `applications` whether an application is enabled.
    pub fn with_applications(applications: std::sync::Arc<crate::MemoryApplicationStore>) -> Self {
        Self {
            applications: Some(applications),
            ..Self::default()
        }
    }

    /// Whether `application` is enabled.
    pub(crate) fn enabled(&self, application: ApplicationId) -> bool {
        self.applications
            .as_ref()
            .is_none_or(|apps| apps.is_enabled(application))
    }

    /// Locks the state.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner)
    }

    /// Wakes the delivery workers waiting now, and the next one to wait (a worker busy
    /// sending when deliveries are written must not miss them).
    pub(crate) fn wake_workers(&self) {
        self.deliveries_written.notify_waiters();
        self.deliveries_written.notify_one();
    }

    /// Waits for [`MemoryStore::wake_workers`], at most `timeout`.
    pub(crate) async fn deliveries_written(&self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.deliveries_written.notified()).await;
    }

    /// How many sessions are stored (for tests and metrics).
    pub fn len(&self) -> usize {
        self.state().rows.len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
