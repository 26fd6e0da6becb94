//! The gateway against the Transak emulator over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ports::{AccessTokenStore, GatewayError, SystemClock, WidgetGateway};
use support::{API_KEY, API_SECRET, MemoryTokenStore, account, config_builder, on_chain_request};
use transak::{Environment, TransakGateway};
use transak_emulator::{Emulator, EmulatorConfig, FaultsUpdate, INVALID_SESSION_TEXT};

async fn emulator() -> Emulator {
    transak_emulator::spawn(EmulatorConfig::new(API_KEY, API_SECRET))
        .await
        .unwrap()
}

fn gateway(emulator: &Emulator, store: &Arc<MemoryTokenStore>) -> TransakGateway {
    let config = config_builder(Environment::Emulator, &emulator.base_url())
        .extra_widget_param("productsAvailed", "SELL")
        .build()
        .unwrap();
    TransakGateway::new(
        config,
        Arc::clone(store) as Arc<dyn AccessTokenStore>,
        Arc::new(SystemClock),
    )
    .unwrap()
}

#[tokio::test]
async fn a_minted_widget_url_opens_once() {
    let emulator = emulator().await;
    let store = Arc::new(MemoryTokenStore::default());
    let gateway = gateway(&emulator, &store);
    gateway.check_credentials().await.unwrap();

    let request = on_chain_request();
    let url = gateway.create_widget_url(&request).await.unwrap();
    assert!(url.expose().starts_with(&emulator.widget_base_url()));
    assert!(url.to_string().contains("sessionId=<redacted>"));

    // What the emulator received is what we built.
    let sessions = emulator.sessions();
    assert_eq!(sessions.len(), 1);
    let params = &sessions[0].widget_params;
    assert_eq!(params["apiKey"], API_KEY);
    assert_eq!(params["network"], "ethereum");
    assert_eq!(params["cryptoCurrencyCode"], "USDC");
    assert_eq!(params["partnerOrderId"], request.session_id.to_string());
    assert_eq!(
        params["partnerCustomerId"],
        request.subject.id().to_string()
    );
    assert_eq!(params["productsAvailed"], "SELL");

    // The browser opens it once; a reopen is refused.
    let client = reqwest::Client::new();
    let first = client.get(url.expose()).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = client.get(url.expose()).send().await.unwrap();
    assert_eq!(second.status(), 410);
    assert!(second.text().await.unwrap().contains(INVALID_SESSION_TEXT));

    let stats = emulator.stats();
    assert_eq!(stats.refreshes, 1);
    assert_eq!(stats.sessions_minted, 1);
    assert_eq!(stats.unauthorized, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_a_store_refresh_once() {
    let emulator = emulator().await;
    let store = Arc::new(MemoryTokenStore::default());
    let a = Arc::new(gateway(&emulator, &store));
    let b = Arc::new(gateway(&emulator, &store));

    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let gateway = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tokio::spawn(async move { gateway.create_widget_url(&on_chain_request()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let stats = emulator.stats();
    assert_eq!(stats.refreshes, 1, "{stats:?}");
    assert_eq!(stats.sessions_minted, 40);
    assert_eq!(
        stats.unauthorized, 0,
        "nobody used an invalidated token: {stats:?}"
    );
    assert_eq!(store.stored(&account()).unwrap().1, 1);
}

#[tokio::test]
async fn a_token_revoked_upstream_is_refreshed_once_then_minting_succeeds() {
    let emulator = emulator().await;
    let store = Arc::new(MemoryTokenStore::default());
    let gateway = gateway(&emulator, &store);
    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    assert_eq!(emulator.stats().refreshes, 1);

    emulator.revoke_token();
    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();

    let stats = emulator.stats();
    assert_eq!(stats.refreshes, 2, "{stats:?}");
    assert_eq!(stats.unauthorized, 1, "{stats:?}");
    assert_eq!(stats.sessions_minted, 2);
    assert_eq!(store.stored(&account()).unwrap().1, 2);
}

#[tokio::test]
async fn a_token_refreshed_by_another_instance_is_reread_not_refreshed_again() {
    let emulator = emulator().await;
    let store = Arc::new(MemoryTokenStore::default());
    let a = gateway(&emulator, &store);
    let b = gateway(&emulator, &store);

    // A obtains token v1 and keeps it in memory.
    a.create_widget_url(&on_chain_request()).await.unwrap();
    // The token stops working; B notices first and refreshes (v2), which also invalidates
    // the v1 that A still holds.
    emulator.revoke_token();
    b.create_widget_url(&on_chain_request()).await.unwrap();
    assert_eq!(emulator.stats().refreshes, 2);
    let (token_v2, version) = store.stored(&account()).unwrap();
    assert_eq!(version, 2);

    // A's v1 is refused; A re-reads v2 from the store instead of refreshing a third time.
    a.create_widget_url(&on_chain_request()).await.unwrap();
    let stats = emulator.stats();
    assert_eq!(stats.refreshes, 2, "{stats:?}");
    assert_eq!(stats.sessions_minted, 3);
    assert_eq!(emulator.current_access_token(), Some(token_v2));
}

#[tokio::test]
async fn injected_failures_are_retried_and_hangs_time_out() {
    let emulator = emulator().await;
    let store = Arc::new(MemoryTokenStore::default());
    let gateway = gateway(&emulator, &store);
    gateway.check_credentials().await.unwrap();

    emulator
        .set_faults(FaultsUpdate {
            fail_next: Some(2),
            fail_status: Some(503),
            ..Default::default()
        })
        .unwrap();
    gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap();
    assert_eq!(emulator.stats().injected_failures, 2);

    emulator
        .set_faults(FaultsUpdate {
            hang_next: Some(3),
            ..Default::default()
        })
        .unwrap();
    let started = std::time::Instant::now();
    let err = gateway
        .create_widget_url(&on_chain_request())
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Unavailable { .. }), "{err:?}");
    // 3 attempts of 500 ms plus a little backoff, far below the emulator's hang.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(emulator.stats().injected_hangs, 3);
}

#[tokio::test]
async fn a_wrong_secret_is_reported_as_refused_credentials() {
    let emulator = transak_emulator::spawn(EmulatorConfig::new(API_KEY, "another-secret"))
        .await
        .unwrap();
    let store = Arc::new(MemoryTokenStore::default());
    let gateway = gateway(&emulator, &store);
    let err = gateway.check_credentials().await.unwrap_err();
    let GatewayError::Rejected { status, message } = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(*status, 401);
    assert!(message.contains("partner credentials"), "{message}");
    assert!(!message.contains(API_SECRET));
    assert_eq!(store.stored(&account()), None);
}
