//! Webhooks end to end: endpoints registered over the API, the lifecycle of real sessions,
//! and a local receiver that checks every delivery's Standard Webhooks signature — on the
//! in-memory store and on Postgres (`memory::name`, `postgres::name`); and Transak's order
//! webhooks coming in, through the emulator playing the widget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const ENDPOINTS: &str = "/webhook-endpoints";
const BTC: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

fn user() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn btc(user: &str) -> Value {
    json!({"userId": user, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC})
}

/// An instance whose webhooks may reach this machine, with a fast schedule and sweep.
async fn spawn(store: Store, schedule: &str) -> TestApp {
    TestApp::spawn(
        store,
        &[
            ("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE", schedule),
            ("WIDGET_SESSIONS_EXPIRY_SWEEP_SECS", "1"),
        ],
    )
    .await
}

/// Registers `url` for `who`; the created endpoint (with its secret).
async fn register(app: &TestApp, who: &Creds, url: &str, types: Option<&[&str]>) -> Value {
    let mut body = json!({"url": url});
    if let Some(types) = types {
        body["eventTypes"] = json!(types);
    }
    let r = app.signed(who, "POST", ENDPOINTS, &body.to_string()).await;
    r.expect(201);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()
}

fn types_of(deliveries: &[Received]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_string())
        .collect()
}

/// Every lifecycle event reaches the receiver once, signed with the endpoint's secret, with
/// the session as it was right after the change; the events endpoint shows them delivered.
async fn every_lifecycle_event_is_delivered_signed(store: Store) {
    let app = spawn(store, "1,1,1").await;
    let receiver = Receiver::start(Some(0)).await;
    let endpoint = register(&app, &app.a, &receiver.url, None).await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    assert!(endpoint["id"].as_str().unwrap().starts_with("we_"));
    assert_eq!(endpoint["eventTypes"], json!([]));

    // created + consumed
    let s1 = app.create_ok(&app.a, &btc(&user()), 201).await;
    let opened = app.get(s1["widgetUrl"].as_str().unwrap()).await;
    opened.expect(303);
    // created + cancelled
    let s2 = app.create_ok(&app.a, &btc(&user()), 201).await;
    app.cancel(&app.a, s2["id"].as_str().unwrap())
        .await
        .expect(200);
    // created + expired (the sweep runs every second; the clock moves past the expiry)
    let s3 = app.create_ok(&app.a, &btc(&user()), 201).await;
    // A reuse is not an event.
    app.create_ok(&app.a, &btc(s3["userId"].as_str().unwrap()), 200)
        .await;
    receiver.until("five events", |d| d.len() >= 5).await;

    // The session's audit trail (asked before the clock moves: requests are signed with the
    // real time).
    let started = Instant::now();
    let events = loop {
        let r = app
            .signed(
                &app.a,
                "GET",
                &format!("{SESSIONS}/{}/events", s1["id"].as_str().unwrap()),
                "",
            )
            .await;
        r.expect(200);
        let events = r.json()["data"].as_array().unwrap().clone();
        if events
            .iter()
            .all(|e| e["deliveries"][0]["status"] == "DELIVERED")
        {
            break events;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{events:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["session.created", "session.consumed"]
    );
    for e in &events {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        let d = &e["deliveries"][0];
        assert_eq!(d["endpointId"], endpoint["id"]);
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["lastStatusCode"], 204);
        assert!(d["nextAttemptAt"].is_null());
    }
    // Another application sees neither the session's events nor the endpoint.
    let r = app
        .signed(
            &app.b,
            "GET",
            &format!("{SESSIONS}/{}/events", s1["id"].as_str().unwrap()),
            "",
        )
        .await;
    assert_problem(&r, 404, "session_not_found");
    let r = app.signed(&app.b, "GET", ENDPOINTS, "").await;
    r.expect(200);
    assert_eq!(r.json()["data"], json!([]));

    // The third session expires: the sweep (every second) emits it.
    app.clock.advance(Duration::from_secs(301));
    let got = receiver.until("six events", |d| d.len() >= 6).await;
    app.drain_deliveries().await;
    let got_now = receiver.deliveries();
    assert_eq!(got_now.len(), 6, "{:?}", types_of(&got_now));
    let mut types = types_of(&got);
    types.sort();
    assert_eq!(
        types,
        [
            "session.cancelled",
            "session.consumed",
            "session.created",
            "session.created",
            "session.created",
            "session.expired"
        ]
    );
    let ids: std::collections::HashSet<&str> = got.iter().map(|d| d.header("webhook-id")).collect();
    assert_eq!(ids.len(), 6, "one id per event");
    for d in &got {
        assert!(d.verifies(&[&secret]), "signature of {:?}", d.json());
        assert!(!d.verifies(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]));
        assert!(d.header("webhook-id").starts_with("evt_"));
        assert_eq!(d.header("content-type"), "application/json");
        let body = d.json();
        assert!(body["timestamp"].is_string(), "{body}");
        let session = &body["data"];
        let expected_status = match body["type"].as_str().unwrap() {
            "session.created" => "ACTIVE",
            "session.consumed" => "CONSUMED",
            "session.cancelled" => "CANCELLED",
            "session.expired" => "EXPIRED",
            other => panic!("{other}"),
        };
        assert_eq!(session["status"], expected_status, "{body}");
        assert!(
            session.get("widgetUrl").is_none(),
            "no launch link in events: {body}"
        );
    }
    // The consumed event carries the session as consumed.
    let consumed = got
        .iter()
        .find(|d| d.json()["type"] == "session.consumed")
        .unwrap()
        .json();
    assert_eq!(consumed["data"]["id"], s1["id"]);
    assert!(consumed["data"]["consumedAt"].is_string());
}

/// A receiver that fails twice gets the event on the third attempt, under the same id.
async fn a_failing_receiver_gets_the_event_on_the_third_attempt(store: Store) {
    let app = spawn(store, "1,1,1").await;
    let receiver = Receiver::start(Some(2)).await;
    let endpoint = register(&app, &app.a, &receiver.url, Some(&["session.created"])).await;
    let s = app.create_ok(&app.a, &btc(&user()), 201).await;
    let got = receiver.until("three attempts", |d| d.len() >= 3).await;
    let ids: Vec<&str> = got.iter().map(|d| d.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let secret = endpoint["secret"].as_str().unwrap();
    assert!(got.iter().all(|d| d.verifies(&[secret])));
    // The audit trail says delivered after three attempts.
    let started = Instant::now();
    loop {
        let r = app
            .signed(
                &app.a,
                "GET",
                &format!("{SESSIONS}/{}/events", s["id"].as_str().unwrap()),
                "",
            )
            .await;
        let d = r.json()["data"][0]["deliveries"][0].clone();
        if d["status"] == "DELIVERED" {
            assert_eq!(d["attempts"], 3, "{d}");
            assert_eq!(d["lastStatusCode"], 204);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing is due any more: whatever else was on its way has arrived.
    app.drain_deliveries().await;
    assert_eq!(receiver.deliveries().len(), 3, "nothing after the 2xx");
}

/// A receiver down past the schedule ends `FAILED`, shown by the events endpoint.
async fn a_receiver_down_past_the_schedule_ends_failed(store: Store) {
    let app = spawn(store, "1,1").await;
    let receiver = Receiver::start(None).await;
    register(&app, &app.a, &receiver.url, None).await;
    let s = app.create_ok(&app.a, &btc(&user()), 201).await;
    receiver.until("three attempts", |d| d.len() >= 3).await;
    let started = Instant::now();
    loop {
        let r = app
            .signed(
                &app.a,
                "GET",
                &format!("{SESSIONS}/{}/events", s["id"].as_str().unwrap()),
                "",
            )
            .await;
        let d = r.json()["data"][0]["deliveries"][0].clone();
        if d["status"] == "FAILED" {
            assert_eq!(d["attempts"], 3, "{d}");
            assert_eq!(d["lastStatusCode"], 500);
            assert!(d["nextAttemptAt"].is_null());
            break;
        }
        assert_eq!(d["status"], "PENDING", "{d}");
        assert!(started.elapsed() < Duration::from_secs(20), "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.drain_deliveries().await;
    assert_eq!(receiver.deliveries().len(), 3, "no attempt after FAILED");
}

/// Rotates `id`'s secret with `body`; the new secret.
async fn rotate(app: &TestApp, id: &str, body: &str) -> String {
    let r = app
        .signed(
            &app.a,
            "POST",
            &format!("{ENDPOINTS}/{id}/rotate-secret"),
            body,
        )
        .await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let rotated = r.json();
    assert_eq!(rotated["id"], id);
    rotated["secret"].as_str().unwrap().to_string()
}

/// The `v1,…` signatures a delivery carries.
fn signatures(d: &Received) -> Vec<String> {
    d.header("webhook-signature")
        .split(' ')
        .map(str::to_string)
        .collect()
}

/// After a rotation, deliveries carry two signatures: one under each secret.
async fn a_rotated_secret_signs_alongside_the_old_one(store: Store) {
    let app = spawn(store, "1").await;
    let receiver = Receiver::start(Some(0)).await;
    let endpoint = register(&app, &app.a, &receiver.url, None).await;
    let old = endpoint["secret"].as_str().unwrap().to_string();
    let id = endpoint["id"].as_str().unwrap();
    let new = rotate(&app, id, "").await;
    assert_ne!(old, new);
    app.create_ok(&app.a, &btc(&user()), 201).await;
    let got = receiver.until("a delivery", |d| !d.is_empty()).await;
    let d = &got[0];
    assert_eq!(signatures(d).len(), 2, "{:?}", d.headers);
    assert!(d.verifies(&[&old]) && d.verifies(&[&new]));
    // Rotating an endpoint of another application, or an unknown one: 404.
    let r = app
        .signed(
            &app.b,
            "POST",
            &format!("{ENDPOINTS}/{id}/rotate-secret"),
            "",
        )
        .await;
    assert_problem(&r, 404, "webhook_endpoint_not_found");
}

/// Two rotations in a row: the secret the first one handed out (the one the partner was
/// last given) still signs, alongside the newest; the original stops at the second rotation
/// instead of living on.
async fn a_second_rotation_keeps_the_secret_last_handed_out(store: Store) {
    let app = spawn(store, "1").await;
    let receiver = Receiver::start(Some(0)).await;
    let endpoint = register(&app, &app.a, &receiver.url, None).await;
    let original = endpoint["secret"].as_str().unwrap().to_string();
    let id = endpoint["id"].as_str().unwrap();
    let first = rotate(&app, id, "").await;
    let second = rotate(&app, id, r#"{"previousSecretExpiresInSecs": 86400}"#).await;
    app.create_ok(&app.a, &btc(&user()), 201).await;
    let got = receiver.until("a delivery", |d| !d.is_empty()).await;
    let d = &got[0];
    assert_eq!(
        signatures(d).len(),
        2,
        "exactly the two live secrets sign: {:?}",
        d.headers
    );
    assert!(d.verifies(&[&second]), "{:?}", d.headers);
    assert!(
        d.verifies(&[&first]),
        "the secret handed out by the first rotation still verifies"
    );
    assert!(
        !d.verifies(&[&original]),
        "the original secret no longer verifies"
    );
}

/// `previousSecretExpiresInSecs: 0` ends the replaced secret at once: deliveries carry the
/// new secret's signature only. Out-of-range or mistyped values are refused like other
/// validation errors.
async fn a_rotation_can_end_the_previous_secret_at_once(store: Store) {
    let app = spawn(store, "1").await;
    let receiver = Receiver::start(Some(0)).await;
    let endpoint = register(&app, &app.a, &receiver.url, None).await;
    let original = endpoint["secret"].as_str().unwrap().to_string();
    let id = endpoint["id"].as_str().unwrap();
    let path = format!("{ENDPOINTS}/{id}/rotate-secret");
    for (body, expected) in [
        (
            r#"{"previousSecretExpiresInSecs": 86401}"#,
            fe("previousSecretExpiresInSecs", "out_of_range"),
        ),
        (
            r#"{"previousSecretExpiresInSecs": -1}"#,
            fe("previousSecretExpiresInSecs", "out_of_range"),
        ),
        (
            r#"{"previousSecretExpiresInSecs": "60"}"#,
            fe("previousSecretExpiresInSecs", "invalid_type"),
        ),
        (
            r#"{"previousSecretExpiresInSecs": 1.5}"#,
            fe("previousSecretExpiresInSecs", "invalid_type"),
        ),
        (
            r#"{"previousSecretExpiresInSecs": null}"#,
            fe("previousSecretExpiresInSecs", "invalid_type"),
        ),
        (
            r#"{"previousSecretExpires": 60}"#,
            fe("previousSecretExpires", "unknown_field"),
        ),
        ("[60]", fe("", "invalid_json")),
        ("{", fe("", "invalid_json")),
    ] {
        let r = app.signed(&app.a, "POST", &path, body).await;
        assert_eq!(validation_errors(&r), vec![expected], "{body}");
    }
    // With the partners' client crate, typed; nothing was rotated by the refused requests.
    let c = client::Client::new(&app.base, &app.a.key, &app.a.secret).unwrap();
    let rotated = c
        .rotate_endpoint_secret(id, Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(rotated.id, id);
    let new = rotated.secret.unwrap();
    app.create_ok(&app.a, &btc(&user()), 201).await;
    let got = receiver.until("a delivery", |d| !d.is_empty()).await;
    let d = &got[0];
    assert_eq!(signatures(d).len(), 1, "{:?}", d.headers);
    assert!(d.verifies(&[&new]), "{:?}", d.headers);
    assert!(
        !d.verifies(&[&original]),
        "the replaced secret stopped at once"
    );
}

/// Endpoint types filter what an endpoint receives.
async fn an_endpoint_receives_only_its_event_types(store: Store) {
    let app = spawn(store, "1").await;
    let consumed_only = Receiver::start(Some(0)).await;
    register(
        &app,
        &app.a,
        &consumed_only.url,
        Some(&["session.consumed"]),
    )
    .await;
    let all = Receiver::start(Some(0)).await;
    register(&app, &app.a, &all.url, None).await;
    let s = app.create_ok(&app.a, &btc(&user()), 201).await;
    app.get(s["widgetUrl"].as_str().unwrap()).await.expect(303);
    all.until("two events", |d| d.len() >= 2).await;
    let got = consumed_only.until("the consume", |d| !d.is_empty()).await;
    app.drain_deliveries().await;
    assert_eq!(types_of(&consumed_only.deliveries()), ["session.consumed"]);
    assert_eq!(got.len(), 1);
}

/// The endpoints API: validation, URL rules, the limit, listing without secrets, deletion.
async fn endpoints_are_validated_listed_and_deleted(store: Store) {
    // Private networks not allowed here: the URL rules apply.
    let app = TestApp::spawn(
        store,
        &[("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "false")],
    )
    .await;
    let post = |body: Value| {
        let app = &app;
        async move {
            app.signed(&app.a, "POST", ENDPOINTS, &body.to_string())
                .await
        }
    };
    for (body, code) in [
        (
            json!({"url": "http://hooks.example.com/"}),
            "invalid_webhook_url",
        ),
        (
            json!({"url": "ftp://hooks.example.com/"}),
            "invalid_webhook_url",
        ),
        (
            json!({"url": "https://user:pw@hooks.example.com/"}),
            "invalid_webhook_url",
        ),
        (
            json!({"url": "https://127.0.0.1/"}),
            "webhook_url_not_public",
        ),
        (
            json!({"url": "https://[::1]:8443/"}),
            "webhook_url_not_public",
        ),
        (
            json!({"url": "https://[::ffff:10.0.0.1]/"}),
            "webhook_url_not_public",
        ),
        (
            json!({"url": "https://169.254.169.254/latest/meta-data"}),
            "webhook_url_not_public",
        ),
        (
            json!({"url": "https://localhost/"}),
            "webhook_url_not_public",
        ),
        // Ports below 1024 other than 443 (80 only where `http` is allowed).
        (
            json!({"url": "https://hooks.example.com:22/"}),
            "invalid_webhook_url",
        ),
        (
            json!({"url": "https://hooks.example.com:80/"}),
            "invalid_webhook_url",
        ),
        (
            json!({"url": "https://93.184.216.34:1023/"}),
            "invalid_webhook_url",
        ),
        (
            json!({"url": "https://127.0.0.1:25/"}),
            "invalid_webhook_url",
        ),
    ] {
        assert_problem(&post(body.clone()).await, 400, code);
    }
    // A name that does not resolve is refused exactly like one that resolves to a private
    // address (the sender's tests show the two are one refusal): no DNS oracle.
    let missing = assert_problem(
        &post(json!({"url": "https://no-such-host.invalid/hook"})).await,
        400,
        "webhook_url_not_public",
    );
    assert_eq!(
        missing["detail"],
        "the webhook URL's host does not resolve to public addresses only"
    );
    let p = assert_problem(
        &post(json!({"url": "https://hooks.example.com:22/"})).await,
        400,
        "invalid_webhook_url",
    );
    assert_eq!(
        p["detail"],
        "the webhook URL must use port 443 or a port from 1024 up"
    );
    let errors = validation_errors(
        &post(json!({"eventTypes": ["session.created", "session.exploded"], "extra": 1})).await,
    );
    assert!(errors.contains(&fe("url", "required")), "{errors:?}");
    assert!(
        errors.contains(&fe("eventTypes[1]", "unknown_event_type")),
        "{errors:?}"
    );
    assert!(errors.contains(&fe("extra", "unknown_field")), "{errors:?}");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(validation_errors(&post(json!([1, 2])).await).contains(&fe("", "invalid_json")));

    // With private networks allowed, local receivers register; at most 10.
    let app = TestApp::spawn(
        store,
        &[("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")],
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..10 {
        let e = register(&app, &app.a, &format!("http://127.0.0.1:9999/{n}"), None).await;
        ids.push(e["id"].as_str().unwrap().to_string());
    }
    let r = app
        .signed(
            &app.a,
            "POST",
            ENDPOINTS,
            &json!({"url": "http://127.0.0.1:9999/x"}).to_string(),
        )
        .await;
    assert_problem(&r, 409, "too_many_webhook_endpoints");
    let r = app.signed(&app.a, "GET", ENDPOINTS, "").await;
    r.expect(200);
    let listed = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 10);
    assert!(
        listed.iter().all(|e| e.get("secret").is_none()),
        "no secrets in lists"
    );
    // Deleting: another application cannot; the owner can, once.
    let path = format!("{ENDPOINTS}/{}", ids[0]);
    assert_problem(
        &app.signed(&app.b, "DELETE", &path, "").await,
        404,
        "webhook_endpoint_not_found",
    );
    app.signed(&app.a, "DELETE", &path, "").await.expect(204);
    assert_problem(
        &app.signed(&app.a, "DELETE", &path, "").await,
        404,
        "webhook_endpoint_not_found",
    );
    assert_problem(
        &app.signed(&app.a, "DELETE", &format!("{ENDPOINTS}/not-an-id"), "")
            .await,
        404,
        "webhook_endpoint_not_found",
    );
    // A slot is free again. Port 80 is allowed here (as `http` is); ports below 1024 other
    // than 80 and 443 are not.
    let p = assert_problem(
        &app.signed(
            &app.a,
            "POST",
            ENDPOINTS,
            &json!({"url": "http://127.0.0.1:22/"}).to_string(),
        )
        .await,
        400,
        "invalid_webhook_url",
    );
    assert_eq!(
        p["detail"],
        "the webhook URL must use port 443, port 80 or a port from 1024 up"
    );
    register(&app, &app.a, "http://127.0.0.1/again", None).await;
}

// ---- Transak's order webhooks (`POST /webhooks/transak`) ----

const TRANSAK_HOOK: &str = "/webhooks/transak";

/// The emulator's widget session minted for our session `id` (its `partnerOrderId`).
fn upstream_session_of(app: &TestApp, id: &str) -> String {
    app.emulator
        .sessions()
        .into_iter()
        .find(|s| s.widget_params.get("partnerOrderId") == Some(&json!(id)))
        .unwrap_or_else(|| panic!("no upstream session for {id}"))
        .session_id
}

/// An order webhook body as Transak sends it, signed HS256 with `key`.
fn order_body(key: &str, order_id: &str, event_id: &str, status: &str, session: &str) -> String {
    let claims = json!({
        "eventID": event_id,
        "createdAt": "2026-11-29T12:00:00Z",
        "webhookData": {"id": order_id, "status": status, "partnerOrderId": session,
                        "isBuyOrSell": "BUY", "cryptoCurrency": "BTC"},
    });
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap();
    json!({ "data": jwt }).to_string()
}

async fn post_order(app: &TestApp, body: String) -> support::Resp {
    app.send(
        app.client
            .post(format!("{}{TRANSAK_HOOK}", app.base))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

async fn session_order(app: &TestApp, id: &str) -> Value {
    let r = app.get_session(&app.a, id).await;
    r.expect(200);
    r.json()["order"].clone()
}

/// The customer completes the order in the widget: the emulator sends Transak's signed order
/// webhook to the instance, the session shows the order and the partner receives
/// `session.order_updated`; the same event again changes nothing and sends nothing.
async fn a_completed_order_reaches_the_session_and_the_partner(store: Store) {
    let app = spawn(store, "1,1,1").await;
    let receiver = Receiver::start(Some(0)).await;
    let endpoint = register(
        &app,
        &app.a,
        &receiver.url,
        Some(&["session.order_updated"]),
    )
    .await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    let s = app.create_ok(&app.a, &btc(&user()), 201).await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(s["order"], Value::Null, "{s}");
    app.get(s["widgetUrl"].as_str().unwrap()).await.expect(303);

    let upstream = upstream_session_of(&app, id);
    let place = |event: &'static str| {
        let url = format!("{}/_emulator/orders", app.emulator.base_url());
        let body = json!({"sessionId": upstream, "eventID": event});
        let client = app.client.clone();
        async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let placed = place("ORDER_COMPLETED").await;
    assert_eq!(placed["webhookStatus"], 200, "{placed}");
    let order = session_order(&app, id).await;
    assert_eq!(order["id"], placed["orderId"], "{order}");
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!(order["eventId"], "ORDER_COMPLETED");
    assert!(order["updatedAt"].is_string(), "{order}");

    let got = receiver.until("the order event", |d| !d.is_empty()).await;
    assert!(got[0].verifies(&[&secret]));
    let event = got[0].json();
    assert_eq!(event["type"], "session.order_updated", "{event}");
    assert_eq!(event["data"]["id"], s["id"]);
    assert_eq!(event["data"]["status"], "CONSUMED");
    assert_eq!(event["data"]["order"], order);

    // The same (order, event) again: acknowledged, nothing changes, no new event.
    let again = place("ORDER_COMPLETED").await;
    assert_eq!(again["webhookStatus"], 200, "{again}");
    assert_eq!(session_order(&app, id).await, order);
    app.drain_deliveries().await;
    assert_eq!(receiver.deliveries().len(), 1, "no event for a repeat");
    // A later event of the same order moves it on.
    place("ORDER_FAILED").await;
    let failed = session_order(&app, id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["id"], order["id"]);
    receiver
        .until("the second order event", |d| d.len() == 2)
        .await;
    // The session's audit trail lists both.
    let r = app
        .signed(&app.a, "GET", &format!("{SESSIONS}/{id}/events"), "")
        .await;
    let types: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "session.created",
            "session.consumed",
            "session.order_updated",
            "session.order_updated"
        ]
    );
}

/// Only the access token (or the one it replaced, for 15 minutes) signs an accepted order
/// event; anything else is refused and nothing is stored; unknown orders are acknowledged
/// with `202`; a body over 64 KiB is refused.
async fn order_webhooks_are_verified(store: Store) {
    let app = spawn(store, "1,1,1").await;
    // Before any token was issued, nothing verifies.
    let early = order_body("anything", "ord-0", "ORDER_COMPLETED", "COMPLETED", &user());
    assert_problem(
        &post_order(&app, early).await,
        401,
        "invalid_order_signature",
    );

    let s = app.create_ok(&app.a, &btc(&user()), 201).await;
    let id = s["id"].as_str().unwrap();
    let first = app.emulator.current_access_token().unwrap();
    // A session whose link was never opened has no order in the widget: unmatched.
    let early = order_body(&first, "ord-0", "ORDER_COMPLETED", "COMPLETED", id);
    let r = post_order(&app, early).await;
    r.expect(202);
    assert_eq!(r.json()["status"], "unmatched");
    assert_eq!(session_order(&app, id).await, Value::Null);
    app.get(s["widgetUrl"].as_str().unwrap()).await.expect(303);

    // Bad signatures, garbage and other algorithms: 401, nothing stored.
    let forged = order_body("not-the-token", "ord-1", "ORDER_COMPLETED", "COMPLETED", id);
    assert_problem(
        &post_order(&app, forged).await,
        401,
        "invalid_order_signature",
    );
    for garbage in [
        "",
        "{}",
        "not json",
        r#"{"data": 1}"#,
        r#"{"data": "a.b.c"}"#,
    ] {
        let r = post_order(&app, garbage.to_string()).await;
        assert_problem(&r, 401, "invalid_order_signature");
    }
    assert_eq!(session_order(&app, id).await, Value::Null);
    // The refused event was not recorded: the genuine one is new, not a duplicate.
    let genuine = order_body(&first, "ord-1", "ORDER_COMPLETED", "COMPLETED", id);
    let r = post_order(&app, genuine.clone()).await;
    r.expect(200);
    assert_eq!(r.json()["status"], "recorded");
    assert_eq!(session_order(&app, id).await["status"], "COMPLETED");
    let r = post_order(&app, genuine).await;
    r.expect(200);
    assert_eq!(r.json()["status"], "duplicate");

    // Signed, but not an order event.
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"hello": "world"}),
        &jsonwebtoken::EncodingKey::from_secret(first.as_bytes()),
    )
    .unwrap();
    let r = post_order(&app, json!({ "data": jwt }).to_string()).await;
    assert_problem(&r, 400, "malformed_order_event");

    // An order of no session of ours: 202, recorded as unmatched (once).
    let stranger = order_body(&first, "ord-x", "ORDER_COMPLETED", "COMPLETED", &user());
    let r = post_order(&app, stranger.clone()).await;
    r.expect(202);
    assert_eq!(r.json()["status"], "unmatched");
    let r = post_order(&app, stranger).await;
    r.expect(200);
    assert_eq!(r.json()["status"], "duplicate");
    if let Some(db) = &app.database {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let unmatched: i64 = sqlx::query_scalar(
            "select count(*) from transak_order_events where order_id = 'ord-x' and session_id is null",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(unmatched, 1);
        let forged: i64 = sqlx::query_scalar(
            "select count(*) from transak_order_events where order_id not in ('ord-0', 'ord-1', 'ord-x')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(forged, 0, "refused events are not stored");
    }

    // A body over the limit.
    let huge = json!({ "data": "a".repeat(70 * 1024) }).to_string();
    assert_problem(&post_order(&app, huge).await, 413, "payload_too_large");

    // The token is refreshed (the upstream revoked it): both verify for the grace period.
    app.emulator.revoke_token();
    app.create_ok(&app.a, &btc(&user()), 201).await;
    let second = app.emulator.current_access_token().unwrap();
    assert_ne!(first, second);
    let late = order_body(&first, "ord-1", "ORDER_FAILED", "FAILED", id);
    let r = post_order(&app, late).await;
    r.expect(200);
    assert_eq!(r.json()["status"], "recorded");
    assert_eq!(session_order(&app, id).await["status"], "FAILED");
    // A late non-final status after a final one: acknowledged, the order stays.
    let behind = order_body(&first, "ord-1", "ORDER_PROCESSING", "PROCESSING", id);
    let r = post_order(&app, behind).await;
    r.expect(200);
    assert_eq!(r.json()["status"], "stale");
    assert_eq!(session_order(&app, id).await["status"], "FAILED");
    let current = order_body(&second, "ord-1", "ORDER_REFUNDED", "REFUNDED", id);
    let r = post_order(&app, current).await;
    r.expect(200);
    assert_eq!(r.json()["status"], "recorded");
    // After the grace period the old token signs nothing; the current one still does.
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    let stale = order_body(&first, "ord-1", "ORDER_EXPIRED", "EXPIRED", id);
    assert_problem(
        &post_order(&app, stale).await,
        401,
        "invalid_order_signature",
    );
    // (Signed API requests would now be stale: the refused event shows as not recorded by
    // the same event being new when the current token signs it.)
    let fresh = order_body(&second, "ord-1", "ORDER_EXPIRED", "EXPIRED", id);
    let r = post_order(&app, fresh).await;
    r.expect(200);
    assert_eq!(r.json()["status"], "recorded");
}

/// `listen` registers a temporary endpoint, prints each event once its signature verifies,
/// forwards it untouched, refuses a forged one, and deletes the endpoint when stopped.
async fn listen_shows_verified_events_and_cleans_up(store: Store) {
    let app = spawn(store, "1,1,1").await;
    let forwarded = Receiver::start(Some(0)).await;
    let printed = Arc::new(Mutex::new(Vec::<u8>::new()));
    let out: Arc<Mutex<dyn std::io::Write + Send>> = printed.clone();
    let text = move || String::from_utf8(printed.lock().unwrap().clone()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = server::listen::ListenOptions {
        service_url: app.base.clone(),
        api_key: app.a.key.clone(),
        api_secret: app.a.secret.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        event_types: vec!["session.consumed".into(), "session.order_updated".into()],
        forward_to: Some(forwarded.url.clone()),
        json: false,
    };
    let listening = tokio::spawn(server::listen::run(options, out, async {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    while !text().contains("Listening on") {
        assert!(started.elapsed() < Duration::from_secs(10), "{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = app.signed(&app.a, "GET", ENDPOINTS, "").await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);

    let s = app.create_ok(&app.a, &btc(&user()), 201).await;
    app.get(s["widgetUrl"].as_str().unwrap()).await.expect(303);
    let got = forwarded
        .until("the forwarded event", |d| !d.is_empty())
        .await;
    assert_eq!(got[0].json()["type"], "session.consumed");
    assert!(got[0].header("webhook-id").starts_with("evt_"));
    assert!(got[0].header("webhook-signature").starts_with("v1,"));
    // The forward's answer is printed once it came back.
    let started = Instant::now();
    while !text().contains("  -> ") {
        assert!(started.elapsed() < Duration::from_secs(10), "{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shown = text();
    assert!(
        shown.contains(&format!("session.consumed {}", got[0].header("webhook-id")))
            && shown.contains(&format!("session {} CONSUMED", s["id"].as_str().unwrap())),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("-> {}: 204", forwarded.url)),
        "{shown}"
    );
    assert!(
        !shown.contains("session.created"),
        "only the types asked for: {shown}"
    );

    // A forged delivery to the listener is refused and not forwarded.
    let local = shown.split_whitespace().nth(2).unwrap().to_string();
    let forged = app
        .client
        .post(&local)
        .header("webhook-id", "evt_forged")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,AAAA")
        .body(r#"{"type":"session.consumed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(text().contains("refused a delivery that does not verify"));
    assert_eq!(forwarded.deliveries().len(), 1);

    stop.send(()).unwrap();
    listening.await.unwrap().unwrap();
    assert!(
        text().contains("Deleted webhook endpoint we_"),
        "{}",
        text()
    );
    let r = app.signed(&app.a, "GET", ENDPOINTS, "").await;
    assert_eq!(r.json()["data"], json!([]));
}

/// A burst to one endpoint is delivered as fast as the endpoint answers, not one batch per
/// poll: an attempt that ends frees its endpoint's slot for the next due delivery at once
/// (the poll is an hour here, so only that can wake the worker after the burst).
async fn a_burst_to_one_endpoint_drains_without_waiting_for_the_poll(store: Store) {
    let app = TestApp::spawn(
        store,
        &[
            ("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("WIDGET_SESSIONS_WEBHOOK_POLL_MS", "3600000"),
        ],
    )
    .await;
    let receiver = Receiver::start_with_delay(Some(0), Duration::from_millis(150)).await;
    register(&app, &app.a, &receiver.url, Some(&["session.created"])).await;
    // 12 events in a moment: more than the endpoint's 4 deliveries in flight per instance,
    // each taking 150 ms.
    for _ in 0..12 {
        app.create_ok(&app.a, &btc(&user()), 201).await;
    }
    let got = receiver.until("all 12 events", |d| d.len() >= 12).await;
    let ids: std::collections::HashSet<&str> = got.iter().map(|d| d.header("webhook-id")).collect();
    assert_eq!(ids.len(), 12);
}

/// Two applications whose ten endpoints each hang until the sender's timeout do not hold
/// up a third application's delivery: each application has at most
/// [`PER_APPLICATION`] deliveries in flight per instance, so the instance keeps room for
/// the others and the victim's event leaves at once, while the neighbours' are still in
/// flight.
async fn slow_neighbours_do_not_delay_another_applications_deliveries(store: Store) {
    /// The default cap of deliveries in flight per application and instance.
    const PER_APPLICATION: usize = 16;
    /// The sender's timeout: the neighbours' attempts stay in flight this long.
    const TIMEOUT: Duration = Duration::from_secs(10);
    let app = TestApp::spawn(
        store,
        &[
            ("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS", "10000"),
        ],
    )
    .await;
    let victim = app_c();
    // Ten endpoints for each noisy application, each answering only after the timeout.
    let mut noisy: Vec<(&Creds, Vec<Receiver>)> = Vec::new();
    for who in [&app.a, &app.b] {
        let mut receivers = Vec::new();
        for _ in 0..10 {
            let r = Receiver::start_with_delay(Some(0), Duration::from_secs(60)).await;
            register(&app, who, &r.url, None).await;
            receivers.push(r);
        }
        noisy.push((who, receivers));
    }
    let fast = Receiver::start(Some(0)).await;
    register(&app, &victim, &fast.url, None).await;
    // Four events each: 40 deliveries per noisy application, more than the instance's 64
    // slots together.
    let noisy_started = Instant::now();
    for (who, _) in &noisy {
        for _ in 0..4 {
            app.create_ok(who, &btc(&user()), 201).await;
        }
    }
    let in_flight =
        |receivers: &[Receiver]| -> usize { receivers.iter().map(|r| r.deliveries().len()).sum() };
    let started = Instant::now();
    while noisy
        .iter()
        .any(|(_, receivers)| in_flight(receivers) < PER_APPLICATION)
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the neighbours' deliveries did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let sent = Instant::now();
    let s = app.create_ok(&victim, &btc(&user()), 201).await;
    let got = fast.until("the victim's delivery", |d| !d.is_empty()).await;
    let latency = sent.elapsed();
    assert_eq!(got[0].json()["type"], "session.created");
    assert_eq!(got[0].json()["data"]["id"], s["id"]);
    // Within 1 s in normal operation; 2.5 s leaves room for a loaded machine. Without the
    // per-application cap the neighbours took every slot and the victim waited for their
    // timeout (about 9 s).
    assert!(
        latency < Duration::from_millis(2500),
        "the victim's event took {latency:?}"
    );
    // The neighbours' attempts are still in flight (none can have ended before the
    // timeout), each application at its cap, not beyond.
    assert!(
        noisy_started.elapsed() < TIMEOUT,
        "the test ran too slowly to tell"
    );
    for (who, receivers) in &noisy {
        assert_eq!(
            in_flight(receivers),
            PER_APPLICATION,
            "{} deliveries in flight at once",
            who.name
        );
    }
    println!("the victim's event was delivered {latency:?} after its create");
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Memory).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Postgres).await;
                }
            )*
        }
    };
}

both! {
    every_lifecycle_event_is_delivered_signed,
    a_failing_receiver_gets_the_event_on_the_third_attempt,
    a_receiver_down_past_the_schedule_ends_failed,
    a_rotated_secret_signs_alongside_the_old_one,
    a_second_rotation_keeps_the_secret_last_handed_out,
    a_rotation_can_end_the_previous_secret_at_once,
    an_endpoint_receives_only_its_event_types,
    endpoints_are_validated_listed_and_deleted,
    a_completed_order_reaches_the_session_and_the_partner,
    order_webhooks_are_verified,
    listen_shows_verified_events_and_cleans_up,
    a_burst_to_one_endpoint_drains_without_waiting_for_the_poll,
    slow_neighbours_do_not_delay_another_applications_deliveries,
}
