//! Retention across the session-side tables, and the readiness probe: [`Housekeeping`] on
//! Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ports::{Housekeeping, StoreError};
use tracing::instrument;

use crate::error::store_error;
use crate::store::PgStore;

#[async_trait]
impl Housekeeping for PgStore {
    #[instrument(skip_all)]
    async fn purge(
        &self,
        ended_before: DateTime<Utc>,
        travel_rule_ended_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // A batch job, not a point lookup: its joins are left to the planner, but planned for
        // the tables as they are now, never from a generic plan cached on this pooled
        // connection while they were small (a generic plan trap the plan test guards against). Hence its own
        // transaction with custom plans (two more round trips per batch, off the hot path).
        let mut tx = self.pool().begin().await.map_err(store_error)?;
        sqlx::query_scalar!(
            r#"select set_config('plan_cache_mode', 'force_custom_plan', true) as "setting!""#
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        // `aged`: sessions past the sessions' retention with something to purge (found by
        // `sessions_to_purge_by_end`); `recorded`: sessions with compliance records past
        // both retentions (by `sessions_kept_by_end`). Each predicate repeats its index's, so
        // the planner can use it. Sessions without records in `aged`, and those in
        // `recorded`, go whole; sessions with records in `aged` are only thinned: their
        // events and deliveries go, they stay with their records.
        let n = sqlx::query!(
            r#"with aged as (
                   select application_id, id, reuse_key, travel_rule_kept as kept,
                          coalesce(consumed_at, cancelled_at, expires_at) as ended
                   from sessions
                   where not (travel_rule_kept and events_purged)
                     and coalesce(consumed_at, cancelled_at, expires_at) < $1
                   order by coalesce(consumed_at, cancelled_at, expires_at)
                   limit $2
                   for update skip locked
               ), recorded as (
                   select application_id, id, reuse_key
                   from sessions
                   where travel_rule_kept
                     and coalesce(consumed_at, cancelled_at, expires_at) < $1
                     and coalesce(consumed_at, cancelled_at, expires_at) < $3
                   order by coalesce(consumed_at, cancelled_at, expires_at)
                   limit $2
                   for update skip locked
               ), doomed as (
                   select application_id, id, reuse_key from aged
                   where not kept or ended < $3
                   union
                   select application_id, id, reuse_key from recorded
               ), thinned as (
                   update sessions s set events_purged = true
                   from aged a
                   where a.kept and a.ended >= $3
                     and s.application_id = a.application_id and s.id = a.id
                   returning s.application_id, s.id
               ), vacated as (
                   delete from reuse_slots r using doomed d
                   where r.application_id = d.application_id and r.reuse_key = d.reuse_key
                     and r.session_id = d.id and r.claim is null
                   returning 1
               ), unbound as (
                   update reuse_slots r set session_id = null
                   from doomed d
                   where r.application_id = d.application_id and r.reuse_key = d.reuse_key
                     and r.session_id = d.id and r.claim is not null
                   returning 1
               ), deleted as (
                   delete from sessions s using doomed d
                   where s.application_id = d.application_id and s.id = d.id
                   returning 1
               ), declarations as (
                   delete from travel_rule_declarations t using doomed d
                   where t.application_id = d.application_id and t.session_id = d.id
                   returning 1
               ), proofs as (
                   delete from ownership_proofs t using doomed d
                   where t.application_id = d.application_id and t.session_id = d.id
                   returning 1
               ), attempts as (
                   delete from ownership_proof_attempts t using doomed d
                   where t.application_id = d.application_id and t.session_id = d.id
                   returning 1
               ), events as (
                   delete from session_events e
                   using (select application_id, id from doomed
                          union all
                          select application_id, id from thinned) d
                   where e.session_id = d.id and e.application_id = d.application_id
                   returning e.application_id, e.id
               ), deliveries as (
                   delete from webhook_deliveries w using events e
                   where w.application_id = e.application_id and w.event_id = e.id
                   returning 1
               ), orders as (
                   -- Order events by age (matched or not: a matched one is never younger
                   -- than its session's end), a batch at a time, by received_at's index.
                   delete from transak_order_events o
                   where (o.order_id, o.event_id) in (
                       select order_id, event_id from transak_order_events
                       where received_at < $1
                       order by received_at
                       limit $2)
                   returning 1
               )
               select (select count(*) from deleted) + (select count(*) from thinned) as "n!",
                      (select count(*) from events) + (select count(*) from deliveries)
                          + (select count(*) from orders) + (select count(*) from declarations)
                          + (select count(*) from proofs) + (select count(*) from attempts)
                          + (select count(*) from vacated) + (select count(*) from unbound)
                          as "rows!""#,
            ended_before,
            i64::from(limit),
            travel_rule_ended_before
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(u64::try_from(n.n).unwrap_or(0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar!("select 1 as \"one!\"")
            .fetch_one(self.pool())
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
