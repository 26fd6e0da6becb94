//! [`AccessTokenStore`] on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ports::{AccessTokenStore, StoreError, StoredAccessToken};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tracing::instrument;
use uuid::Uuid;

use crate::error::store_error;

/// The shared upstream access token in Postgres, one row per upstream account.
///
/// The token is stored as issued (it is valid for at most 7 days and every refresh
/// invalidates the previous one); protect the database like any credential store.
#[derive(Debug, Clone)]
pub struct PgTokenStore {
    pool: PgPool,
}

impl PgTokenStore {
    /// A store over `pool` (migrated with [`crate::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AccessTokenStore for PgTokenStore {
    #[instrument(skip_all)]
    async fn current(&self, account: &str) -> Result<Option<StoredAccessToken>, StoreError> {
        let row = sqlx::query!(
            r#"select token as "token!", expires_at as "expires_at!", version
               from upstream_tokens where account = $1 and token is not null"#,
            account
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(row.map(|r| StoredAccessToken {
            token: SecretString::from(r.token),
            expires_at: r.expires_at,
            version: r.version,
        }))
    }

    #[instrument(skip_all)]
    async fn try_lease_refresh(
        &self,
        account: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let won = sqlx::query_scalar!(
            r#"insert into upstream_tokens (account, lease_holder, lease_until)
               values ($1, $2, $4)
               on conflict (account) do update
                   set lease_holder = excluded.lease_holder, lease_until = excluded.lease_until
                   where upstream_tokens.lease_holder is null
                      or upstream_tokens.lease_holder = $2
                      or upstream_tokens.lease_until <= $3
               returning account"#,
            account,
            holder,
            now,
            lease_until
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(won.is_some())
    }

    #[instrument(skip_all)]
    async fn save_refreshed(
        &self,
        account: &str,
        holder: Uuid,
        token: SecretString,
        expires_at: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError> {
        let version = sqlx::query_scalar!(
            r#"update upstream_tokens
               set token = $3, expires_at = $4, version = version + 1,
                   lease_holder = null, lease_until = null
               where account = $1 and lease_holder = $2
               returning version"#,
            account,
            holder,
            token.expose_secret(),
            expires_at
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .ok_or_else(|| StoreError::Conflict("the refresh lease is held by someone else".into()))?;
        Ok(StoredAccessToken {
            token,
            expires_at,
            version,
        })
    }

    #[instrument(skip_all)]
    async fn release_refresh(&self, account: &str, holder: Uuid) -> Result<(), StoreError> {
        sqlx::query!(
            r#"update upstream_tokens set lease_holder = null, lease_until = null
               where account = $1 and lease_holder = $2"#,
            account,
            holder
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
