//! What the suites share: endpoints, secrets, claims and order updates to test with.
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

pub(crate) fn endpoint(app: ApplicationId, n: u128, types: &[EventType]) -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookEndpointId::from_uuid(Uuid::from_u128(0xE000 + n)),
        application: app,
        url: WebhookUrl::parse(&format!("https://hooks.example.com/{n}"), false).unwrap(),
        event_types: types.to_vec(),
        created_at: t0() + TimeDelta::seconds(i64::try_from(n).unwrap_or(0)),
    }
}

pub(crate) fn sealed(n: u8) -> EncryptedSecret {
    EncryptedSecret {
        key_id: format!("k2-test{n}"),
        sealed: vec![n; 40],
    }
}

/// Registers `e`, creating its application first if the store has none by that id (an
/// endpoint belongs to an application).
pub(crate) async fn register(w: &Stores, e: &WebhookEndpoint) {
    ensure_application(w, e.application).await;
    w.endpoints.create(e, sealed(1), 10).await.unwrap();
}

/// Creates application `app` (named after its id) unless it exists: endpoints and order
/// events belong to applications.
pub(crate) async fn ensure_application(w: &Stores, app: ApplicationId) {
    let name = format!("conformance-{}", app.as_uuid());
    if w.applications.find_by_name(&name).await.unwrap().is_some() {
        return;
    }
    w.applications
        .create(NewApplication {
            id: app,
            name: name.clone(),
            api_key: ApiKeyDigest::of(&format!("conformance-key-{}", app.as_uuid())),
            secret: sealed(9),
            settings: ApplicationSettings::default(),
            now: t0(),
        })
        .await
        .unwrap_or_else(|e| panic!("cannot create application {name}: {e}"));
}

/// [`ensure_application`] for both applications of the fixtures.
pub(crate) async fn ensure_applications(w: &Stores) {
    ensure_application(w, APP_A).await;
    ensure_application(w, APP_B).await;
}

pub(crate) fn claim_query(now: DateTime<Utc>, owner: u128, limit: u32) -> ClaimQuery {
    ClaimQuery {
        now,
        owner: Uuid::from_u128(owner),
        lease_until: now + TimeDelta::seconds(30),
        limit,
        per_endpoint: 100,
        endpoint_in_flight: Vec::new(),
        per_application: 1000,
        application_in_flight: Vec::new(),
    }
}

pub(crate) async fn events_of(
    w: &Stores,
    app: ApplicationId,
    id: domain::SessionId,
) -> Vec<(EventType, Vec<WebhookEndpointId>)> {
    w.events
        .session_events(app, id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let mut targets: Vec<WebhookEndpointId> =
                r.deliveries.iter().map(|d| d.endpoint).collect();
            targets.sort();
            (r.event.kind, targets)
        })
        .collect()
}

pub(crate) fn order_update(
    order: &str,
    event: &str,
    status: &str,
    session: Option<domain::SessionId>,
    received: DateTime<Utc>,
) -> OrderUpdate {
    OrderUpdate {
        order_id: order.into(),
        event_id: event.into(),
        status: domain::OrderStatus::parse(status),
        partner_order_id: session.map(|s| s.to_string()),
        session,
        received_at: received,
        event: evt(),
    }
}
