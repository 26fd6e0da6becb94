//! [`EventLog`] and [`DeliveryQueue`] in memory.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, SessionId, WebhookEndpointId};
use ports::{
    Attempt, AttemptOutcome, ClaimQuery, DeliveryKey, DeliveryQueue, DeliveryStatus, DueDelivery,
    EventLog, EventRecord, StoreError,
};
use uuid::Uuid;

use crate::state::MemoryStore;

#[async_trait]
impl EventLog for MemoryStore {
    async fn session_events(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let inner = self.state();
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
}

#[async_trait]
impl DeliveryQueue for MemoryStore {
    async fn claim(&self, q: &ClaimQuery) -> Result<Vec<DueDelivery>, StoreError> {
        let mut guard = self.state();
        let inner = &mut *guard;
        let mut due: Vec<(DateTime<Utc>, EventId, WebhookEndpointId, ApplicationId)> = inner
            .deliveries
            .iter()
            .filter(|((_, endpoint), row)| {
                row.status == DeliveryStatus::Pending
                    && row.next_attempt_at.is_some_and(|t| t <= q.now)
                    && row.lease.is_none_or(|(_, until)| until <= q.now)
                    && inner.endpoints.contains_key(&(row.application, *endpoint))
            })
            .map(|((event, endpoint), row)| {
                (
                    row.next_attempt_at.unwrap_or(q.now),
                    *event,
                    *endpoint,
                    row.application,
                )
            })
            .collect();
        due.sort();
        let mut per_endpoint: HashMap<WebhookEndpointId, u32> =
            q.endpoint_in_flight.iter().copied().collect();
        let mut per_application: HashMap<ApplicationId, u32> =
            q.application_in_flight.iter().copied().collect();
        let mut claimed = Vec::new();
        for (_, event, endpoint, application) in due {
            if claimed.len() >= q.limit as usize {
                break;
            }
            let of_application = per_application.entry(application).or_default();
            if *of_application >= q.per_application {
                continue;
            }
            let of_endpoint = per_endpoint.entry(endpoint).or_default();
            if *of_endpoint >= q.per_endpoint {
                continue;
            }
            *of_endpoint += 1;
            *of_application += 1;
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
        let mut inner = self.state();
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

    async fn release(&self, owner: Uuid, keys: &[DeliveryKey]) -> Result<(), StoreError> {
        let mut inner = self.state();
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
        let mut guard = self.state();
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

    async fn due_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let inner = self.state();
        Ok(inner
            .deliveries
            .values()
            .filter(|row| {
                row.status == DeliveryStatus::Pending
                    && row.next_attempt_at.is_some_and(|t| t <= now)
            })
            .count() as u64)
    }

    async fn wait(&self, timeout: Duration) {
        self.deliveries_written(timeout).await;
    }
}
