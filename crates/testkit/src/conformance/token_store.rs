//! [`ports::AccessTokenStore`]: the one Transak access token all instances share.
#![allow(unused_imports)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, EventType, SessionStatus, Subject, ValidRequest, WebhookEndpointId, WebhookUrl,
};
use ports::*;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::fixtures::*;

use super::support::*;

const ACCOUNT: &str = "emulator:key";

fn holder(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Nothing is stored at first.
pub async fn no_token_at_first(stores: Stores) {
    let store = stores.tokens.clone();
    assert!(store.current(ACCOUNT).await.unwrap().is_none());
}

/// One holder at a time until the lease expires; the holder may renew.
pub async fn the_refresh_lease_is_exclusive_until_it_expires(stores: Stores) {
    let store = stores.tokens.clone();
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(1), t0(), at(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease_refresh(ACCOUNT, holder(2), at(29), at(59))
            .await
            .unwrap()
    );
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(1), at(29), at(59))
            .await
            .unwrap()
    );
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(2), at(59), at(89))
            .await
            .unwrap()
    );
    // The first holder lost it: saving fails and stores nothing.
    let late = store
        .save_refreshed(
            ACCOUNT,
            holder(1),
            SecretString::from("t1"),
            at(1000),
            at(1000 - 1),
        )
        .await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert!(store.current(ACCOUNT).await.unwrap().is_none());
}

/// 32 concurrent attempts: one holder.
pub async fn concurrent_lease_attempts_have_one_winner(stores: Stores) {
    let store = stores.tokens.clone();
    let mut tasks = Vec::new();
    for n in 0..32u128 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .try_lease_refresh(ACCOUNT, holder(n), t0(), at(30))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

/// Saving needs the lease, releases it, and versions go 1, 2, …
pub async fn saving_needs_the_lease_and_bumps_the_version(stores: Stores) {
    let store = stores.tokens.clone();
    let no_lease = store
        .save_refreshed(
            ACCOUNT,
            holder(1),
            SecretString::from("t0"),
            at(100),
            at(100 - 1),
        )
        .await;
    assert!(matches!(no_lease, Err(StoreError::Conflict(_))));
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(1), t0(), at(30))
            .await
            .unwrap()
    );
    let v1 = store
        .save_refreshed(
            ACCOUNT,
            holder(1),
            SecretString::from("t1"),
            at(1000),
            at(1000 - 1),
        )
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    // The lease was released by the save.
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(2), at(1), at(31))
            .await
            .unwrap()
    );
    let v2 = store
        .save_refreshed(
            ACCOUNT,
            holder(2),
            SecretString::from("t2"),
            at(2000),
            at(2000 - 1),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let current = store.current(ACCOUNT).await.unwrap().unwrap();
    assert_eq!(current.token.expose_secret(), "t2");
    assert_eq!((current.version, current.expires_at), (2, at(2000)));
    // The token it replaced is kept, with when it was replaced.
    let previous = current.previous.expect("the replaced token is kept");
    assert_eq!(previous.token.expose_secret(), "t1");
    assert_eq!(previous.replaced_at, at(1999));
    assert_eq!(
        v2.previous.map(|p| p.token.expose_secret().to_string()),
        Some("t1".into())
    );
    assert!(v1.previous.is_none(), "the first token replaced none");
}

/// Releasing frees the lease for others; releasing a lease one does not hold does nothing.
pub async fn release_frees_the_lease(stores: Stores) {
    let store = stores.tokens.clone();
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(1), t0(), at(30))
            .await
            .unwrap()
    );
    store.release_refresh(ACCOUNT, holder(2)).await.unwrap();
    assert!(
        !store
            .try_lease_refresh(ACCOUNT, holder(2), at(1), at(31))
            .await
            .unwrap()
    );
    store.release_refresh(ACCOUNT, holder(1)).await.unwrap();
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(2), at(1), at(31))
            .await
            .unwrap()
    );
}

/// Two upstream accounts never share a token or a lease.
pub async fn accounts_are_independent(stores: Stores) {
    let store = stores.tokens.clone();
    assert!(
        store
            .try_lease_refresh("a", holder(1), t0(), at(30))
            .await
            .unwrap()
    );
    assert!(
        store
            .try_lease_refresh("b", holder(2), t0(), at(30))
            .await
            .unwrap()
    );
    store
        .save_refreshed(
            "a",
            holder(1),
            SecretString::from("ta"),
            at(100),
            at(100 - 1),
        )
        .await
        .unwrap();
    assert!(store.current("b").await.unwrap().is_none());
}
