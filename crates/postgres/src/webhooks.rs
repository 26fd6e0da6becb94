//! [`WebhookStore`] on Postgres: endpoints, session events and deliveries.
//!
//! The events and their deliveries are written by the session statements themselves
//! (`emit_session_event`, in the migrations), in the same statement as each change. Delivery
//! workers claim due deliveries with `FOR UPDATE SKIP LOCKED` and a lease, and are woken by
//! `NOTIFY widget_sessions_deliveries` (sent by `emit_session_event` when it wrote
//! deliveries) on a `LISTEN` connection of their own.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, EventType, SessionId, WebhookEndpointId, WebhookUrl};
use ports::{
    Attempt, AttemptOutcome, ClaimQuery, Delivery, DeliveryKey, DeliveryStatus, DueDelivery,
    EncryptedSecret, EndpointError, EventRecord, SessionEvent, StoreError, WebhookEndpoint,
    WebhookStore,
};
use sqlx::postgres::PgListener;
use tracing::{instrument, warn};
use uuid::Uuid;

use crate::error::store_error;
use crate::rows::SessionRow;
use crate::sessions::PgSessionStore;

/// The channel `emit_session_event` notifies.
const CHANNEL: &str = "widget_sessions_deliveries";

fn corrupt(what: &str) -> StoreError {
    StoreError::Unexpected(format!("stored {what} is invalid"))
}

fn endpoint_from(
    application: Uuid,
    id: Uuid,
    url: &str,
    event_types: &[String],
    created_at: DateTime<Utc>,
) -> Result<WebhookEndpoint, StoreError> {
    Ok(WebhookEndpoint {
        id: WebhookEndpointId::from_uuid(id),
        application: ApplicationId::from_uuid(application),
        // Checked when it was registered; stored URLs are not judged again by today's
        // settings here (the sender checks the address at every delivery).
        url: WebhookUrl::parse(url, true).map_err(|_| corrupt("webhook URL"))?,
        event_types: event_types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| corrupt("event type")))
            .collect::<Result<_, _>>()?,
        created_at,
    })
}

fn event_from(
    id: Uuid,
    kind: &str,
    created_at: DateTime<Utc>,
    session: &str,
) -> Result<SessionEvent, StoreError> {
    let row: SessionRow = serde_json::from_str(session).map_err(|_| corrupt("event session"))?;
    Ok(SessionEvent {
        id: EventId::from_uuid(id),
        kind: EventType::parse(kind).ok_or_else(|| corrupt("event type"))?,
        created_at,
        session: row.into_stored()?,
    })
}

fn status_code(code: Option<i32>) -> Option<u16> {
    code.and_then(|c| u16::try_from(c).ok())
}

#[async_trait]
impl WebhookStore for PgSessionStore {
    #[instrument(skip_all, fields(application = %endpoint.application))]
    async fn create_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: EncryptedSecret,
        limit: u32,
    ) -> Result<(), EndpointError> {
        // The application row's lock serialises registrations of one application, and the
        // count runs after it (a statement of its own, so it sees every registration
        // committed while this one waited).
        let mut tx = self.pool().begin().await.map_err(store_error)?;
        let found = sqlx::query_scalar!(
            r#"select id from applications where id = $1 for update"#,
            endpoint.application.as_uuid()
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        if found.is_none() {
            return Err(EndpointError::Store(StoreError::Unexpected(
                "no such application".into(),
            )));
        }
        let count = sqlx::query_scalar!(
            r#"select count(*) as "n!" from webhook_endpoints where application_id = $1"#,
            endpoint.application.as_uuid()
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        if count >= i64::from(limit) {
            return Err(EndpointError::TooMany(limit));
        }
        let types: Vec<String> = endpoint
            .event_types
            .iter()
            .map(|t| t.as_str().to_string())
            .collect();
        sqlx::query!(
            r#"insert into webhook_endpoints (application_id, id, url, event_types, secret_key_id,
                   secret_sealed, created_at)
               values ($1, $2, $3, $4, $5, $6, $7)"#,
            endpoint.application.as_uuid(),
            endpoint.id.as_uuid(),
            endpoint.url.as_str(),
            &types,
            secret.key_id,
            secret.sealed,
            endpoint.created_at
        )
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(())
    }

    async fn list_endpoints(
        &self,
        application: ApplicationId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = sqlx::query!(
            r#"select application_id, id, url, event_types, created_at
               from webhook_endpoints where application_id = $1
               order by created_at, id"#,
            application.as_uuid()
        )
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|r| endpoint_from(r.application_id, r.id, &r.url, &r.event_types, r.created_at))
            .collect()
    }

    async fn delete_endpoint(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query!(
            r#"with gone as (
                   delete from webhook_endpoints where application_id = $1 and id = $2
                   returning id
               ), failed as (
                   update webhook_deliveries d set status = 'FAILED', next_attempt_at = null,
                       lease_owner = null, lease_until = null,
                       last_error = 'the endpoint was deleted'
                   from gone
                   where d.endpoint_id = gone.id and d.application_id = $1
                     and d.status = 'PENDING'
                   returning 1
               )
               select exists(select 1 from gone) as "deleted!",
                      (select count(*) from failed) as "failed!""#,
            application.as_uuid(),
            id.as_uuid()
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        Ok(row.deleted)
    }

    async fn rotate_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        secret: EncryptedSecret,
        now: DateTime<Utc>,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        // A previous secret still in its overlap is the one the partner may hold: keep it.
        let row = sqlx::query!(
            r#"update webhook_endpoints
               set previous_secret_key_id = case when previous_secret_until > $6
                       then previous_secret_key_id else secret_key_id end,
                   previous_secret_sealed = case when previous_secret_until > $6
                       then previous_secret_sealed else secret_sealed end,
                   previous_secret_until = $5,
                   secret_key_id = $3, secret_sealed = $4
               where application_id = $1 and id = $2
               returning application_id, id, url, event_types, created_at"#,
            application.as_uuid(),
            id.as_uuid(),
            secret.key_id,
            secret.sealed,
            previous_until,
            now
        )
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?;
        row.map(|r| endpoint_from(r.application_id, r.id, &r.url, &r.event_types, r.created_at))
            .transpose()
    }

    async fn session_events(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query!(
            r#"select e.id, e.type as kind, e.created_at, e.session::text as "session!",
                      d.endpoint_id as "endpoint_id?", d.status as "status?",
                      d.attempts as "attempts?", d.last_status_code, d.last_attempt_at,
                      d.next_attempt_at
               from session_events e
               left join webhook_deliveries d
                 on d.application_id = e.application_id and d.event_id = e.id
               where e.session_id = $2 and e.application_id = $1
               order by e.id, d.endpoint_id"#,
            application.as_uuid(),
            session.as_uuid()
        )
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        let mut records: Vec<EventRecord> = Vec::new();
        for r in rows {
            if records
                .last()
                .is_none_or(|last| last.event.id.as_uuid() != r.id)
            {
                records.push(EventRecord {
                    event: event_from(r.id, &r.kind, r.created_at, &r.session)?,
                    deliveries: Vec::new(),
                });
            }
            if let (Some(endpoint), Some(status), Some(attempts), Some(record)) =
                (r.endpoint_id, r.status, r.attempts, records.last_mut())
            {
                record.deliveries.push(Delivery {
                    endpoint: WebhookEndpointId::from_uuid(endpoint),
                    status: DeliveryStatus::parse(&status)
                        .ok_or_else(|| corrupt("delivery status"))?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    last_status_code: status_code(r.last_status_code),
                    last_attempt_at: r.last_attempt_at,
                    next_attempt_at: r.next_attempt_at,
                });
            }
        }
        Ok(records)
    }

    #[instrument(skip_all, fields(limit = q.limit))]
    async fn claim_deliveries(&self, q: &ClaimQuery) -> Result<Vec<DueDelivery>, StoreError> {
        // Due and free deliveries, oldest due first, at most `per_endpoint` per endpoint,
        // locked with SKIP LOCKED so that concurrent claims split them; then leased.
        let skip: Vec<Uuid> = q
            .skip_endpoints
            .iter()
            .map(WebhookEndpointId::as_uuid)
            .collect();
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
                     and d.endpoint_id <> all($6::uuid[])
               ), picked as (
                   select d.application_id, d.event_id, d.endpoint_id
                   from webhook_deliveries d
                   join ranked r using (application_id, event_id, endpoint_id)
                   where r.rank <= $5
                     and d.status = 'PENDING'
                     and (d.lease_until is null or d.lease_until <= $1)
                   order by r.next_attempt_at
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
            &skip
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
                    url: WebhookUrl::parse(&r.url, true).map_err(|_| corrupt("webhook URL"))?,
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

    async fn release_deliveries(
        &self,
        owner: Uuid,
        keys: &[DeliveryKey],
    ) -> Result<(), StoreError> {
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

    async fn due_deliveries(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
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

    async fn wait_for_deliveries(&self, timeout: Duration) {
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
