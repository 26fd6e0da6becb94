//! [`ports::Housekeeping`]: retention across the session-side stores, and the readiness probe.
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

/// Purge deletes ended sessions older than the cutoff, at most `limit`
/// at a time; active ones stay; purged keys become vacant.
pub async fn purge_deletes_ended_sessions_in_batches(stores: Stores) {
    let store = stores.sessions.clone();
    for n in 1..=3u128 {
        mint(&store, APP_A, sid(n), &request(n, false), t0()).await;
    }
    store
        .launch(APP_A, sid(1), at(10), true, evt())
        .await
        .unwrap();
    store.cancel(APP_A, sid(2), at(20), evt()).await.unwrap();
    mint(&store, APP_B, sid(4), &request(4, false), at(1000)).await;
    // Ended: 1 (at +10), 2 (at +20), 3 (expired at +300). 4 is active until +1300.
    assert_eq!(
        stores.housekeeping.purge(at(15), at(15), 10).await.unwrap(),
        1
    );
    assert_eq!(store.get(APP_A, sid(1)).await.unwrap(), None);
    let gone = store
        .launch(APP_A, sid(1), at(16), false, evt())
        .await
        .unwrap();
    assert_eq!(gone, LaunchResult::Unknown);
    assert_eq!(
        stores
            .housekeeping
            .purge(at(1001), at(1001), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stores
            .housekeeping
            .purge(at(1001), at(1001), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stores
            .housekeeping
            .purge(at(1001), at(1001), 10)
            .await
            .unwrap(),
        0
    );
    assert!(store.get(APP_B, sid(4)).await.unwrap().is_some());
    // The purged sessions' keys are vacant and mintable again.
    let r = request(1, false);
    mint(&store, APP_A, sid(5), &r, at(1002)).await;
    let distinct: HashSet<_> = [sid(4), sid(5)].into_iter().collect();
    assert_eq!(distinct.len(), 2);
}

/// A working store answers pings.
pub async fn ping_answers(stores: Stores) {
    stores.housekeeping.ping().await.unwrap();
}

/// Retention takes a session's events and deliveries with it.
pub async fn purge_takes_events_and_deliveries(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    register(&w, &endpoint(APP_A, 1, &[])).await;
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    s.cancel(APP_A, sid(1), at(1), evt()).await.unwrap();
    assert_eq!(
        w.events.session_events(APP_A, sid(1)).await.unwrap().len(),
        2
    );
    assert_eq!(
        w.housekeeping.purge(at(1000), at(1000), 10).await.unwrap(),
        1
    );
    assert!(
        w.events
            .session_events(APP_A, sid(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.deliveries.due_count(at(2000)).await.unwrap(), 0);
}

/// Retention takes order events by age, matched or not, with the sessions.
pub async fn purge_takes_order_events(stores: Stores) {
    ensure_applications(&stores).await;
    let s = stores.sessions.clone();
    let w = stores.clone();
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    s.launch(APP_A, sid(1), at(1), true, evt()).await.unwrap();
    let matched = order_update("ord-1", "ORDER_FAILED", "FAILED", Some(sid(1)), at(2));
    w.orders.record(&matched).await.unwrap();
    let stray = order_update("ord-2", "ORDER_FAILED", "FAILED", Some(sid(99)), at(2));
    assert_eq!(
        w.orders.record(&stray).await.unwrap(),
        OrderOutcome::Unmatched
    );
    // Not yet old enough: kept (a repeat is still a duplicate).
    assert_eq!(w.housekeeping.purge(at(1), at(1), 10).await.unwrap(), 0);
    assert_eq!(
        w.orders.record(&stray).await.unwrap(),
        OrderOutcome::Duplicate
    );
    assert_eq!(w.orders.unmatched(10).await.unwrap().len(), 1);
    assert_eq!(
        w.housekeeping.purge(at(1000), at(1000), 10).await.unwrap(),
        1
    );
    assert!(w.orders.unmatched(10).await.unwrap().is_empty());
    // Both forgotten: the same events are new again (the unmatched one still unmatched).
    assert_eq!(
        w.orders.record(&stray).await.unwrap(),
        OrderOutcome::Unmatched
    );
    assert_eq!(
        w.orders.record(&matched).await.unwrap(),
        OrderOutcome::Unmatched
    );
}
