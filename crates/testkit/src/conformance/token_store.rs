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

/// The tokens sealed at rest are listed, current and previous (with when it was replaced);
/// each is resealed or forgotten only while it is still the one read, and the version goes
/// on. A store that keeps tokens only in its own process memory seals nothing: it lists
/// nothing, and reseals or forgets nothing.
pub async fn sealed_tokens_are_resealed_and_forgotten_by_compare_and_swap(stores: Stores) {
    let store = stores.tokens.clone();
    for (n, token) in [(1u128, "t1"), (2, "t2")] {
        let now = at(i64::try_from(n).unwrap() * 100);
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(n), now, now + TimeDelta::seconds(30))
                .await
                .unwrap()
        );
        store
            .save_refreshed(ACCOUNT, holder(n), SecretString::from(token), at(1000), now)
            .await
            .unwrap();
    }
    let listed = store.sealed_tokens().await.unwrap();
    let anything = EncryptedSecret {
        key_id: "k2-other".into(),
        sealed: vec![7; 40],
    };
    if listed.is_empty() {
        for slot in [TokenSlot::Current, TokenSlot::Previous] {
            assert!(
                !store
                    .reseal_token(ACCOUNT, slot, &anything, anything.clone())
                    .await
                    .unwrap()
            );
            assert!(!store.forget_token(ACCOUNT, slot, &anything).await.unwrap());
        }
        let current = store.current(ACCOUNT).await.unwrap().unwrap();
        assert_eq!(current.token.expose_secret(), "t2");
        return;
    }
    let slots: Vec<_> = listed
        .iter()
        .map(|t| (t.account.as_str(), t.slot, t.replaced_at))
        .collect();
    assert_eq!(
        slots,
        vec![
            (ACCOUNT, TokenSlot::Current, None),
            (ACCOUNT, TokenSlot::Previous, Some(at(200))),
        ]
    );
    let (current, previous) = (listed[0].token.clone(), listed[1].token.clone());

    // Resealing writes the slot it names, from the value read only: putting the previous
    // token's sealed bytes (same purpose, so they open) in the current slot makes it current.
    assert!(
        !store
            .reseal_token(ACCOUNT, TokenSlot::Current, &anything, previous.clone())
            .await
            .unwrap()
    );
    assert!(
        !store
            .reseal_token(
                "another:account",
                TokenSlot::Current,
                &current,
                previous.clone()
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .reseal_token(ACCOUNT, TokenSlot::Current, &current, previous.clone())
            .await
            .unwrap()
    );
    let now = store.current(ACCOUNT).await.unwrap().unwrap();
    assert_eq!(now.token.expose_secret(), "t1");
    assert_eq!((now.version, now.expires_at), (2, at(1000)));
    assert!(
        store
            .reseal_token(ACCOUNT, TokenSlot::Current, &previous, current.clone())
            .await
            .unwrap()
    );
    assert!(
        store
            .reseal_token(ACCOUNT, TokenSlot::Previous, &previous, previous.clone())
            .await
            .unwrap()
    );

    // Forgetting the previous token keeps the current one; forgetting the current one
    // forgets both, and the next save goes on from the version.
    assert!(
        !store
            .forget_token(ACCOUNT, TokenSlot::Previous, &anything)
            .await
            .unwrap()
    );
    assert!(
        store
            .forget_token(ACCOUNT, TokenSlot::Previous, &previous)
            .await
            .unwrap()
    );
    let now = store.current(ACCOUNT).await.unwrap().unwrap();
    assert_eq!(now.token.expose_secret(), "t2");
    assert!(now.previous.is_none());
    assert!(
        store
            .forget_token(ACCOUNT, TokenSlot::Current, &current)
            .await
            .unwrap()
    );
    assert!(store.current(ACCOUNT).await.unwrap().is_none());
    assert!(store.sealed_tokens().await.unwrap().is_empty());
    assert!(
        store
            .try_lease_refresh(ACCOUNT, holder(3), at(300), at(330))
            .await
            .unwrap()
    );
    let saved = store
        .save_refreshed(
            ACCOUNT,
            holder(3),
            SecretString::from("t3"),
            at(1000),
            at(300),
        )
        .await
        .unwrap();
    assert_eq!(saved.version, 3);
    assert!(saved.previous.is_none());
}
