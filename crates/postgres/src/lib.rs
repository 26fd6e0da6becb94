//! # Postgres adapters
//!
//! [`PgStore`] (every session-side store port), [`PgApplicationStore`] and [`PgTokenStore`]
//! implement the store ports with sqlx, one module per table: `sessions`, `reuse_slots`,
//! `request_nonces`, `transak_order_events`, `travel_rule` (declarations, proofs and refused
//! proofs), `webhook_endpoints`, `session_events`,
//! `webhook_deliveries`, `applications`, `upstream_tokens`, and `housekeeping` for retention
//! across them. Every query is checked at compile time against the committed offline data
//! (`crates/postgres/.sqlx`), so building needs no database. A session is read as the SQL
//! type `session_row_v3` (one definition of its columns, in the migrations), and each
//! lifecycle rule the statements need is one SQL function beside it, checked against the
//! domain's by the conformance suite.
//!
//! Every guarantee across API instances comes from keys and **single atomic statements**
//! (conditional upserts, `UPDATE … WHERE … RETURNING`, data-modifying CTEs), never from
//! in-process or advisory locks. The hot path ([`SessionStore::reuse_or_claim`]) is one round trip.
//!
//! [`MIGRATOR`] embeds the workspace's `migrations/`.

mod applications;
mod error;
mod housekeeping;
mod request_nonces;
mod reuse_slots;
mod rows;
mod session_events;
mod sessions;
mod store;
mod transak_order_events;
mod travel_rule;
mod upstream_tokens;
mod webhook_deliveries;
mod webhook_endpoints;

pub use applications::PgApplicationStore;
pub use error::DatabaseError;
pub use store::PgStore;
pub use upstream_tokens::PgTokenStore;

use std::time::Duration;

use std::sync::Arc;

use ports::{SecretSealer, StoreCause, StoreError, Stores};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The workspace's migrations, embedded.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[cfg(doc)]
use ports::SessionStore;

/// Connection pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections per instance.
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Opens a pool. Does not connect until first used, so an instance can start (and report
/// not-ready) while the database is down.
///
/// # Errors
///
/// [`StoreError::Unexpected`] when the URL is malformed.
pub fn pool(url: &str, settings: PoolSettings) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // No ping before every acquire: that would be a second round trip on the hot path
        // (the contract: one). A connection that died (database restarted) fails its query once,
        // is reported as unavailable (503) and is dropped by the pool.
        .test_before_acquire(false)
        .connect_lazy(url)
        .map_err(|e| StoreError::Unexpected(StoreCause::new(e)))
}

/// Applies pending migrations.
///
/// # Errors
///
/// [`StoreError::Unavailable`] when the database cannot be reached; [`StoreError::Unexpected`]
/// when a migration fails or an applied migration was edited.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => error::store_error(e),
        other => StoreError::Unexpected(StoreCause::new(other)),
    })
}

/// The migrations this build has that the database has not applied (by version), or an error
/// when the database is not migrated at all.
///
/// # Errors
///
/// [`StoreError::Unavailable`] when the database cannot be reached.
pub async fn pending_migrations(pool: &PgPool) -> Result<Vec<i64>, StoreError> {
    let table: Option<String> = sqlx::query_scalar("select to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .map_err(error::store_error)?;
    let applied: Vec<i64> = if table.is_some() {
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(pool)
            .await
            .map_err(error::store_error)?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect())
}

/// Every store port on one pool (migrated with [`migrate`]); the shared Transak token is
/// sealed with `sealer`.
pub fn stores(pool: PgPool, sealer: Arc<dyn SecretSealer>) -> Stores {
    Stores::of(
        Arc::new(PgStore::new(pool.clone())),
        Arc::new(PgApplicationStore::new(pool.clone())),
        Arc::new(PgTokenStore::new(pool, sealer)),
    )
}
