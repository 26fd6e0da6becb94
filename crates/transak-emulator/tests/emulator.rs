//! The emulator over real HTTP: the partner-API contract, the widget page, the switches,
//! and the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use transak_emulator::{
    DEFAULT_API_KEY, DEFAULT_API_SECRET, Emulator, EmulatorConfig, FaultsUpdate,
    INVALID_SESSION_TEXT, spawn,
};

const SEVEN_DAYS: Duration = Duration::from_secs(7 * 24 * 60 * 60);

async fn start() -> (Emulator, Client) {
    let emulator = spawn(EmulatorConfig::default()).await.unwrap();
    (emulator, Client::new())
}

async fn refresh_with(client: &Client, base: &str, secret: &str, key: &str) -> reqwest::Response {
    client
        .post(format!("{base}/partners/api/v2/refresh-token"))
        .header("api-secret", secret)
        .json(&json!({ "apiKey": key }))
        .send()
        .await
        .unwrap()
}

/// Refreshes with the right credentials and returns the new access token.
async fn refresh(client: &Client, emulator: &Emulator) -> String {
    let response = refresh_with(
        client,
        &emulator.base_url(),
        DEFAULT_API_SECRET,
        DEFAULT_API_KEY,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"]["accessToken"].as_str().unwrap().to_owned()
}

fn widget_params(order: &str) -> Value {
    json!({
        "apiKey": DEFAULT_API_KEY,
        "referrerDomain": "widgets.example.com",
        "cryptoCurrencyCode": "BTC",
        "network": "lightning",
        "walletAddress": "bc1qexampleaddress",
        "partnerOrderId": order,
        "partnerCustomerId": "subject-1",
    })
}

async fn create_session(
    client: &Client,
    emulator: &Emulator,
    token: Option<&str>,
    params: Value,
) -> reqwest::Response {
    let mut request = client
        .post(format!("{}/api/v2/auth/session", emulator.base_url()))
        .json(&json!({ "widgetParams": params }));
    if let Some(token) = token {
        request = request.header("access-token", token);
    }
    request.send().await.unwrap()
}

/// Mints a session and returns its widget URL.
async fn widget_url(client: &Client, emulator: &Emulator, token: &str, order: &str) -> String {
    let response = create_session(client, emulator, Some(token), widget_params(order)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"]["widgetUrl"].as_str().unwrap().to_owned()
}

async fn error_message(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["message"].as_str().unwrap().to_owned()
}

async fn post_control(client: &Client, emulator: &Emulator, path: &str, body: Value) -> Value {
    let response = client
        .post(format!("{}/_emulator/{path}", emulator.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "POST /_emulator/{path}");
    response.json().await.unwrap()
}

async fn get_stats(client: &Client, base: &str) -> Value {
    client
        .get(format!("{base}/_emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_rejects_wrong_secret_and_wrong_key() {
    let (emulator, client) = start().await;
    let base = emulator.base_url();

    let wrong_secret = refresh_with(&client, &base, "nope", DEFAULT_API_KEY).await;
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong_secret.json().await.unwrap();
    assert_eq!(body["error"]["statusCode"], 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid")
    );

    let wrong_key = refresh_with(&client, &base, DEFAULT_API_SECRET, "other-key").await;
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);

    let no_secret = client
        .post(format!("{base}/partners/api/v2/refresh-token"))
        .json(&json!({ "apiKey": DEFAULT_API_KEY }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_secret.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(emulator.stats().refreshes, 0);
    assert_eq!(emulator.stats().refresh_calls, 3);
    assert_eq!(emulator.stats().unauthorized, 3);
}

#[tokio::test]
async fn refresh_returns_a_jwt_shaped_token_expiring_in_seven_days() {
    let (emulator, client) = start().await;
    let response = refresh_with(
        &client,
        &emulator.base_url(),
        DEFAULT_API_SECRET,
        DEFAULT_API_KEY,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let token = body["data"]["accessToken"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    assert!(token.split('.').all(|segment| !segment.is_empty()));
    let expires_at = body["data"]["expiresAt"].as_u64().unwrap();
    let expected = emulator.now_unix_secs() + SEVEN_DAYS.as_secs();
    assert!(
        expires_at.abs_diff(expected) <= 2,
        "{expires_at} vs {expected}"
    );
    assert_eq!(emulator.current_access_token().as_deref(), Some(token));
}

#[tokio::test]
async fn a_second_refresh_invalidates_the_first_token() {
    let (emulator, client) = start().await;
    let first = refresh(&client, &emulator).await;
    let second = refresh(&client, &emulator).await;
    assert_ne!(first, second);

    let with_first = create_session(&client, &emulator, Some(&first), widget_params("o1")).await;
    assert_eq!(with_first.status(), StatusCode::UNAUTHORIZED);
    let body: Value = with_first.json().await.unwrap();
    assert_eq!(body["error"]["statusCode"], 401);
    assert_eq!(body["error"]["message"], "Invalid or expired access token");

    let with_second = create_session(&client, &emulator, Some(&second), widget_params("o1")).await;
    assert_eq!(with_second.status(), StatusCode::OK);
    assert_eq!(emulator.stats().refreshes, 2);
}

#[tokio::test]
async fn session_without_or_with_garbage_token_is_401() {
    let (emulator, client) = start().await;
    let _ = refresh(&client, &emulator).await;
    let missing = create_session(&client, &emulator, None, widget_params("o1")).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let garbage = create_session(&client, &emulator, Some("a.b.c"), widget_params("o1")).await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(emulator.stats().sessions_minted, 0);
}

#[tokio::test]
async fn missing_mandatory_widget_params_are_400_with_a_message() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;

    let mut params = widget_params("o1");
    params.as_object_mut().unwrap().remove("referrerDomain");
    let response = create_session(&client, &emulator, Some(&token), params).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let message = error_message(response).await;
    assert!(message.contains("referrerDomain"), "{message}");

    let mut params = widget_params("o1");
    params["referrerDomain"] = json!("  ");
    params["apiKey"] = json!("someone-elses-key");
    let response = create_session(&client, &emulator, Some(&token), params).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let message = error_message(response).await;
    assert!(message.contains("referrerDomain"), "{message}");
    assert!(message.contains("apiKey"), "{message}");

    let mut params = widget_params("o1");
    params.as_object_mut().unwrap().remove("apiKey");
    let response = create_session(&client, &emulator, Some(&token), params).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_message(response).await.contains("apiKey"));

    let response = client
        .post(format!("{}/api/v2/auth/session", emulator.base_url()))
        .header("access-token", &token)
        .json(&json!({ "somethingElse": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_message(response).await.contains("widgetParams"));

    assert_eq!(emulator.stats().sessions_minted, 0);
}

#[tokio::test]
async fn session_returns_a_widget_url_on_the_emulator_and_records_the_params() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;
    let url = widget_url(&client, &emulator, &token, "order-42").await;

    let prefix = format!(
        "{}/?apiKey={DEFAULT_API_KEY}&sessionId=",
        emulator.base_url()
    );
    assert!(url.starts_with(&prefix), "{url}");
    let session_id = &url[prefix.len()..];
    assert!(!session_id.is_empty());

    let sessions = emulator.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_id, session_id);
    assert_eq!(
        Value::Object(sessions[0].widget_params.clone()),
        widget_params("order-42")
    );

    // The same list over HTTP, newest last.
    let second = widget_url(&client, &emulator, &token, "order-43").await;
    let listed: Value = client
        .get(format!("{}/_emulator/sessions", emulator.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["sessionId"], session_id);
    assert_eq!(listed[1]["widgetParams"]["partnerOrderId"], "order-43");
    assert!(second.ends_with(listed[1]["sessionId"].as_str().unwrap()));
    assert_ne!(listed[0]["sessionId"], listed[1]["sessionId"]);
}

#[tokio::test]
async fn widget_urls_use_the_public_base_url_when_configured() {
    let emulator = spawn(EmulatorConfig {
        public_base_url: Some("http://transak.local:9999/".into()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new();
    let token = refresh(&client, &emulator).await;
    let url = widget_url(&client, &emulator, &token, "o1").await;
    assert!(
        url.starts_with("http://transak.local:9999/?apiKey=emulator-api-key&sessionId="),
        "{url}"
    );
}

#[tokio::test]
async fn widget_page_opens_once_then_says_invalid_or_expired() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;
    let url = widget_url(&client, &emulator, &token, "order-7").await;

    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let content_type = first.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = first.text().await.unwrap();
    assert!(page.contains("Transak widget (emulator)"));
    for expected in ["BTC", "lightning", "bc1qexampleaddress", "order-7"] {
        assert!(page.contains(expected), "page lacks {expected}");
    }
    assert!(!page.contains(INVALID_SESSION_TEXT));

    let second = client.get(&url).send().await.unwrap();
    assert!(second.status().is_client_error(), "{}", second.status());
    assert!(
        second
            .text()
            .await
            .unwrap()
            .contains("Invalid or Expired Session")
    );

    let unknown = client
        .get(format!(
            "{}/?apiKey={DEFAULT_API_KEY}&sessionId=never-issued",
            emulator.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert!(unknown.status().is_client_error());
    assert!(unknown.text().await.unwrap().contains(INVALID_SESSION_TEXT));

    let stats = emulator.stats();
    assert_eq!(stats.widget_opens, 1);
    assert_eq!(stats.widget_rejections, 2);
    assert!(emulator.sessions()[0].opened);
}

#[tokio::test]
async fn widget_page_expires_after_five_minutes() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;
    let url = widget_url(&client, &emulator, &token, "o1").await;

    let clock = post_control(&client, &emulator, "clock", json!({ "advanceSecs": 301 })).await;
    assert_eq!(clock["offsetSecs"], 301);

    let page = client.get(&url).send().await.unwrap();
    assert!(page.status().is_client_error(), "{}", page.status());
    assert!(page.text().await.unwrap().contains(INVALID_SESSION_TEXT));

    // A session minted after the advance is fresh again, and the token still works.
    let fresh = widget_url(&client, &emulator, &token, "o2").await;
    assert_eq!(
        client.get(&fresh).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn widget_page_just_under_five_minutes_still_opens() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;
    let url = widget_url(&client, &emulator, &token, "o1").await;
    emulator.advance_clock(Duration::from_secs(290));
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn token_expires_after_seven_days() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;

    emulator.advance_clock(SEVEN_DAYS - Duration::from_secs(60));
    let still_valid = create_session(&client, &emulator, Some(&token), widget_params("o1")).await;
    assert_eq!(still_valid.status(), StatusCode::OK);

    post_control(&client, &emulator, "clock", json!({ "advanceSecs": 61 })).await;
    let expired = create_session(&client, &emulator, Some(&token), widget_params("o2")).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(emulator.current_access_token(), None);

    let renewed = refresh(&client, &emulator).await;
    let ok = create_session(&client, &emulator, Some(&renewed), widget_params("o3")).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn stats_count_refreshes_and_sessions() {
    let (emulator, client) = start().await;
    let base = emulator.base_url();
    assert_eq!(
        get_stats(&client, &base).await,
        json!({
            "refreshes": 0, "sessionsMinted": 0, "refreshCalls": 0, "sessionCalls": 0,
            "unauthorized": 0, "injectedFailures": 0, "injectedHangs": 0,
            "widgetOpens": 0, "widgetRejections": 0, "ordersSent": 0,
        })
    );
    let _ = refresh(&client, &emulator).await;
    let token = refresh(&client, &emulator).await;
    for order in ["a", "b", "c"] {
        let _ = widget_url(&client, &emulator, &token, order).await;
    }
    let _ = create_session(&client, &emulator, None, widget_params("d")).await;

    let stats = get_stats(&client, &base).await;
    assert_eq!(stats["refreshes"], 2);
    assert_eq!(stats["sessionsMinted"], 3);
    assert_eq!(stats["sessionCalls"], 4);
    assert_eq!(stats["unauthorized"], 1);
    assert_eq!(emulator.stats().sessions_minted, 3);
}

#[tokio::test]
async fn fail_next_answers_500_then_recovers() {
    let (emulator, client) = start().await;
    let faults = post_control(&client, &emulator, "faults", json!({ "failNext": 2 })).await;
    assert_eq!(faults["failNext"], 2);
    assert_eq!(faults["failStatus"], 500);

    let base = emulator.base_url();
    let first = refresh_with(&client, &base, DEFAULT_API_SECRET, DEFAULT_API_KEY).await;
    assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"]["statusCode"], 500);
    // The failure applies to either endpoint and is consumed.
    let second = create_session(&client, &emulator, Some("x.y.z"), widget_params("o1")).await;
    assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let token = refresh(&client, &emulator).await;
    let ok = create_session(&client, &emulator, Some(&token), widget_params("o1")).await;
    assert_eq!(ok.status(), StatusCode::OK);

    let stats = emulator.stats();
    assert_eq!(stats.injected_failures, 2);
    assert_eq!(stats.refreshes, 1);
}

#[tokio::test]
async fn fail_status_is_configurable_and_faults_can_be_cleared() {
    let (emulator, client) = start().await;
    post_control(
        &client,
        &emulator,
        "faults",
        json!({ "failNext": 5, "failStatus": 503 }),
    )
    .await;
    let base = emulator.base_url();
    let failed = refresh_with(&client, &base, DEFAULT_API_SECRET, DEFAULT_API_KEY).await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);

    let cleared = client
        .delete(format!("{base}/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["failNext"], 0);
    let _ = refresh(&client, &emulator).await;

    let invalid = client
        .post(format!("{base}/_emulator/faults"))
        .json(&json!({ "failNext": 1, "failStatus": 200 }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let typo = client
        .post(format!("{base}/_emulator/faults"))
        .json(&json!({ "failnext": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(typo.status(), StatusCode::BAD_REQUEST);
    assert_eq!(emulator.faults().fail_next, 0);
}

#[tokio::test]
async fn latency_applies_to_partner_api_calls_only() {
    let (emulator, client) = start().await;
    post_control(&client, &emulator, "faults", json!({ "latencyMs": 400 })).await;

    let started = Instant::now();
    let _ = refresh(&client, &emulator).await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let _ = get_stats(&client, &emulator.base_url()).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    emulator.clear_faults();
    assert_eq!(emulator.faults().latency_ms, 0);
}

#[tokio::test]
async fn configured_latency_is_a_baseline() {
    let emulator = spawn(EmulatorConfig {
        latency: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new();
    let started = Instant::now();
    let _ = refresh(&client, &emulator).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn hang_next_outlasts_a_client_timeout_then_recovers() {
    let (emulator, _) = start().await;
    let client = Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    emulator
        .set_faults(FaultsUpdate {
            hang_next: Some(1),
            ..FaultsUpdate::default()
        })
        .unwrap();

    let started = Instant::now();
    let error = client
        .post(format!(
            "{}/partners/api/v2/refresh-token",
            emulator.base_url()
        ))
        .header("api-secret", DEFAULT_API_SECRET)
        .json(&json!({ "apiKey": DEFAULT_API_KEY }))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_secs(1));

    let _ = refresh(&client, &emulator).await;
    assert_eq!(emulator.stats().injected_hangs, 1);
    assert_eq!(emulator.stats().refreshes, 1);
}

#[tokio::test]
async fn revoke_token_makes_session_calls_401_until_a_refresh() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;
    post_control(&client, &emulator, "faults", json!({ "revokeToken": true })).await;

    let revoked = create_session(&client, &emulator, Some(&token), widget_params("o1")).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);

    let renewed = refresh(&client, &emulator).await;
    let ok = create_session(&client, &emulator, Some(&renewed), widget_params("o1")).await;
    assert_eq!(ok.status(), StatusCode::OK);

    emulator.revoke_token();
    let again = create_session(&client, &emulator, Some(&renewed), widget_params("o2")).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reset_forgets_tokens_sessions_and_counters() {
    let (emulator, client) = start().await;
    let token = refresh(&client, &emulator).await;
    let url = widget_url(&client, &emulator, &token, "o1").await;

    let reset = post_control(&client, &emulator, "reset", json!({})).await;
    assert_eq!(reset["reset"], true);

    let stats = get_stats(&client, &emulator.base_url()).await;
    assert_eq!(stats["refreshes"], 0);
    assert_eq!(stats["sessionsMinted"], 0);
    assert!(emulator.sessions().is_empty());

    let old_token = create_session(&client, &emulator, Some(&token), widget_params("o2")).await;
    assert_eq!(old_token.status(), StatusCode::UNAUTHORIZED);
    let old_page = client.get(&url).send().await.unwrap();
    assert!(old_page.status().is_client_error());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let (emulator, client) = start().await;
    let base = emulator.base_url();
    assert!(
        client
            .get(format!("{base}/_emulator/stats"))
            .send()
            .await
            .is_ok()
    );
    emulator.shutdown().await;
    let after = Client::new()
        .get(format!("{base}/_emulator/stats"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "server still answering after shutdown");

    // Plain drop stops it too (asynchronously).
    let (emulator, _) = start().await;
    let base = emulator.base_url();
    drop(emulator);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let probe = Client::new()
            .get(format!("{base}/_emulator/stats"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if probe.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server still answering after drop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unknown_paths_are_json_404() {
    let (emulator, client) = start().await;
    let response = client
        .get(format!("{}/nope", emulator.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["statusCode"], 404);
}

/// The real binary: starts on a free port, answers, counts over HTTP, stops on SIGTERM.
#[tokio::test]
async fn binary_serves_and_counts_over_http() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_transak-emulator"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--api-key",
            "bin-key",
            "--api-secret",
            "bin-secret",
            "--latency-ms",
            "0",
        ])
        .env_remove("TRANSAK_EMULATOR_LISTEN")
        .env_remove("TRANSAK_API_KEY")
        .env_remove("TRANSAK_API_SECRET")
        .env_remove("TRANSAK_EMULATOR_LATENCY_MS")
        .env_remove("TRANSAK_EMULATOR_FAIL_RATE")
        .env_remove("TRANSAK_EMULATOR_PUBLIC_URL")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let client = Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        if let Ok(response) = client.get(format!("{base}/_emulator/stats")).send().await {
            break response.json::<Value>().await.unwrap();
        }
        assert!(Instant::now() < deadline, "binary never answered on {base}");
        assert!(child.try_wait().unwrap().is_none(), "binary exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stats["refreshes"], 0);
    assert_eq!(stats["sessionsMinted"], 0);

    let rejected = refresh_with(&client, &base, DEFAULT_API_SECRET, DEFAULT_API_KEY).await;
    assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
    let accepted = refresh_with(&client, &base, "bin-secret", "bin-key").await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let stats = get_stats(&client, &base).await;
    assert_eq!(stats["refreshes"], 1);

    #[cfg(unix)]
    {
        // Graceful shutdown on SIGTERM.
        let pid = child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("binary did not stop on SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
    }
    #[cfg(not(unix))]
    {
        child.kill().await.unwrap();
    }
}
