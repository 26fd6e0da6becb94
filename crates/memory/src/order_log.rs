//! [`OrderLog`] in memory.

use std::collections::hash_map::Entry;

use async_trait::async_trait;
use domain::{EventType, SessionEnd};
use ports::{OrderLog, OrderOutcome, OrderUpdate, SessionOrder, StoreError, UnmatchedOrder};

use crate::state::MemoryStore;

#[async_trait]
impl OrderLog for MemoryStore {
    async fn record(&self, update: &OrderUpdate) -> Result<OrderOutcome, StoreError> {
        let mut guard = self.state();
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
        if !domain::order_update_applies(row.order.as_ref().map(|o| &o.status), &update.status) {
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

    async fn unmatched(&self, limit: u32) -> Result<Vec<UnmatchedOrder>, StoreError> {
        Ok(self
            .state()
            .unmatched
            .iter()
            .rev()
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
