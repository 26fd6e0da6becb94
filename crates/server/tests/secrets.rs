//! Hostile reading of the logs: the whole end-to-end flow (create, reuse, get, list, cancel,
//! launch, a token refresh forced by upstream revoking the token) against a real
//! `widget-sessions` process logging at `TRACE` (every crate, sqlx and HTTP included), with
//! its stdout and stderr captured, and then no secret may appear anywhere in what it wrote:
//! not the application's API secret (nor its API key, nor the at-rest key), not the Transak
//! API secret, not any access token upstream handed out, not any upstream `sessionId`, not any
//! launch token.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

mod process_support;

use std::time::Duration;

use process_support::{APP_KEY, APP_SECRET, Deployment, Resp, SESSIONS, create_body, launch_path};
use serde_json::Value;

/// Collects the request id of every response, and every launch token handed out.
#[derive(Default)]
struct Seen {
    request_ids: Vec<String>,
    launch_tokens: Vec<String>,
}

impl Seen {
    fn record(&mut self, r: &Resp) {
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("a response without x-request-id: {r:?}"));
        self.request_ids.push(id.to_string());
        if let Ok(json) = serde_json::from_str::<Value>(&r.text) {
            let mut urls = Vec::new();
            if let Some(url) = json["widgetUrl"].as_str() {
                urls.push(url.to_string());
            }
            for item in json["data"].as_array().into_iter().flatten() {
                if let Some(url) = item["widgetUrl"].as_str() {
                    urls.push(url.to_string());
                }
            }
            for url in urls {
                let token = launch_path(&url).trim_start_matches("/w/").to_string();
                assert!(token.len() >= 22, "{url}");
                self.launch_tokens.push(token);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let deployment = Deployment::new().await;
    let api = deployment
        .start(
            "api",
            &[
                ("RUST_LOG", "trace"),
                ("WIDGET_SESSIONS_LOG_FORMAT", "json"),
            ],
        )
        .await;
    let mut seen = Seen::default();
    // Readiness obtained the first token.
    let first_token = deployment
        .emulator
        .current_access_token()
        .expect("a token after start-up");

    // Create, reuse, get, list.
    let user = uuid::Uuid::new_v4();
    let created = api.create(&create_body(user)).await;
    created.expect(201);
    seen.record(&created);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let reused = api.create(&create_body(user)).await;
    reused.expect(200);
    seen.record(&reused);
    assert_eq!(reused.json()["id"].as_str(), Some(id.as_str()));
    let got = api
        .send(api.signed("GET", &format!("{SESSIONS}/{id}"), ""))
        .await;
    got.expect(200);
    seen.record(&got);
    let listed = api.list_for(user).await;
    listed.expect(200);
    seen.record(&listed);

    // Cancel another session; its link is gone.
    let other = api.create(&create_body(uuid::Uuid::new_v4())).await;
    other.expect(201);
    seen.record(&other);
    let other_id = other.json()["id"].as_str().unwrap().to_string();
    let cancelled = api.cancel(&other_id).await;
    cancelled.expect(200);
    seen.record(&cancelled);
    let gone = api
        .get(&launch_path(other.json()["widgetUrl"].as_str().unwrap()))
        .await;
    gone.expect(410);
    seen.record(&gone);

    // Launch: the first open redirects to the upstream URL (with its sessionId), the next
    // is gone; a HEAD never consumes.
    let link = launch_path(reused.json()["widgetUrl"].as_str().unwrap());
    let head = api
        .send(api.client.head(format!("{}{link}", api.base)))
        .await;
    head.expect(200);
    seen.record(&head);
    let opened = api.get(&link).await;
    opened.expect(303);
    seen.record(&opened);
    let location = opened.header("location").unwrap().to_string();
    assert!(location.contains("sessionId="), "{location}");
    let again = api.get(&link).await;
    again.expect(410);
    seen.record(&again);

    // Upstream revokes the token: the next create refreshes once and succeeds.
    deployment.emulator.revoke_token();
    let after_revoke = api.create(&create_body(uuid::Uuid::new_v4())).await;
    after_revoke.expect(201);
    seen.record(&after_revoke);
    let second_token = deployment
        .emulator
        .current_access_token()
        .expect("a token after the refresh");
    assert_ne!(first_token, second_token);
    let stats = deployment.emulator.stats();
    assert_eq!((stats.refreshes, stats.unauthorized), (2, 1), "{stats:?}");
    // And a failure path: upstream down, a 503 (errors are logged too).
    deployment
        .emulator
        .set_faults(transak_emulator::FaultsUpdate {
            fail_next: Some(3),
            ..transak_emulator::FaultsUpdate::default()
        })
        .unwrap();
    let failed = api.create(&create_body(uuid::Uuid::new_v4())).await;
    failed.expect(503);
    seen.record(&failed);
    deployment.emulator.clear_faults();
    // A refused signature (the secret must not be echoed while explaining why).
    let forged = server::request_command::sign(
        &api.base,
        "GET",
        SESSIONS,
        "",
        APP_KEY,
        "a-wrong-secret-0123456789",
    );
    let refused = api
        .send(
            api.client
                .get(&forged.url)
                .header("api-key", &forged.api_key)
                .header("authorization", &forged.authorization),
        )
        .await;
    refused.expect(401);
    seen.record(&refused);

    // Let the last lines reach the file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = api.logs();

    // Not vacuous: the logs exist, are at TRACE, and cover every request.
    assert!(logs.lines().count() > 50, "too few log lines:\n{logs}");
    assert!(
        logs.contains(r#""level":"TRACE""#),
        "no TRACE line: is RUST_LOG=trace in effect?"
    );
    for request_id in &seen.request_ids {
        assert!(
            logs.contains(request_id.as_str()),
            "request id {request_id} is not in the logs"
        );
    }
    assert!(logs.contains("minted a new session"));

    let upstream_sessions = deployment.emulator.sessions();
    assert_eq!(upstream_sessions.len(), 3, "{upstream_sessions:?}");
    assert!(seen.launch_tokens.len() >= 4, "{:?}", seen.launch_tokens);

    let mut secrets: Vec<(String, String)> = vec![
        ("the application's API secret".into(), APP_SECRET.into()),
        ("the application's API key".into(), APP_KEY.into()),
        (
            "the at-rest key (WIDGET_SESSIONS_SECRET_KEY)".into(),
            deployment.secret_key.clone(),
        ),
        (
            "the Transak API secret".into(),
            transak_emulator::DEFAULT_API_SECRET.into(),
        ),
        ("the first access token".into(), first_token),
        ("the refreshed access token".into(), second_token),
    ];
    for s in &upstream_sessions {
        secrets.push(("an upstream sessionId".into(), s.session_id.clone()));
    }
    for t in &seen.launch_tokens {
        secrets.push(("a launch token".into(), t.clone()));
    }
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is too short to search for");
        if let Some(line) = logs.lines().find(|line| line.contains(secret.as_str())) {
            leaks.push(format!("{what} ({secret}) appears in:\n  {line}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} secret(s) in the logs:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
