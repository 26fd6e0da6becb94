//! [`ports::OrderLog`]: Transak's order events, each once, matched to opened sessions.
#![allow(unused_imports)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, EventType, SessionStatus, Subject, ValidRequest, WebhookEndpointId, WebhookUrl,
};
use ports::*;
use uuid::Uuid;

use crate::fixtures::*;

use super::support::*;

/// An order event is recorded once per (order, event): the first sets the session's
/// order and writes one `session.order_updated` (with the session as updated, for the
/// session's own application); a repeat changes nothing and writes nothing; an event of
/// no session, or of a session whose link was never opened, is recorded as unmatched,
/// once; a later event of the order moves it on, unless it is a late non-final status
/// after a final one.
pub async fn order_events_are_recorded_once(stores: Stores) {
    ensure_applications(&stores).await;
    let s = stores.sessions.clone();
    let w = stores.clone();
    register(&w, &endpoint(APP_A, 1, &[EventType::SessionOrderUpdated])).await;
    register(&w, &endpoint(APP_B, 2, &[])).await;
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    // Before its link was opened a session cannot have an order: unmatched.
    let early = order_update("ord-0", "ORDER_COMPLETED", "COMPLETED", Some(sid(1)), at(1));
    assert_eq!(
        w.orders.record(&early).await.unwrap(),
        OrderOutcome::Unmatched
    );
    assert_eq!(s.get(APP_A, sid(1)).await.unwrap().unwrap().order, None);
    s.launch(APP_A, sid(1), at(2), true, evt()).await.unwrap();
    let first = order_update("ord-1", "ORDER_COMPLETED", "COMPLETED", Some(sid(1)), at(5));
    let OrderOutcome::Updated(updated) = w.orders.record(&first).await.unwrap() else {
        panic!("the first event updates the session");
    };
    let expected = SessionOrder {
        id: "ord-1".into(),
        status: domain::OrderStatus::Completed,
        event_id: "ORDER_COMPLETED".into(),
        updated_at: at(5),
    };
    assert_eq!(updated.order.as_ref(), Some(&expected));
    assert_eq!(updated.session.id(), sid(1));
    let stored = s.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert_eq!(stored.order, Some(expected.clone()));
    let events = events_of(&w, APP_A, sid(1)).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[2].0, EventType::SessionOrderUpdated);
    assert_eq!(
        events[2].1.len(),
        1,
        "one delivery, to the application's endpoint"
    );
    let records = w.events.session_events(APP_A, sid(1)).await.unwrap();
    assert_eq!(records[2].event.session.order, Some(expected.clone()));

    // The same (order, event) again, even with another status or time: nothing changes.
    let again = order_update("ord-1", "ORDER_COMPLETED", "REFUNDED", Some(sid(1)), at(9));
    assert_eq!(
        w.orders.record(&again).await.unwrap(),
        OrderOutcome::Duplicate
    );
    assert_eq!(
        s.get(APP_A, sid(1)).await.unwrap().unwrap().order,
        Some(expected)
    );
    assert_eq!(events_of(&w, APP_A, sid(1)).await.len(), 3);

    // A later event of the order, final too: it applies.
    let failed = order_update("ord-1", "ORDER_FAILED", "FAILED", Some(sid(1)), at(7));
    assert!(matches!(
        w.orders.record(&failed).await.unwrap(),
        OrderOutcome::Updated(_)
    ));
    let order = s.get(APP_A, sid(1)).await.unwrap().unwrap().order.unwrap();
    assert_eq!((order.status.as_str(), order.updated_at), ("FAILED", at(7)));
    assert_eq!(events_of(&w, APP_A, sid(1)).await.len(), 4);
    // A late non-final one: recorded (a repeat is a duplicate), nothing else.
    let late = order_update(
        "ord-1",
        "ORDER_PROCESSING",
        "PROCESSING",
        Some(sid(1)),
        at(8),
    );
    assert_eq!(w.orders.record(&late).await.unwrap(), OrderOutcome::Stale);
    assert_eq!(
        w.orders.record(&late).await.unwrap(),
        OrderOutcome::Duplicate
    );
    let order = s.get(APP_A, sid(1)).await.unwrap().unwrap().order.unwrap();
    assert_eq!(order.status, domain::OrderStatus::Failed);
    assert_eq!(events_of(&w, APP_A, sid(1)).await.len(), 4);

    // No such session (or no session id at all): unmatched, once.
    for session in [Some(sid(99)), None] {
        let name = format!("ord-{session:?}");
        let stray = order_update(&name, "ORDER_COMPLETED", "COMPLETED", session, at(5));
        assert_eq!(
            w.orders.record(&stray).await.unwrap(),
            OrderOutcome::Unmatched
        );
        assert_eq!(
            w.orders.record(&stray).await.unwrap(),
            OrderOutcome::Duplicate
        );
    }
    // Operators see the unmatched ones, newest first.
    let unmatched = w.orders.unmatched(10).await.unwrap();
    let mut ids: Vec<&str> = unmatched.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{unmatched:?}");
    assert_eq!(ids.pop(), Some("ord-0"), "the oldest last: {unmatched:?}");
    assert_eq!(unmatched[2].partner_order_id, Some(sid(1).to_string()));
    assert_eq!(unmatched[2].received_at, at(1));
    assert_eq!(w.orders.unmatched(1).await.unwrap().len(), 1);
    // Two deliveries, both of the order events: none to the other application.
    assert_eq!(w.deliveries.due_count(at(100)).await.unwrap(), 2);
}

/// The store's order-status precedence is the domain's (`domain::order_update_applies`):
/// for random sequences of statuses (final, not final, unknown to this service) reported for
/// one order of an opened session, each event updates the session exactly when the domain
/// says it applies to the order as it then is (a refused one is `Stale`), and the session
/// ends with the status the domain arrives at.
pub async fn order_precedence_applies_the_domains_rule(stores: Stores) {
    use proptest::prelude::*;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    ensure_applications(&stores).await;
    let s = stores.sessions.clone();
    let statuses = [
        "AWAITING_PAYMENT_FROM_USER",
        "PROCESSING",
        "PENDING_DELIVERY_FROM_TRANSAK",
        "COMPLETED",
        "FAILED",
        "REFUNDED",
        "EXPIRED",
        "CANCELLED",
        "A_STATUS_TRANSAK_ADDS_LATER",
    ];
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(0..statuses.len(), 1..7);
    for n in 0..48u32 {
        let sequence = strategy.new_tree(&mut runner).unwrap().current();
        let id = sid(30_000 + u128::from(n));
        mint(&s, APP_A, id, &request(30_000 + u128::from(n), false), t0()).await;
        s.launch(APP_A, id, at(1), true, evt()).await.unwrap();
        let order = format!("ord-precedence-{n}");
        let mut current: Option<domain::OrderStatus> = None;
        for (k, i) in sequence.iter().enumerate() {
            let status = domain::OrderStatus::parse(statuses[*i]);
            let update = order_update(
                &order,
                &format!("EVENT_{k}"),
                statuses[*i],
                Some(id),
                at(2 + i64::try_from(k).unwrap()),
            );
            let applies = domain::order_update_applies(current.as_ref(), &status);
            let outcome = stores.orders.record(&update).await.unwrap();
            let case = format!("{sequence:?}, event {k}: from {current:?} to {status:?}");
            match outcome {
                OrderOutcome::Updated(updated) => {
                    assert!(applies, "{case}: the store applied it, the domain does not");
                    assert_eq!(
                        updated.order.map(|o| o.status),
                        Some(status.clone()),
                        "{case}"
                    );
                    current = Some(status);
                }
                OrderOutcome::Stale => assert!(!applies, "{case}: the domain applies it"),
                other => panic!("{case}: {other:?}"),
            }
        }
        let stored = s.get(APP_A, id).await.unwrap().unwrap();
        assert_eq!(stored.order.map(|o| o.status), current, "{sequence:?}");
    }
}
