//! [`ports::RequestLog`]: a signed request is accepted once.
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

/// A request's nonce is accepted once, by `remember_request` and by `reuse_or_claim`
/// alike (one table), per application; a replayed create does nothing at all; expired
/// nonces are forgotten.
pub async fn a_request_nonce_is_accepted_once(stores: Stores) {
    let store = stores.sessions.clone();
    let nonce = |app, byte: u8, until| RequestNonce {
        application: app,
        signature: [byte; 32],
        expires_at: until,
        durable: false,
    };
    assert!(
        stores
            .requests
            .remember(&nonce(APP_A, 1, at(300)))
            .await
            .unwrap()
    );
    assert!(
        !stores
            .requests
            .remember(&nonce(APP_A, 1, at(300)))
            .await
            .unwrap()
    );
    assert!(
        stores
            .requests
            .remember(&nonce(APP_B, 1, at(300)))
            .await
            .unwrap()
    );
    // Durably recorded requests (those that change something) are accepted once too,
    // and forgotten after their window like the others.
    let durable = RequestNonce {
        durable: true,
        ..nonce(APP_A, 9, at(300))
    };
    assert!(stores.requests.remember(&durable).await.unwrap());
    assert!(!stores.requests.remember(&durable).await.unwrap());

    // The create path records its nonce in its own step.
    let r = request(1, false);
    let mut q = reuse_query(APP_A, &r, t0(), 1);
    q.nonce = Some(nonce(APP_A, 2, at(300)));
    assert_eq!(
        store.reuse_or_claim(&q).await.unwrap(),
        ReuseOutcome::Claimed
    );
    let mut again = reuse_query(APP_A, &r, at(40), 2);
    again.nonce = Some(nonce(APP_A, 2, at(300)));
    assert_eq!(
        store.reuse_or_claim(&again).await.unwrap(),
        ReuseOutcome::Replayed
    );
    // ...which claimed nothing: the first claim is still the slot's.
    store
        .fulfil(APP_A, claim(1), new_session(APP_A, sid(1), &r, t0()))
        .await
        .unwrap();
    // A replayed reuse upgrades no flag.
    let mut upgrade = reuse_query(APP_A, &request(1, true), at(2), 3);
    upgrade.nonce = Some(nonce(APP_A, 1, at(300)));
    assert_eq!(
        store.reuse_or_claim(&upgrade).await.unwrap(),
        ReuseOutcome::Replayed
    );
    let s = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert!(!s.session.force_verify_ownership());
    // Recorded by the create path, refused by the other one too.
    assert!(
        !stores
            .requests
            .remember(&nonce(APP_A, 2, at(300)))
            .await
            .unwrap()
    );

    // Forgetting: only what expired before the cutoff, durable or not.
    assert!(
        stores
            .requests
            .remember(&nonce(APP_A, 3, at(100)))
            .await
            .unwrap()
    );
    let durable_old = RequestNonce {
        durable: true,
        ..nonce(APP_A, 4, at(100))
    };
    assert!(stores.requests.remember(&durable_old).await.unwrap());
    assert_eq!(stores.requests.forget_before(at(200)).await.unwrap(), 2);
    assert!(stores.requests.remember(&durable_old).await.unwrap());
    assert!(
        stores
            .requests
            .remember(&nonce(APP_A, 3, at(100)))
            .await
            .unwrap()
    );
    assert!(
        !stores
            .requests
            .remember(&nonce(APP_A, 1, at(300)))
            .await
            .unwrap()
    );
}
