//! `request_nonces` (unlogged) and `request_nonces_durable`: [`RequestLog`] on Postgres. The
//! create path records its request inside its own statement ([`crate::reuse_slots`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ports::{RequestLog, RequestNonce, StoreError};
use tracing::instrument;

use crate::error::store_error;
use crate::store::PgStore;

impl PgStore {
    /// After a request was refused as a replay: if the request log had lost its memory (a
    /// crash or a failover emptied the unlogged tables, `request_log_epoch`'s row with
    /// them), says from when it remembers again — now, plus the window of a signature and
    /// the lead a signature's clock may have — so that every request signed before is
    /// refused, including the one just refused (it was signed before now). One statement,
    /// only on this path; a failure is logged, and the next refused request tries again
    /// (until then every request is refused, never accepted twice).
    pub(crate) async fn request_refused(&self) {
        let span =
            chrono::TimeDelta::milliseconds(ports::MAX_REQUEST_AGE_MS + ports::MAX_REQUEST_LEAD_MS);
        let restarted = sqlx::query_scalar!(
            r#"insert into request_log_epoch (remembers_after)
               values (clock_timestamp() + make_interval(secs => $1))
               on conflict do nothing
               returning remembers_after"#,
            span.num_milliseconds() as f64 / 1000.0
        )
        .fetch_optional(self.pool())
        .await;
        match restarted {
            Ok(Some(after)) => tracing::warn!(
                remembers_after = %after,
                "the request log had lost its memory (a database crash or failover emptied its unlogged tables): requests signed before now are refused"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not check the request log's memory"),
        }
    }
}

#[async_trait]
impl RequestLog for PgStore {
    #[instrument(skip_all, fields(application = %nonce.application))]
    async fn remember(&self, nonce: &RequestNonce) -> Result<bool, StoreError> {
        // The unlogged table (the commit does not wait for a WAL flush), unless the request
        // must be remembered across a crash: the SQL function `remember_request` picks.
        let fresh = sqlx::query_scalar!(
            r#"select remember_request($1, $2, $3, $4) as "fresh!""#,
            nonce.application.as_uuid(),
            nonce.signature.as_slice(),
            nonce.expires_at,
            nonce.durable
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        if !fresh && !nonce.durable {
            self.request_refused().await;
        }
        Ok(fresh)
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
