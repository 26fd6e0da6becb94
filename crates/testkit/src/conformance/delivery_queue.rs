//! [`ports::DeliveryQueue`]: deliveries claimed under a lease, attempts, retries, wake-ups.
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

/// Concurrent claims never hand out the same delivery while its lease lasts; a lapsed
/// lease makes it claimable again, and the old owner's attempt is then not recorded.
pub async fn deliveries_are_claimed_by_one_worker_at_a_time(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    register(&w, &endpoint(APP_A, 1, &[])).await;
    for n in 0..20u128 {
        mint(&s, APP_A, sid(n + 1), &request(n + 1, false), t0()).await;
    }
    let claims: Vec<_> = (0..4u128)
        .map(|owner| {
            let w = w.clone();
            tokio::spawn(async move {
                w.deliveries
                    .claim(&claim_query(at(1), owner, 8))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut first_owner = None;
    for (owner, c) in claims.into_iter().enumerate() {
        for d in c.await.unwrap() {
            assert!(seen.insert(d.key), "{:?} claimed twice", d.key);
            assert_eq!(d.attempts, 0);
            assert_eq!(d.event.kind, EventType::SessionCreated);
            assert_eq!(d.secret, sealed(1));
            first_owner.get_or_insert((owner as u128, d.key));
        }
    }
    assert_eq!(seen.len(), 20);
    assert!(
        w.deliveries
            .claim(&claim_query(at(2), 9, 100))
            .await
            .unwrap()
            .is_empty()
    );
    // After the leases (30 s) another worker takes them over.
    let again = w
        .deliveries
        .claim(&claim_query(at(32), 9, 100))
        .await
        .unwrap();
    assert_eq!(again.len(), 20);
    let (old_owner, key) = first_owner.unwrap();
    let stale = Attempt {
        key,
        owner: Uuid::from_u128(old_owner),
        at: at(33),
        status_code: Some(200),
        error: None,
        outcome: AttemptOutcome::Delivered,
    };
    assert!(
        !w.deliveries.record_attempt(&stale).await.unwrap(),
        "not the owner any more"
    );
    let fresh = Attempt {
        owner: Uuid::from_u128(9),
        ..stale
    };
    assert!(w.deliveries.record_attempt(&fresh).await.unwrap());
    assert!(
        !w.deliveries.record_attempt(&fresh).await.unwrap(),
        "recorded once"
    );
}

/// Attempts are counted; a retry becomes due at its time; delivered and failed are final;
/// a failed delivery can be made pending again; release makes a claim due at once.
pub async fn attempts_retries_and_final_states(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    let e = endpoint(APP_A, 1, &[]);
    register(&w, &e).await;
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    let owner = 7;
    let d = w
        .deliveries
        .claim(&claim_query(at(1), owner, 10))
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    let key = d[0].key;
    let attempt = |at_s: i64, code: Option<u16>, outcome| Attempt {
        key,
        owner: Uuid::from_u128(owner),
        at: at(at_s),
        status_code: code,
        error: code.is_none().then(|| "could not connect".to_string()),
        outcome,
    };
    assert!(
        w.deliveries
            .record_attempt(&attempt(1, Some(500), AttemptOutcome::RetryAt(at(6))))
            .await
            .unwrap()
    );
    assert_eq!(w.deliveries.due_count(at(5)).await.unwrap(), 0);
    assert!(
        w.deliveries
            .claim(&claim_query(at(5), owner, 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.deliveries.due_count(at(6)).await.unwrap(), 1);
    let d = w
        .deliveries
        .claim(&claim_query(at(6), owner, 10))
        .await
        .unwrap();
    assert_eq!(d[0].attempts, 1);
    // Released (a shutdown): due again at once, for anyone.
    w.deliveries
        .release(Uuid::from_u128(owner), &[key])
        .await
        .unwrap();
    let d = w
        .deliveries
        .claim(&claim_query(at(7), owner, 10))
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    assert!(
        w.deliveries
            .record_attempt(&attempt(8, None, AttemptOutcome::Failed))
            .await
            .unwrap()
    );
    let records = w.events.session_events(APP_A, sid(1)).await.unwrap();
    let view = &records[0].deliveries[0];
    assert_eq!(
        (
            view.status,
            view.attempts,
            view.last_status_code,
            view.last_attempt_at,
            view.next_attempt_at
        ),
        (DeliveryStatus::Failed, 2, None, Some(at(8)), None)
    );
    assert!(
        w.deliveries
            .claim(&claim_query(at(100), owner, 10))
            .await
            .unwrap()
            .is_empty()
    );
    // Redelivered: pending again with a fresh count.
    assert_eq!(
        w.deliveries
            .redeliver(key.event, Some(e.id), at(200))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        w.deliveries
            .redeliver(key.event, None, at(200))
            .await
            .unwrap(),
        0,
        "only failed ones"
    );
    let d = w
        .deliveries
        .claim(&claim_query(at(200), owner, 10))
        .await
        .unwrap();
    assert_eq!(d[0].attempts, 0);
    assert!(
        w.deliveries
            .record_attempt(&attempt(201, Some(204), AttemptOutcome::Delivered))
            .await
            .unwrap()
    );
    let view = &w.events.session_events(APP_A, sid(1)).await.unwrap()[0].deliveries[0];
    assert_eq!(
        (view.status, view.last_status_code),
        (DeliveryStatus::Delivered, Some(204))
    );
    assert_eq!(w.deliveries.due_count(at(1000)).await.unwrap(), 0);
}

/// A claim takes at most `per_endpoint` per endpoint less what is in flight to it: an
/// endpoint at its cap is left out, one below it gets only the room it has left.
pub async fn claims_respect_per_endpoint_limits(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    let e1 = endpoint(APP_A, 1, &[]);
    let e2 = endpoint(APP_A, 2, &[]);
    register(&w, &e1).await;
    register(&w, &e2).await;
    for n in 0..5u128 {
        mint(&s, APP_A, sid(n + 1), &request(n + 1, false), t0()).await;
    }
    let mut q = claim_query(at(1), 1, 100);
    q.per_endpoint = 2;
    let got = w.deliveries.claim(&q).await.unwrap();
    let count = |id| got.iter().filter(|d| d.key.endpoint == id).count();
    assert_eq!((count(e1.id), count(e2.id)), (2, 2));
    // The leases of those four lapse; this worker has e1 at its cap and one in flight to e2.
    let mut q = claim_query(at(40), 2, 100);
    q.per_endpoint = 2;
    q.endpoint_in_flight = vec![(e1.id, 2), (e2.id, 1)];
    let got = w.deliveries.claim(&q).await.unwrap();
    let count = |id| got.iter().filter(|d| d.key.endpoint == id).count();
    assert_eq!((count(e1.id), count(e2.id)), (0, 1), "{got:?}");
}

/// A claim takes at most `per_application` less what is in flight for each application: an
/// application at its cap is passed over (its older deliveries wait) and the others' are
/// claimed; one below it gets only the room it has left.
pub async fn claims_respect_per_application_limits(stores: Stores) {
    ensure_applications(&stores).await;
    let s = stores.sessions.clone();
    let w = stores.clone();
    let a1 = endpoint(APP_A, 1, &[]);
    let a2 = endpoint(APP_A, 2, &[]);
    let b1 = endpoint(APP_B, 3, &[]);
    for e in [&a1, &a2, &b1] {
        register(&w, e).await;
    }
    // Application A's ten deliveries are all older than B's two.
    for n in 0..5u128 {
        mint(&s, APP_A, sid(n + 1), &request(n + 1, false), t0()).await;
    }
    for n in 5..7u128 {
        mint(&s, APP_B, sid(n + 1), &request(n + 1, false), at(1)).await;
    }
    let of = |got: &[DueDelivery], app| got.iter().filter(|d| d.key.application == app).count();

    // A is at its cap: passed over, B's are claimed although A's are older.
    let mut q = claim_query(at(2), 1, 100);
    q.per_application = 3;
    q.application_in_flight = vec![(APP_A, 3)];
    let got = w.deliveries.claim(&q).await.unwrap();
    assert_eq!((of(&got, APP_A), of(&got, APP_B)), (0, 2), "{got:?}");

    // A has room for two more: it gets two, oldest first, across its endpoints.
    let mut q = claim_query(at(2), 2, 100);
    q.per_application = 3;
    q.application_in_flight = vec![(APP_A, 1), (APP_B, 2)];
    let got = w.deliveries.claim(&q).await.unwrap();
    assert_eq!((of(&got, APP_A), of(&got, APP_B)), (2, 0), "{got:?}");

    // Nothing in flight: the cap alone, with the per-endpoint limit still applying.
    let mut q = claim_query(at(2), 3, 100);
    q.per_application = 5;
    q.per_endpoint = 2;
    let got = w.deliveries.claim(&q).await.unwrap();
    assert_eq!(of(&got, APP_A), 4, "two per endpoint: {got:?}");
    let mut q = claim_query(at(2), 4, 100);
    q.per_application = 3;
    let got = w.deliveries.claim(&q).await.unwrap();
    assert_eq!(of(&got, APP_A), 3, "{got:?}");
}

/// A worker waiting for deliveries wakes when one is written (not only at its timeout).
pub async fn waiting_workers_wake_on_new_deliveries(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    register(&w, &endpoint(APP_A, 1, &[])).await;
    // Let the store set up its wake-up channel (Postgres: LISTEN).
    w.deliveries.wait(Duration::from_millis(50)).await;
    let waiter = {
        let w = w.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            w.deliveries.wait(Duration::from_secs(20)).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken within 10 s")
        .unwrap();
    assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
}
