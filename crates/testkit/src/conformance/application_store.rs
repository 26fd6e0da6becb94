//! [`ports::ApplicationStore`]: partner applications and their credentials.
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

fn secret(n: u8) -> EncryptedSecret {
    EncryptedSecret {
        key_id: "k1".into(),
        sealed: vec![n; 40],
    }
}

fn new_app(n: u128, name: &str, key: &str) -> NewApplication {
    NewApplication {
        id: ApplicationId::from_uuid(Uuid::from_u128(n)),
        name: name.into(),
        api_key: ApiKeyDigest::of(key),
        secret: secret(n as u8),
        settings: ApplicationSettings::default(),
        now: t0(),
    }
}

/// Created applications are found by API key and by name, active.
pub async fn create_and_find(stores: Stores) {
    let store = stores.applications.clone();
    let app = store.create(new_app(1, "alpha", "key-1")).await.unwrap();
    assert_eq!(app.status, ApplicationStatus::Active);
    assert_eq!((app.created_at, app.rotated_at), (t0(), t0()));
    let by_key = store
        .find_by_api_key(&ApiKeyDigest::of("key-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_key.application, app);
    assert_eq!(by_key.secret, secret(1));
    let by_name = store.find_by_name("alpha").await.unwrap().unwrap();
    assert_eq!(by_name.application.id, app.id);
    assert!(
        store
            .find_by_api_key(&ApiKeyDigest::of("key-2"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.find_by_name("beta").await.unwrap().is_none());
}

/// Names and API keys are unique.
pub async fn names_and_keys_are_unique(stores: Stores) {
    let store = stores.applications.clone();
    store.create(new_app(1, "alpha", "key-1")).await.unwrap();
    assert_eq!(
        store.create(new_app(2, "alpha", "key-2")).await,
        Err(ApplicationError::NameTaken("alpha".into()))
    );
    assert_eq!(
        store.create(new_app(3, "beta", "key-1")).await,
        Err(ApplicationError::ApiKeyTaken)
    );
}

/// Rotation replaces key and secret at once.
pub async fn rotate_replaces_the_credentials(stores: Stores) {
    let store = stores.applications.clone();
    let a = store.create(new_app(1, "alpha", "key-1")).await.unwrap();
    store.create(new_app(2, "beta", "key-2")).await.unwrap();
    let rotated = store
        .rotate(a.id, ApiKeyDigest::of("key-1b"), secret(9), at(60))
        .await
        .unwrap();
    assert_eq!(rotated.rotated_at, at(60));
    assert!(
        store
            .find_by_api_key(&ApiKeyDigest::of("key-1"))
            .await
            .unwrap()
            .is_none()
    );
    let found = store
        .find_by_api_key(&ApiKeyDigest::of("key-1b"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.secret, secret(9));
    assert_eq!(
        store
            .rotate(a.id, ApiKeyDigest::of("key-2"), secret(9), at(61))
            .await,
        Err(ApplicationError::ApiKeyTaken)
    );
    let missing = ApplicationId::from_uuid(Uuid::from_u128(99));
    assert_eq!(
        store
            .rotate(missing, ApiKeyDigest::of("x"), secret(1), at(61))
            .await,
        Err(ApplicationError::NotFound)
    );
}

/// Status changes are stored.
pub async fn disable_and_enable(stores: Stores) {
    let store = stores.applications.clone();
    let a = store.create(new_app(1, "alpha", "key-1")).await.unwrap();
    let d = store
        .set_status(a.id, ApplicationStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(d.status, ApplicationStatus::Disabled);
    let found = store
        .find_by_api_key(&ApiKeyDigest::of("key-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.application.status, ApplicationStatus::Disabled);
    let e = store
        .set_status(a.id, ApplicationStatus::Active)
        .await
        .unwrap();
    assert_eq!(e.status, ApplicationStatus::Active);
    let missing = ApplicationId::from_uuid(Uuid::from_u128(99));
    assert_eq!(
        store.set_status(missing, ApplicationStatus::Active).await,
        Err(ApplicationError::NotFound)
    );
}

/// Listing is ordered by name.
pub async fn list_is_by_name(stores: Stores) {
    let store = stores.applications.clone();
    store.create(new_app(1, "zeta", "k1")).await.unwrap();
    store.create(new_app(2, "alpha", "k2")).await.unwrap();
    store.create(new_app(3, "mu", "k3")).await.unwrap();
    let names: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, vec!["alpha", "mu", "zeta"]);
}
