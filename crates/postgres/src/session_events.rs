//! `session_events`: [`EventLog`] on Postgres. Events are written by the statements that
//! make each change (`emit_session_event`, in the migrations), never here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, EventType, SessionId, WebhookEndpointId};
use ports::{Delivery, DeliveryStatus, EventLog, EventRecord, SessionEvent, StoreError};
use uuid::Uuid;

use crate::error::store_error;
use crate::rows::SessionRow;
use crate::store::PgStore;
use crate::webhook_endpoints::corrupt;

/// An event as stored: its session is the JSON copy of the `sessions` row right after the
/// change.
pub(crate) fn event_from(
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

pub(crate) fn status_code(code: Option<i32>) -> Option<u16> {
    code.and_then(|c| u16::try_from(c).ok())
}

#[async_trait]
impl EventLog for PgStore {
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
}
