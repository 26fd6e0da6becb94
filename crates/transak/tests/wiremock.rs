//! The gateway against a scripted upstream (wiremock): odd answers, retries, timeouts and the
//! access-token protocol.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use ports::{
    AccessTokenStore, Clock, GatewayError, MockAccessTokenStore, StoreError, SystemClock,
    WidgetGateway,
};
use serde_json::json;
use support::{
    API_KEY, API_SECRET, MemoryTokenStore, TestClock, account, config_builder, lightning_request,
    on_chain_request, unix_in_days,
};
use transak::{Environment, TransakConfigBuilder, TransakGateway};
use uuid::Uuid;
use wiremock::matchers::{body_json, body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CREATE: &str = "/api/v2/auth/session";
const REFRESH: &str = "/partners/api/v2/refresh-token";
const UPSTREAM_SESSION: &str = "upstream-session-id-s3cr3t";

fn widget_url() -> String {
    format!("https://global-stg.transak.com/?apiKey={API_KEY}&sessionId={UPSTREAM_SESSION}")
}

fn minted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": {"widgetUrl": widget_url(), "somethingNew": {"nested": true}},
        "meta": "ignored"
    }))
}

fn refreshed(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": {"accessToken": token, "expiresAt": unix_in_days(7), "extra": 1}
    }))
}

struct Setup {
    server: MockServer,
    store: Arc<MemoryTokenStore>,
    gateway: TransakGateway,
}

/// A gateway against a fresh mock server, with a fresh token `tok-1` (version 1) stored.
async fn setup() -> Setup {
    setup_with(|b| b, true).await
}

async fn setup_with(
    configure: impl FnOnce(TransakConfigBuilder) -> TransakConfigBuilder,
    seeded: bool,
) -> Setup {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryTokenStore::default());
    if seeded {
        store.seed(&account(), "tok-1", Utc::now() + TimeDelta::days(7));
    }
    let config = configure(config_builder(Environment::Emulator, &server.uri()))
        .build()
        .unwrap();
    let gateway = TransakGateway::new(
        config,
        Arc::clone(&store) as Arc<dyn AccessTokenStore>,
        Arc::new(SystemClock),
    )
    .unwrap();
    Setup {
        server,
        store,
        gateway,
    }
}

async fn count(server: &MockServer, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

#[tokio::test]
async fn mints_with_the_stored_token_and_the_documented_request() {
    let s = setup().await;
    let request = on_chain_request();
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"widgetParams": {
            "apiKey": API_KEY,
            "referrerDomain": "partner.example.com",
            "cryptoCurrencyCode": "USDC",
            "network": "ethereum",
            "walletAddress": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "partnerOrderId": request.session_id.to_string(),
            "partnerCustomerId": request.subject.id().to_string(),
        }})))
        .respond_with(minted())
        .expect(1)
        .mount(&s.server)
        .await;

    let url = s.gateway.create_widget_url(&request).await.unwrap();
    assert_eq!(url.expose(), widget_url());
    assert!(!url.to_string().contains(UPSTREAM_SESSION));
    assert_eq!(count(&s.server, REFRESH).await, 0);
}

#[tokio::test]
async fn lightning_goes_out_without_a_wallet_address() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(body_partial_json(json!({"widgetParams": {
            "cryptoCurrencyCode": "BTC", "network": "lightning"
        }})))
        .respond_with(minted())
        .mount(&s.server)
        .await;
    s.gateway
        .create_widget_url(&lightning_request())
        .await
        .unwrap();
    let requests = s.server.received_requests().await.unwrap();
    let body: serde_json::Value = requests[0].body_json().unwrap();
    assert!(
        body["widgetParams"].get("walletAddress").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn a_500_then_success_is_retried() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(minted())
        .mount(&s.server)
        .await;

    let url = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    assert_eq!(url.expose(), widget_url());
    assert_eq!(count(&s.server, CREATE).await, 2);
}

#[tokio::test]
async fn a_persistent_500_is_unavailable_after_every_attempt() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(500))
        .mount(&s.server)
        .await;

    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Unavailable {
        retry_after,
        reason,
    } = err
    else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(retry_after, Duration::from_secs(5));
    assert!(
        reason.contains("500") && reason.contains("3 attempts"),
        "{reason}"
    );
    // max_retries (2) + 1 attempts, no more.
    assert_eq!(count(&s.server, CREATE).await, 3);
}

#[tokio::test]
async fn retries_can_be_turned_off() {
    let s = setup_with(|b| b.max_retries(0), true).await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(502))
        .mount(&s.server)
        .await;
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Unavailable { .. }), "{err:?}");
    assert_eq!(count(&s.server, CREATE).await, 1);
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_unavailable() {
    let s = setup_with(
        |b| b.request_timeout(Duration::from_millis(200)).max_retries(1),
        true,
    )
    .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(minted().set_delay(Duration::from_secs(3)))
        .mount(&s.server)
        .await;

    let started = Instant::now();
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let GatewayError::Unavailable { reason, .. } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(reason.contains("no answer within 200ms"), "{reason}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(count(&s.server, CREATE).await, 2);
}

#[tokio::test]
async fn malformed_json_is_unexpected_and_not_retried() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"data\": {\"widgetUrl\": "))
        .mount(&s.server)
        .await;
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Unexpected(message) = &err else {
        panic!("expected Unexpected, got {err:?}");
    };
    assert!(message.contains("create widget URL"), "{message}");
    assert_eq!(count(&s.server, CREATE).await, 1);
}

#[tokio::test]
async fn a_success_without_a_widget_url_is_unexpected() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"url": format!("x?sessionId={UPSTREAM_SESSION}")}})),
        )
        .mount(&s.server)
        .await;
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Unexpected(_)), "{err:?}");
    assert!(!err.to_string().contains(UPSTREAM_SESSION));
}

#[tokio::test]
async fn a_400_is_rejected_with_transaks_message() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"statusCode": 400, "name": "BadRequestError",
                      "message": "Invalid wallet address for network ethereum"}
        })))
        .mount(&s.server)
        .await;
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        GatewayError::Rejected {
            status: 400,
            message: "Invalid wallet address for network ethereum".into()
        }
    );
    assert_eq!(count(&s.server, CREATE).await, 1, "4xx is never retried");
}

#[tokio::test]
async fn a_4xx_without_a_message_falls_back_to_the_status_text() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>nope</html>"))
        .mount(&s.server)
        .await;
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        GatewayError::Rejected {
            status: 404,
            message: "Not Found".into()
        }
    );
}

#[tokio::test]
async fn a_503_with_retry_after_is_unavailable_for_that_long() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "30"))
        .mount(&s.server)
        .await;
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Unavailable { retry_after, .. } = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(retry_after, Duration::from_secs(30));
    // Asked to wait 30 s, the gateway does not hammer the upstream within the call.
    assert_eq!(count(&s.server, CREATE).await, 1);
}

#[tokio::test]
async fn a_503_with_a_short_retry_after_is_retried() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(minted())
        .mount(&s.server)
        .await;
    s.gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    assert_eq!(count(&s.server, CREATE).await, 2);
}

#[tokio::test]
async fn a_429_is_unavailable_not_rejected() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "12"))
        .mount(&s.server)
        .await;
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Unavailable { retry_after, .. } = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(retry_after, Duration::from_secs(12));
    assert_eq!(count(&s.server, CREATE).await, 1);
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    // Bind a port and free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Arc::new(MemoryTokenStore::default());
    store.seed(&account(), "tok-1", Utc::now() + TimeDelta::days(7));
    let config = config_builder(Environment::Emulator, &format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let gateway = TransakGateway::new(config, store, Arc::new(SystemClock)).unwrap();
    let err = gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Unavailable { reason, .. } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(reason.contains("could not connect"), "{reason}");
    assert!(
        !reason.contains("127.0.0.1"),
        "no URL in the reason: {reason}"
    );
}

#[tokio::test]
async fn first_token_is_refreshed_and_expires_at_in_milliseconds_is_understood() {
    let s = setup_with(|b| b, false).await;
    let expires_ms = (Utc::now() + TimeDelta::days(7)).timestamp_millis();
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .and(header("api-secret", API_SECRET))
        .and(body_json(json!({"apiKey": API_KEY})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"accessToken": "tok-ms", "expiresAt": expires_ms}
        })))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-ms"))
        .respond_with(minted())
        .expect(3)
        .mount(&s.server)
        .await;

    for _ in 0..3 {
        s.gateway
            .create_widget_url(&on_chain_request())
            .await
            .unwrap();
    }
    // Read as milliseconds, the token is fresh: one refresh for all three mints. (Read as
    // seconds it would lie in the year 50 000+, and a second-based misread of a fresh token
    // would also not refresh — so check the stored expiry too.)
    let stored = s.store.current(&account()).await.unwrap().unwrap();
    assert_eq!(stored.expires_at.timestamp_millis(), expires_ms);
    assert_eq!(stored.version, 1);
}

#[tokio::test]
async fn the_hot_path_does_not_read_the_store() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(minted())
        .mount(&s.server)
        .await;
    for _ in 0..5 {
        s.gateway
            .create_widget_url(&on_chain_request())
            .await
            .unwrap();
    }
    assert_eq!(s.store.reads(), 1, "only the first mint reads the store");
}

#[tokio::test]
async fn a_401_triggers_exactly_one_refresh_and_one_retry() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Invalid token"})))
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-2"))
        .respond_with(minted())
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .and(header("api-secret", API_SECRET))
        .respond_with(refreshed("tok-2"))
        .mount(&s.server)
        .await;

    let url = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    assert_eq!(url.expose(), widget_url());
    assert_eq!(count(&s.server, REFRESH).await, 1);
    assert_eq!(count(&s.server, CREATE).await, 2);
    assert_eq!(s.store.stored(&account()), Some(("tok-2".into(), 2)));
    assert_eq!(
        s.store.lease_holder(&account()),
        None,
        "lease released by the save"
    );
}

#[tokio::test]
async fn a_second_401_is_rejected_after_still_only_one_refresh() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "Access token is invalid"}})),
        )
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("tok-2"))
        .mount(&s.server)
        .await;

    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Rejected { status, message } = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(*status, 401);
    assert!(message.contains("Access token is invalid"), "{message}");
    assert_eq!(count(&s.server, REFRESH).await, 1);
    assert_eq!(count(&s.server, CREATE).await, 2);
}

#[tokio::test]
async fn a_401_with_a_newer_stored_token_rereads_instead_of_refreshing() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-1"))
        .respond_with(minted())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-2"))
        .respond_with(minted())
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("must-not-be-used"))
        .mount(&s.server)
        .await;

    // The gateway caches tok-1.
    s.gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    // Another instance refreshes (tok-1 is now invalid upstream).
    s.store
        .seed(&account(), "tok-2", Utc::now() + TimeDelta::days(7));

    s.gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    assert_eq!(count(&s.server, REFRESH).await, 0);
    assert_eq!(count(&s.server, CREATE).await, 3);
    assert_eq!(s.store.stored(&account()), Some(("tok-2".into(), 2)));
}

#[tokio::test]
async fn refused_credentials_are_rejected_and_the_lease_released() {
    let s = setup_with(|b| b, false).await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "Invalid API secret"}})),
        )
        .mount(&s.server)
        .await;

    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Rejected { status, message } = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(*status, 401);
    assert!(message.contains("partner credentials"), "{message}");
    assert!(message.contains("Invalid API secret"), "{message}");
    assert!(!message.contains(API_SECRET));
    assert_eq!(s.store.lease_holder(&account()), None, "lease released");
    assert_eq!(s.store.releases.load(Ordering::SeqCst), 1);
    assert_eq!(count(&s.server, CREATE).await, 0);

    // The failure is reported without the upstream's words...
    assert_eq!(
        s.gateway.status(),
        ports::UpstreamStatus::Failing {
            reason: "Transak refused this service's partner credentials".into()
        }
    );
    // ...and refreshing backs off: the next attempt fails at once, without calling upstream.
    let refreshes = count(&s.server, REFRESH).await;
    let again = s.gateway.check_credentials().await.unwrap_err();
    assert!(
        matches!(again, GatewayError::Unavailable { .. }),
        "{again:?}"
    );
    assert_eq!(count(&s.server, REFRESH).await, refreshes);
}

#[tokio::test]
async fn a_refresh_outage_with_no_token_is_unavailable() {
    let s = setup_with(|b| b, false).await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(ResponseTemplate::new(502))
        .mount(&s.server)
        .await;
    let err = s.gateway.check_credentials().await.unwrap_err();
    assert!(matches!(err, GatewayError::Unavailable { .. }), "{err:?}");
    assert_eq!(count(&s.server, REFRESH).await, 3);
    assert_eq!(s.store.lease_holder(&account()), None);
}

#[tokio::test]
async fn a_malformed_refresh_answer_is_unexpected_and_leaks_nothing() {
    let s = setup_with(|b| b, false).await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"accessToken": "tok-leaky", "expiresAt": "whenever"}
        })))
        .mount(&s.server)
        .await;
    let err = s.gateway.check_credentials().await.unwrap_err();
    assert!(matches!(err, GatewayError::Unexpected(_)), "{err:?}");
    assert!(!err.to_string().contains("tok-leaky"), "{err}");
    assert_eq!(s.store.lease_holder(&account()), None);
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_proactively() {
    let server = MockServer::start().await;
    let clock = Arc::new(TestClock::new());
    let store = Arc::new(MemoryTokenStore::default());
    store.seed(&account(), "tok-1", clock.now() + TimeDelta::hours(1));
    let gateway = TransakGateway::new(
        config_builder(Environment::Emulator, &server.uri())
            .build()
            .unwrap(),
        Arc::clone(&store) as Arc<dyn AccessTokenStore>,
        Arc::clone(&clock) as Arc<dyn Clock>,
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("tok-2"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(minted())
        .mount(&server)
        .await;

    gateway.check_credentials().await.unwrap();
    assert_eq!(count(&server, REFRESH).await, 0, "an hour left: fresh");

    clock.advance(Duration::from_secs(55 * 60)); // 5 minutes left < 10-minute margin
    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    assert_eq!(count(&server, REFRESH).await, 1);
    let requests = server.received_requests().await.unwrap();
    let create = requests.iter().find(|r| r.url.path() == CREATE).unwrap();
    assert_eq!(create.headers.get("access-token").unwrap(), "tok-2");
}

#[tokio::test]
async fn a_failing_proactive_refresh_keeps_using_the_valid_token() {
    let server = MockServer::start().await;
    let clock = Arc::new(TestClock::new());
    let store = Arc::new(MemoryTokenStore::default());
    store.seed(&account(), "tok-1", clock.now() + TimeDelta::minutes(5));
    let gateway = TransakGateway::new(
        config_builder(Environment::Emulator, &server.uri())
            .build()
            .unwrap(),
        Arc::clone(&store) as Arc<dyn AccessTokenStore>,
        Arc::clone(&clock) as Arc<dyn Clock>,
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-1"))
        .respond_with(minted())
        .mount(&server)
        .await;

    for _ in 0..3 {
        gateway
            .create_widget_url(&on_chain_request())
            .await
            .unwrap();
    }
    // One failed refresh (3 attempts); the next mints wait out the pause instead of retrying.
    assert_eq!(count(&server, REFRESH).await, 3);
    assert_eq!(count(&server, CREATE).await, 3);
    assert_eq!(store.lease_holder(&account()), None);
}

#[tokio::test]
async fn waits_for_another_instance_holding_the_lease() {
    let server = MockServer::start().await;
    let clock = Arc::new(TestClock::new());
    let store = Arc::new(MemoryTokenStore::default());
    store.seed(&account(), "tok-1", clock.now() + TimeDelta::minutes(5));
    // Another instance is refreshing right now.
    store.hold_lease(
        &account(),
        Uuid::new_v4(),
        clock.now() + TimeDelta::seconds(3),
    );
    let gateway = TransakGateway::new(
        config_builder(Environment::Emulator, &server.uri())
            .build()
            .unwrap(),
        Arc::clone(&store) as Arc<dyn AccessTokenStore>,
        Arc::clone(&clock) as Arc<dyn Clock>,
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("must-not-be-used"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-2"))
        .respond_with(minted())
        .mount(&server)
        .await;

    let saver = {
        let store = Arc::clone(&store);
        let expires = clock.now() + TimeDelta::days(7);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            store.seed(&account(), "tok-2", expires);
        })
    };
    let started = Instant::now();
    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    saver.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        count(&server, REFRESH).await,
        0,
        "never refreshes under another's lease"
    );
}

#[tokio::test]
async fn an_abandoned_lease_is_taken_over_when_it_expires() {
    let s = setup_with(|b| b.refresh_lease(Duration::from_secs(2)), false).await;
    // A crashed instance's lease, expiring in 500 ms of real time (the gateway uses the
    // system clock here).
    s.store.hold_lease(
        &account(),
        Uuid::new_v4(),
        Utc::now() + TimeDelta::milliseconds(500),
    );
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("tok-1"))
        .mount(&s.server)
        .await;
    s.gateway.check_credentials().await.unwrap();
    assert_eq!(count(&s.server, REFRESH).await, 1);
    assert_eq!(s.store.stored(&account()), Some(("tok-1".into(), 1)));
}

#[tokio::test]
async fn a_lease_released_after_a_failed_refresh_is_taken_over_at_once() {
    let s = setup_with(|b| b.refresh_lease(Duration::from_secs(10)), false).await;
    let other = Uuid::new_v4();
    s.store
        .hold_lease(&account(), other, Utc::now() + TimeDelta::seconds(10));
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("tok-1"))
        .mount(&s.server)
        .await;
    let releaser = {
        let store = Arc::clone(&s.store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            store.release_refresh(&account(), other).await.unwrap();
        })
    };
    let started = Instant::now();
    s.gateway.check_credentials().await.unwrap();
    releaser.await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        "took {elapsed:?}"
    );
    assert_eq!(count(&s.server, REFRESH).await, 1);
}

#[tokio::test]
async fn a_store_outage_is_unavailable() {
    let server = MockServer::start().await;
    let mut store = MockAccessTokenStore::new();
    store
        .expect_current()
        .returning(|_| Err(StoreError::Unavailable("connection refused".into())));
    let gateway = TransakGateway::new(
        config_builder(Environment::Emulator, &server.uri())
            .build()
            .unwrap(),
        Arc::new(store),
        Arc::new(SystemClock),
    )
    .unwrap();
    let err = gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    let GatewayError::Unavailable { reason, .. } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(reason.contains("access-token store"), "{reason}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_broken_store_is_unexpected() {
    let server = MockServer::start().await;
    let mut store = MockAccessTokenStore::new();
    store.expect_current().returning(|_| Ok(None));
    store
        .expect_try_lease_refresh()
        .returning(|_, _, _, _| Err(StoreError::Unexpected("corrupt row".into())));
    let gateway = TransakGateway::new(
        config_builder(Environment::Emulator, &server.uri())
            .build()
            .unwrap(),
        Arc::new(store),
        Arc::new(SystemClock),
    )
    .unwrap();
    let err = gateway.check_credentials().await.unwrap_err();
    assert!(matches!(err, GatewayError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn concurrent_mints_in_one_instance_refresh_once() {
    let s = setup_with(|b| b, false).await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("tok-1").set_delay(Duration::from_millis(100)))
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(minted())
        .mount(&s.server)
        .await;
    let gateway = Arc::new(s.gateway);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let gateway = Arc::clone(&gateway);
            tokio::spawn(async move { gateway.create_widget_url(&on_chain_request()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(count(&s.server, REFRESH).await, 1);
    assert_eq!(count(&s.server, CREATE).await, 20);
}

/// A log sink for one test.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_or_debug() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = setup().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-secret-2"))
        .respond_with(minted())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("tok-secret-2"))
        .mount(&s.server)
        .await;

    let url = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    // The next mint is refused twice: a Rejected error.
    let err = s
        .gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("minted a Transak widget URL"), "{logs}");
    assert!(
        logs.contains("session_id="),
        "spans carry our session id: {logs}"
    );
    let visible = [
        logs.clone(),
        err.to_string(),
        format!("{err:?}"),
        format!("{url:?}"),
        url.to_string(),
        format!("{:?}", s.gateway),
    ];
    for text in visible {
        for secret in ["tok-1", "tok-secret-2", API_SECRET, UPSTREAM_SESSION] {
            assert!(!text.contains(secret), "{secret} leaked into: {text}");
        }
    }
}

/// Regression: between this instance's read ("no token") and its lease, another instance
/// saved a token and released its lease. Winning the lease must not refresh again (that would
/// invalidate the other instance's fresh token): re-read, release, use the stored token.
#[tokio::test]
async fn a_token_saved_between_the_read_and_the_lease_is_used_not_refreshed_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(header("access-token", "tok-from-other-instance"))
        .respond_with(minted())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .respond_with(refreshed("must-not-happen"))
        .expect(0)
        .mount(&server)
        .await;
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = reads.clone();
    let mut store = MockAccessTokenStore::new();
    store.expect_current().returning(move |_| {
        if r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Ok(None)
        } else {
            Ok(Some(ports::StoredAccessToken {
                token: secrecy::SecretString::from("tok-from-other-instance"),
                expires_at: chrono::Utc::now() + chrono::TimeDelta::days(7),
                version: 1,
                previous: None,
            }))
        }
    });
    store
        .expect_try_lease_refresh()
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    store.expect_save_refreshed().never();
    store
        .expect_release_refresh()
        .times(1)
        .returning(|_, _| Ok(()));
    let gateway = TransakGateway::new(
        config_builder(Environment::Emulator, &server.uri())
            .build()
            .unwrap(),
        Arc::new(store),
        Arc::new(SystemClock),
    )
    .unwrap();
    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
}

/// An order webhook body signed HS256 with `key`.
fn order_body(key: &str, event: &str) -> Vec<u8> {
    let claims = json!({"eventID": event,
        "webhookData": {"id": "ord-1", "status": "COMPLETED", "partnerOrderId": "x"}});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap();
    json!({ "data": jwt }).to_string().into_bytes()
}

/// Order webhooks verify with the stored token, read from the shared store (another
/// instance's refresh is seen at once), while forged ones cannot make the service read the
/// store more than about ten times a second, and bodies that are not HS256 tokens not at all.
#[tokio::test]
async fn order_webhooks_verify_with_the_shared_token_without_loading_the_store() {
    let s = setup().await;
    let event = s
        .gateway
        .verify_order_event(&order_body("tok-1", "ORDER_COMPLETED"))
        .await
        .unwrap();
    assert_eq!(
        (event.event_id.as_str(), event.order_id.as_str()),
        ("ORDER_COMPLETED", "ord-1")
    );
    let reads = s.store.reads();
    // Another instance refreshes (the helper dates the replacement long ago, past the old
    // token's grace): the new token verifies at once (a re-read), the old one no more.
    s.store
        .seed(&account(), "tok-2", Utc::now() + TimeDelta::days(7));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    s.gateway
        .verify_order_event(&order_body("tok-2", "ORDER_COMPLETED"))
        .await
        .unwrap();
    assert_eq!(
        s.gateway
            .verify_order_event(&order_body("tok-1", "ORDER_COMPLETED"))
            .await,
        Err(ports::OrderEventError::Unauthenticated)
    );
    // A flood of well-formed forgeries for a quarter of a second.
    let reads_before_flood = s.store.reads();
    let started = std::time::Instant::now();
    let mut forged = 0;
    while started.elapsed() < std::time::Duration::from_millis(250) {
        let verdict = s
            .gateway
            .verify_order_event(&order_body("guess", "ORDER_COMPLETED"))
            .await;
        assert_eq!(verdict, Err(ports::OrderEventError::Unauthenticated));
        forged += 1;
    }
    assert!(forged > 100, "{forged}");
    let flood_reads = s.store.reads() - reads_before_flood;
    assert!(
        flood_reads <= 4,
        "{flood_reads} store reads for {forged} forged events"
    );
    // Not even an HS256 token: no read at all.
    let now = s.store.reads();
    for body in [
        &b"{}"[..],
        br#"{"data":"a.b.c"}"#,
        br#"{"data":"eyJhbGciOiJub25lIn0.e30."}"#,
    ] {
        assert_eq!(
            s.gateway.verify_order_event(body).await,
            Err(ports::OrderEventError::Unauthenticated)
        );
    }
    assert_eq!(s.store.reads(), now);
    assert!(reads >= 1);
}
