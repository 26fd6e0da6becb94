//! [`ports::EventLog`]: every change writes its event (the outbox), with one delivery per subscribed endpoint.
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

/// A mint, a consume and a cancel each write one event, with the session as it was right
/// after, and one pending delivery per endpoint of the application that receives its
/// type; another application's endpoints get nothing.
pub async fn each_change_writes_one_event_with_a_delivery_per_subscribed_endpoint(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    let all = endpoint(APP_A, 1, &[]);
    let consumed_only = endpoint(APP_A, 2, &[EventType::SessionConsumed]);
    let other_app = endpoint(APP_B, 3, &[]);
    for e in [&all, &consumed_only, &other_app] {
        register(&w, e).await;
    }
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    let launched = s.launch(APP_A, sid(1), at(5), true, evt()).await.unwrap();
    assert!(matches!(launched, LaunchResult::Opened(_)));
    mint(&s, APP_A, sid(2), &request(2, false), t0()).await;
    let cancelled = s.cancel(APP_A, sid(2), at(6), evt()).await.unwrap();
    assert!(matches!(cancelled, CancelResult::Cancelled(_)));

    assert_eq!(
        events_of(&w, APP_A, sid(1)).await,
        vec![
            (EventType::SessionCreated, vec![all.id]),
            (EventType::SessionConsumed, vec![all.id, consumed_only.id]),
        ]
    );
    assert_eq!(
        events_of(&w, APP_A, sid(2)).await,
        vec![
            (EventType::SessionCreated, vec![all.id]),
            (EventType::SessionCancelled, vec![all.id]),
        ]
    );
    // The session as it was right after each change, and the delivery's starting state.
    let records = w.events.session_events(APP_A, sid(1)).await.unwrap();
    assert_eq!(records[0].event.created_at, t0());
    assert!(records[0].event.session.session.end().is_none());
    assert_eq!(records[1].event.created_at, at(5));
    assert_eq!(
        records[1].event.session.session.end(),
        Some(domain::SessionEnd::Consumed { at: at(5) })
    );
    let d = &records[1].deliveries[0];
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at, d.last_attempt_at),
        (DeliveryStatus::Pending, 0, Some(at(5)), None)
    );
    // Scoped by application.
    assert!(
        w.events
            .session_events(APP_B, sid(1))
            .await
            .unwrap()
            .is_empty()
    );
}

/// What did not change writes nothing: a lost claim's fulfil, a launch of a session that
/// is not ACTIVE, a launch without consume, a second cancel, an unknown session.
pub async fn a_change_that_did_not_happen_writes_no_event(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    register(&w, &endpoint(APP_A, 1, &[])).await;
    let r = request(1, false);
    // A claim lost to another request: its fulfil stores nothing, no event.
    let mut q = reuse_query(APP_A, &r, t0(), 1);
    q.claim = claim(1);
    assert_eq!(s.reuse_or_claim(&q).await.unwrap(), ReuseOutcome::Claimed);
    let mut q2 = reuse_query(APP_A, &r, at(31), 2);
    q2.claim = claim(2);
    assert_eq!(s.reuse_or_claim(&q2).await.unwrap(), ReuseOutcome::Claimed);
    let lost = s
        .fulfil(APP_A, claim(1), new_session(APP_A, sid(1), &r, t0()))
        .await;
    assert_eq!(lost, Err(FulfilError::ClaimLost));
    assert!(
        w.events
            .session_events(APP_A, sid(1))
            .await
            .unwrap()
            .is_empty()
    );

    mint(&s, APP_A, sid(2), &request(2, false), t0()).await;
    s.launch(APP_A, sid(2), at(1), false, evt()).await.unwrap();
    s.launch(APP_A, sid(2), at(2), true, evt()).await.unwrap();
    let again = s.launch(APP_A, sid(2), at(3), true, evt()).await.unwrap();
    assert!(matches!(again, LaunchResult::Ended(_)));
    let not_active = s.cancel(APP_A, sid(2), at(4), evt()).await.unwrap();
    assert!(matches!(not_active, CancelResult::NotActive(_)));
    assert_eq!(
        events_of(&w, APP_A, sid(2))
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>(),
        vec![EventType::SessionCreated, EventType::SessionConsumed]
    );

    mint(&s, APP_A, sid(3), &request(3, false), t0()).await;
    s.cancel(APP_A, sid(3), at(1), evt()).await.unwrap();
    let twice = s.cancel(APP_A, sid(3), at(2), evt()).await.unwrap();
    assert!(matches!(twice, CancelResult::AlreadyCancelled(_)));
    assert_eq!(events_of(&w, APP_A, sid(3)).await.len(), 2);
    assert!(matches!(
        s.cancel(APP_A, sid(99), at(1), evt()).await.unwrap(),
        CancelResult::NotFound
    ));
    assert!(
        w.events
            .session_events(APP_A, sid(99))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every ACTIVE session that passed its expiry gets exactly one `session.expired`,
/// however many sweepers run at once; ended and unexpired sessions get none; once its
/// expiry was emitted a session cannot be consumed or cancelled any more (an instance
/// whose clock runs behind may still see it ACTIVE).
pub async fn expiry_is_emitted_once_however_many_sweepers(stores: Stores) {
    let s = stores.sessions.clone();
    let w = stores.clone();
    register(&w, &endpoint(APP_A, 1, &[])).await;
    for n in 0..24u128 {
        mint(&s, APP_A, sid(100 + n), &request(100 + n, false), t0()).await;
    }
    s.launch(APP_A, sid(100), at(10), true, evt())
        .await
        .unwrap();
    s.cancel(APP_A, sid(101), at(10), evt()).await.unwrap();
    // Not yet expired (sessions live 300 s).
    assert_eq!(s.sweep_expired(at(299), &[evt(), evt()]).await.unwrap(), 0);

    let sweepers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut n = 0;
                loop {
                    let ids: Vec<_> = (0..5).map(|_| evt()).collect();
                    let got = s.sweep_expired(at(301), &ids).await.unwrap();
                    n += got;
                    if got == 0 {
                        return n;
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in sweepers {
        total += t.await.unwrap();
    }
    assert_eq!(total, 22, "every expired ACTIVE session, once");
    for n in 0..24u128 {
        let expired = events_of(&w, APP_A, sid(100 + n))
            .await
            .into_iter()
            .filter(|(t, _)| *t == EventType::SessionExpired)
            .count();
        assert_eq!(expired, usize::from(n >= 2), "session {n}");
    }
    assert_eq!(s.sweep_expired(at(400), &[evt()]).await.unwrap(), 0);
    // A launch or cancel judged by a clock still before the expiry is refused now.
    let late = s
        .launch(APP_A, sid(102), at(299), true, evt())
        .await
        .unwrap();
    assert!(matches!(late, LaunchResult::Ended(_)), "{late:?}");
    let late = s.cancel(APP_A, sid(103), at(299), evt()).await.unwrap();
    assert!(matches!(late, CancelResult::NotActive(_)), "{late:?}");
    assert_eq!(events_of(&w, APP_A, sid(102)).await.len(), 2);
}
