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
        let limit = limit as usize;
        let kept = |key| inner.compliance.get(key).map(|c| c.events_purged);
        // Past the sessions' retention, with something to purge: sessions without records
        // go whole, sessions with records lose their events and stay.
        let aged: Vec<((ApplicationId, SessionId), Option<bool>, DateTime<Utc>)> = inner
            .rows
            .iter()
            .filter(|(key, s)| s.session.ends_at() < ended_before && kept(key) != Some(true))
            .map(|(key, s)| (*key, kept(key), s.session.ends_at()))
            .take(limit)
            .collect();
        // Sessions with records past both retentions go whole, with their records.
        let recorded = inner.rows.iter().filter(|(key, s)| {
            kept(key).is_some()
                && s.session.ends_at() < ended_before
                && s.session.ends_at() < travel_rule_ended_before
        });
        let doomed: HashSet<(ApplicationId, SessionId)> = aged
            .iter()
            .filter(|(_, kept, ended)| kept.is_none() || *ended < travel_rule_ended_before)
            .map(|(key, _, _)| *key)
            .chain(recorded.map(|(key, _)| *key).take(limit))
            .collect();
        let thinned: HashSet<(ApplicationId, SessionId)> = aged
            .iter()
            .filter(|(key, kept, _)| kept.is_some() && !doomed.contains(key))
            .map(|(key, _, _)| *key)
            .collect();
        for key in &thinned {
            if let Some(c) = inner.compliance.get_mut(key) {
                c.events_purged = true;
            }
        }
        inner.rows.retain(|key, _| !doomed.contains(key));
        inner.compliance.retain(|key, _| !doomed.contains(key));
        let gone: HashSet<EventId> = inner
            .events
            .iter()
            .filter(|(_, e)| {
                let key = (e.session.session.application_id(), e.session.session.id());
                doomed.contains(&key) || thinned.contains(&key)
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
        Ok((doomed.len() + thinned.len()) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
