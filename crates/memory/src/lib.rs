//! # In-memory adapters
//!
//! [`MemorySessionStore`], [`MemoryApplicationStore`] and [`MemoryTokenStore`] implement the
//! store ports with the exact semantics their documentation states, behind one mutex each.
//! They back the zero-configuration run and the tests, and pass the same conformance suites
//! (`testkit::conformance`) as the Postgres adapters, so they cannot drift from them.
//!
//! Every operation takes the mutex once and never awaits while holding it, so each call is
//! atomic — the property the Postgres adapter gets from single statements.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, EventId, EventType, ReuseDecision, ReuseKeyDigest, SessionEnd, SessionId,
    SessionStatus, WebhookEndpointId,
};
use ports::{
    AccessTokenStore, ApiKeyDigest, Application, ApplicationError, ApplicationRecord,
    ApplicationStatus, ApplicationStore, Attempt, AttemptOutcome, ClaimQuery, ClaimToken, Delivery,
    DeliveryKey, DeliveryStatus, DueDelivery, EncryptedSecret, EndpointError, EventRecord,
    FulfilError, LaunchResult, ListQuery, NewApplication, NewSession, OrderOutcome, OrderUpdate,
    Page, PreviousAccessToken, RequestNonce, ReuseOutcome, ReuseQuery, SessionEvent, SessionOrder,
    SessionStore, StoreCancel, StoreError, StoredAccessToken, StoredSession, UnmatchedOrder,
    WebhookEndpoint, WebhookStore,
};
use secrecy::SecretString;
use tokio::sync::Notify;
use uuid::Uuid;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps half-updated (every update is a
    // single insert/remove), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, Default)]
struct Slot {
    session: Option<SessionId>,
    claim: Option<(ClaimToken, DateTime<Utc>)>,
}

#[derive(Default)]
struct Sessions {
    rows: HashMap<(ApplicationId, SessionId), StoredSession>,
    slots: HashMap<(ApplicationId, ReuseKeyDigest), Slot>,
    /// Accepted requests' signatures, until their window ends.
    nonces: HashMap<(ApplicationId, [u8; 32]), DateTime<Utc>>,
    /// Sessions whose `session.expired` was emitted.
    expired: HashSet<(ApplicationId, SessionId)>,
    endpoints: BTreeMap<(ApplicationId, WebhookEndpointId), EndpointRow>,
    /// Events by id (ids are UUID v7: in creation order).
    events: BTreeMap<EventId, SessionEvent>,
    deliveries: BTreeMap<(EventId, WebhookEndpointId), DeliveryRow>,
    /// Order events received, by (order id, event id): when.
    orders: HashMap<(String, String), DateTime<Utc>>,
    /// The unmatched ones among them, in the order received.
    unmatched: Vec<UnmatchedOrder>,
}

struct EndpointRow {
    endpoint: WebhookEndpoint,
    secret: EncryptedSecret,
    previous: Option<(EncryptedSecret, DateTime<Utc>)>,
}

struct DeliveryRow {
    application: ApplicationId,
    status: DeliveryStatus,
    attempts: u32,
    last_status_code: Option<u16>,
    last_attempt_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
    lease: Option<(Uuid, DateTime<Utc>)>,
}

impl DeliveryRow {
    fn view(&self, endpoint: WebhookEndpointId) -> Delivery {
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

impl Sessions {
    /// Writes an event of `session` and a delivery to each endpoint that receives it (the
    /// outbox, in the same critical section as the change); whether any delivery was
    /// written.
    fn emit(
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
        self.events.insert(
            id,
            SessionEvent {
                id,
                kind,
                created_at: at,
                session: session.clone(),
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
    fn remember(&mut self, nonce: &RequestNonce) -> bool {
        match self.nonces.entry((nonce.application, nonce.signature)) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(nonce.expires_at);
                true
            }
        }
    }
}

/// Sessions, slots, accepted requests' signatures, and the webhook side (endpoints, session
/// events, deliveries) in memory: one store implementing [`SessionStore`] and
/// [`WebhookStore`], so that an event is written in the same critical section as its change.
#[derive(Default)]
pub struct MemorySessionStore {
    inner: Mutex<Sessions>,
    /// Wakes delivery workers when deliveries were written.
    deliveries_written: Notify,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the delivery workers waiting now, and the next one to wait (a worker busy
    /// sending when deliveries are written must not miss them).
    fn wake_workers(&self) {
        self.deliveries_written.notify_waiters();
        self.deliveries_written.notify_one();
    }

    /// How many sessions are stored (for tests and metrics).
    pub fn len(&self) -> usize {
        lock(&self.inner).rows.len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// When a session ended: its consume or cancel instant, or its expiry.
fn ended_at(s: &StoredSession) -> DateTime<Utc> {
    match s.session.end() {
        Some(SessionEnd::Consumed { at }) | Some(SessionEnd::Cancelled { at }) => at,
        None => s.session.expires_at(),
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn reuse_or_claim(&self, q: &ReuseQuery) -> Result<ReuseOutcome, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        if let Some(nonce) = &q.nonce
            && !inner.remember(nonce)
        {
            return Ok(ReuseOutcome::Replayed);
        }
        let slot = inner.slots.entry((q.application, q.key)).or_default();
        if let Some((_, lease_until)) = slot.claim
            && lease_until > q.now
        {
            return Ok(ReuseOutcome::Pending { lease_until });
        }
        if slot.claim.is_none()
            && let Some(id) = slot.session
            && let Some(row) = inner.rows.get_mut(&(q.application, id))
            && let ReuseDecision::Reuse { upgrade_flag } =
                q.policy
                    .decide(Some(&row.session), q.force_verify_ownership, q.now)
        {
            if upgrade_flag {
                row.session.request_force_verify_ownership(true);
            }
            return Ok(ReuseOutcome::Reused(Box::new(row.clone())));
        }
        // Vacant, bound to a session that is not reusable, or pending under a lapsed lease:
        // the slot is the caller's (it keeps its binding until fulfilled).
        slot.claim = Some((q.claim, q.lease_until));
        Ok(ReuseOutcome::Claimed)
    }

    async fn fulfil(
        &self,
        application: ApplicationId,
        claim: ClaimToken,
        new: NewSession,
    ) -> Result<StoredSession, FulfilError> {
        let mut inner = lock(&self.inner);
        let slot_key = (application, new.key);
        let ours = inner
            .slots
            .get(&slot_key)
            .and_then(|s| s.claim)
            .is_some_and(|(c, _)| c == claim);
        if !ours {
            return Err(FulfilError::ClaimLost);
        }
        let id = new.session.id();
        if new.session.application_id() != application {
            return Err(FulfilError::Store(StoreError::Unexpected(
                "session belongs to another application".into(),
            )));
        }
        if inner.rows.contains_key(&(application, id)) {
            return Err(FulfilError::Store(StoreError::Conflict(format!(
                "session {id} already exists"
            ))));
        }
        let created_at = new.session.created_at();
        let stored = StoredSession {
            session: new.session,
            widget_url: new.widget_url,
            order: None,
        };
        let notify = inner.emit(new.event, EventType::SessionCreated, created_at, &stored);
        inner.rows.insert((application, id), stored.clone());
        inner.slots.insert(
            slot_key,
            Slot {
                session: Some(id),
                claim: None,
            },
        );
        drop(inner);
        if notify {
            self.wake_workers();
        }
        Ok(stored)
    }

    async fn release(
        &self,
        application: ApplicationId,
        key: &ReuseKeyDigest,
        claim: ClaimToken,
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let slot_key = (application, *key);
        if let Some(slot) = inner.slots.get_mut(&slot_key)
            && slot.claim.is_some_and(|(c, _)| c == claim)
        {
            slot.claim = None;
            if slot.session.is_none() {
                inner.slots.remove(&slot_key);
            }
        }
        Ok(())
    }

    async fn get(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(lock(&self.inner).rows.get(&(application, id)).cloned())
    }

    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let inner = lock(&self.inner);
        let mut items: Vec<StoredSession> = inner
            .rows
            .iter()
            .filter(|((app, id), s)| {
                *app == q.application
                    && q.before.is_none_or(|b| *id < b)
                    && q.subject
                        .is_none_or(|sub| s.session.scope().subject() == sub)
                    && q.status.is_none_or(|f| s.session.status_at(q.now) == f.0)
            })
            .map(|(_, s)| s.clone())
            .collect();
        items.sort_by_key(|s| std::cmp::Reverse(s.session.id()));
        let limit = q.limit as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|s| s.session.id())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn cancel(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        event: EventId,
    ) -> Result<StoreCancel, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let swept = inner.expired.contains(&(application, id));
        let Some(row) = inner.rows.get_mut(&(application, id)) else {
            return Ok(StoreCancel::NotFound);
        };
        // Its expiry was emitted (by a sweep whose clock ran ahead of this caller's): it
        // stays expired.
        if swept && row.session.end().is_none() {
            return Ok(StoreCancel::NotActive(row.clone()));
        }
        let outcome = match row.session.cancel(now) {
            Ok(domain::CancelOutcome::Cancelled) => StoreCancel::Cancelled(row.clone()),
            Ok(domain::CancelOutcome::AlreadyCancelled) => {
                StoreCancel::AlreadyCancelled(row.clone())
            }
            Err(_) => StoreCancel::NotActive(row.clone()),
        };
        if let StoreCancel::Cancelled(session) = &outcome
            && inner.emit(event, EventType::SessionCancelled, now, session)
        {
            drop(guard);
            self.wake_workers();
        }
        Ok(outcome)
    }

    async fn launch(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        consume: bool,
        event: EventId,
    ) -> Result<LaunchResult, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let swept = inner.expired.contains(&(application, id));
        let Some(row) = inner.rows.get_mut(&(application, id)) else {
            return Ok(LaunchResult::Unknown);
        };
        // Not ACTIVE, or its expiry was emitted (by a sweep whose clock ran ahead of this
        // caller's).
        if swept || row.session.status_at(now) != SessionStatus::Active {
            return Ok(LaunchResult::Ended(row.clone()));
        }
        if !consume {
            return Ok(LaunchResult::Opened(row.clone()));
        }
        if row.session.consume(now).is_err() {
            return Ok(LaunchResult::Ended(row.clone()));
        }
        let opened = row.clone();
        if inner.emit(event, EventType::SessionConsumed, now, &opened) {
            drop(guard);
            self.wake_workers();
        }
        Ok(LaunchResult::Opened(opened))
    }

    async fn sweep_expired(
        &self,
        now: DateTime<Utc>,
        events: &[EventId],
    ) -> Result<u64, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let due: Vec<StoredSession> = inner
            .rows
            .iter()
            .filter(|(key, s)| {
                s.session.status_at(now) == SessionStatus::Expired && !inner.expired.contains(key)
            })
            .map(|(_, s)| s.clone())
            .take(events.len())
            .collect();
        let mut notify = false;
        for (session, event) in due.iter().zip(events) {
            let key = (session.session.application_id(), session.session.id());
            inner.expired.insert(key);
            notify |= inner.emit(*event, EventType::SessionExpired, now, session);
        }
        drop(guard);
        if notify {
            self.wake_workers();
        }
        Ok(due.len() as u64)
    }

    async fn purge(&self, ended_before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        let mut inner = lock(&self.inner);
        let doomed: Vec<(ApplicationId, SessionId)> = inner
            .rows
            .iter()
            .filter(|(_, s)| ended_at(s) < ended_before)
            .map(|(k, _)| *k)
            .take(limit as usize)
            .collect();
        for key in &doomed {
            inner.rows.remove(key);
            inner.expired.remove(key);
        }
        let gone: HashSet<EventId> = inner
            .events
            .iter()
            .filter(|(_, e)| {
                doomed.contains(&(e.session.session.application_id(), e.session.session.id()))
            })
            .map(|(id, _)| *id)
            .collect();
        inner.events.retain(|id, _| !gone.contains(id));
        inner.orders.retain(|_, at| *at >= ended_before);
        inner.unmatched.retain(|o| o.received_at >= ended_before);
        inner
            .deliveries
            .retain(|(event, _), _| !gone.contains(event));
        inner.slots.retain(|(app, _), slot| {
            if slot.session.is_some_and(|id| doomed.contains(&(*app, id))) {
                slot.session = None;
            }
            slot.session.is_some() || slot.claim.is_some()
        });
        Ok(doomed.len() as u64)
    }

    async fn record_order(&self, update: &OrderUpdate) -> Result<OrderOutcome, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        match inner
            .orders
            .entry((update.order_id.clone(), update.event_id.clone()))
        {
            Entry::Occupied(_) => return Ok(OrderOutcome::Duplicate),
            Entry::Vacant(v) => {
                v.insert(update.received_at);
            }
        }
        let unmatched = UnmatchedOrder {
            order_id: update.order_id.clone(),
            event_id: update.event_id.clone(),
            status: update.status.clone(),
            partner_order_id: update.partner_order_id.clone(),
            received_at: update.received_at,
        };
        let Some(key) = update.session.and_then(|id| {
            inner
                .rows
                .keys()
                .find(|(_, session)| *session == id)
                .copied()
        }) else {
            inner.unmatched.push(unmatched);
            return Ok(OrderOutcome::Unmatched);
        };
        // Only a session whose link was opened can have an order in the widget.
        let Some(row) = inner
            .rows
            .get_mut(&key)
            .filter(|row| matches!(row.session.end(), Some(SessionEnd::Consumed { .. })))
        else {
            inner.unmatched.push(unmatched);
            return Ok(OrderOutcome::Unmatched);
        };
        if !domain::order_update_applies(
            row.order.as_ref().map(|o| o.status.as_str()),
            &update.status,
        ) {
            return Ok(OrderOutcome::Stale);
        }
        row.order = Some(SessionOrder {
            id: update.order_id.clone(),
            status: update.status.clone(),
            event_id: update.event_id.clone(),
            updated_at: update.received_at,
        });
        let updated = row.clone();
        let notify = inner.emit(
            update.event,
            EventType::SessionOrderUpdated,
            update.received_at,
            &updated,
        );
        drop(guard);
        if notify {
            self.wake_workers();
        }
        Ok(OrderOutcome::Updated(Box::new(updated)))
    }

    async fn unmatched_orders(&self, limit: u32) -> Result<Vec<UnmatchedOrder>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .unmatched
            .iter()
            .rev()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn remember_request(&self, nonce: &RequestNonce) -> Result<bool, StoreError> {
        Ok(lock(&self.inner).remember(nonce))
    }

    async fn forget_requests(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inner = lock(&self.inner);
        let was = inner.nonces.len();
        inner.nonces.retain(|_, until| *until >= before);
        Ok((was - inner.nonces.len()) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl WebhookStore for MemorySessionStore {
    async fn create_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: EncryptedSecret,
        limit: u32,
    ) -> Result<(), EndpointError> {
        let mut inner = lock(&self.inner);
        let count = inner
            .endpoints
            .keys()
            .filter(|(app, _)| *app == endpoint.application)
            .count();
        if count >= limit as usize {
            return Err(EndpointError::TooMany(limit));
        }
        inner.endpoints.insert(
            (endpoint.application, endpoint.id),
            EndpointRow {
                endpoint: endpoint.clone(),
                secret,
                previous: None,
            },
        );
        Ok(())
    }

    async fn list_endpoints(
        &self,
        application: ApplicationId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let inner = lock(&self.inner);
        let mut list: Vec<WebhookEndpoint> = inner
            .endpoints
            .iter()
            .filter(|((app, _), _)| *app == application)
            .map(|(_, row)| row.endpoint.clone())
            .collect();
        list.sort_by_key(|e| (e.created_at, e.id));
        Ok(list)
    }

    async fn delete_endpoint(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
    ) -> Result<bool, StoreError> {
        let mut inner = lock(&self.inner);
        if inner.endpoints.remove(&(application, id)).is_none() {
            return Ok(false);
        }
        for ((_, endpoint), row) in inner.deliveries.iter_mut() {
            if *endpoint == id && row.status == DeliveryStatus::Pending {
                row.status = DeliveryStatus::Failed;
                row.next_attempt_at = None;
                row.lease = None;
            }
        }
        Ok(true)
    }

    async fn rotate_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        secret: EncryptedSecret,
        now: DateTime<Utc>,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let mut inner = lock(&self.inner);
        let Some(row) = inner.endpoints.get_mut(&(application, id)) else {
            return Ok(None);
        };
        let old = std::mem::replace(&mut row.secret, secret);
        let keep = row
            .previous
            .take()
            .filter(|(_, until)| *until > now)
            .map(|(previous, _)| previous);
        row.previous = Some((keep.unwrap_or(old), previous_until));
        Ok(Some(row.endpoint.clone()))
    }

    async fn session_events(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .events
            .values()
            .filter(|e| {
                e.session.session.application_id() == application
                    && e.session.session.id() == session
            })
            .map(|e| EventRecord {
                event: e.clone(),
                deliveries: inner
                    .deliveries
                    .range((e.id, WebhookEndpointId::from_uuid(Uuid::nil()))..)
                    .take_while(|((event, _), _)| *event == e.id)
                    .map(|((_, endpoint), row)| row.view(*endpoint))
                    .collect(),
            })
            .collect())
    }

    async fn claim_deliveries(&self, q: &ClaimQuery) -> Result<Vec<DueDelivery>, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let mut due: Vec<(DateTime<Utc>, EventId, WebhookEndpointId)> = inner
            .deliveries
            .iter()
            .filter(|((_, endpoint), row)| {
                row.status == DeliveryStatus::Pending
                    && row.next_attempt_at.is_some_and(|t| t <= q.now)
                    && row.lease.is_none_or(|(_, until)| until <= q.now)
                    && !q.skip_endpoints.contains(endpoint)
                    && inner.endpoints.contains_key(&(row.application, *endpoint))
            })
            .map(|((event, endpoint), row)| {
                (row.next_attempt_at.unwrap_or(q.now), *event, *endpoint)
            })
            .collect();
        due.sort();
        let mut per_endpoint: HashMap<WebhookEndpointId, u32> = HashMap::new();
        let mut claimed = Vec::new();
        for (_, event, endpoint) in due {
            if claimed.len() >= q.limit as usize {
                break;
            }
            let n = per_endpoint.entry(endpoint).or_default();
            if *n >= q.per_endpoint {
                continue;
            }
            *n += 1;
            let (Some(row), Some(ev)) = (
                inner.deliveries.get_mut(&(event, endpoint)),
                inner.events.get(&event),
            ) else {
                continue;
            };
            let Some(target) = inner.endpoints.get(&(row.application, endpoint)) else {
                continue;
            };
            row.lease = Some((q.owner, q.lease_until));
            claimed.push(DueDelivery {
                key: DeliveryKey {
                    application: row.application,
                    event,
                    endpoint,
                },
                attempts: row.attempts,
                event: ev.clone(),
                url: target.endpoint.url.clone(),
                secret: target.secret.clone(),
                previous_secret: target
                    .previous
                    .as_ref()
                    .filter(|(_, until)| *until > q.now)
                    .map(|(s, _)| s.clone()),
            });
        }
        Ok(claimed)
    }

    async fn record_attempt(&self, a: &Attempt) -> Result<bool, StoreError> {
        let mut inner = lock(&self.inner);
        let Some(row) = inner.deliveries.get_mut(&(a.key.event, a.key.endpoint)) else {
            return Ok(false);
        };
        if row.status != DeliveryStatus::Pending || row.lease.is_none_or(|(o, _)| o != a.owner) {
            return Ok(false);
        }
        row.attempts += 1;
        row.last_status_code = a.status_code;
        row.last_attempt_at = Some(a.at);
        row.lease = None;
        match a.outcome {
            AttemptOutcome::Delivered => {
                row.status = DeliveryStatus::Delivered;
                row.next_attempt_at = None;
            }
            AttemptOutcome::RetryAt(at) => row.next_attempt_at = Some(at),
            AttemptOutcome::Failed => {
                row.status = DeliveryStatus::Failed;
                row.next_attempt_at = None;
            }
        }
        Ok(true)
    }

    async fn release_deliveries(
        &self,
        owner: Uuid,
        keys: &[DeliveryKey],
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        for key in keys {
            if let Some(row) = inner.deliveries.get_mut(&(key.event, key.endpoint))
                && row.lease.is_some_and(|(o, _)| o == owner)
            {
                row.lease = None;
            }
        }
        drop(inner);
        self.wake_workers();
        Ok(())
    }

    async fn redeliver(
        &self,
        event: EventId,
        endpoint: Option<WebhookEndpointId>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let mut n = 0;
        for ((e, target), row) in inner.deliveries.iter_mut() {
            if *e == event
                && endpoint.is_none_or(|x| x == *target)
                && row.status == DeliveryStatus::Failed
                && inner.endpoints.contains_key(&(row.application, *target))
            {
                row.status = DeliveryStatus::Pending;
                row.attempts = 0;
                row.next_attempt_at = Some(now);
                row.lease = None;
                n += 1;
            }
        }
        drop(guard);
        if n > 0 {
            self.wake_workers();
        }
        Ok(n)
    }

    async fn due_deliveries(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .deliveries
            .values()
            .filter(|row| {
                row.status == DeliveryStatus::Pending
                    && row.next_attempt_at.is_some_and(|t| t <= now)
            })
            .count() as u64)
    }

    async fn wait_for_deliveries(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.deliveries_written.notified()).await;
    }
}

#[derive(Debug, Clone)]
struct AppRow {
    record: ApplicationRecord,
    api_key: ApiKeyDigest,
}

/// Applications in memory.
#[derive(Default)]
pub struct MemoryApplicationStore {
    inner: Mutex<Vec<AppRow>>,
}

impl MemoryApplicationStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ApplicationStore for MemoryApplicationStore {
    async fn find_by_api_key(
        &self,
        api_key: &ApiKeyDigest,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        Ok(lock(&self.inner)
            .iter()
            .find(|r| r.api_key == *api_key)
            .map(|r| r.record.clone()))
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<ApplicationRecord>, StoreError> {
        Ok(lock(&self.inner)
            .iter()
            .find(|r| r.record.application.name == name)
            .map(|r| r.record.clone()))
    }

    async fn create(&self, new: NewApplication) -> Result<Application, ApplicationError> {
        let mut rows = lock(&self.inner);
        if rows.iter().any(|r| r.record.application.name == new.name) {
            return Err(ApplicationError::NameTaken(new.name));
        }
        if rows.iter().any(|r| r.api_key == new.api_key) {
            return Err(ApplicationError::ApiKeyTaken);
        }
        let application = Application {
            id: new.id,
            name: new.name,
            status: ApplicationStatus::Active,
            created_at: new.now,
            rotated_at: new.now,
        };
        rows.push(AppRow {
            record: ApplicationRecord {
                application: application.clone(),
                secret: new.secret,
            },
            api_key: new.api_key,
        });
        Ok(application)
    }

    async fn list(&self) -> Result<Vec<Application>, StoreError> {
        let mut apps: Vec<Application> = lock(&self.inner)
            .iter()
            .map(|r| r.record.application.clone())
            .collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(apps)
    }

    async fn rotate(
        &self,
        id: ApplicationId,
        api_key: ApiKeyDigest,
        secret: EncryptedSecret,
        now: DateTime<Utc>,
    ) -> Result<Application, ApplicationError> {
        let mut rows = lock(&self.inner);
        if rows
            .iter()
            .any(|r| r.api_key == api_key && r.record.application.id != id)
        {
            return Err(ApplicationError::ApiKeyTaken);
        }
        let row = rows
            .iter_mut()
            .find(|r| r.record.application.id == id)
            .ok_or(ApplicationError::NotFound)?;
        row.api_key = api_key;
        row.record.secret = secret;
        row.record.application.rotated_at = now;
        Ok(row.record.application.clone())
    }

    async fn list_records(&self) -> Result<Vec<ApplicationRecord>, StoreError> {
        let mut records: Vec<ApplicationRecord> =
            lock(&self.inner).iter().map(|r| r.record.clone()).collect();
        records.sort_by(|a, b| a.application.name.cmp(&b.application.name));
        Ok(records)
    }

    async fn reseal(
        &self,
        id: ApplicationId,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let mut rows = lock(&self.inner);
        match rows
            .iter_mut()
            .find(|r| r.record.application.id == id && r.record.secret == *current)
        {
            Some(row) => {
                row.record.secret = resealed;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn set_status(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<Application, ApplicationError> {
        let mut rows = lock(&self.inner);
        let row = rows
            .iter_mut()
            .find(|r| r.record.application.id == id)
            .ok_or(ApplicationError::NotFound)?;
        row.record.application.status = status;
        Ok(row.record.application.clone())
    }
}

#[derive(Default)]
struct TokenEntry {
    token: Option<StoredAccessToken>,
    lease: Option<(Uuid, DateTime<Utc>)>,
}

/// The shared upstream access token, in memory.
#[derive(Default)]
pub struct MemoryTokenStore {
    inner: Mutex<HashMap<String, TokenEntry>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Who holds `account`'s refresh lease, and until when (for tests and diagnostics). A
    /// lapsed lease stays recorded until it is taken over.
    pub fn lease(&self, account: &str) -> Option<(Uuid, DateTime<Utc>)> {
        lock(&self.inner).get(account).and_then(|e| e.lease)
    }
}

#[async_trait]
impl AccessTokenStore for MemoryTokenStore {
    async fn current(&self, account: &str) -> Result<Option<StoredAccessToken>, StoreError> {
        Ok(lock(&self.inner).get(account).and_then(|e| e.token.clone()))
    }

    async fn try_lease_refresh(
        &self,
        account: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut map = lock(&self.inner);
        let entry = map.entry(account.to_string()).or_default();
        let free = entry
            .lease
            .is_none_or(|(h, until)| h == holder || until <= now);
        if free {
            entry.lease = Some((holder, lease_until));
        }
        Ok(free)
    }

    async fn save_refreshed(
        &self,
        account: &str,
        holder: Uuid,
        token: SecretString,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError> {
        let mut map = lock(&self.inner);
        let entry = map.entry(account.to_string()).or_default();
        if entry.lease.is_none_or(|(h, _)| h != holder) {
            return Err(StoreError::Conflict(
                "the refresh lease is held by someone else".into(),
            ));
        }
        let version = entry.token.as_ref().map_or(1, |t| t.version + 1);
        let stored = StoredAccessToken {
            token,
            expires_at,
            version,
            previous: entry.token.take().map(|t| PreviousAccessToken {
                token: t.token,
                replaced_at: now,
            }),
        };
        entry.token = Some(stored.clone());
        entry.lease = None;
        Ok(stored)
    }

    async fn release_refresh(&self, account: &str, holder: Uuid) -> Result<(), StoreError> {
        let mut map = lock(&self.inner);
        if let Some(entry) = map.get_mut(account)
            && entry.lease.is_some_and(|(h, _)| h == holder)
        {
            entry.lease = None;
        }
        Ok(())
    }
}
