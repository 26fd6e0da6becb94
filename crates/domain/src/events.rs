//! Session lifecycle events and the ids partners see for them.
//!
//! Every state change of a session is an [`EventType`]: a mint (`session.created`), the
//! first open of its link (`session.consumed`), a cancel, the passing of its expiry while
//! ACTIVE (`session.expired`), an upstream order update (`session.order_updated`), and the
//! changes of its travel-rule record (a declaration, a verified proof, the record becoming
//! complete, a raised flag reopening it).
//! Events are delivered to webhook endpoints ([`WebhookEndpointId`]) under an
//! [`EventId`] that stays the same on every retry.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A session was minted (not a reuse).
    SessionCreated,
    /// Its launch link was opened for the first time.
    SessionConsumed,
    /// It was cancelled.
    SessionCancelled,
    /// It passed its expiry while ACTIVE.
    SessionExpired,
    /// Transak reported an order made in its widget.
    SessionOrderUpdated,
    /// A declaration about the counterparty was recorded (each version).
    SessionDeclarationRecorded,
    /// The customer's control of the counterparty wallet was proven.
    SessionOwnershipVerified,
    /// The travel-rule record became complete (each time it does).
    SessionTravelRuleCompleted,
    /// A raised `forceVerifyOwnership` moved a complete record back to awaiting a proof.
    SessionTravelRuleReopened,
}

impl EventType {
    /// Every event type, in lifecycle order.
    pub const ALL: [EventType; 9] = [
        EventType::SessionCreated,
        EventType::SessionConsumed,
        EventType::SessionCancelled,
        EventType::SessionExpired,
        EventType::SessionOrderUpdated,
        EventType::SessionDeclarationRecorded,
        EventType::SessionOwnershipVerified,
        EventType::SessionTravelRuleCompleted,
        EventType::SessionTravelRuleReopened,
    ];

    /// The wire name, e.g. `session.created`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::SessionCreated => "session.created",
            EventType::SessionConsumed => "session.consumed",
            EventType::SessionCancelled => "session.cancelled",
            EventType::SessionExpired => "session.expired",
            EventType::SessionOrderUpdated => "session.order_updated",
            EventType::SessionDeclarationRecorded => "session.declaration_recorded",
            EventType::SessionOwnershipVerified => "session.ownership_verified",
            EventType::SessionTravelRuleCompleted => "session.travel_rule_completed",
            EventType::SessionTravelRuleReopened => "session.travel_rule_reopened",
        }
    }

    /// The type named `s` (exactly, lowercase).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A prefixed id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {prefix} followed by a UUID")]
pub struct MalformedId {
    /// The prefix that was expected.
    pub prefix: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The text before the UUID.
            pub const PREFIX: &'static str = $prefix;

            /// Wraps a UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = MalformedId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.strip_prefix($prefix)
                    .and_then(|rest| Uuid::try_parse(rest).ok())
                    .map(Self)
                    .ok_or(MalformedId { prefix: $prefix })
            }
        }
    };
}

prefixed_id!(
    /// An event's id: `evt_` and a UUID v7 (ids sort by creation). The `webhook-id` of every
    /// delivery of the event.
    ///
    /// ```
    /// use domain::EventId;
    /// let id: EventId = "evt_0193a1b2-0000-7000-8000-000000000001".parse().unwrap();
    /// assert_eq!(id.to_string(), "evt_0193a1b2-0000-7000-8000-000000000001");
    /// assert!("0193a1b2-0000-7000-8000-000000000001".parse::<EventId>().is_err());
    /// ```
    EventId,
    "evt_"
);

prefixed_id!(
    /// A webhook endpoint's id: `we_` and a UUID.
    ///
    /// ```
    /// use domain::WebhookEndpointId;
    /// let id: WebhookEndpointId = "we_0193a1b2-0000-7000-8000-000000000001".parse().unwrap();
    /// assert_eq!(id.to_string(), "we_0193a1b2-0000-7000-8000-000000000001");
    /// ```
    WebhookEndpointId,
    "we_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_their_wire_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("session.Created"), None);
        assert_eq!(EventType::parse("created"), None);
    }

    #[test]
    fn prefixed_ids_need_their_prefix_and_a_uuid() {
        assert!("evt_".parse::<EventId>().is_err());
        assert!(
            "we_0193a1b2-0000-7000-8000-000000000001"
                .parse::<EventId>()
                .is_err()
        );
        assert!("evt_0193a1b2".parse::<EventId>().is_err());
        assert!(
            " evt_0193a1b2-0000-7000-8000-000000000001"
                .parse::<EventId>()
                .is_err()
        );
    }
}
