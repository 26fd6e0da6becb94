//! Upstream order events: Transak reports what the customer did in the widget by webhook;
//! [`Orders::accept`] verifies one (with the shared access token, through the gateway port),
//! maps it to the session it names (`partnerOrderId` is our session id) and records it — the
//! session's `order` and a `session.order_updated` event, through the outbox.

use std::sync::Arc;

use domain::SessionId;
use ports::{
    Clock, OrderEventError, OrderLog, OrderOutcome, OrderUpdate, Randomness, StoreError,
    UnmatchedOrder, WidgetGateway,
};
use tracing::{debug, info, warn};

/// Counter `widget_sessions_order_events_total{outcome}`: `updated`, `duplicate`,
/// `unmatched`, `stale`, `unauthenticated`, `malformed`.
pub const ORDER_EVENTS: &str = "widget_sessions_order_events_total";

/// What happened to an accepted order event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAccepted {
    /// It updated its session's order (and an event went out).
    Updated,
    /// It was received before: acknowledged, nothing changed.
    Duplicate,
    /// It names no session of this service whose link was opened: recorded as unmatched.
    Unmatched,
    /// It arrived after a final status and is not final itself: recorded, nothing changed.
    Stale,
}

/// Why an order event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Not signed with the access token (or the previous one within its grace): nothing
    /// stored.
    #[error("not signed with this service's access token")]
    Unauthenticated,
    /// Signed, but not an order event.
    #[error("{0}")]
    Malformed(String),
    /// The store or the token store cannot be reached: the upstream should retry.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (a bug, a corrupt row).
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for OrderError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => OrderError::Unavailable(e.to_string()),
            StoreError::Conflict(_) | StoreError::Unexpected(_) => {
                OrderError::Internal(e.to_string())
            }
        }
    }
}

/// The order-event use case.
#[derive(Clone)]
pub struct Orders {
    gateway: Arc<dyn WidgetGateway>,
    orders: Arc<dyn OrderLog>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Randomness>,
}

impl Orders {
    /// The use case over these ports.
    pub fn new(
        gateway: Arc<dyn WidgetGateway>,
        orders: Arc<dyn OrderLog>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Randomness>,
    ) -> Self {
        Self {
            gateway,
            orders,
            clock,
            ids,
        }
    }

    /// Verifies and records one order webhook (its raw body).
    ///
    /// # Errors
    ///
    /// See [`OrderError`].
    pub async fn accept(&self, body: &[u8]) -> Result<OrderAccepted, OrderError> {
        let event = match self.gateway.verify_order_event(body).await {
            Ok(event) => event,
            Err(OrderEventError::Unauthenticated) => {
                metrics::counter!(ORDER_EVENTS, "outcome" => "unauthenticated").increment(1);
                // Debug only: anyone can send these (the metric counts them).
                debug!("order webhook refused: not signed with the access token");
                return Err(OrderError::Unauthenticated);
            }
            Err(OrderEventError::Malformed(why)) => {
                metrics::counter!(ORDER_EVENTS, "outcome" => "malformed").increment(1);
                warn!(reason = %why, "order webhook refused: malformed");
                return Err(OrderError::Malformed(why));
            }
            Err(OrderEventError::Unavailable(why)) => return Err(OrderError::Unavailable(why)),
        };
        let session = event
            .partner_order_id
            .as_deref()
            .and_then(|p| p.parse::<SessionId>().ok());
        let outcome = self
            .orders
            .record(&OrderUpdate {
                order_id: event.order_id.clone(),
                event_id: event.event_id.clone(),
                status: event.status.clone(),
                partner_order_id: event.partner_order_id.clone(),
                session,
                received_at: self.clock.now(),
                event: self.ids.event_id(),
            })
            .await?;
        let (accepted, label) = match &outcome {
            OrderOutcome::Updated(_) => (OrderAccepted::Updated, "updated"),
            OrderOutcome::Duplicate => (OrderAccepted::Duplicate, "duplicate"),
            OrderOutcome::Unmatched => (OrderAccepted::Unmatched, "unmatched"),
            OrderOutcome::Stale => (OrderAccepted::Stale, "stale"),
        };
        metrics::counter!(ORDER_EVENTS, "outcome" => label).increment(1);
        info!(order_id = %event.order_id, order_event = %event.event_id, status = %event.status,
            session_id = ?session, outcome = label, "order event");
        Ok(accepted)
    }

    /// The latest order events that matched no opened session, newest first (for
    /// operators).
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn unmatched(&self, limit: u32) -> Result<Vec<UnmatchedOrder>, StoreError> {
        self.orders.unmatched(limit).await
    }
}
