//! [`ports::EndpointStore`]: webhook endpoints and their secrets.
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

/// Deleting an endpoint fails its pending deliveries and hides it; another application
/// cannot delete it; the limit holds under concurrent registrations.
pub async fn endpoints_are_scoped_limited_and_deletable(stores: Stores) {
    ensure_applications(&stores).await;
    let s = stores.sessions.clone();
    let w = stores.clone();
    let e = endpoint(APP_A, 1, &[]);
    register(&w, &e).await;
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    assert!(!w.endpoints.delete(APP_B, e.id).await.unwrap());
    assert_eq!(w.endpoints.list(APP_A).await.unwrap(), vec![e.clone()]);
    assert!(w.endpoints.list(APP_B).await.unwrap().is_empty());
    assert!(w.endpoints.delete(APP_A, e.id).await.unwrap());
    assert!(!w.endpoints.delete(APP_A, e.id).await.unwrap());
    assert!(w.endpoints.list(APP_A).await.unwrap().is_empty());
    let view = &w.events.session_events(APP_A, sid(1)).await.unwrap()[0].deliveries[0];
    assert_eq!(view.status, DeliveryStatus::Failed);
    assert!(
        w.deliveries
            .claim(&claim_query(at(1), 1, 10))
            .await
            .unwrap()
            .is_empty()
    );

    let attempts: Vec<_> = (0..16u128)
        .map(|n| {
            let w = w.clone();
            tokio::spawn(async move {
                w.endpoints
                    .create(&endpoint(APP_B, 100 + n, &[]), sealed(2), 10)
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(()) => ok += 1,
            Err(EndpointError::TooMany(10)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(w.endpoints.list(APP_B).await.unwrap().len(), 10);
}

/// After a rotation, claims carry the previous secret until its time, then only the new;
/// a second rotation keeps the secret the first handed out, never the original.
pub async fn rotation_keeps_the_previous_secret_for_a_while(stores: Stores) {
    ensure_applications(&stores).await;
    let s = stores.sessions.clone();
    let w = stores.clone();
    let e = endpoint(APP_A, 1, &[]);
    register(&w, &e).await;
    let rotated = w
        .endpoints
        .rotate_secret(APP_A, e.id, sealed(2), at(100))
        .await
        .unwrap();
    assert_eq!(rotated, Some(e.clone()));
    assert_eq!(
        w.endpoints
            .rotate_secret(APP_B, e.id, sealed(3), at(100))
            .await
            .unwrap(),
        None
    );
    mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
    let d = w
        .deliveries
        .claim(&claim_query(at(1), 1, 10))
        .await
        .unwrap();
    assert_eq!(d[0].secret, sealed(2));
    assert_eq!(d[0].previous_secret, Some(sealed(1)));
    let d = w
        .deliveries
        .claim(&claim_query(at(101), 2, 10))
        .await
        .unwrap();
    assert_eq!(d[0].previous_secret, None);

    // Rotated twice within the overlap: the secret the first rotation handed out (the one
    // the partner was last given) signs alongside the newest until the second rotation's
    // time; the original stops at once, its own time is not carried over nor extended.
    let e2 = endpoint(APP_A, 2, &[]);
    register(&w, &e2).await;
    w.endpoints
        .rotate_secret(APP_A, e2.id, sealed(5), at(100))
        .await
        .unwrap();
    w.endpoints
        .rotate_secret(APP_A, e2.id, sealed(6), at(60))
        .await
        .unwrap();
    mint(&s, APP_A, sid(3), &request(3, false), at(40)).await;
    let mine = |d: Vec<DueDelivery>| d.into_iter().find(|d| d.key.endpoint == e2.id).unwrap();
    let d = mine(
        w.deliveries
            .claim(&claim_query(at(50), 4, 10))
            .await
            .unwrap(),
    );
    assert_eq!(d.secret, sealed(6));
    assert_eq!(
        d.previous_secret,
        Some(sealed(5)),
        "the secret last handed out, not the original"
    );
    let listed = w.endpoints.sealed_secrets().await.unwrap();
    let previous: Vec<_> = listed
        .iter()
        .filter(|l| l.endpoint == e2.id && l.slot == SecretSlot::Previous)
        .map(|l| (l.secret.clone(), l.signs_until))
        .collect();
    assert_eq!(
        previous,
        vec![(sealed(5), Some(at(60)))],
        "one previous secret"
    );
    // Past the second rotation's time (though within the first's): the newest alone.
    w.deliveries
        .release(Uuid::from_u128(4), &[d.key])
        .await
        .unwrap();
    let d = mine(
        w.deliveries
            .claim(&claim_query(at(70), 5, 10))
            .await
            .unwrap(),
    );
    assert_eq!(d.secret, sealed(6));
    assert_eq!(
        d.previous_secret, None,
        "no rotation extends an older secret"
    );

    // A previous secret whose time is now (a rotation that ends it at once) signs nothing.
    let e3 = endpoint(APP_A, 3, &[]);
    register(&w, &e3).await;
    w.endpoints
        .rotate_secret(APP_A, e3.id, sealed(7), at(80))
        .await
        .unwrap();
    mint(&s, APP_A, sid(4), &request(4, false), at(80)).await;
    let d = w
        .deliveries
        .claim(&claim_query(at(80), 6, 10))
        .await
        .unwrap();
    let d = d.iter().find(|d| d.key.endpoint == e3.id).unwrap();
    assert_eq!(d.secret, sealed(7));
    assert_eq!(d.previous_secret, None);
}

/// Every endpoint's sealed secrets are listed (the previous one with the end of its
/// signing), and each is resealed only while it is still the one read: a rotation in
/// between wins.
pub async fn sealed_secrets_are_listed_and_resealed_by_compare_and_swap(stores: Stores) {
    ensure_applications(&stores).await;
    let w = stores.clone();
    let e1 = endpoint(APP_A, 1, &[]);
    let e2 = endpoint(APP_B, 2, &[]);
    register(&w, &e1).await;
    register(&w, &e2).await;
    w.endpoints
        .rotate_secret(APP_B, e2.id, sealed(2), at(100))
        .await
        .unwrap();
    let mut listed = w.endpoints.sealed_secrets().await.unwrap();
    listed.sort_by_key(|s| (s.endpoint, s.slot == SecretSlot::Previous));
    let current = |e: &WebhookEndpoint, secret| SealedEndpointSecret {
        application: e.application,
        endpoint: e.id,
        slot: SecretSlot::Current,
        secret,
        signs_until: None,
    };
    assert_eq!(
        listed,
        vec![
            current(&e1, sealed(1)),
            current(&e2, sealed(2)),
            SealedEndpointSecret {
                application: APP_B,
                endpoint: e2.id,
                slot: SecretSlot::Previous,
                secret: sealed(1),
                signs_until: Some(at(100)),
            },
        ]
    );

    // Each slot on its own, and only from the value read.
    assert!(
        w.endpoints
            .reseal_secret(APP_B, e2.id, SecretSlot::Previous, &sealed(1), sealed(11))
            .await
            .unwrap()
    );
    assert!(
        !w.endpoints
            .reseal_secret(APP_B, e2.id, SecretSlot::Previous, &sealed(1), sealed(12))
            .await
            .unwrap(),
        "the previous secret changed since it was read"
    );
    assert!(
        !w.endpoints
            .reseal_secret(APP_A, e2.id, SecretSlot::Current, &sealed(2), sealed(12))
            .await
            .unwrap(),
        "another application's endpoint"
    );
    assert!(
        !w.endpoints
            .reseal_secret(APP_A, e1.id, SecretSlot::Previous, &sealed(1), sealed(12))
            .await
            .unwrap(),
        "an endpoint without a previous secret"
    );
    // A rotation between the read and the reseal wins.
    w.endpoints
        .rotate_secret(APP_A, e1.id, sealed(3), at(100))
        .await
        .unwrap();
    assert!(
        !w.endpoints
            .reseal_secret(APP_A, e1.id, SecretSlot::Current, &sealed(1), sealed(13))
            .await
            .unwrap()
    );
    assert!(
        w.endpoints
            .reseal_secret(APP_B, e2.id, SecretSlot::Current, &sealed(2), sealed(14))
            .await
            .unwrap()
    );
    // Deliveries are signed with what is stored now.
    mint(&stores.sessions, APP_B, sid(1), &request(1, false), t0()).await;
    let d = w
        .deliveries
        .claim(&claim_query(at(1), 1, 10))
        .await
        .unwrap();
    let mine = d.iter().find(|d| d.key.endpoint == e2.id).unwrap();
    assert_eq!(mine.secret, sealed(14));
    assert_eq!(mine.previous_secret, Some(sealed(11)));
    let mut listed = w.endpoints.sealed_secrets().await.unwrap();
    listed.sort_by_key(|s| (s.endpoint, s.slot == SecretSlot::Previous));
    let secrets: Vec<_> = listed.iter().map(|s| (s.slot, s.secret.clone())).collect();
    assert_eq!(
        secrets,
        vec![
            (SecretSlot::Current, sealed(3)),
            (SecretSlot::Previous, sealed(1)),
            (SecretSlot::Current, sealed(14)),
            (SecretSlot::Previous, sealed(11)),
        ]
    );
}
