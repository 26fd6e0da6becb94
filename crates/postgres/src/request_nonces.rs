//! `request_nonces` (unlogged) and `request_nonces_durable`: [`RequestLog`] on Postgres. The
//! create path records its request inside its own statement ([`crate::reuse_slots`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ports::{RequestLog, RequestNonce, StoreError};
use tracing::instrument;

use crate::error::store_error;
use crate::store::PgStore;

#[async_trait]
impl RequestLog for PgStore {
    #[instrument(skip_all, fields(application = %nonce.application))]
    async fn remember(&self, nonce: &RequestNonce) -> Result<bool, StoreError> {
        // The unlogged table (the commit does not wait for a WAL flush), unless the request
        // must be remembered across a crash: the SQL function `remember_request` picks.
        sqlx::query_scalar!(
            r#"select remember_request($1, $2, $3, $4) as "fresh!""#,
            nonce.application.as_uuid(),
            nonce.signature.as_slice(),
            nonce.expires_at,
            nonce.durable
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)
    }

    #[instrument(skip_all)]
    async fn forget_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = sqlx::query_scalar!(
            r#"with a as (delete from request_nonces where expires_at < $1 returning 1),
                    b as (delete from request_nonces_durable where expires_at < $1 returning 1)
               select (select count(*) from a) + (select count(*) from b) as "n!""#,
            before
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
