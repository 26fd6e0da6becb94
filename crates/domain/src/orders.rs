//! The customer's order in the Transak widget, as Transak's order events report it.

use std::fmt;

/// An order's status (`webhookData.status` of Transak's order events).
///
/// Transak adds statuses from time to time: one this crate does not know is kept as
/// [`OrderStatus::Unknown`] with its text, never refused, and counts as not final.
///
/// ```
/// use domain::OrderStatus;
/// assert_eq!(OrderStatus::parse("COMPLETED"), OrderStatus::Completed);
/// assert!(OrderStatus::Completed.is_final());
/// assert!(!OrderStatus::Processing.is_final());
/// let new = OrderStatus::parse("AWAITING_SOMETHING_NEW");
/// assert_eq!(new, OrderStatus::Unknown("AWAITING_SOMETHING_NEW".into()));
/// assert_eq!(new.as_str(), "AWAITING_SOMETHING_NEW");
/// assert!(!new.is_final());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// `AWAITING_PAYMENT_FROM_USER`: the order was placed; the customer has not paid yet.
    AwaitingPaymentFromUser,
    /// `PAYMENT_DONE_MARKED_BY_USER`: the customer says they paid.
    PaymentDoneMarkedByUser,
    /// `PROCESSING`: Transak is processing the payment.
    Processing,
    /// `PENDING_DELIVERY_FROM_TRANSAK`: paid; the crypto is being sent.
    PendingDeliveryFromTransak,
    /// `ON_HOLD_PENDING_DELIVERY_FROM_TRANSAK`: paid; the delivery is on hold.
    OnHoldPendingDeliveryFromTransak,
    /// `COMPLETED` (final): delivered.
    Completed,
    /// `FAILED` (final).
    Failed,
    /// `REFUNDED` (final).
    Refunded,
    /// `EXPIRED` (final): never paid.
    Expired,
    /// `CANCELLED` (final).
    Cancelled,
    /// A status this crate does not know, as Transak wrote it.
    Unknown(String),
}

impl OrderStatus {
    /// The known statuses, in the order an order usually goes through them.
    pub const KNOWN: [OrderStatus; 10] = [
        OrderStatus::AwaitingPaymentFromUser,
        OrderStatus::PaymentDoneMarkedByUser,
        OrderStatus::Processing,
        OrderStatus::PendingDeliveryFromTransak,
        OrderStatus::OnHoldPendingDeliveryFromTransak,
        OrderStatus::Completed,
        OrderStatus::Failed,
        OrderStatus::Refunded,
        OrderStatus::Expired,
        OrderStatus::Cancelled,
    ];

    /// The status named `s` (Transak's upper-case name, exactly); any other text is
    /// [`OrderStatus::Unknown`].
    pub fn parse(s: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_else(|| OrderStatus::Unknown(s.to_string()))
    }

    /// Transak's name of the status.
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::AwaitingPaymentFromUser => "AWAITING_PAYMENT_FROM_USER",
            OrderStatus::PaymentDoneMarkedByUser => "PAYMENT_DONE_MARKED_BY_USER",
            OrderStatus::Processing => "PROCESSING",
            OrderStatus::PendingDeliveryFromTransak => "PENDING_DELIVERY_FROM_TRANSAK",
            OrderStatus::OnHoldPendingDeliveryFromTransak => {
                "ON_HOLD_PENDING_DELIVERY_FROM_TRANSAK"
            }
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Failed => "FAILED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Unknown(s) => s,
        }
    }

    /// Whether the order does not change any more after this status.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            OrderStatus::Completed
                | OrderStatus::Failed
                | OrderStatus::Refunded
                | OrderStatus::Expired
                | OrderStatus::Cancelled
        )
    }

    /// The names of the final statuses (for a store that applies
    /// [`order_update_applies`] inside a statement).
    pub fn final_names() -> Vec<String> {
        Self::KNOWN
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str().to_string())
            .collect()
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an order event with status `incoming` may replace the order's `current` status.
///
/// Transak does not number its events and retries them, so they can arrive out of order:
/// the last one received wins, except that a final status ([`OrderStatus::is_final`]) is
/// never replaced by one that is not final (a late `PROCESSING` after `COMPLETED`). The
/// Postgres store runs this rule as the SQL function `order_update_applies`, checked against
/// this one by a property test.
///
/// ```
/// use domain::{OrderStatus, order_update_applies};
/// assert!(order_update_applies(None, &OrderStatus::Processing));
/// assert!(order_update_applies(Some(&OrderStatus::Completed), &OrderStatus::Refunded));
/// assert!(!order_update_applies(Some(&OrderStatus::Completed), &OrderStatus::Processing));
/// ```
pub fn order_update_applies(current: Option<&OrderStatus>, incoming: &OrderStatus) -> bool {
    !matches!(current, Some(c) if c.is_final() && !incoming.is_final())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_statuses_round_trip_their_names() {
        for s in OrderStatus::KNOWN {
            assert_eq!(OrderStatus::parse(s.as_str()), s);
        }
        assert_eq!(
            OrderStatus::parse("completed"),
            OrderStatus::Unknown("completed".into())
        );
        assert_eq!(
            OrderStatus::final_names(),
            ["COMPLETED", "FAILED", "REFUNDED", "EXPIRED", "CANCELLED"]
        );
    }

    #[test]
    fn a_final_status_is_not_replaced_by_a_non_final_one() {
        use OrderStatus::*;
        assert!(order_update_applies(None, &Processing));
        assert!(order_update_applies(
            Some(&AwaitingPaymentFromUser),
            &Processing
        ));
        assert!(order_update_applies(Some(&Processing), &Completed));
        assert!(order_update_applies(Some(&Completed), &Refunded));
        assert!(order_update_applies(Some(&Failed), &Completed));
        assert!(!order_update_applies(Some(&Completed), &Processing));
        assert!(!order_update_applies(
            Some(&Failed),
            &AwaitingPaymentFromUser
        ));
        assert!(!order_update_applies(
            Some(&Completed),
            &Unknown("SOMETHING_NEW".into())
        ));
        assert!(order_update_applies(
            Some(&Unknown("SOMETHING_NEW".into())),
            &Processing
        ));
    }
}
