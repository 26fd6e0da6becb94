//! `webhook_deliveries`: [`DeliveryQueue`] on Postgres.
//!
//! The deliveries are written with their events by the session statements themselves
//! (`emit_session_event`, in the migrations). Delivery workers claim due deliveries with
//! `FOR UPDATE SKIP LOCKED` and a lease, and are woken by `NOTIFY widget_sessions_deliveries`
//! (sent by `emit_session_event` when it wrote deliveries) on a `LISTEN` connection of their
//! own.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, WebhookEndpointId, WebhookUrl};
use ports::{
    Attempt, AttemptOutcome, ClaimQuery, DeliveryKey, DeliveryQueue, DueDelivery, EncryptedSecret,
    StoreError,
};
use sqlx::postgres::PgListener;
use tracing::{instrument, warn};
use uuid::Uuid;

use crate::error::store_error;
use crate::session_events::event_from;
use crate::store::PgStore;
use crate::webhook_endpoints::corrupt;

/// The channel `emit_session_event` notifies.
const CHANNEL: &str = "widget_sessions_deliveries";

#[async_trait]
impl DeliveryQueue for PgStore {
    #[instrument(skip_all, fields(limit = q.limit))]
    async fn claim(&self, q: &ClaimQuery) -> Result<Vec<DueDelivery>, StoreError> {
        // Due and free deliveries, oldest due first, at most the room each endpoint has left
        // (`per_endpoint` less what this worker has in flight to it) and,
        // of those, at most the room each application has left, locked with SKIP LOCKED so
        // that concurrent claims split them; then leased.
        let (busy_endpoints, endpoint_in_flight): (Vec<Uuid>, Vec<i32>) = q
            .endpoint_in_flight
            .iter()
            .map(|(e, n)| (e.as_uuid(), i32::try_from(*n).unwrap_or(i32::MAX)))
            .unzip();
        let (busy, busy_in_flight): (Vec<Uuid>, Vec<i32>) = q
            .application_in_flight
            .iter()
            .map(|(a, n)| (a.as_uuid(), i32::try_from(*n).unwrap_or(i32::MAX)))
            .unzip();
        let rows = sqlx::query!(
            r#"with orphans as (
                   -- A delivery written while its endpoint was being deleted: it has nowhere
                   -- to go.
                   update webhook_deliveries d set status = 'FAILED', next_attempt_at = null,
                       lease_owner = null, lease_until = null,
                       last_error = 'the endpoint was deleted'
                   where d.status = 'PENDING' and d.next_attempt_at <= $1
                     and not exists (select 1 from webhook_endpoints w
                                     where w.application_id = d.application_id
                                       and w.id = d.endpoint_id)
                   returning 1
               ), ranked as (
                   select d.application_id, d.event_id, d.endpoint_id, d.next_attempt_at,
                          row_number() over (partition by d.endpoint_id order by d.next_attempt_at) as rank
                   from webhook_deliveries d
                   join webhook_endpoints w on w.application_id = d.application_id
                                           and w.id = d.endpoint_id
                   where d.status = 'PENDING' and d.next_attempt_at <= $1
                     and (d.lease_until is null or d.lease_until <= $1)
               ), fair as (
                   -- Of those, ranked within their application: an application gets only
                   -- the room it has left, and one at its cap is passed over.
                   select r.application_id, r.event_id, r.endpoint_id, r.next_attempt_at,
                          row_number() over (partition by r.application_id
                                             order by r.next_attempt_at) as app_rank
                   from ranked r
                   left join unnest($6::uuid[], $10::int4[]) as busy_ep(endpoint_id, in_flight)
                          on busy_ep.endpoint_id = r.endpoint_id
                   where r.rank <= $5::int8 - coalesce(busy_ep.in_flight, 0)
               ), picked as (
                   select d.application_id, d.event_id, d.endpoint_id
                   from webhook_deliveries d
                   join fair f using (application_id, event_id, endpoint_id)
                   left join unnest($7::uuid[], $8::int4[]) as busy(application_id, in_flight)
                          on busy.application_id = f.application_id
                   where f.app_rank <= $9::int8 - coalesce(busy.in_flight, 0)
                     and d.status = 'PENDING'
                     and (d.lease_until is null or d.lease_until <= $1)
                   order by f.next_attempt_at
                   limit $4
                   for update of d skip locked
               ), leased as (
                   update webhook_deliveries d set lease_owner = $2, lease_until = $3
                   from picked p
                   where d.application_id = p.application_id and d.event_id = p.event_id
                     and d.endpoint_id = p.endpoint_id
                   returning d.application_id, d.event_id, d.endpoint_id, d.attempts
               )
               select l.application_id, l.event_id, l.endpoint_id, l.attempts,
                      e.type as kind, e.created_at, e.session::text as "session!",
                      w.url, w.secret_key_id, w.secret_sealed,
                      case when w.previous_secret_until > $1 then w.previous_secret_key_id end
                          as "previous_secret_key_id?",
                      case when w.previous_secret_until > $1 then w.previous_secret_sealed end
                          as "previous_secret_sealed?"
               from leased l
               join session_events e on e.application_id = l.application_id and e.id = l.event_id
               join webhook_endpoints w on w.application_id = l.application_id
                                       and w.id = l.endpoint_id
               where (select count(*) from orphans) >= 0"#,
            q.now,
            q.owner,
            q.lease_until,
            i64::from(q.limit),
            i64::from(q.per_endpoint),
            &busy_endpoints,
            &busy,
            &busy_in_flight,
            i64::from(q.per_application),
            &endpoint_in_flight
        )
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|r| {
                Ok(DueDelivery {
                    key: DeliveryKey {
                        application: ApplicationId::from_uuid(r.application_id),
                        event: EventId::from_uuid(r.event_id),
                        endpoint: WebhookEndpointId::from_uuid(r.endpoint_id),
                    },
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                    event: event_from(r.event_id, &r.kind, r.created_at, &r.session)?,
                    url: WebhookUrl::stored(&r.url).map_err(|_| corrupt("webhook URL"))?,
                    secret: EncryptedSecret {
                        key_id: r.secret_key_id,
                        sealed: r.secret_sealed,
                    },
                    previous_secret: match (r.previous_secret_key_id, r.previous_secret_sealed) {
                        (Some(key_id), Some(sealed)) => Some(EncryptedSecret { key_id, sealed }),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    async fn record_attempt(&self, a: &Attempt) -> Result<bool, StoreError> {
        let (status, next) = match a.outcome {
            AttemptOutcome::Delivered => ("DELIVERED", None),
            AttemptOutcome::RetryAt(at) => ("PENDING", Some(at)),
            AttemptOutcome::Failed => ("FAILED", None),
        };
        let done = sqlx::query!(
            r#"update webhook_deliveries
               set attempts = attempts + 1, last_status_code = $5, last_attempt_at = $6,
                   last_error = $7, status = $8, next_attempt_at = $9,
                   lease_owner = null, lease_until = null
               where application_id = $1 and event_id = $2 and endpoint_id = $3
                 and lease_owner = $4 and status = 'PENDING'"#,
            a.key.application.as_uuid(),
            a.key.event.as_uuid(),
            a.key.endpoint.as_uuid(),
            a.owner,
            a.status_code.map(i32::from),
            a.at,
            a.error,
            status,
            next
        )
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, owner: Uuid, keys: &[DeliveryKey]) -> Result<(), StoreError> {
        let apps: Vec<Uuid> = keys.iter().map(|k| k.application.as_uuid()).collect();
        let events: Vec<Uuid> = keys.iter().map(|k| k.event.as_uuid()).collect();
        let endpoints: Vec<Uuid> = keys.iter().map(|k| k.endpoint.as_uuid()).collect();
        sqlx::query!(
            r#"update webhook_deliveries d set lease_owner = null, lease_until = null
               from unnest($2::uuid[], $3::uuid[], $4::uuid[]) as k (application_id, event_id, endpoint_id)
               where d.application_id = k.application_id and d.event_id = k.event_id
                 and d.endpoint_id = k.endpoint_id and d.lease_owner = $1"#,
            owner,
            &apps,
            &events,
            &endpoints
        )
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn redeliver(
        &self,
        event: EventId,
        endpoint: Option<WebhookEndpointId>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query_scalar!(
            r#"with again as (
                   update webhook_deliveries d
                   set status = 'PENDING', attempts = 0, next_attempt_at = $3,
                       lease_owner = null, lease_until = null
                   where d.event_id = $1 and ($2::uuid is null or d.endpoint_id = $2)
                     and d.status = 'FAILED'
                     and exists (select 1 from webhook_endpoints w
                                 where w.application_id = d.application_id and w.id = d.endpoint_id)
                   returning 1
               ), woke as (
                   select pg_notify('widget_sessions_deliveries', '') where exists (select 1 from again)
               )
               select (select count(*) from again) + 0 * (select count(*) from woke) as "n!""#,
            event.as_uuid(),
            endpoint.map(|e| e.as_uuid()),
            now
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn due_count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = sqlx::query_scalar!(
            r#"select count(*) as "n!" from webhook_deliveries
               where status = 'PENDING' and next_attempt_at <= $1"#,
            now
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn wait(&self, timeout: Duration) {
        let mut guard = self.listener().lock().await;
        if guard.is_none() {
            match PgListener::connect_with(self.pool()).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => *guard = Some(listener),
                    Err(e) => warn!(error = %e, "could not LISTEN for new deliveries; polling"),
                },
                Err(e) => warn!(error = %e, "could not open a LISTEN connection; polling"),
            }
        }
        let Some(listener) = guard.as_mut() else {
            tokio::time::sleep(timeout).await;
            return;
        };
        match tokio::time::timeout(timeout, listener.try_recv()).await {
            // A notification: take every other one already queued with it.
            Ok(Ok(Some(_))) => while listener.next_buffered().is_some() {},
            Ok(Ok(None)) | Ok(Err(_)) => {
                // The connection was lost (notifications sent meanwhile are lost too: the
                // caller's timer covers them); reconnect next time.
                *guard = None;
            }
            Err(_) => {}
        }
    }
}
