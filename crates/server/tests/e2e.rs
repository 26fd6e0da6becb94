//! End-to-end: the real router on a real socket, the in-process Transak emulator upstream,
//! every rule of the contract (docs/contract.md) over HTTP, on the in-memory store and on Postgres.
//!
//! Each test body is an `async fn(Store)`; the `e2e!` macro runs those about storage once
//! per store (`memory::name` and `postgres::name`) and those about the HTTP edge once. A body spawns its own instance with
//! [`TestApp::spawn`], so tests that need other settings (short TTL, rate limit) say so.
//! `postgres_only::*` runs two API instances on one database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::*;
use transak_emulator::FaultsUpdate;
use uuid::Uuid;

// ----------------------------------------------------------------------------------------
// Fixtures
// ----------------------------------------------------------------------------------------

const BTC_BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const BTC_P2PKH: &str = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2";
const ETH_EIP55: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const ETH_EIP55_2: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const ETH_EIP55_3: &str = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";
const ETH_EIP55_4: &str = "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb";
/// `ETH_EIP55` with the case of its last letter flipped: mixed case, wrong EIP-55 checksum.
const ETH_BAD_CHECKSUM: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";

/// A valid testnet bech32 address (BIP 173): refused on mainnet.
const BTC_TESTNET: &str = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7";

fn tx_eth(byte: &str) -> String {
    format!("0x{}", byte.repeat(32))
}

/// A real mainnet BOLT 11 invoice and its payment hash, from the domain crate's vectors.
fn bolt11() -> (String, String) {
    let vectors: Value =
        serde_json::from_str(include_str!("../../domain/tests/vectors/bolt11.json")).unwrap();
    let v = vectors["valid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["currency"] == "bc")
        .unwrap();
    (
        v["invoice"].as_str().unwrap().to_string(),
        v["payment_hash_hex"].as_str().unwrap().to_string(),
    )
}

/// A real testnet BOLT 11 invoice, from the same vectors.
fn testnet_invoice() -> String {
    let vectors: Value =
        serde_json::from_str(include_str!("../../domain/tests/vectors/bolt11.json")).unwrap();
    let v = vectors["valid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["currency"] == "tb")
        .unwrap();
    v["invoice"].as_str().unwrap().to_string()
}

fn user() -> String {
    Uuid::new_v4().to_string()
}

fn btc_address(user: &str) -> Value {
    json!({"userId": user, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_BECH32})
}

fn eth_address(user: &str, address: &str) -> Value {
    json!({"userId": user, "currency": "ETH", "network": "ETH", "counterpartyAddress": address})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

fn utc_now() -> DateTime<Utc> {
    SystemTime::now().into()
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

const USED: &str = "This link has already been used";
const CANCELLED: &str = "This link was cancelled";
const EXPIRED: &str = "This link has expired";

/// Opens a launch link; asserts the `303` and returns the upstream widget URL.
async fn open(app: &Http, widget_url: &str) -> String {
    let r = app.get(widget_url).await;
    r.expect(303);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let location = r.header("location").unwrap().to_string();
    assert!(location.contains("sessionId="), "{location}");
    location
}

/// Opens a launch link that must be gone: `410` with an HTML page.
/// `why` is what the page's heading says: the link was used, cancelled or has expired.
async fn assert_gone(app: &Http, widget_url: &str, why: &str) {
    let r = app.get(widget_url).await;
    r.expect(410);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        r.text.contains("<html") && r.text.contains(&format!("<h1>{why}</h1>")),
        "{}",
        r.text
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("location").is_none());
}

// ----------------------------------------------------------------------------------------
// Create and reuse (contract §2)
// ----------------------------------------------------------------------------------------

async fn create_returns_the_session_and_reuses_it(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    let before = SystemTime::now();
    let request = json!({"userId": u, "currency": "btc", "network": "btc", "counterpartyAddress": BTC_BECH32});

    let r = app.create(&app.a, &request).await;
    r.expect(201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let s = r.json();
    let id = s["id"].as_str().unwrap();
    let uuid = Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 7, "session ids are UUID v7: {id}");
    let location = r.header("location").unwrap().to_string();
    assert_eq!(
        location,
        format!("/api/v1/travel-rule/widget-sessions/{id}")
    );
    assert_eq!(
        keys(&s),
        [
            "counterparty",
            "createdAt",
            "currency",
            "expiresAt",
            "forceVerifyOwnership",
            "id",
            "network",
            "order",
            "reused",
            "status",
            "travelRule",
            "txHash",
            "userId",
            "widgetUrl"
        ],
        "{s}"
    );
    assert_eq!(s["status"], "ACTIVE");
    let widget_url = s["widgetUrl"].as_str().unwrap();
    let token = widget_url
        .strip_prefix(&format!("{}/w/", app.base))
        .unwrap_or_else(|| panic!("widgetUrl {widget_url} is not under {}/w/", app.base));
    assert_eq!(token.len(), 64, "a 48-byte base64url token");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let created = time(&s["createdAt"]);
    let expires = time(&s["expiresAt"]);
    assert_eq!(expires - created, chrono::TimeDelta::seconds(300));
    let before: DateTime<Utc> = before.into();
    assert!(
        created >= before - chrono::TimeDelta::seconds(1) && created <= utc_now(),
        "{created}"
    );
    assert_eq!(s["reused"], false);
    assert_eq!(s["forceVerifyOwnership"], false);
    assert_eq!(s["userId"], u);
    assert_eq!(s["currency"], "BTC");
    assert_eq!(s["network"], "BTC");
    assert_eq!(
        s["counterparty"],
        json!({"type": "ADDRESS", "address": BTC_BECH32})
    );
    assert_eq!(s["txHash"], Value::Null);

    // Upstream got what contract §5 says.
    let minted = app.emulator.sessions();
    assert_eq!(minted.len(), 1);
    let params = &minted[0].widget_params;
    assert_eq!(params["partnerOrderId"], id);
    assert_eq!(params["partnerCustomerId"], u.as_str());
    assert_eq!(params["walletAddress"], BTC_BECH32);
    assert_eq!(params["cryptoCurrencyCode"], "BTC");
    assert_eq!(params["apiKey"], transak_emulator::DEFAULT_API_KEY);
    assert!(
        params.contains_key("referrerDomain") && params.contains_key("network"),
        "{params:?}"
    );

    // The same request again: the same session, the same link.
    let r = app.create(&app.a, &request).await;
    r.expect(200);
    assert!(r.header("location").is_none());
    let again = r.json();
    assert_eq!(again["id"], id);
    assert_eq!(again["reused"], true);
    assert_eq!(again["status"], "ACTIVE");
    assert_eq!(again["createdAt"], s["createdAt"]);
    assert_eq!(again["expiresAt"], s["expiresAt"]);
    assert_eq!(
        again["widgetUrl"], s["widgetUrl"],
        "a session has one link, handed out again on reuse"
    );
    assert!(
        again["widgetUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/w/", app.base))
    );
    assert_eq!(app.emulator.stats().sessions_minted, 1);

    // The Location names the session.
    let r = app.signed(&app.a, "GET", &location, "").await;
    r.expect(200);
    let got = r.json();
    assert_eq!(got["id"], id);
    assert_eq!(got["status"], "ACTIVE");
    assert_eq!(got["counterparty"], s["counterparty"]);
    assert_eq!(got["expiresAt"], s["expiresAt"]);
    assert!(
        got.get("widgetUrl").is_none() && got.get("reused").is_none(),
        "{got}"
    );

    // Another subject is another session.
    let other = app.create_ok(&app.a, &btc_address(&user()), 201).await;
    assert_ne!(other["id"], id);
}

async fn create_for_a_business_with_lightning_and_tx_hashes(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let business = user();
    let hash_upper = "AB".repeat(32);
    let s = app
        .create_ok(
            &app.a,
            &json!({"businessId": business, "currency": "BTC", "network": "BTC", "paymentHash": hash_upper}),
            201,
        )
        .await;
    assert_eq!(s["businessId"], business);
    assert!(s.get("userId").is_none(), "{s}");
    assert_eq!(
        s["counterparty"],
        json!({"type": "LIGHTNING", "paymentHash": "ab".repeat(32)})
    );
    assert_eq!(s["txHash"], Value::Null);
    // No wallet address upstream for Lightning.
    let params = &app.emulator.sessions()[0].widget_params;
    assert!(!params.contains_key("walletAddress"), "{params:?}");
    assert_eq!(params["partnerCustomerId"], business.as_str());

    // An expired invoice is accepted; its expiry is reported.
    let (invoice, hash) = bolt11();
    let s = app
        .create_ok(
            &app.a,
            &json!({"businessId": business, "currency": "BTC", "network": "BTC", "invoice": invoice}),
            201,
        )
        .await;
    assert_eq!(s["counterparty"]["type"], "LIGHTNING");
    assert_eq!(s["counterparty"]["paymentHash"], hash);
    assert_eq!(s["counterparty"]["invoice"]["expired"], true, "{s}");
    assert!(time(&s["counterparty"]["invoice"]["expiresAt"]) < utc_now());

    // An on-chain session with a txHash: normalised lowercase, USDC on ETH.
    let s = app
        .create_ok(
            &app.a,
            &json!({"userId": user(), "currency": "usdc", "network": "eth", "counterpartyAddress": ETH_EIP55,
                "txHash": tx_eth("CD"), "forceVerifyOwnership": true}),
            201,
        )
        .await;
    assert_eq!(
        (s["currency"].as_str(), s["network"].as_str()),
        (Some("USDC"), Some("ETH"))
    );
    assert_eq!(s["txHash"], tx_eth("cd"));
    assert_eq!(s["forceVerifyOwnership"], true);
    assert_eq!(
        s["counterparty"],
        json!({"type": "ADDRESS", "address": ETH_EIP55})
    );
}

// ----------------------------------------------------------------------------------------
// Validation (contract §2, §4)
// ----------------------------------------------------------------------------------------

async fn validation_reports_each_problem_with_its_field(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    let (invoice, _) = bolt11();
    let cases: Vec<(Value, (String, String))> = vec![
        (
            json!({"userId": u, "currency": "BTC", "network": "ETH", "counterpartyAddress": BTC_BECH32}),
            fe("network", "currency_network_mismatch"),
        ),
        (
            json!({"currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_BECH32}),
            fe("userId|businessId", "exactly_one_subject"),
        ),
        (
            json!({"userId": u, "businessId": u, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_BECH32}),
            fe("userId|businessId", "exactly_one_subject"),
        ),
        (
            eth_address(&u, ETH_BAD_CHECKSUM),
            fe("counterpartyAddress", "invalid_address_checksum"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC", "counterpartyAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"}),
            fe("counterpartyAddress", "invalid_address_checksum"),
        ),
        (
            json!({"userId": u, "currency": "ETH", "network": "ETH", "paymentHash": "ab".repeat(32)}),
            fe("paymentHash", "lightning_requires_btc"),
        ),
        (
            json!({"userId": u, "currency": "USDT", "network": "ETH", "invoice": invoice}),
            fe("invoice", "lightning_requires_btc"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC", "paymentHash": "ab".repeat(32), "txHash": "cd".repeat(32)}),
            fe("txHash", "tx_hash_with_lightning"),
        ),
        (
            with(btc_address(&u), "colour", json!("blue")),
            fe("colour", "unknown_field"),
        ),
        (
            with(btc_address(&u), "forceVerifyOwnership", json!("true")),
            fe("forceVerifyOwnership", "invalid_type"),
        ),
        (
            with(btc_address(&u), "userId", json!("not-a-uuid")),
            fe("userId", "invalid_uuid"),
        ),
        (
            json!({"userId": u, "currency": "DOGE", "network": "BTC", "counterpartyAddress": BTC_BECH32}),
            fe("currency", "unsupported_currency"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC", "paymentHash": "xyz"}),
            fe("paymentHash", "invalid_payment_hash"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC", "invoice": "lnbc1notaninvoice"}),
            fe("invoice", "invalid_invoice"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC"}),
            fe(
                "counterpartyAddress|paymentHash|invoice",
                "exactly_one_counterparty",
            ),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_BECH32, "paymentHash": "ab".repeat(32)}),
            fe(
                "counterpartyAddress|paymentHash|invoice",
                "exactly_one_counterparty",
            ),
        ),
        (
            with(btc_address(&u), "txHash", json!("0x1234")),
            fe("txHash", "invalid_tx_hash"),
        ),
        (
            eth_address(&u, "0x1234"),
            fe("counterpartyAddress", "invalid_address"),
        ),
        (
            json!({"userId": u, "network": "BTC", "counterpartyAddress": BTC_BECH32}),
            fe("currency", "required"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "LIGHTNING", "paymentHash": "ab".repeat(32)}),
            fe("network", "unsupported_network"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_TESTNET}),
            fe("counterpartyAddress", "address_network_mismatch"),
        ),
        (
            json!({"userId": u, "currency": "BTC", "network": "BTC", "invoice": testnet_invoice()}),
            fe("invoice", "invoice_network_mismatch"),
        ),
    ];
    for (body, expected) in cases {
        let r = app.create(&app.a, &body).await;
        let errors = validation_errors(&r);
        assert!(
            errors.contains(&expected),
            "{body}: expected {expected:?} in {errors:?}"
        );
    }
    assert_eq!(
        app.emulator.stats().session_calls,
        0,
        "nothing invalid reaches upstream"
    );
    let list = app.list(&app.a, "").await;
    list.expect(200);
    assert_eq!(list.json()["data"], json!([]));
}

async fn validation_reports_every_problem_at_once(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let r = app
        .create(
            &app.a,
            &json!({"currency": "BTC", "network": "ETH", "forceVerifyOwnership": "yes", "extra": 1}),
        )
        .await;
    let errors = validation_errors(&r);
    for expected in [
        fe("userId|businessId", "exactly_one_subject"),
        fe("network", "currency_network_mismatch"),
        fe(
            "counterpartyAddress|paymentHash|invoice",
            "exactly_one_counterparty",
        ),
        fe("forceVerifyOwnership", "invalid_type"),
        fe("extra", "unknown_field"),
    ] {
        assert!(
            errors.contains(&expected),
            "expected {expected:?} in {errors:?}"
        );
    }
    assert_eq!(errors.len(), 5, "{errors:?}");
}

async fn malformed_bodies_are_problems(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    for body in [
        r#"{"userId": "#,
        "[1, 2]",
        "not json",
        r#"{"currency": "BTC", "currency": "BTC"}"#,
        "",
    ] {
        let req = server::request_command::sign(
            &app.base,
            "POST",
            SESSIONS,
            body,
            &app.a.key,
            &app.a.secret,
        );
        let r = app
            .send(
                app.client
                    .post(&req.url)
                    .header("api-key", &req.api_key)
                    .header("authorization", &req.authorization)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        let errors = validation_errors(&r);
        assert!(
            errors.iter().any(|(_, c)| c == "invalid_json"),
            "{body:?}: {errors:?}"
        );
    }
    // An empty object is JSON: every missing member is reported instead.
    let errors = validation_errors(&app.signed(&app.a, "POST", SESSIONS, "{}").await);
    for expected in [
        fe("userId|businessId", "exactly_one_subject"),
        fe("currency", "required"),
        fe("network", "required"),
        fe(
            "counterpartyAddress|paymentHash|invoice",
            "exactly_one_counterparty",
        ),
    ] {
        assert!(
            errors.contains(&expected),
            "expected {expected:?} in {errors:?}"
        );
    }

    // Wrong content type: 415.
    let body = btc_address(&user()).to_string();
    let sign = || {
        server::request_command::sign(
            &app.base,
            "POST",
            SESSIONS,
            &body,
            &app.a.key,
            &app.a.secret,
        )
    };
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let req = sign();
        let mut b = app
            .client
            .post(&req.url)
            .header("api-key", &req.api_key)
            .header("authorization", &req.authorization)
            .body(body.clone());
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        assert_problem(&app.send(b).await, 415, "unsupported_media_type");
    }
    // A JSON content type with parameters is fine.
    let req = sign();
    let r = app
        .send(
            app.client
                .post(&req.url)
                .header("api-key", &req.api_key)
                .header("authorization", &req.authorization)
                .header("content-type", "application/json; charset=utf-8")
                .body(body.clone()),
        )
        .await;
    r.expect(201);

    // Over 64 KiB: 413.
    let big = json!({"userId": user(), "pad": "x".repeat(65 * 1024)}).to_string();
    let r = app.signed(&app.a, "POST", SESSIONS, &big).await;
    assert_problem(&r, 413, "payload_too_large");
    // Exactly 64 KiB is read (and then judged on its content).
    let exact = json!({"userId": user(), "pad": ""}).to_string();
    let exact = json!({"userId": user(), "pad": "x".repeat(64 * 1024 - exact.len())}).to_string();
    assert_eq!(exact.len(), 64 * 1024);
    let errors = validation_errors(&app.signed(&app.a, "POST", SESSIONS, &exact).await);
    assert!(errors.contains(&fe("pad", "unknown_field")), "{errors:?}");
    // Over 64 KiB without a Content-Length (chunked): 413 as well.
    let head = chunked_post(&app, &big).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    assert_eq!(app.emulator.stats().sessions_minted, 1);
}

/// Sends a signed create with a chunked body over a raw socket (reqwest always sends a
/// Content-Length for an in-memory body); returns what the server answered, as text.
async fn chunked_post(app: &TestApp, body: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let req =
        server::request_command::sign(&app.base, "POST", SESSIONS, body, &app.a.key, &app.a.secret);
    let host = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut request = format!(
        "POST /api/v1{SESSIONS} HTTP/1.1\r\nhost: {host}\r\napi-key: {}\r\nauthorization: {}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        req.api_key, req.authorization
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(8 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (and close) before it has read everything: ignore write errors.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

// ----------------------------------------------------------------------------------------
// The reuse key (contract §2)
// ----------------------------------------------------------------------------------------

async fn reuse_key_treats_an_invoice_as_its_payment_hash(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    let (invoice, hash) = bolt11();
    let lightning = |field: &str, value: &str| json!({"userId": u, "currency": "BTC", "network": "BTC", field: value});

    let s = app
        .create_ok(&app.a, &lightning("invoice", &invoice), 201)
        .await;
    let id = s["id"].clone();
    assert_eq!(s["counterparty"]["paymentHash"], hash);
    for (field, value) in [
        ("paymentHash", hash.clone()),
        ("paymentHash", hash.to_uppercase()),
        ("invoice", invoice.clone()),
        ("invoice", format!("lightning:{invoice}")),
        ("invoice", format!("LIGHTNING:{}", invoice.to_uppercase())),
    ] {
        let again = app.create_ok(&app.a, &lightning(field, &value), 200).await;
        assert_eq!(again["id"], id, "{field}={value}");
        assert_eq!(again["reused"], true);
    }
    // The other way round, for another subject: the hash first, then the invoice.
    let v = user();
    let first = app
        .create_ok(
            &app.a,
            &json!({"userId": v, "currency": "BTC", "network": "BTC", "paymentHash": hash}),
            201,
        )
        .await;
    let second = app
        .create_ok(
            &app.a,
            &json!({"userId": v, "currency": "BTC", "network": "BTC", "invoice": invoice}),
            200,
        )
        .await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.emulator.stats().sessions_minted, 2);
}

async fn reuse_key_normalises_addresses(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    // EVM: case-insensitive; stored in its EIP-55 form.
    let s = app
        .create_ok(&app.a, &eth_address(&u, &ETH_EIP55.to_lowercase()), 201)
        .await;
    assert_eq!(s["counterparty"]["address"], ETH_EIP55);
    for address in [
        ETH_EIP55.to_string(),
        format!("0x{}", ETH_EIP55[2..].to_uppercase()),
    ] {
        let again = app.create_ok(&app.a, &eth_address(&u, &address), 200).await;
        assert_eq!(again["id"], s["id"], "{address}");
    }
    // The same address on another EVM asset is another session.
    let usdt = app
        .create_ok(
            &app.a,
            &json!({"userId": u, "currency": "USDT", "network": "ETH", "counterpartyAddress": ETH_EIP55}),
            201,
        )
        .await;
    assert_ne!(usdt["id"], s["id"]);

    // bech32: upper and lower case are the same address.
    let lower = app.create_ok(&app.a, &btc_address(&u), 201).await;
    let upper = app
        .create_ok(
            &app.a,
            &json!({"userId": u, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_BECH32.to_uppercase()}),
            200,
        )
        .await;
    assert_eq!(upper["id"], lower["id"]);
    assert_eq!(upper["counterparty"]["address"], BTC_BECH32);
    // A base58 address is kept as is, and is another counterparty.
    let p2pkh = app
        .create_ok(
            &app.a,
            &json!({"userId": u, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_P2PKH}),
            201,
        )
        .await;
    assert_eq!(p2pkh["counterparty"]["address"], BTC_P2PKH);
    assert_ne!(p2pkh["id"], lower["id"]);

    // A business with the same UUID as a user is another subject.
    let business = app
        .create_ok(
            &app.a,
            &json!({"businessId": u, "currency": "BTC", "network": "BTC", "counterpartyAddress": BTC_BECH32}),
            201,
        )
        .await;
    assert_ne!(business["id"], lower["id"]);
    assert_eq!(business["businessId"], u);
}

async fn reuse_key_scopes_the_tx_hash(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    let plain = app
        .create_ok(&app.a, &eth_address(&u, ETH_EIP55), 201)
        .await;
    let held = app
        .create_ok(
            &app.a,
            &with(eth_address(&u, ETH_EIP55), "txHash", json!(tx_eth("ab"))),
            201,
        )
        .await;
    assert_ne!(
        held["id"], plain["id"],
        "a session with a txHash never serves one without"
    );
    assert_eq!(held["txHash"], tx_eth("ab"));
    // The same hash in another case: the same session.
    let again = app
        .create_ok(
            &app.a,
            &with(eth_address(&u, ETH_EIP55), "txHash", json!(tx_eth("AB"))),
            200,
        )
        .await;
    assert_eq!(again["id"], held["id"]);
    // Another hash: another session.
    let other = app
        .create_ok(
            &app.a,
            &with(eth_address(&u, ETH_EIP55), "txHash", json!(tx_eth("ef"))),
            201,
        )
        .await;
    assert_ne!(other["id"], held["id"]);
    // And without one: the plain session, never the held ones.
    let back = app
        .create_ok(&app.a, &eth_address(&u, ETH_EIP55), 200)
        .await;
    assert_eq!(back["id"], plain["id"]);
    assert_eq!(back["txHash"], Value::Null);
}

async fn force_verify_ownership_is_upgrade_only(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let request = btc_address(&user());
    let s = app.create_ok(&app.a, &request, 201).await;
    assert_eq!(s["forceVerifyOwnership"], false);
    let up = app
        .create_ok(
            &app.a,
            &with(request.clone(), "forceVerifyOwnership", json!(true)),
            200,
        )
        .await;
    assert_eq!(
        (up["id"].clone(), up["forceVerifyOwnership"].clone()),
        (s["id"].clone(), json!(true))
    );
    let down = app
        .create_ok(
            &app.a,
            &with(request.clone(), "forceVerifyOwnership", json!(false)),
            200,
        )
        .await;
    assert_eq!(
        (down["id"].clone(), down["forceVerifyOwnership"].clone()),
        (s["id"].clone(), json!(true))
    );
    let omitted = app.create_ok(&app.a, &request, 200).await;
    assert_eq!(omitted["forceVerifyOwnership"], true);
    let got = app.get_session(&app.a, s["id"].as_str().unwrap()).await;
    got.expect(200);
    assert_eq!(got.json()["forceVerifyOwnership"], true);
    assert_eq!(app.emulator.stats().sessions_minted, 1);
}

// ----------------------------------------------------------------------------------------
// Tenancy and authentication (contract §3, §6)
// ----------------------------------------------------------------------------------------

async fn applications_never_see_each_other(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    let request = btc_address(&u);
    let mine = app.create_ok(&app.a, &request, 201).await;
    let id = mine["id"].as_str().unwrap();

    assert_problem(&app.get_session(&app.b, id).await, 404, "session_not_found");
    assert_problem(&app.cancel(&app.b, id).await, 404, "session_not_found");
    // Unknown ids look exactly the same.
    let unknown = app.get_session(&app.b, &Uuid::now_v7().to_string()).await;
    assert_problem(&unknown, 404, "session_not_found");
    assert_problem(
        &app.get_session(&app.b, "not-a-uuid").await,
        404,
        "session_not_found",
    );

    // B's identical request is B's own session.
    let theirs = app.create_ok(&app.b, &request, 201).await;
    assert_ne!(theirs["id"], mine["id"]);

    // Lists are scoped.
    let a_list = app.list(&app.a, &format!("userId={u}")).await;
    a_list.expect(200);
    assert_eq!(ids(&a_list.json()), [id]);
    let b_list = app.list(&app.b, "").await;
    b_list.expect(200);
    assert_eq!(ids(&b_list.json()), [theirs["id"].as_str().unwrap()]);

    // B's cancel did nothing: A's session is still active, and B cancelling its own does
    // not touch A's.
    app.cancel(&app.b, theirs["id"].as_str().unwrap())
        .await
        .expect(200);
    let still = app.get_session(&app.a, id).await;
    still.expect(200);
    assert_eq!(still.json()["status"], "ACTIVE");
}

async fn authentication_failures_are_401_with_a_challenge(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let url = format!("{}/api/v1{SESSIONS}", app.base);
    let path = SESSIONS;
    let a = &app.a;

    // Missing headers.
    assert_unauthorized(&app.send(app.client.get(&url)).await, "missing_credentials");
    let good =
        client::signing::authorization_header(a.secret.as_bytes(), now_ms(), "GET", path, b"");
    assert_unauthorized(
        &app.send(app.client.get(&url).header("authorization", &good))
            .await,
        "missing_credentials",
    );
    assert_unauthorized(
        &app.send(app.client.get(&url).header("api-key", &a.key))
            .await,
        "missing_credentials",
    );
    assert_unauthorized(
        &app.send(
            app.client
                .get(&url)
                .header("api-key", "")
                .header("authorization", &good),
        )
        .await,
        "missing_credentials",
    );

    // Malformed Authorization.
    for bad in [
        "Bearer abc".to_string(),
        "hmac 1:00".to_string(),
        "HMAC ".to_string(),
        format!("HMAC {}", now_ms()),
        format!("HMAC {}:{}", now_ms(), "ab".repeat(31)),
        format!("HMAC {}:{}", now_ms(), "zz".repeat(32)),
        format!("HMAC -{}:{}", now_ms(), "ab".repeat(32)),
        format!("HMAC 0{}:{}", now_ms(), "ab".repeat(32)),
    ] {
        let r = app
            .send(
                app.client
                    .get(&url)
                    .header("api-key", &a.key)
                    .header("authorization", &bad),
            )
            .await;
        let p = assert_unauthorized(&r, "malformed_authorization");
        // The detail never repeats the header (it may be a secret pasted by mistake).
        if bad.len() > 16 {
            assert!(!p["detail"].as_str().unwrap().contains(&bad[5..]), "{p}");
        }
    }

    // Stale (and future) timestamps, correctly signed.
    for skew in [-6 * 60_000, 6 * 60_000] {
        let auth = client::signing::authorization_header(
            a.secret.as_bytes(),
            now_ms() + skew,
            "GET",
            path,
            b"",
        );
        let r = app
            .send(
                app.client
                    .get(&url)
                    .header("api-key", &a.key)
                    .header("authorization", auth),
            )
            .await;
        assert_unauthorized(&r, "stale_timestamp");
    }
    // Four minutes off is still fine.
    let auth = client::signing::authorization_header(
        a.secret.as_bytes(),
        now_ms() - 4 * 60_000,
        "GET",
        path,
        b"",
    );
    app.send(
        app.client
            .get(&url)
            .header("api-key", &a.key)
            .header("authorization", auth),
    )
    .await
    .expect(200);

    // A wrong signature and an unknown key are indistinguishable.
    let wrong_secret =
        client::signing::authorization_header(b"not-the-secret-at-all", now_ms(), "GET", path, b"");
    let r1 = app
        .send(
            app.client
                .get(&url)
                .header("api-key", &a.key)
                .header("authorization", &wrong_secret),
        )
        .await;
    let p1 = assert_unauthorized(&r1, "invalid_credentials");
    let r2 = app
        .send(
            app.client
                .get(&url)
                .header("api-key", "no-such-key-000000000")
                .header("authorization", &good),
        )
        .await;
    let p2 = assert_unauthorized(&r2, "invalid_credentials");
    assert_eq!(p1["detail"], p2["detail"]);
    // B's key with A's signature.
    let r = app
        .send(
            app.client
                .get(&url)
                .header("api-key", &app.b.key)
                .header("authorization", &good),
        )
        .await;
    assert_unauthorized(&r, "invalid_credentials");
}

async fn signatures_cover_method_path_query_and_body(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let a = &app.a;
    let u = user();
    let base = format!("{}/api/v1", app.base);
    let get = |path: &str, auth: String| {
        app.client
            .get(format!("{base}{path}"))
            .header("api-key", &a.key)
            .header("authorization", auth)
    };
    let sig = |method: &str, path: &str, body: &[u8]| {
        client::signing::authorization_header(a.secret.as_bytes(), now_ms(), method, path, body)
    };

    // GET with an empty body signs `{}`: both spellings verify.
    let query = format!("{SESSIONS}?userId={u}");
    assert_eq!(
        client::signing::authorization_header(a.secret.as_bytes(), 1, "GET", &query, b""),
        client::signing::authorization_header(a.secret.as_bytes(), 1, "GET", &query, b"{}")
    );
    app.send(get(&query, sig("GET", &query, b"{}")))
        .await
        .expect(200);
    // The same signature twice would be a replay: sign the second one a moment later.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    app.send(get(&query, sig("GET", &query, b"")))
        .await
        .expect(200);

    // Another query, another path, another method, a path with /api/v1: refused.
    let other_query = format!("{SESSIONS}?userId={}", user());
    assert_unauthorized(
        &app.send(get(&query, sig("GET", &other_query, b""))).await,
        "invalid_credentials",
    );
    assert_unauthorized(
        &app.send(get(&query, sig("GET", SESSIONS, b""))).await,
        "invalid_credentials",
    );
    assert_unauthorized(
        &app.send(get(&query, sig("POST", &query, b""))).await,
        "invalid_credentials",
    );
    assert_unauthorized(
        &app.send(get(&query, sig("GET", &format!("/api/v1{query}"), b"")))
            .await,
        "invalid_credentials",
    );

    // Another body.
    let body = btc_address(&u).to_string();
    let signed_for = with(btc_address(&u), "forceVerifyOwnership", json!(true)).to_string();
    let r = app
        .send(
            app.client
                .post(format!("{base}{SESSIONS}"))
                .header("api-key", &a.key)
                .header(
                    "authorization",
                    sig("POST", SESSIONS, signed_for.as_bytes()),
                )
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
    assert_unauthorized(&r, "invalid_credentials");
    // The same request, correctly signed, with an uppercase-hex signature, goes through.
    let auth = sig("POST", SESSIONS, body.as_bytes());
    let (ts, hex) = auth.split_once(':').unwrap();
    let r = app
        .send(
            app.client
                .post(format!("{base}{SESSIONS}"))
                .header("api-key", &a.key)
                .header("authorization", format!("{ts}:{}", hex.to_uppercase()))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    r.expect(201);
    assert_eq!(app.emulator.stats().sessions_minted, 1);
}

async fn a_disabled_application_is_refused(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let c = app_c();
    app.state
        .0
        .applications
        .set_enabled(c.name, false)
        .await
        .unwrap();
    let r = app.create(&c, &btc_address(&user())).await;
    assert_problem(&r, 403, "application_disabled");
    assert_problem(&app.list(&c, "").await, 403, "application_disabled");
    // A wrong signature on a disabled app is still just invalid credentials.
    let mut wrong = c.clone();
    wrong.secret = "wrong-secret-0000000000".into();
    assert_unauthorized(&app.list(&wrong, "").await, "invalid_credentials");
    assert_eq!(app.emulator.stats().session_calls, 0);
}

// ----------------------------------------------------------------------------------------
// Launch links (contract §3)
// ----------------------------------------------------------------------------------------

async fn a_launch_link_opens_once(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let s = app.create_ok(&app.a, &btc_address(&user()), 201).await;
    let link = s["widgetUrl"].as_str().unwrap();
    let id = s["id"].as_str().unwrap();

    // HEAD does not consume and does not reveal the upstream URL.
    for _ in 0..2 {
        let r = app.head(link).await;
        r.expect(200);
        assert!(r.header("location").is_none());
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let got = app.get_session(&app.a, id).await;
    assert_eq!(got.json()["status"], "ACTIVE");

    // The first GET: 303 to the emulator's widget, which opens.
    let widget = open(&app, link).await;
    let minted = app.emulator.sessions();
    assert_eq!(minted.len(), 1);
    assert!(
        widget.starts_with(&app.emulator.widget_base_url())
            && widget.contains(&format!("sessionId={}", minted[0].session_id)),
        "{widget}"
    );
    let page = app.client.get(&widget).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(app.emulator.sessions()[0].opened);

    // Consumed.
    let got = app.get_session(&app.a, id).await;
    got.expect(200);
    let got = got.json();
    assert_eq!(got["status"], "CONSUMED");
    assert!(got["consumedAt"].is_string(), "{got}");
    // The second GET, and HEAD now: gone.
    assert_gone(&app, link, USED).await;
    app.head(link).await.expect(410);
    // A consumed session is never reused.
    let next = app
        .create_ok(&app.a, &btc_address(got["userId"].as_str().unwrap()), 201)
        .await;
    assert_ne!(next["id"], id);

    // Unknown tokens: 404 HTML, whether malformed or well formed.
    let token = token_of(link);
    let last = token.chars().last().unwrap();
    let forged = format!(
        "{}{}",
        &token[..token.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    for unknown in ["nope".to_string(), forged, "A".repeat(64)] {
        let r = app.get(&format!("/w/{unknown}")).await;
        r.expect(404);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        app.head(&format!("/w/{unknown}")).await.expect(404);
    }
}

async fn a_reused_sessions_link_is_the_same_and_opens_once(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let request = btc_address(&user());
    let first = app.create_ok(&app.a, &request, 201).await;
    let second = app.create_ok(&app.a, &request, 200).await;
    assert_eq!(first["id"], second["id"]);
    let link = first["widgetUrl"].as_str().unwrap();
    assert_eq!(second["widgetUrl"].as_str().unwrap(), link);

    // The link opens the one upstream session...
    let widget = open(&app, link).await;
    let minted = app.emulator.sessions();
    assert_eq!(minted.len(), 1);
    assert!(
        widget.contains(&format!("sessionId={}", minted[0].session_id)),
        "{widget}"
    );
    // ... once.
    assert_gone(&app, link, USED).await;
    // A link is not a secret that the database could leak: it is the session id and a MAC.
    // A forged one (another session's id, this MAC) opens nothing.
    let token = token_of(link);
    let other = app.create_ok(&app.a, &btc_address(&user()), 201).await;
    let other_token = token_of(other["widgetUrl"].as_str().unwrap());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = base64::Engine::decode(&b64, other_token).unwrap();
    bytes[32..].copy_from_slice(&base64::Engine::decode(&b64, token).unwrap()[32..]);
    let forged = base64::Engine::encode(&b64, bytes);
    assert_ne!(forged, other_token);
    app.get(&format!("/w/{forged}")).await.expect(404);
    app.head(other["widgetUrl"].as_str().unwrap())
        .await
        .expect(200);
}

/// A captured signed request replayed byte for byte is refused (`401 replayed_request`):
/// a create (before and after its link was opened: no new session, no new mint), a read,
/// a cancel, and a create that was refused. A timestamp more than 30 s ahead is stale.
async fn a_replayed_request_is_refused(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let body = btc_address(&user()).to_string();
    let create = app.signed_request(&app.a.key, &app.a.secret, "POST", SESSIONS, &body);
    let replay = create.try_clone().unwrap();
    let replay2 = create.try_clone().unwrap();
    let first = app.send(create).await;
    first.expect(201);
    assert_unauthorized(&app.send(replay).await, "replayed_request");
    open(&app, first.json()["widgetUrl"].as_str().unwrap()).await;
    assert_unauthorized(&app.send(replay2).await, "replayed_request");
    assert_eq!(app.emulator.stats().sessions_minted, 1, "no second mint");

    let id = first.json()["id"].as_str().unwrap().to_string();
    for (method, path) in [
        ("GET", format!("{SESSIONS}/{id}")),
        ("GET", format!("{SESSIONS}?limit=1")),
        ("POST", format!("{SESSIONS}/{id}/cancel")),
    ] {
        let r = app.signed_request(&app.a.key, &app.a.secret, method, &path, "");
        let again = r.try_clone().unwrap();
        let ok = app.send(r).await;
        assert!(ok.status.is_success() || ok.code() == 409, "{ok:?}");
        assert_unauthorized(&app.send(again).await, "replayed_request");
    }

    // A refused create is accepted once too.
    let bad = app.signed_request(&app.a.key, &app.a.secret, "POST", SESSIONS, "{}");
    let again = bad.try_clone().unwrap();
    assert_problem(&app.send(bad).await, 400, "validation_failed");
    assert_unauthorized(&app.send(again).await, "replayed_request");

    // Another application's identical bytes are not a replay of this one's.
    let path = format!("{SESSIONS}?limit=1");
    let ms = now_ms();
    let for_a =
        client::signing::authorization_header(app.a.secret.as_bytes(), ms, "GET", &path, b"");
    let for_b =
        client::signing::authorization_header(app.b.secret.as_bytes(), ms, "GET", &path, b"");
    let url = format!("{}/api/v1{path}", app.base);
    for (who, auth) in [(&app.a, &for_a), (&app.b, &for_b)] {
        app.send(
            app.client
                .get(&url)
                .header("api-key", &who.key)
                .header("authorization", auth),
        )
        .await
        .expect(200);
    }

    // Ahead of the server's clock: 30 s is accepted, more is not.
    for (ahead, status) in [(25_000, 200), (31_000, 401)] {
        let auth = client::signing::authorization_header(
            app.a.secret.as_bytes(),
            now_ms() + ahead,
            "GET",
            &path,
            b"",
        );
        let r = app
            .send(
                app.client
                    .get(&url)
                    .header("api-key", &app.a.key)
                    .header("authorization", auth),
            )
            .await;
        assert_eq!(r.code(), status, "{ahead} ms ahead: {r:?}");
        if status == 401 {
            assert_unauthorized(&r, "stale_timestamp");
        }
    }
}

async fn cancel_is_idempotent_and_ends_the_link(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let request = btc_address(&user());
    let s = app.create_ok(&app.a, &request, 201).await;
    let id = s["id"].as_str().unwrap();
    let second_link = app.create_ok(&app.a, &request, 200).await["widgetUrl"].clone();

    let r = app.cancel(&app.a, id).await;
    r.expect(200);
    let c = r.json();
    assert_eq!(c["id"], id);
    assert_eq!(c["status"], "CANCELLED");
    assert!(c["cancelledAt"].is_string(), "{c}");
    let again = app.cancel(&app.a, id).await;
    again.expect(200);
    assert_eq!(again.json()["status"], "CANCELLED");
    assert_eq!(again.json()["cancelledAt"], c["cancelledAt"]);
    assert_gone(&app, s["widgetUrl"].as_str().unwrap(), CANCELLED).await;
    assert_gone(&app, second_link.as_str().unwrap(), CANCELLED).await;
    app.head(second_link.as_str().unwrap()).await.expect(410);
    assert_eq!(
        app.get_session(&app.a, id).await.json()["status"],
        "CANCELLED"
    );
    // Never reused.
    let next = app.create_ok(&app.a, &request, 201).await;
    assert_ne!(next["id"], id);

    // A consumed session cannot be cancelled.
    open(&app, next["widgetUrl"].as_str().unwrap()).await;
    let r = app.cancel(&app.a, next["id"].as_str().unwrap()).await;
    assert_problem(&r, 409, "session_not_active");
    assert_eq!(
        app.get_session(&app.a, next["id"].as_str().unwrap())
            .await
            .json()["status"],
        "CONSUMED"
    );

    // Unknown.
    assert_problem(
        &app.cancel(&app.a, &Uuid::now_v7().to_string()).await,
        404,
        "session_not_found",
    );
    assert_problem(&app.cancel(&app.a, "nope").await, 404, "session_not_found");
}

async fn sessions_expire(store: Store) {
    let app = TestApp::spawn(
        store,
        &[
            ("WIDGET_SESSIONS_SESSION_TTL_SECS", "2"),
            ("WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS", "1"),
        ],
    )
    .await;
    let u = user();
    let k1 = btc_address(&u);
    let k2 = eth_address(&u, ETH_EIP55);
    let s1 = app.create_ok(&app.a, &k1, 201).await;
    let s2 = app.create_ok(&app.a, &k2, 201).await;
    assert_eq!(
        time(&s1["expiresAt"]) - time(&s1["createdAt"]),
        chrono::TimeDelta::seconds(2)
    );
    assert_eq!(app.create_ok(&app.a, &k2, 200).await["id"], s2["id"]);
    // Sessions that end before their expiry keep saying how they ended.
    let s3 = app
        .create_ok(&app.a, &eth_address(&u, ETH_EIP55_2), 201)
        .await;
    open(&app, s3["widgetUrl"].as_str().unwrap()).await;
    let s4 = app
        .create_ok(&app.a, &eth_address(&u, ETH_EIP55_3), 201)
        .await;
    app.cancel(&app.a, s4["id"].as_str().unwrap())
        .await
        .expect(200);

    // Less than the least remaining life: still ACTIVE, but not reused any more.
    app.clock.advance(Duration::from_millis(1_200));
    let s2b = app.create_ok(&app.a, &k2, 201).await;
    assert_ne!(s2b["id"], s2["id"]);
    assert_eq!(
        app.get_session(&app.a, s2["id"].as_str().unwrap())
            .await
            .json()["status"],
        "ACTIVE"
    );

    // Past expiresAt (2 s after creation).
    app.clock.advance(Duration::from_millis(900));
    let id1 = s1["id"].as_str().unwrap();
    let got = app.get_session(&app.a, id1).await;
    got.expect(200);
    assert_eq!(got.json()["status"], "EXPIRED");
    assert_gone(&app, s1["widgetUrl"].as_str().unwrap(), EXPIRED).await;
    app.head(s1["widgetUrl"].as_str().unwrap())
        .await
        .expect(410);
    assert_problem(&app.cancel(&app.a, id1).await, 409, "session_not_active");
    let id = |s: &Value| s["id"].as_str().unwrap().to_string();
    for (status, expected) in [
        ("EXPIRED", vec![id(&s2), id(&s1)]),
        ("ACTIVE", vec![id(&s2b)]),
        ("CONSUMED", vec![id(&s3)]),
        ("CANCELLED", vec![id(&s4)]),
    ] {
        let r = app
            .list(&app.a, &format!("userId={u}&status={status}"))
            .await;
        r.expect(200);
        assert_eq!(ids(&r.json()), expected, "status={status}: {}", r.text);
    }
    for (s, status) in [(&s3, "CONSUMED"), (&s4, "CANCELLED")] {
        let got = app.get_session(&app.a, s["id"].as_str().unwrap()).await;
        assert_eq!(got.json()["status"], status);
    }
    assert_gone(&app, s3["widgetUrl"].as_str().unwrap(), USED).await;
    assert_gone(&app, s4["widgetUrl"].as_str().unwrap(), CANCELLED).await;
    let s1b = app.create_ok(&app.a, &k1, 201).await;
    assert_ne!(s1b["id"], s1["id"]);
    assert_eq!(s1b["status"], "ACTIVE");
}

async fn a_launch_link_opens_once_under_concurrency(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let s = app.create_ok(&app.a, &btc_address(&user()), 201).await;
    let link = s["widgetUrl"].as_str().unwrap().to_string();
    let mut tasks = tokio::task::JoinSet::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    for _ in 0..16 {
        let (http, link, barrier) = (app.http.clone(), link.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            http.get(&link).await.status.as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort_unstable();
    let mut expected = vec![303];
    expected.extend([410; 15]);
    assert_eq!(statuses, expected);
}

async fn launch_and_cancel_race_to_one_outcome(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    for address in [ETH_EIP55, ETH_EIP55_2, ETH_EIP55_3, ETH_EIP55_4] {
        let s = app.create_ok(&app.a, &eth_address(&u, address), 201).await;
        let id = s["id"].as_str().unwrap();
        let (launch, cancel) = tokio::join!(
            app.get(s["widgetUrl"].as_str().unwrap()),
            app.cancel(&app.a, id)
        );
        let status = app.get_session(&app.a, id).await.json()["status"].clone();
        match (launch.status.as_u16(), cancel.status.as_u16()) {
            (303, 409) => assert_eq!(status, "CONSUMED"),
            (410, 200) => assert_eq!(status, "CANCELLED"),
            other => panic!(
                "inconsistent outcome {other:?}: launch {}, cancel {}",
                launch.text, cancel.text
            ),
        }
    }
}

async fn every_ledger_pair_mints_upstream(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    let cases = [
        ("btc", "btc", BTC_BECH32, "bitcoin"),
        ("eth", "eth", ETH_EIP55, "ethereum"),
        ("pol", "polygon", ETH_EIP55, "polygon"),
        (
            "sol",
            "sol",
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
            "solana",
        ),
        ("bnb", "bsc", ETH_EIP55, "bsc"),
        ("trx", "tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "tron"),
        ("usdc", "eth", ETH_EIP55, "ethereum"),
        ("usdt", "eth", ETH_EIP55, "ethereum"),
    ];
    for (i, (currency, network, address, transak_network)) in cases.iter().enumerate() {
        let body = json!({"userId": u, "currency": currency, "network": network, "counterpartyAddress": address});
        let s = app.create_ok(&app.a, &body, 201).await;
        assert_eq!(s["currency"], currency.to_uppercase());
        assert_eq!(s["network"], network.to_uppercase());
        assert_eq!(s["counterparty"]["address"], *address);
        let params = &app.emulator.sessions()[i].widget_params;
        assert_eq!(params["cryptoCurrencyCode"], currency.to_uppercase());
        assert_eq!(params["network"], *transak_network);
        assert_eq!(params["walletAddress"], *address);
        assert_eq!(params["partnerOrderId"], s["id"]);
    }
    // Lightning goes upstream as Transak's Lightning network, without a wallet address.
    let (invoice, _) = bolt11();
    let s = app
        .create_ok(
            &app.a,
            &json!({"userId": u, "currency": "BTC", "network": "BTC", "invoice": invoice}),
            201,
        )
        .await;
    let params = &app.emulator.sessions()[cases.len()].widget_params;
    assert_eq!(params["partnerOrderId"], s["id"]);
    assert_ne!(params["network"], "bitcoin");
    assert!(!params.contains_key("walletAddress"));
    // On-chain hashes per network.
    for (currency, network, address, tx) in [
        ("BTC", "BTC", BTC_BECH32, "ab".repeat(32)),
        (
            "TRX",
            "TRON",
            "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            "CD".repeat(32),
        ),
        ("ETH", "ETH", ETH_EIP55, tx_eth("ef")),
    ] {
        let body = json!({"userId": u, "currency": currency, "network": network, "counterpartyAddress": address, "txHash": tx});
        let s = app.create_ok(&app.a, &body, 201).await;
        assert_eq!(s["txHash"], tx.to_lowercase());
        let wrong = with(
            body,
            "txHash",
            json!(if network == "ETH" {
                "ab".repeat(32)
            } else {
                tx_eth("ab")
            }),
        );
        assert!(
            validation_errors(&app.create(&app.a, &wrong).await)
                .contains(&fe("txHash", "invalid_tx_hash"))
        );
    }
}

// ----------------------------------------------------------------------------------------
// List (contract §3)
// ----------------------------------------------------------------------------------------

async fn list_pages_newest_first_and_filters(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let u = user();
    let mut created = Vec::new();
    for address in [ETH_EIP55, ETH_EIP55_2, ETH_EIP55_3, ETH_EIP55_4] {
        created.push(app.create_ok(&app.a, &eth_address(&u, address), 201).await);
    }
    created.push(app.create_ok(&app.a, &btc_address(&u), 201).await);
    // Someone else's sessions (same app, other user; other app, same user) stay out.
    app.create_ok(&app.a, &btc_address(&user()), 201).await;
    app.create_ok(&app.b, &btc_address(&u), 201).await;
    let newest_first: Vec<String> = created
        .iter()
        .rev()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut query = format!("userId={u}&limit=2");
    loop {
        let r = app.list(&app.a, &query).await;
        r.expect(200);
        let page = r.json();
        assert_eq!(keys(&page), ["data", "nextCursor"]);
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids);
        pages += 1;
        for s in page["data"].as_array().unwrap() {
            assert_eq!(s["userId"], u);
            assert!(s.get("widgetUrl").is_none(), "links are not listed: {s}");
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("userId={u}&limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);
    // A page that ends exactly at the oldest session listed is the final page.
    let r = app.list(&app.a, &format!("userId={u}&limit=5")).await;
    assert_eq!(
        (ids(&r.json()), r.json()["nextCursor"].clone()),
        (newest_first.clone(), Value::Null)
    );
    let r = app.list(&app.a, &format!("userId={u}&limit=4")).await;
    let cursor = r.json()["nextCursor"].as_str().unwrap().to_string();
    let r = app
        .list(&app.a, &format!("userId={u}&limit=4&cursor={cursor}"))
        .await;
    assert_eq!(
        (ids(&r.json()), r.json()["nextCursor"].clone()),
        (newest_first[4..].to_vec(), Value::Null)
    );
    // A cursor of A's is worthless to B.
    let r = app
        .list(&app.b, &format!("userId={u}&cursor={cursor}"))
        .await;
    r.expect(200);
    assert!(ids(&r.json()).iter().all(|id| !newest_first.contains(id)));

    // Default limit, no subject filter: everything of A.
    let all = app.list(&app.a, "").await;
    all.expect(200);
    assert_eq!(ids(&all.json()).len(), 6);
    assert_eq!(all.json()["nextCursor"], Value::Null);

    // Status filter.
    open(&app, created[0]["widgetUrl"].as_str().unwrap()).await;
    app.cancel(&app.a, created[1]["id"].as_str().unwrap())
        .await
        .expect(200);
    let status = |s: &str| format!("userId={u}&status={s}");
    let active = app.list(&app.a, &status("ACTIVE")).await;
    active.expect(200);
    assert_eq!(ids(&active.json()), newest_first[..3].to_vec());
    assert!(
        active.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "ACTIVE")
    );
    let consumed = app.list(&app.a, &status("CONSUMED")).await;
    assert_eq!(ids(&consumed.json()), [created[0]["id"].as_str().unwrap()]);
    let cancelled = app.list(&app.a, &status("CANCELLED")).await;
    assert_eq!(ids(&cancelled.json()), [created[1]["id"].as_str().unwrap()]);
    // Status values are case-insensitive, like currencies and networks.
    let lower = app.list(&app.a, &status("active")).await;
    assert_eq!(ids(&lower.json()), newest_first[..3].to_vec());
    let expired = app.list(&app.a, &status("EXPIRED")).await;
    assert_eq!(ids(&expired.json()), Vec::<String>::new());
    // By business: none.
    let none = app.list(&app.a, &format!("businessId={u}")).await;
    none.expect(200);
    assert_eq!(none.json(), json!({"data": [], "nextCursor": null}));
}

async fn list_rejects_invalid_parameters(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    for (query, expected) in [
        ("limit=0", vec![fe("limit", "invalid_type")]),
        ("limit=101", vec![fe("limit", "invalid_type")]),
        ("limit=two", vec![fe("limit", "invalid_type")]),
        ("limit=-1", vec![fe("limit", "invalid_type")]),
        ("status=ACTIVE,CONSUMED", vec![fe("status", "invalid_type")]),
        ("status=DONE", vec![fe("status", "invalid_type")]),
        ("cursor=not-a-cursor", vec![fe("cursor", "invalid_type")]),
        ("userId=nope", vec![fe("userId", "invalid_uuid")]),
        ("businessId=123", vec![fe("businessId", "invalid_uuid")]),
        (
            "userId=1f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44&businessId=1f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44",
            vec![fe("userId|businessId", "exactly_one_subject")],
        ),
        (
            "limit=0&status=NOPE&cursor=%%%",
            vec![
                fe("status", "invalid_type"),
                fe("limit", "invalid_type"),
                fe("cursor", "invalid_type"),
            ],
        ),
    ] {
        let r = app.list(&app.a, query).await;
        assert_eq!(r.status.as_u16(), 400, "?{query}: {}", r.text);
        let mut errors = validation_errors(&r);
        let mut expected = expected;
        errors.sort();
        expected.sort();
        assert_eq!(errors, expected, "{query}");
    }
    // Unknown and repeated parameters are refused too, listed with every other problem
    // (docs/api.md: "Unknown parameters and bad values get 400 with every problem listed").
    for (query, expected) in [
        ("colour=blue", vec![fe("colour", "unknown_field")]),
        (
            "userid=1f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44",
            vec![fe("userid", "unknown_field")],
        ),
        ("limit=2&limit=3", vec![fe("limit", "invalid_type")]),
        (
            "colour=blue&limit=0&status=ACTIVE&status=ACTIVE",
            vec![
                fe("colour", "unknown_field"),
                fe("limit", "invalid_type"),
                fe("status", "invalid_type"),
            ],
        ),
    ] {
        let r = app.list(&app.a, query).await;
        assert_eq!(r.status.as_u16(), 400, "?{query}: {}", r.text);
        let mut errors = validation_errors(&r);
        let mut expected = expected;
        errors.sort();
        expected.sort();
        assert_eq!(
            errors, expected,
            "?{query}: unknown parameters must be listed with the other problems"
        );
    }
}

// ----------------------------------------------------------------------------------------
// Concurrency (contract §2)
// ----------------------------------------------------------------------------------------

async fn concurrent_identical_creates_mint_once(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let before = app.emulator.stats();
    let request = btc_address(&user());
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (http, who, request, barrier) = (
            app.http.clone(),
            app.a.clone(),
            request.clone(),
            barrier.clone(),
        );
        tasks.spawn(async move {
            barrier.wait().await;
            let r = http.create(&who, &request).await;
            (r.status.as_u16(), r.json())
        });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.unwrap());
    }
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let reused = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        (created, reused),
        (1, 63),
        "{:?}",
        results.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    let id = &results[0].1["id"];
    assert!(results.iter().all(|(_, b)| &b["id"] == id));
    assert!(results.iter().all(|(s, b)| b["reused"] == (*s == 200)));
    let links: std::collections::HashSet<&str> = results
        .iter()
        .map(|(_, b)| b["widgetUrl"].as_str().unwrap())
        .collect();
    assert_eq!(links.len(), 1, "every caller gets the session's one link");
    let after = app.emulator.stats();
    assert_eq!(after.sessions_minted, before.sessions_minted + 1);
    assert_eq!(after.refreshes, 1);
}

// ----------------------------------------------------------------------------------------
// Operations (contract §3)
// ----------------------------------------------------------------------------------------

async fn operational_endpoints(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let r = app.get("/healthz").await;
    r.expect(200);
    assert_eq!(r.json(), json!({"status": "ok"}));

    let r = app.get("/readyz").await;
    r.expect(200);
    let checks = &r.json()["checks"];
    assert_eq!(
        (&checks["database"], &checks["keys"]),
        (&json!("ok"), &json!("ok"))
    );
    // The instance obtains an access token as it starts: until then, the upstream was not
    // used yet.
    assert!(
        ["ok", "not used yet"].contains(&checks["upstream"].as_str().unwrap()),
        "{checks}"
    );

    let s = app.create_ok(&app.a, &btc_address(&user()), 201).await;
    assert_eq!(
        app.get("/readyz").await.json(),
        json!({"status": "ready", "checks": {"database": "ok", "keys": "ok", "upstream": "ok"}})
    );
    let link = s["widgetUrl"].as_str().unwrap();
    open(&app, link).await;
    app.get_session(&app.a, s["id"].as_str().unwrap())
        .await
        .expect(200);
    let probe = format!("/no-such-route-{}", Uuid::new_v4().simple());
    app.get(&probe).await.expect(404);
    let r = app.get("/metrics").await;
    r.expect(200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    for name in [
        "widget_sessions_created_total",
        "widget_sessions_consumed_total",
        "widget_sessions_http_requests_total",
        "http_request_duration_seconds",
    ] {
        assert!(
            r.text.contains(name),
            "{name} missing from /metrics:\n{}",
            r.text
        );
    }
    // Labels carry route templates, never raw paths: no launch token, no session id, and
    // no label per unknown path.
    assert!(r.text.contains("/w/{token}"), "{}", r.text);
    for raw in [token_of(link), s["id"].as_str().unwrap(), &probe] {
        assert!(!r.text.contains(raw), "{raw} appears in /metrics");
    }

    let r = app.get("/api/v1/openapi.json").await;
    r.expect(200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text, api::http::openapi::document());
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/travel-rule/widget-sessions"]["post"].is_object());

    // A request id sent by the caller comes back.
    let r = app
        .send(
            app.client
                .get(app.absolute("/healthz"))
                .header("x-request-id", "e2e-trace-42"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("e2e-trace-42"));
}

/// Readiness is the database's: an upstream outage is reported but does not take the
/// instance out of the load balancer, and asking for readiness never makes the service call
/// upstream (it is not a lever). A failed token refresh backs off: the next requests fail
/// fast without calling upstream again.
async fn readiness_reports_the_upstream_without_calling_it(store: Store) {
    // Upstream refuses to hand out a token from the start.
    let emulator = transak_emulator::spawn(transak_emulator::EmulatorConfig::default())
        .await
        .unwrap();
    emulator
        .set_faults(FaultsUpdate {
            fail_next: Some(1000),
            fail_status: Some(500),
            ..FaultsUpdate::default()
        })
        .unwrap();
    let app = TestApp::spawn_with_upstream(store, &[], emulator).await;
    // The instance tried to obtain a token as it started, and says it failed.
    let mut upstream = String::new();
    for _ in 0..200 {
        let r = app.get("/readyz").await;
        r.expect(200);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        upstream = r.json()["checks"]["upstream"].as_str().unwrap().to_string();
        if upstream != "not used yet" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Public: which check fails, never why (Transak's answer is in the logs).
    assert_eq!(upstream, "failing");
    let calls = app.emulator.stats().injected_failures;
    assert!(calls > 0);
    for _ in 0..10 {
        app.get("/readyz").await.expect(200);
    }
    assert_eq!(
        app.emulator.stats().injected_failures,
        calls,
        "readiness made the service call upstream"
    );
    // Past the pause that followed the failed start-up refresh, a create tries again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let body = btc_address(&user());
    assert_problem(
        &app.create(&app.a, &body).await,
        503,
        "upstream_unavailable",
    );
    let after_first = app.emulator.stats().injected_failures;
    assert!(after_first > calls, "the create tried to refresh");
    // Backing off: the next creates fail fast without calling upstream.
    for _ in 0..3 {
        assert_problem(
            &app.create(&app.a, &body).await,
            503,
            "upstream_unavailable",
        );
    }
    assert_eq!(app.emulator.stats().injected_failures, after_first);

    let r = app.get("/readyz").await;
    r.expect(200);
    let body_json = r.json();
    assert_eq!(body_json["status"], "ready");
    assert_eq!(body_json["checks"]["database"], "ok");
    assert_eq!(body_json["checks"]["upstream"], "failing", "{body_json}");
    assert!(!r.text.contains(transak_emulator::DEFAULT_API_SECRET));
    // Liveness does not depend on upstream; reads keep working.
    app.get("/healthz").await.expect(200);
    app.list(&app.a, "").await.expect(200);

    // After the pause (doubled by the second failure), the next request refreshes again and
    // succeeds.
    app.emulator.clear_faults();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    app.create(&app.a, &body).await.expect(201);
    assert_eq!(app.get("/readyz").await.json()["checks"]["upstream"], "ok");
}

/// Readiness is public: when the keys do not open what is stored it says `keys: failing`,
/// without the tenants' names, the key ids or any other detail (they are in the logs and in
/// `widget-sessions doctor`). Every kind of sealed value counts: here a webhook endpoint's
/// secret that another instance sealed under a key this one does not have.
async fn readiness_says_which_check_failed_but_not_why(app: TestApp) {
    let receiver = Receiver::start(Some(0)).await;
    let r = app
        .signed(
            &app.a,
            "POST",
            "/webhook-endpoints",
            &json!({"url": receiver.url}).to_string(),
        )
        .await;
    r.expect(201);
    let pool = &app.database.as_ref().unwrap().pool;
    sqlx::query("update webhook_endpoints set secret_key_id = 'k2-0badc0de'")
        .execute(pool)
        .await
        .unwrap();
    let r = app.get("/readyz").await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"status": "not_ready", "checks": {"database": "ok", "keys": "failing", "upstream": r.json()["checks"]["upstream"]}})
    );
    assert!(
        ["ok", "not used yet"].contains(&r.json()["checks"]["upstream"].as_str().unwrap()),
        "{}",
        r.text
    );
    for detail in ["k2-", "we_", "app-a", "endpoint", "sealed"] {
        assert!(!r.text.contains(detail), "{detail} in {}", r.text);
    }
}

async fn unknown_routes_and_methods_are_problems(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/travel-rule/widget-sessions",
        "/w/",
        "/w/a/b",
    ] {
        assert_problem(&app.get(path).await, 404, "not_found");
    }
    let r = app
        .signed(
            &app.a,
            "GET",
            &format!("{SESSIONS}/{}/nope", Uuid::now_v7()),
            "",
        )
        .await;
    assert_problem(&r, 404, "not_found");

    let r = app.send(app.client.post(app.absolute("/healthz"))).await;
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
    let r = app.send(app.client.delete(app.absolute("/w/abc"))).await;
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
    let r = app.signed(&app.a, "DELETE", SESSIONS, "").await;
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST,GET,HEAD"));
    let r = app
        .signed(&app.a, "PUT", &format!("{SESSIONS}/{}", Uuid::now_v7()), "")
        .await;
    assert_problem(&r, 405, "method_not_allowed");
    let r = app
        .signed(
            &app.a,
            "GET",
            &format!("{SESSIONS}/{}/cancel", Uuid::now_v7()),
            "",
        )
        .await;
    assert_problem(&r, 405, "method_not_allowed");
}

/// A path segment whose percent-escapes do not decode to UTF-8 is a malformed request:
/// `400` as a problem document, like every other `400` (a launch link stays an HTML `404`).
async fn a_path_that_is_not_utf8_is_a_problem(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    for (method, path) in [
        ("GET", format!("{SESSIONS}/%FF")),
        ("POST", format!("{SESSIONS}/%FF/cancel")),
        ("GET", format!("{SESSIONS}/%C3%28/events")),
        ("PUT", format!("{SESSIONS}/%FF/declaration")),
        ("GET", format!("{SESSIONS}/%FF/ownership-challenge")),
        ("POST", format!("{SESSIONS}/%FF/ownership-proof")),
        ("DELETE", "/webhook-endpoints/%FF".to_string()),
        ("POST", "/webhook-endpoints/%FF/rotate-secret".to_string()),
    ] {
        let body = if method == "GET" || method == "DELETE" {
            ""
        } else {
            "{}"
        };
        let r = app.signed(&app.a, method, &path, body).await;
        let errors = validation_errors(&r);
        assert_eq!(
            errors,
            vec![("id".to_string(), "invalid_type".to_string())],
            "{method} {path}"
        );
        assert!(
            !r.text.contains("%FF") && !r.text.contains('\u{fffd}'),
            "{}",
            r.text
        );
    }
    // Unsigned, too: the path is judged before the credentials.
    let r = app
        .send(
            app.client
                .get(app.absolute(&format!("/api/v1{SESSIONS}/%FF"))),
        )
        .await;
    assert_problem(&r, 400, "validation_failed");
    let r = app.get("/w/%FF").await;
    assert_eq!(r.status.as_u16(), 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
}

async fn the_rate_limit_answers_429(store: Store) {
    let app = TestApp::spawn(store, &[("WIDGET_SESSIONS_RATE_LIMIT", "1")]).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let r = app.list(&app.a, "").await;
        statuses.push(r.status.as_u16());
        if r.status.as_u16() == 429 {
            limited = Some(r);
        }
    }
    let r = limited.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    assert_problem(&r, 429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(statuses[0], 200);
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    // Per application: B is not limited by A's burst.
    app.list(&app.b, "").await.expect(200);
}

// ----------------------------------------------------------------------------------------
// Upstream failures (contract §5)
// ----------------------------------------------------------------------------------------

async fn an_upstream_outage_is_503_and_stores_nothing(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    // A first session, so the access token is in place.
    let warm = app.create_ok(&app.a, &btc_address(&user()), 201).await;
    let u = user();
    let request = eth_address(&u, ETH_EIP55);

    app.emulator
        .set_faults(FaultsUpdate {
            fail_next: Some(10),
            fail_status: Some(500),
            ..FaultsUpdate::default()
        })
        .unwrap();
    let r = app.create(&app.a, &request).await;
    let p = assert_problem(&r, 503, "upstream_unavailable");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    assert!(
        !p["detail"]
            .as_str()
            .unwrap()
            .contains(transak_emulator::DEFAULT_API_SECRET)
    );
    let list = app.list(&app.a, &format!("userId={u}")).await;
    list.expect(200);
    assert_eq!(list.json(), json!({"data": [], "nextCursor": null}));
    let all = app.list(&app.a, "").await;
    assert_eq!(ids(&all.json()), [warm["id"].as_str().unwrap()]);

    app.emulator.clear_faults();
    let s = app.create_ok(&app.a, &request, 201).await;
    assert_eq!(s["status"], "ACTIVE");
    open(&app, s["widgetUrl"].as_str().unwrap()).await;

    // Upstream rate limiting is an outage too, with its own Retry-After.
    let v = user();
    app.emulator
        .set_faults(FaultsUpdate {
            fail_next: Some(1),
            fail_status: Some(429),
            ..FaultsUpdate::default()
        })
        .unwrap();
    let r = app.create(&app.a, &btc_address(&v)).await;
    assert_problem(&r, 503, "upstream_unavailable");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(
        app.list(&app.a, &format!("userId={v}")).await.json()["data"],
        json!([])
    );
    app.create_ok(&app.a, &btc_address(&v), 201).await;
}

async fn an_upstream_rejection_is_502(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    app.create_ok(&app.a, &btc_address(&user()), 201).await;
    let u = user();
    let request = eth_address(&u, ETH_EIP55);
    app.emulator
        .set_faults(FaultsUpdate {
            fail_next: Some(1),
            fail_status: Some(400),
            ..FaultsUpdate::default()
        })
        .unwrap();
    let r = app.create(&app.a, &request).await;
    assert_problem(&r, 502, "upstream_rejected");
    assert!(r.header("retry-after").is_none());
    let list = app.list(&app.a, &format!("userId={u}")).await;
    assert_eq!(list.json()["data"], json!([]));
    // The fault was for one call only.
    app.create_ok(&app.a, &request, 201).await;
}

async fn a_revoked_upstream_token_is_replaced_once(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    app.create_ok(&app.a, &btc_address(&user()), 201).await;
    assert_eq!(app.emulator.stats().refreshes, 1);
    app.emulator.revoke_token();
    app.create_ok(&app.a, &eth_address(&user(), ETH_EIP55), 201)
        .await;
    let stats = app.emulator.stats();
    assert_eq!(stats.refreshes, 2);
    assert_eq!(stats.sessions_minted, 2);
    app.create_ok(&app.a, &eth_address(&user(), ETH_EIP55), 201)
        .await;
    assert_eq!(app.emulator.stats().refreshes, 2);
}

// ----------------------------------------------------------------------------------------
// Scale-out (contract §2 concurrency, §5 shared token, §7): Postgres only
// ----------------------------------------------------------------------------------------

/// Two API instances on one database and one upstream: identical requests spread over both
/// mint exactly one upstream session, the access token is refreshed once and shared through
/// the database, and each instance serves the other's sessions and links.
async fn two_instances_share_one_database(app: TestApp) {
    let other = app.second_instance().await;
    let request = btc_address(&user());
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let http = if i % 2 == 0 {
            app.http.clone()
        } else {
            other.http.clone()
        };
        let (who, request, barrier) = (app.a.clone(), request.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let r = http.create(&who, &request).await;
            (r.status.as_u16(), r.json())
        });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.unwrap());
    }
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let reused = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        (created, reused),
        (1, 63),
        "{:?}",
        results.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    let id = results[0].1["id"].as_str().unwrap().to_string();
    assert!(results.iter().all(|(_, b)| b["id"] == id.as_str()));
    let stats = app.emulator.stats();
    assert_eq!(
        (stats.sessions_minted, stats.refreshes),
        (1, 1),
        "{stats:?}"
    );

    // The other instance creates with the shared token: no second refresh.
    let s = other.create_ok(&app.b, &btc_address(&user()), 201).await;
    assert_eq!(app.emulator.stats().refreshes, 1);
    assert!(
        s["widgetUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/w/", other.base))
    );
    // Each instance serves the other's sessions and links.
    let got = app.get_session(&app.b, s["id"].as_str().unwrap()).await;
    got.expect(200);
    assert_eq!(got.json()["id"], s["id"]);
    let token = token_of(s["widgetUrl"].as_str().unwrap());
    open(&app, &format!("/w/{token}")).await;
    assert_gone(&other, &format!("/w/{token}"), USED).await;
    let r = other.cancel(&app.a, &id).await;
    r.expect(200);
    assert_eq!(
        app.get_session(&app.a, &id).await.json()["status"],
        "CANCELLED"
    );
}

/// Application secrets and the Transak token are sealed, API keys are stored only as
/// digests, launch tokens are not stored at all: none of them appears in the database, as
/// text or as hex.
async fn nothing_secret_is_stored_in_clear(app: TestApp) {
    let s = app.create_ok(&app.a, &btc_address(&user()), 201).await;
    let again = app
        .create_ok(&app.a, &btc_address(s["userId"].as_str().unwrap()), 200)
        .await;
    let pool = &app.database.as_ref().unwrap().pool;
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables where table_schema = 'public'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for table in ["applications", "sessions", "reuse_slots", "upstream_tokens"] {
        assert!(tables.iter().any(|t| t == table), "{tables:?}");
    }
    let mut dump = String::new();
    for table in &tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!(r#"select row_to_json(t)::text from "{table}" t"#))
                .fetch_all(pool)
                .await
                .unwrap();
        dump.push_str(&rows.join("\n"));
    }
    assert!(
        dump.contains(s["id"].as_str().unwrap()),
        "the dump has the session"
    );
    let mut secrets = vec![
        token_of(s["widgetUrl"].as_str().unwrap()).to_string(),
        token_of(again["widgetUrl"].as_str().unwrap()).to_string(),
    ];
    for c in [app_a(), app_b(), app_c()] {
        secrets.push(c.key);
        secrets.push(c.secret);
    }
    // The shared Transak access token is sealed too.
    let access_token = app
        .emulator
        .current_access_token()
        .expect("a token was issued");
    assert!(dump.contains("upstream_tokens") || tables.iter().any(|t| t == "upstream_tokens"));
    secrets.push(access_token);
    for secret in secrets {
        assert!(!dump.contains(&secret), "{secret} is stored in clear");
        assert!(
            !dump.contains(&hex::encode(&secret)),
            "{secret} is stored as hex"
        );
    }
}

// ----------------------------------------------------------------------------------------
// Every body on both stores
// ----------------------------------------------------------------------------------------

// ----------------------------------------------------------------------------------------
// Abuse: slow clients, floods, hostile headers (contract §3, §6)
// ----------------------------------------------------------------------------------------

/// A raw connection to the instance.
async fn raw(app: &TestApp) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the peer closes (or `within` passes); returns what was read and whether it
/// closed in time.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt as _;
    let mut out = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// A client that sends half its headers is cut off after the header-read timeout; one that
/// sends half its body gets `408`; beyond the connection cap, clients wait their turn.
async fn slow_and_greedy_clients_are_bounded(store: Store) {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::spawn(
        store,
        &[
            ("WIDGET_SESSIONS_HEADER_READ_TIMEOUT_SECS", "1"),
            ("WIDGET_SESSIONS_BODY_TIMEOUT_SECS", "1"),
            ("WIDGET_SESSIONS_MAX_CONNECTIONS", "3"),
        ],
    )
    .await;
    // Half the headers, then nothing.
    let mut slow = raw(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-partial: ")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        closed,
        "a connection with half its headers is still open after 5 s"
    );

    // A signed create whose body stops half-way: 408 after the body timeout.
    let body = btc_address(&user()).to_string();
    let req = server::request_command::sign(
        &app.base,
        "POST",
        SESSIONS,
        &body,
        &app.a.key,
        &app.a.secret,
    );
    let mut half = raw(&app).await;
    let head = format!(
        "POST /api/v1{SESSIONS} HTTP/1.1\r\nhost: x\r\napi-key: {}\r\nauthorization: {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        req.api_key,
        req.authorization,
        body.len()
    );
    half.write_all(head.as_bytes()).await.unwrap();
    half.write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    // The connection cap: three idle connections hold every slot; a fourth client is
    // served only once one of them goes away.
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut c = raw(&app).await;
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        idle.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let http = app.http.clone();
        async move { http.get("/healthz").await.code() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a fourth connection was served beyond the cap"
    );
    drop(idle);
    let code = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 200);
}

/// Per client address, requests to signed routes and launch links are limited before any
/// work (unknown keys included); another address has its own budget; the global cap limits
/// everyone.
async fn floods_are_limited_per_client_and_in_all(store: Store) {
    let app = TestApp::spawn(
        store,
        &[
            ("WIDGET_SESSIONS_CLIENT_RATE_LIMIT", "5"),
            ("WIDGET_SESSIONS_GLOBAL_RATE_LIMIT", "20"),
            ("WIDGET_SESSIONS_CLIENT_IP_HEADER", "x-forwarded-for"),
        ],
    )
    .await;
    let unknown = Creds {
        name: "nobody",
        key: "unknown-key-0123456789".into(),
        secret: "unknown-secret-0123456789".into(),
    };
    let from = |ip: &str, who: &Creds| {
        app.signed_request(&who.key, &who.secret, "GET", SESSIONS, "")
            .header("x-forwarded-for", format!("10.0.0.1, {ip}"))
    };
    // Burst of twice the rate, then 429.
    let mut codes = Vec::new();
    for _ in 0..15 {
        codes.push(app.send(from("203.0.113.7", &unknown)).await.code());
    }
    assert_eq!(codes.iter().filter(|c| **c == 401).count(), 10, "{codes:?}");
    assert!(codes[10..].iter().all(|c| *c == 429), "{codes:?}");
    let limited = app.send(from("203.0.113.7", &app.a)).await;
    assert_problem(&limited, 429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // Launch links share the client's budget, and answer a page.
    let page = app
        .send(
            app.client
                .get(app.absolute("/w/whatever"))
                .header("x-forwarded-for", "203.0.113.7"),
        )
        .await;
    assert_eq!(page.code(), 429);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    // Another client is served...
    app.send(from("198.51.100.2", &app.a)).await.expect(200);
    // ...until everyone together reaches the global cap (burst 40).
    let mut last = 0;
    for n in 0..60 {
        last = app.send(from(&format!("192.0.2.{n}"), &app.a)).await.code();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "the global cap never applied");
}

/// A client's request id is kept only when it is short and plain; hostile ones are
/// replaced. A launch token that is not even text is the same 404 page as an unknown one.
/// A body with many unknown members lists a bounded number of problems.
async fn hostile_inputs_get_plain_answers(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    for (sent, kept) in [
        ("req-123.abc_def:9", true),
        (&*"a".repeat(64), true),
        (&*"a".repeat(65), false),
        ("has space", false),
        ("<script>", false),
    ] {
        let r = app
            .send(
                app.client
                    .get(app.absolute("/healthz"))
                    .header("x-request-id", sent),
            )
            .await;
        let got = r.header("x-request-id").unwrap();
        assert_eq!(got == sent, kept, "{sent:?} → {got:?}");
        if !kept {
            uuid::Uuid::parse_str(got).unwrap();
        }
    }

    let bangs = format!("/w/{}", "!".repeat(64));
    for path in ["/w/%FF%FE", "/w/short", &bangs] {
        let r = app.get(path).await;
        assert_eq!(r.code(), 404, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{path}"
        );
        assert!(r.text.contains("Link not found"), "{path}");
    }

    let mut members = serde_json::Map::new();
    for n in 0..30 {
        members.insert(format!("extra{n}"), json!(1));
    }
    let r = app.create(&app.a, &Value::Object(members)).await;
    let p = assert_problem(&r, 400, "validation_failed");
    assert_eq!(p["errors"].as_array().unwrap().len(), 20);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("more problems are not listed"),
        "{p}"
    );
}

// ----------------------------------------------------------------------------------------
// The zero-configuration run (contract §7)
// ----------------------------------------------------------------------------------------

/// With nothing configured, the service runs on the in-memory store with a Transak emulator
/// in its own process and a demo application: a session made with the demo credentials asks
/// the travel-rule questions, then opens the emulated widget, and an order completed there comes back as the session's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_configuration_run_works_end_to_end() {
    use server::application::{Application, Stop};
    server::telemetry::init_test_tracing();
    let vars = std::collections::HashMap::from([(
        "WIDGET_SESSIONS_LISTEN".to_string(),
        "127.0.0.1:0".to_string(),
    )]);
    let config = server::config::Config::from_vars(&vars).unwrap();
    let app = Application::build(config, server::compose::Overrides::default())
        .await
        .unwrap();
    let demo = app.demo().expect("a demo application");
    let demo = Creds {
        name: "demo",
        key: demo.api_key.clone(),
        secret: secrecy::ExposeSecret::expose_secret(&demo.api_secret).to_string(),
    };
    let emulator_base = app.emulator().expect("the in-process emulator").base_url();
    let http = Http::new(app.public_base().to_string());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
        Stop::Interrupt
    }));

    let s = http.create_ok(&demo, &btc_address(&user()), 201).await;
    // The demo application runs the hosted travel-rule step: the link shows the questions
    // first (nothing consumed), the customer answers, and Continue opens the widget.
    let link = s["widgetUrl"].as_str().unwrap();
    let page = http.get(link).await;
    page.expect(200);
    assert!(page.text.contains("Before you continue"), "{}", page.text);
    let origin = [("origin", http.base.as_str())];
    http.post_form(
        &format!("{link}/travel-rule"),
        &[
            ("custody", "VASP"),
            ("owner", "CUSTOMER"),
            ("vaspName", "Example Exchange"),
        ],
        &origin,
    )
    .await
    .expect(200);
    let r = http
        .post_form(&format!("{link}/continue"), &[], &origin)
        .await;
    r.expect(303);
    let widget = r.header("location").unwrap().to_string();
    assert!(widget.starts_with(&emulator_base), "{widget}");
    let session_id = url::Url::parse(&widget)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "sessionId")
        .unwrap()
        .1
        .into_owned();
    // The emulated widget completes the order and reports it to this instance.
    let placed = http
        .client
        .post(format!("{emulator_base}/_emulator/orders"))
        .json(&json!({"sessionId": session_id, "eventID": "ORDER_COMPLETED"}))
        .send()
        .await
        .unwrap();
    assert!(
        placed.status().is_success(),
        "{}",
        placed.text().await.unwrap()
    );
    let got = http
        .get_session(&demo, s["id"].as_str().unwrap())
        .await
        .json();
    assert_eq!(got["order"]["status"], "COMPLETED", "{got}");

    stop.send(()).unwrap();
    assert!(server.await.unwrap(), "in-flight requests finished");
}

/// `both: [...]` run once per store (`memory::name`, `postgres::name`); `once: [...]` are
/// about the HTTP edge, not about storage, and run on the in-memory store only.
macro_rules! e2e {
    (both: [$($name:ident),* $(,)?], once: [$($single:ident),* $(,)?] $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Memory).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $single() {
                    super::$single(super::Store::Memory).await;
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

e2e! {
    both: [
        create_returns_the_session_and_reuses_it,
        create_for_a_business_with_lightning_and_tx_hashes,
        reuse_key_treats_an_invoice_as_its_payment_hash,
        reuse_key_normalises_addresses,
        reuse_key_scopes_the_tx_hash,
        force_verify_ownership_is_upgrade_only,
        applications_never_see_each_other,
        a_disabled_application_is_refused,
        a_launch_link_opens_once,
        a_reused_sessions_link_is_the_same_and_opens_once,
        a_replayed_request_is_refused,
        cancel_is_idempotent_and_ends_the_link,
        sessions_expire,
        list_pages_newest_first_and_filters,
        concurrent_identical_creates_mint_once,
        an_upstream_outage_is_503_and_stores_nothing,
        a_revoked_upstream_token_is_replaced_once,
        a_launch_link_opens_once_under_concurrency,
        launch_and_cancel_race_to_one_outcome,
        every_ledger_pair_mints_upstream,
        operational_endpoints,
    ],
    once: [
        validation_reports_each_problem_with_its_field,
        validation_reports_every_problem_at_once,
        malformed_bodies_are_problems,
        authentication_failures_are_401_with_a_challenge,
        signatures_cover_method_path_query_and_body,
        list_rejects_invalid_parameters,
        unknown_routes_and_methods_are_problems,
        a_path_that_is_not_utf8_is_a_problem,
        the_rate_limit_answers_429,
        an_upstream_rejection_is_502,
        readiness_reports_the_upstream_without_calling_it,
        slow_and_greedy_clients_are_bounded,
        floods_are_limited_per_client_and_in_all,
        hostile_inputs_get_plain_answers,
    ],
}

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_share_one_database() {
        let app = super::TestApp::spawn(super::Store::Postgres, &[]).await;
        super::two_instances_share_one_database(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readiness_says_which_check_failed_but_not_why() {
        let app = super::TestApp::spawn(
            super::Store::Postgres,
            &[("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")],
        )
        .await;
        super::readiness_says_which_check_failed_but_not_why(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_secret_is_stored_in_clear() {
        let app = super::TestApp::spawn(super::Store::Postgres, &[]).await;
        super::nothing_secret_is_stored_in_clear(app).await;
    }
}
