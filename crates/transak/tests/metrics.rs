//! The gateway's counters: `widget_sessions_upstream_calls_total{call, outcome}` once per logical call,
//! `widget_sessions_upstream_token_refreshes_total{outcome}` once per refresh by the lease holder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, Utc};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use ports::{AccessTokenStore, GatewayError, SystemClock, WidgetGateway};
use serde_json::json;
use support::{MemoryTokenStore, account, config_builder, on_chain_request, unix_in_days};
use transak::{Environment, TransakGateway};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CREATE: &str = "/api/v2/auth/session";
const REFRESH: &str = "/partners/api/v2/refresh-token";

/// A recorder keeping every counter, keyed `name{k=v,…}` with the labels sorted.
#[derive(Default)]
struct Counters(Mutex<HashMap<String, Arc<AtomicU64>>>);

fn id(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

impl Counters {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(&id(name, labels))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Every counter with a non-zero value.
    fn all(&self) -> HashMap<String, u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }

    fn calls(&self, call: &str, outcome: &str) -> u64 {
        self.get(
            "widget_sessions_upstream_calls_total",
            &[("call", call), ("outcome", outcome)],
        )
    }

    fn refreshes(&self, outcome: &str) -> u64 {
        self.get(
            "widget_sessions_upstream_token_refreshes_total",
            &[("outcome", outcome)],
        )
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let counter = Arc::clone(
            self.0
                .lock()
                .unwrap()
                .entry(id(key.name(), &labels))
                .or_default(),
        );
        Counter::from_arc(counter)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// A gateway against a fresh mock server; `seeded` stores a fresh token first.
async fn setup(seeded: bool) -> (MockServer, TransakGateway) {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryTokenStore::default());
    if seeded {
        store.seed(&account(), "tok-1", Utc::now() + TimeDelta::days(7));
    }
    let config = config_builder(Environment::Emulator, &server.uri())
        .build()
        .unwrap();
    let gateway = TransakGateway::new(
        config,
        store as Arc<dyn AccessTokenStore>,
        Arc::new(SystemClock),
    )
    .unwrap();
    (server, gateway)
}

fn minted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": {"widgetUrl": "https://global-stg.transak.com/?sessionId=s"}
    }))
}

fn refreshed() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": {"accessToken": "tok-new", "expiresAt": unix_in_days(7)}
    }))
}

async fn mount(server: &MockServer, p: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(p))
        .respond_with(response)
        .mount(server)
        .await;
}

// The tests run on tokio's current-thread runtime, so every metric the gateway records goes
// to the thread-local recorder.

#[tokio::test]
async fn a_mint_with_a_stored_token_is_one_ok_call_and_no_refresh() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let (server, gateway) = setup(true).await;
    mount(&server, CREATE, minted()).await;

    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();

    assert_eq!(
        counters.all(),
        HashMap::from([(
            id(
                "widget_sessions_upstream_calls_total",
                &[("call", "create_widget_url"), ("outcome", "ok")]
            ),
            1
        )])
    );
}

#[tokio::test]
async fn a_refresh_by_the_lease_holder_is_counted_once_as_a_call_and_a_refresh() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let (server, gateway) = setup(false).await;
    mount(&server, REFRESH, refreshed()).await;
    mount(&server, CREATE, minted()).await;

    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();

    assert_eq!(counters.calls("refresh_token", "ok"), 1);
    assert_eq!(counters.refreshes("ok"), 1);
    assert_eq!(counters.calls("create_widget_url", "ok"), 2);
    assert_eq!(counters.all().len(), 3, "{:?}", counters.all());
}

#[tokio::test]
async fn retries_inside_one_call_are_not_counted_again() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let (server, gateway) = setup(true).await;
    mount(&server, CREATE, ResponseTemplate::new(500)).await;

    let err = gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();

    assert!(matches!(err, GatewayError::Unavailable { .. }), "{err:?}");
    // Three attempts upstream, one call counted.
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_eq!(counters.calls("create_widget_url", "unavailable"), 1);
    assert_eq!(counters.all().len(), 1, "{:?}", counters.all());
}

#[tokio::test]
async fn a_401_and_its_retry_are_one_call_with_one_refresh() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let (server, gateway) = setup(true).await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount(&server, CREATE, minted()).await;
    mount(&server, REFRESH, refreshed()).await;

    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();

    assert_eq!(counters.calls("create_widget_url", "ok"), 1);
    assert_eq!(counters.calls("refresh_token", "ok"), 1);
    assert_eq!(counters.refreshes("ok"), 1);
    assert_eq!(counters.all().len(), 3, "{:?}", counters.all());
}

#[tokio::test]
async fn refused_credentials_count_a_rejected_call_and_a_failed_refresh() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let (server, gateway) = setup(false).await;
    mount(&server, REFRESH, ResponseTemplate::new(401)).await;

    let err = gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();

    assert!(matches!(err, GatewayError::Rejected { .. }), "{err:?}");
    assert_eq!(counters.calls("refresh_token", "rejected"), 1);
    assert_eq!(counters.refreshes("failed"), 1);
    assert_eq!(counters.calls("create_widget_url", "rejected"), 1);
    assert_eq!(counters.all().len(), 3, "{:?}", counters.all());
}

#[tokio::test]
async fn an_already_expired_token_is_a_failed_refresh() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let (server, gateway) = setup(false).await;
    let expired = ResponseTemplate::new(200).set_body_json(json!({
        "data": {"accessToken": "tok-old", "expiresAt": unix_in_days(-1)}
    }));
    mount(&server, REFRESH, expired).await;

    let err = gateway.check_credentials().await.unwrap_err();

    assert!(matches!(err, GatewayError::Unexpected(_)), "{err:?}");
    assert_eq!(counters.refreshes("failed"), 1);
    // The HTTP call itself answered with a well-formed token.
    assert_eq!(counters.calls("refresh_token", "ok"), 1);
    assert_eq!(counters.all().len(), 2, "{:?}", counters.all());
}
