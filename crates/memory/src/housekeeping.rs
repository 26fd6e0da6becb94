//! [`Housekeeping`] in memory.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, SessionId};
use ports::{Housekeeping, StoreError};

use crate::state::MemoryStore;

#[async_trait]
impl Housekeeping for MemoryStore {
    async fn purge(
        &self,
        ended_before: DateTime<Utc>,
        travel_rule_ended_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut inner = self.state();
        let doomed: HashSet<(ApplicationId, SessionId)> = inner
            .rows
            .iter()
            .filter(|(key, s)| {
                let kept = inner.compliance.contains_key(key);
                s.session.ends_at() < ended_before
                    && (!kept || s.session.ends_at() < travel_rule_ended_before)
            })
            .map(|(k, _)| *k)
            .take(limit as usize)
            .collect();
        inner.rows.retain(|key, _| !doomed.contains(key));
        inner.compliance.retain(|key, _| !doomed.contains(key));
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

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
