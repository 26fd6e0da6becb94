//! `transak_order_events`: [`OrderLog`] on Postgres.

use async_trait::async_trait;
use domain::{EventType, OrderStatus};
use ports::{OrderLog, OrderOutcome, OrderUpdate, StoreError, UnmatchedOrder};
use tracing::instrument;

use crate::error::store_error;
use crate::rows::SessionRow;
use crate::store::PgStore;

#[async_trait]
impl OrderLog for PgStore {
    #[instrument(skip_all, fields(order_event = %update.event_id))]
    async fn record(&self, update: &OrderUpdate) -> Result<OrderOutcome, StoreError> {
        // One statement: record the (order, event) once; the first time, if it names one of
        // our sessions whose link was opened, set the session's order — unless
        // `order_update_applies` refuses it (a late non-final status after a final one) —
        // and write its event.
        // The webhook names the session without its application: the session is looked up
        // by its primary key under each application (a probe per application, rare and
        // cheap), so no index on the id alone slows every session write.
        let row = sqlx::query!(
            r#"with seen as (
                   insert into transak_order_events (order_id, event_id, status, partner_order_id,
                       application_id, session_id, received_at)
                   select $1, $2, $3, $4, s.application_id, s.id, $6
                   from (values (1)) as one (n)
                   left join (
                       select s.application_id, s.id
                       from applications a
                       cross join lateral (
                           -- `offset 0` keeps this a probe per application by the primary
                           -- key (a subquery the planner cannot flatten into a join that
                           -- might scan the key's index for the id alone).
                           select s.application_id, s.id from sessions s
                           where s.application_id = a.id and s.id = $5::uuid
                             and s.consumed_at is not null
                           offset 0
                       ) s
                   ) s on true
                   on conflict do nothing
                   returning application_id, session_id
               ), upd as (
                   update sessions s
                   set order_id = $1, order_status = $3, order_event_id = $2, order_updated_at = $6
                   -- `seen` has one row at most: its key, as parameters of a key lookup.
                   where s.application_id = (select application_id from seen)
                     and s.id = (select session_id from seen)
                     and order_update_applies(s.order_status, $3, $8)
                   returning s
               ), event as (
                   select emit_session_event((upd.s).application_id, $7, $9, $6,
                                             to_jsonb(upd.s)) as n
                   from upd
               )
               select exists(select 1 from seen) as "recorded!",
                      exists(select 1 from seen where session_id is not null) as "matched!",
                      (select session_row_v3(upd.s) from upd) as "session?: SessionRow",
                      (select count(*) from event) as "events!""#,
            update.order_id,
            update.event_id,
            update.status.as_str(),
            update.partner_order_id,
            update.session.map(|s| s.as_uuid()),
            update.received_at,
            update.event.as_uuid(),
            &OrderStatus::final_names(),
            EventType::SessionOrderUpdated.as_str()
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        if !row.recorded {
            return Ok(OrderOutcome::Duplicate);
        }
        match (row.matched, row.session) {
            (true, Some(session)) => Ok(OrderOutcome::Updated(Box::new(session.into_stored()?))),
            (true, None) => Ok(OrderOutcome::Stale),
            (false, _) => Ok(OrderOutcome::Unmatched),
        }
    }

    async fn unmatched(&self, limit: u32) -> Result<Vec<UnmatchedOrder>, StoreError> {
        let rows = sqlx::query!(
            r#"select order_id, event_id, status, partner_order_id, received_at
               from transak_order_events
               where session_id is null
               order by received_at desc
               limit $1"#,
            i64::from(limit)
        )
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|r| UnmatchedOrder {
                order_id: r.order_id,
                event_id: r.event_id,
                status: OrderStatus::parse(&r.status),
                partner_order_id: r.partner_order_id,
                received_at: r.received_at,
            })
            .collect())
    }
}
