//! [`AccessTokenStore`] on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use ports::{
    AccessTokenStore, EncryptedSecret, PreviousAccessToken, SealContext, SealedAccessToken,
    SecretSealer, StoreError, StoredAccessToken, TokenSlot,
};
use secrecy::SecretString;
use sqlx::PgPool;
use tracing::instrument;
use uuid::Uuid;

use crate::error::store_error;

/// The shared upstream access token in Postgres, one row per upstream account, sealed
/// with the at-rest key (bound to its purpose); the token it replaced is kept sealed too.
#[derive(Clone)]
pub struct PgTokenStore {
    pool: PgPool,
    sealer: Arc<dyn SecretSealer>,
}

impl std::fmt::Debug for PgTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTokenStore").finish_non_exhaustive()
    }
}

impl PgTokenStore {
    /// A store over `pool` (migrated with [`crate::migrate`]), sealing with `sealer`.
    pub fn new(pool: PgPool, sealer: Arc<dyn SecretSealer>) -> Self {
        Self { pool, sealer }
    }

    /// Opens the stored current token. One that the configured keys cannot open is an
    /// error, never a reason to refresh: a refresh upstream would invalidate the token for
    /// every instance that holds the key that sealed it.
    fn open_current(&self, key_id: String, sealed: Vec<u8>) -> Result<SecretString, StoreError> {
        self.sealer
            .open(
                &EncryptedSecret { key_id, sealed },
                SealContext::UpstreamAccessToken,
            )
            .map_err(|e| {
                StoreError::unexpected(format!(
                    "the stored Transak access token cannot be opened with the configured at-rest keys ({e}); it is not refreshed over, which would invalidate it for the instances that can open it"
                ))
            })
    }

    /// Opens the token the last refresh replaced; `None` (with a warning) when the configured
    /// keys cannot: it only verifies order webhooks signed just before the refresh.
    fn open_previous(&self, key_id: String, sealed: Vec<u8>) -> Option<SecretString> {
        self.sealer
            .open(
                &EncryptedSecret { key_id, sealed },
                SealContext::UpstreamAccessToken,
            )
            .map_err(|e| {
                tracing::warn!(error = %e, "the previous Transak access token cannot be opened; order webhooks signed with it are refused");
            })
            .ok()
    }
}

#[async_trait]
impl AccessTokenStore for PgTokenStore {
    #[instrument(skip_all)]
    async fn current(&self, account: &str) -> Result<Option<StoredAccessToken>, StoreError> {
        let row = sqlx::query!(
            r#"select token, token_key_id, token_sealed, expires_at as "expires_at!", version,
                      previous_key_id, previous_sealed, previous_replaced_at
               from upstream_tokens
               where account = $1 and (token is not null or token_sealed is not null)"#,
            account
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(r) = row else {
            return Ok(None);
        };
        // A plaintext token was written by an instance of an earlier version after this
        // version's last save (which nulls it): it is the newest.
        let token = match (r.token, r.token_key_id, r.token_sealed) {
            (Some(plain), _, _) => SecretString::from(plain),
            (None, Some(key_id), Some(sealed)) => self.open_current(key_id, sealed)?,
            _ => return Ok(None),
        };
        let previous = match (r.previous_key_id, r.previous_sealed, r.previous_replaced_at) {
            (Some(key_id), Some(sealed), Some(replaced_at)) => self
                .open_previous(key_id, sealed)
                .map(|token| PreviousAccessToken { token, replaced_at }),
            _ => None,
        };
        Ok(Some(StoredAccessToken {
            token,
            expires_at: r.expires_at,
            version: r.version,
            previous,
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
        now: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError> {
        let sealed = self.sealer.seal(&token, SealContext::UpstreamAccessToken);
        let row = sqlx::query!(
            r#"update upstream_tokens
               set token = null, token_key_id = $3, token_sealed = $4, expires_at = $5,
                   version = version + 1,
                   previous_key_id = token_key_id, previous_sealed = token_sealed,
                   previous_replaced_at = case when token_sealed is null then null else $6::timestamptz end,
                   lease_holder = null, lease_until = null
               where account = $1 and lease_holder = $2
               returning version, previous_key_id, previous_sealed, previous_replaced_at"#,
            account,
            holder,
            sealed.key_id,
            sealed.sealed,
            expires_at,
            now
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .ok_or_else(|| StoreError::Conflict("the refresh lease is held by someone else".into()))?;
        let previous = match (
            row.previous_key_id,
            row.previous_sealed,
            row.previous_replaced_at,
        ) {
            (Some(key_id), Some(sealed), Some(replaced_at)) => self
                .open_previous(key_id, sealed)
                .map(|token| PreviousAccessToken { token, replaced_at }),
            _ => None,
        };
        Ok(StoredAccessToken {
            token,
            expires_at,
            version: row.version,
            previous,
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

    #[instrument(skip_all)]
    async fn sealed_tokens(&self) -> Result<Vec<SealedAccessToken>, StoreError> {
        let rows = sqlx::query!(
            r#"select account, token_key_id, token_sealed, previous_key_id, previous_sealed,
                      previous_replaced_at
               from upstream_tokens
               where token_sealed is not null or previous_sealed is not null
               order by account"#
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let mut list = Vec::with_capacity(rows.len());
        for r in rows {
            if let (Some(key_id), Some(sealed)) = (r.token_key_id, r.token_sealed) {
                list.push(SealedAccessToken {
                    account: r.account.clone(),
                    slot: TokenSlot::Current,
                    token: EncryptedSecret { key_id, sealed },
                    replaced_at: None,
                });
            }
            if let (Some(key_id), Some(sealed), Some(replaced_at)) =
                (r.previous_key_id, r.previous_sealed, r.previous_replaced_at)
            {
                list.push(SealedAccessToken {
                    account: r.account,
                    slot: TokenSlot::Previous,
                    token: EncryptedSecret { key_id, sealed },
                    replaced_at: Some(replaced_at),
                });
            }
        }
        Ok(list)
    }

    #[instrument(skip_all)]
    async fn reseal_token(
        &self,
        account: &str,
        slot: TokenSlot,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let n = match slot {
            TokenSlot::Current => {
                sqlx::query!(
                    r#"update upstream_tokens set token_key_id = $4, token_sealed = $5
                   where account = $1 and token_key_id = $2 and token_sealed = $3"#,
                    account,
                    current.key_id,
                    current.sealed,
                    resealed.key_id,
                    resealed.sealed
                )
                .execute(&self.pool)
                .await
            }
            TokenSlot::Previous => {
                sqlx::query!(
                    r#"update upstream_tokens set previous_key_id = $4, previous_sealed = $5
                   where account = $1 and previous_key_id = $2 and previous_sealed = $3"#,
                    account,
                    current.key_id,
                    current.sealed,
                    resealed.key_id,
                    resealed.sealed
                )
                .execute(&self.pool)
                .await
            }
        }
        .map_err(store_error)?
        .rows_affected();
        Ok(n == 1)
    }

    #[instrument(skip_all)]
    async fn forget_token(
        &self,
        account: &str,
        slot: TokenSlot,
        current: &EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let n = match slot {
            TokenSlot::Current => {
                sqlx::query!(
                    r#"update upstream_tokens
                   set token = null, token_key_id = null, token_sealed = null, expires_at = null,
                       previous_key_id = null, previous_sealed = null,
                       previous_replaced_at = null
                   where account = $1 and token_key_id = $2 and token_sealed = $3"#,
                    account,
                    current.key_id,
                    current.sealed
                )
                .execute(&self.pool)
                .await
            }
            TokenSlot::Previous => {
                sqlx::query!(
                    r#"update upstream_tokens
                   set previous_key_id = null, previous_sealed = null,
                       previous_replaced_at = null
                   where account = $1 and previous_key_id = $2 and previous_sealed = $3"#,
                    account,
                    current.key_id,
                    current.sealed
                )
                .execute(&self.pool)
                .await
            }
        }
        .map_err(store_error)?
        .rows_affected();
        Ok(n == 1)
    }
}
