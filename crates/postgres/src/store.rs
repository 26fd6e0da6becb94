//! The session side of the Postgres backend: one pool, every session-side store port.

use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

/// Sessions, their reuse-key slots, the request log, Transak's order events, webhook
/// endpoints, session events and deliveries in Postgres: one store implementing
/// [`ports::SessionStore`], [`ports::RequestLog`], [`ports::OrderLog`],
/// [`ports::Housekeeping`], [`ports::EndpointStore`], [`ports::EventLog`] and
/// [`ports::DeliveryQueue`], one module per table. A change and its event are written by one
/// statement whichever port makes the change (`emit_session_event`, in the migrations).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The `LISTEN` connection of the delivery worker, opened on first wait.
    listener: Arc<tokio::sync::Mutex<Option<PgListener>>>,
}

impl PgStore {
    /// A store over `pool` (migrated with [`crate::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            listener: Arc::default(),
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn listener(&self) -> &tokio::sync::Mutex<Option<PgListener>> {
        &self.listener
    }
}
