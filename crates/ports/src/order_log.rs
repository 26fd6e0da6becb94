//! Transak's order events, as received: each (order, event) once, matched to the session
//! whose widget it was made in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{EventId, OrderStatus, SessionId};

use crate::session_store::StoredSession;
use crate::store_error::StoreError;

/// An order event from Transak, verified, for [`OrderLog::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    /// Transak's order id.
    pub order_id: String,
    /// `eventID`.
    pub event_id: String,
    /// `webhookData.status`.
    pub status: OrderStatus,
    /// `webhookData.partnerOrderId` as received (our session id, if it is one of ours).
    pub partner_order_id: Option<String>,
    /// The session it names, if `partner_order_id` is a session id.
    pub session: Option<SessionId>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// The id of the `session.order_updated` event to write if it changes a session.
    pub event: EventId,
}

/// An order event that matched no opened session of this service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedOrder {
    /// Transak's order id.
    pub order_id: String,
    /// `eventID`.
    pub event_id: String,
    /// `webhookData.status`.
    pub status: OrderStatus,
    /// `webhookData.partnerOrderId` as received, if plain text.
    pub partner_order_id: Option<String>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// What [`OrderLog::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    /// The session's order was updated (and its `session.order_updated` event written).
    Updated(Box<StoredSession>),
    /// This (order, event) was received before: nothing changed.
    Duplicate,
    /// No session by that id whose link was opened: recorded as unmatched, nothing else.
    Unmatched,
    /// The session's order already has a final status and this event's is not final (it
    /// arrived late): recorded, the session unchanged, no event
    /// ([`domain::order_update_applies`]).
    Stale,
}

/// The order log.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait OrderLog: Send + Sync {
    /// Records an order event: once per (order id, event id). The first time, if it names a
    /// session whose link was opened, sets the session's order — unless
    /// [`domain::order_update_applies`] refuses the change — and writes its
    /// `session.order_updated` event `update.event` (and deliveries), in the same
    /// transaction.
    ///
    /// # Concurrency
    ///
    /// The same (order, event) received twice at once is recorded once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn record(&self, update: &OrderUpdate) -> Result<OrderOutcome, StoreError>;

    /// The latest order events that matched no opened session (for operators), newest
    /// first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn unmatched(&self, limit: u32) -> Result<Vec<UnmatchedOrder>, StoreError>;
}
