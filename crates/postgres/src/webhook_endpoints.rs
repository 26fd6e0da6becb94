//! `webhook_endpoints`: [`EndpointStore`] on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventType, WebhookEndpointId, WebhookUrl};
use ports::{
    EncryptedSecret, EndpointError, EndpointStore, SealedEndpointSecret, SecretSlot, StoreError,
    WebhookEndpoint,
};
use tracing::instrument;
use uuid::Uuid;

use crate::error::store_error;
use crate::store::PgStore;

/// A stored value that does not read back.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::unexpected(format!("stored {what} is invalid"))
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
        url: WebhookUrl::stored(url).map_err(|_| corrupt("webhook URL"))?,
        event_types: event_types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| corrupt("event type")))
            .collect::<Result<_, _>>()?,
        created_at,
    })
}

#[async_trait]
impl EndpointStore for PgStore {
    #[instrument(skip_all, fields(application = %endpoint.application))]
    async fn create(
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

    async fn list(&self, application: ApplicationId) -> Result<Vec<WebhookEndpoint>, StoreError> {
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

    async fn delete(
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
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        // The current secret (the one last handed out) becomes the previous one; an older
        // previous secret is overwritten. The right-hand sides read the row as it was.
        let row = sqlx::query!(
            r#"update webhook_endpoints
               set previous_secret_key_id = secret_key_id,
                   previous_secret_sealed = secret_sealed,
                   previous_secret_until = $5,
                   secret_key_id = $3, secret_sealed = $4
               where application_id = $1 and id = $2
               returning application_id, id, url, event_types, created_at"#,
            application.as_uuid(),
            id.as_uuid(),
            secret.key_id,
            secret.sealed,
            previous_until
        )
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?;
        row.map(|r| endpoint_from(r.application_id, r.id, &r.url, &r.event_types, r.created_at))
            .transpose()
    }

    #[instrument(skip_all)]
    async fn sealed_secrets(&self) -> Result<Vec<SealedEndpointSecret>, StoreError> {
        let rows = sqlx::query!(
            r#"select application_id, id, secret_key_id, secret_sealed, previous_secret_key_id,
                      previous_secret_sealed, previous_secret_until
               from webhook_endpoints
               order by application_id, id"#
        )
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        let mut list = Vec::with_capacity(rows.len());
        for r in rows {
            let application = ApplicationId::from_uuid(r.application_id);
            let endpoint = WebhookEndpointId::from_uuid(r.id);
            list.push(SealedEndpointSecret {
                application,
                endpoint,
                slot: SecretSlot::Current,
                secret: EncryptedSecret {
                    key_id: r.secret_key_id,
                    sealed: r.secret_sealed,
                },
                signs_until: None,
            });
            if let (Some(key_id), Some(sealed), Some(until)) = (
                r.previous_secret_key_id,
                r.previous_secret_sealed,
                r.previous_secret_until,
            ) {
                list.push(SealedEndpointSecret {
                    application,
                    endpoint,
                    slot: SecretSlot::Previous,
                    secret: EncryptedSecret { key_id, sealed },
                    signs_until: Some(until),
                });
            }
        }
        Ok(list)
    }

    #[instrument(skip_all, fields(application = %application, endpoint_id = %id))]
    async fn reseal_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        slot: SecretSlot,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let n = match slot {
            SecretSlot::Current => {
                sqlx::query!(
                    r#"update webhook_endpoints set secret_key_id = $5, secret_sealed = $6
                   where application_id = $1 and id = $2
                     and secret_key_id = $3 and secret_sealed = $4"#,
                    application.as_uuid(),
                    id.as_uuid(),
                    current.key_id,
                    current.sealed,
                    resealed.key_id,
                    resealed.sealed
                )
                .execute(self.pool())
                .await
            }
            SecretSlot::Previous => {
                sqlx::query!(
                    r#"update webhook_endpoints
                   set previous_secret_key_id = $5, previous_secret_sealed = $6
                   where application_id = $1 and id = $2
                     and previous_secret_key_id = $3 and previous_secret_sealed = $4"#,
                    application.as_uuid(),
                    id.as_uuid(),
                    current.key_id,
                    current.sealed,
                    resealed.key_id,
                    resealed.sealed
                )
                .execute(self.pool())
                .await
            }
        }
        .map_err(store_error)?
        .rows_affected();
        Ok(n == 1)
    }
}
