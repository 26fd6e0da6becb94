//! A real browser end to end: headless Chromium opens a partner page that embeds a launch
//! link through Transak's own browser SDK (`@transak/transak-sdk` 4.x from npm, bundled with
//! esbuild), lands on the emulator's widget page inside the SDK's iframe and completes the
//! order there. The page gets `TRANSAK_ORDER_SUCCESSFUL` through the SDK's event API, the
//! partner's webhook receiver gets `session.consumed` then `session.order_updated`, the
//! session shows the order, and the link, opened again, shows the "already used" page.
//!
//! Then the hosted travel-rule step (`browser/hosted.mjs`, one browser for every scenario):
//! see [`the_hosted_travel_rule_step_in_a_real_browser`]. With `SCREENSHOTS=<dir>` it saves
//! the page's states as PNG (the pictures of `docs/travel-rule.md`).
//!
//! Needs Chromium and the npm packages of `browser/` (`npm ci`), so it is built only with the
//! `browser-test` feature: `scripts/browser-test.sh` installs both and runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use serde_json::{Value, json};
use support::*;

/// The partner page: the SDK's iframe goes into `#widget`, what it relays into `#events`.
const PARTNER_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Partner</title>
<link rel="icon" href="data:,"></head>
<body><h1>Partner</h1><div id="widget" style="width:480px;height:650px"></div>
<ul id="events"></ul><script src="/partner.js"></script></body></html>
"#;

/// Serves `router` on `127.0.0.1:0`; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// `browser/` at the repository root.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../browser")
}

/// Bundles `browser/partner.js` (the SDK with it) with esbuild; the bundle's text.
fn bundle_partner_script() -> String {
    let dir = browser_dir();
    let esbuild = dir.join("node_modules/.bin/esbuild");
    assert!(
        esbuild.exists(),
        "{} is missing: run `npm ci` in browser/ (scripts/browser-test.sh does)",
        esbuild.display()
    );
    let out =
        std::env::temp_dir().join(format!("widget-sessions-browser-{}", uuid::Uuid::new_v4()));
    let outfile = out.join("partner.js");
    let status = std::process::Command::new(&esbuild)
        .current_dir(&dir)
        .args([
            "partner.js",
            "--bundle",
            "--format=iife",
            "--platform=browser",
        ])
        .arg(format!("--outfile={}", outfile.display()))
        .arg("--log-level=warning")
        .status()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", esbuild.display()));
    assert!(status.success(), "esbuild failed: {status}");
    let bundle = std::fs::read_to_string(&outfile).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    bundle
}

/// The query of `url` as name → first value.
fn query_of(url: &str) -> HashMap<String, String> {
    let mut query = HashMap::new();
    for (k, v) in url::Url::parse(url).unwrap().query_pairs() {
        query
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    query
}

/// The session's `order`, once it is there.
async fn order_of(app: &TestApp, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let r = app.get_session(&app.a, id).await;
        r.expect(200);
        let session = r.json();
        if !session["order"].is_null() {
            return session["order"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no order on the session: {session}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_page_completes_an_order_through_transaks_sdk() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium (or set CHROMIUM)"
    );
    let bundle = bundle_partner_script();

    let app = TestApp::spawn(
        Store::Memory,
        &[
            ("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE", "1,1,1"),
        ],
    )
    .await;
    let receiver = Receiver::start(Some(0)).await;
    let body = json!({"url": receiver.url,
                      "eventTypes": ["session.consumed", "session.order_updated"]});
    let r = app
        .signed(&app.a, "POST", "/webhook-endpoints", &body.to_string())
        .await;
    r.expect(201);
    let secret = r.json()["secret"].as_str().unwrap().to_string();

    let user = uuid::Uuid::new_v4().to_string();
    let s = app
        .create_ok(
            &app.a,
            &json!({"userId": user, "currency": "BTC", "network": "BTC",
                    "counterpartyAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}),
            201,
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let link = s["widgetUrl"].as_str().unwrap();

    let partner = serve(
        Router::new()
            .route("/", get(|| async { axum::response::Html(PARTNER_PAGE) }))
            .route(
                "/partner.js",
                get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], bundle) }),
            ),
    )
    .await;
    let page_url = format!(
        "{partner}/?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("link", link)
            .finish()
    );

    // The browser, driven by browser/drive.mjs.
    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .current_dir(browser_dir())
        .arg("drive.mjs")
        .arg(&page_url)
        .arg(&chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("drive.mjs ran for over two minutes")
        .expect("could not run node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "drive.mjs failed ({}):\n{stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("drive.mjs printed no JSON ({e}): {stdout}\n{stderr}"));
    println!(
        "the browser ran in {:?}; it saw:\n{}",
        started.elapsed(),
        serde_json::to_string_pretty(&seen).unwrap()
    );

    // The SDK embedded our link, with its name and version appended, and the iframe landed
    // on the emulator's widget page for this session.
    assert_eq!(seen["link"], link);
    let src = seen["iframeSrc"].as_str().unwrap();
    assert!(src.starts_with(link), "{src}");
    let appended = query_of(src);
    assert_eq!(
        appended.get("sdkName").map(String::as_str),
        Some("@transak/transak-sdk"),
        "{src}"
    );
    let sdk_version = appended.get("sdkVersion").expect("sdkVersion appended");
    assert!(sdk_version.starts_with("4."), "{src}");
    let widget_url = seen["widgetUrl"].as_str().unwrap();
    assert!(
        widget_url.starts_with(&app.emulator.widget_base_url()),
        "{widget_url}"
    );
    let widget = query_of(widget_url);
    assert_eq!(widget.get("sdkVersion"), Some(sdk_version), "{widget_url}");
    assert_eq!(
        widget.get("sdkName").map(String::as_str),
        Some("@transak/transak-sdk"),
        "{widget_url}"
    );
    assert_eq!(
        widget.get("sessionId"),
        seen["widgetSessionId"]
            .as_str()
            .map(str::to_string)
            .as_ref()
    );
    assert_eq!(seen["widgetHeading"], "Transak widget (emulator)");
    // What reached the page came from the widget, as `{event_id, data}`.
    let emulator = app.emulator.base_url();
    for m in seen["messages"].as_array().unwrap() {
        assert_eq!(m["origin"], emulator.as_str(), "{m}");
        assert!(m["data"]["event_id"].is_string(), "{m}");
    }
    assert!(seen["errors"].as_array().unwrap().is_empty(), "{seen}");

    // The session is consumed and shows the completed order, the one the page was told of.
    let order = order_of(&app, id).await;
    assert_eq!(order["status"], "COMPLETED", "{order}");
    assert_eq!(order["eventId"], "ORDER_COMPLETED", "{order}");
    let r = app.get_session(&app.a, id).await;
    assert_eq!(r.json()["status"], "CONSUMED");
    let events = seen["events"].as_array().unwrap();
    let successful: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "TRANSAK_ORDER_SUCCESSFUL")
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "TRANSAK_WIDGET_INITIALISED"),
        "{events:?}"
    );
    assert_eq!(successful.len(), 1, "{events:?}");
    assert_eq!(successful[0]["data"]["id"], order["id"], "{events:?}");
    assert_eq!(successful[0]["data"]["status"], "COMPLETED", "{events:?}");
    assert!(
        seen["partnerText"]
            .as_str()
            .unwrap()
            .contains("TRANSAK_ORDER_SUCCESSFUL"),
        "{seen}"
    );
    assert_eq!(
        seen["widgetResult"],
        format!("Order {}: COMPLETED", order["id"].as_str().unwrap())
    );

    // The partner's receiver: session.consumed, then session.order_updated with the order.
    let got = receiver.until("two deliveries", |d| d.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.deliveries().len(), 2, "no other delivery");
    assert!(got.iter().all(|d| d.verifies(&[&secret])), "signatures");
    let (consumed, updated) = (got[0].json(), got[1].json());
    assert_eq!(consumed["type"], "session.consumed", "{consumed}");
    assert_eq!(consumed["data"]["id"], s["id"]);
    assert_eq!(consumed["data"]["status"], "CONSUMED");
    assert_eq!(updated["type"], "session.order_updated", "{updated}");
    assert_eq!(updated["data"]["id"], s["id"]);
    assert_eq!(updated["data"]["order"]["status"], "COMPLETED");
    assert_eq!(updated["data"]["order"], order);

    // Opened again, in the browser and over HTTP: the "already used" page.
    let reopen = &seen["reopen"];
    assert_eq!(reopen["status"], 410, "{reopen}");
    assert_eq!(
        reopen["heading"], "This link has already been used",
        "{reopen}"
    );
    assert_eq!(reopen["url"], link, "no redirect: {reopen}");
    let r = app.get(link).await;
    r.expect(410);
    assert!(
        r.text.contains("<h1>This link has already been used</h1>"),
        "{}",
        r.text
    );
    assert!(r.header("location").is_none());
}

/// Runs `browser/hosted.mjs` with `args` and `input` on its standard input; what it printed.
async fn hosted_script(args: &[&str], input: &Value) -> Value {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("node")
        .current_dir(browser_dir())
        .arg("hosted.mjs")
        .args(args)
        .envs(
            std::env::var("SCREENSHOTS")
                .ok()
                .map(|d| ("SCREENSHOTS", d)),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("could not run node");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("hosted.mjs ran for over two minutes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hosted.mjs failed ({}):\n{stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("hosted.mjs printed no JSON ({e}): {stdout}\n{stderr}"))
}

/// The hosted travel-rule step in a real browser, for an application that runs it: an EVM
/// customer inside the SDK's iframe on a partner page (an injected EIP-1193 provider backed
/// by an ethers wallet) declares a wallet of their own on a forced session, signs, continues
/// and completes the order, and the partner's receiver gets every event, signed; a Solana
/// customer (an injected provider signing with tweetnacl) does the same at the top level;
/// a customer without JavaScript pastes a BIP-322 signature made by bip322-js; framed
/// without a wallet, the page offers to open itself in a new tab; a plain open of a link
/// consumes nothing; axe-core finds no serious or critical problem on any state of the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosted_travel_rule_step_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium (or set CHROMIUM)"
    );
    let bundle = bundle_partner_script();
    let app = TestApp::spawn(
        Store::Memory,
        &[
            ("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE", "1,1,1"),
        ],
    )
    .await;
    let h = app_h();
    let receiver = Receiver::start(Some(0)).await;
    let types = [
        "session.declaration_recorded",
        "session.ownership_verified",
        "session.travel_rule_completed",
        "session.consumed",
        "session.order_updated",
    ];
    let r = app
        .signed(
            &h,
            "POST",
            "/webhook-endpoints",
            &json!({"url": receiver.url, "eventTypes": types}).to_string(),
        )
        .await;
    r.expect(201);
    let secret = r.json()["secret"].as_str().unwrap().to_string();

    let keys = hosted_script(&["keys"], &json!(null)).await;
    let create = |body: Value| {
        let app = &app;
        let h = &h;
        async move { app.create_ok(h, &body, 201).await }
    };
    let user = || uuid::Uuid::new_v4().to_string();
    let evm = create(
        json!({"userId": user(), "currency": "ETH", "network": "ETH",
        "counterpartyAddress": keys["evm"]["address"], "forceVerifyOwnership": true}),
    )
    .await;
    let sol = create(
        json!({"userId": user(), "currency": "SOL", "network": "SOL",
        "counterpartyAddress": keys["sol"]["address"], "forceVerifyOwnership": true}),
    )
    .await;
    let btc_key = bitcoin_signer("keys", &json!(null))["p2wpkh"][0].clone();
    let btc = create(
        json!({"userId": user(), "currency": "BTC", "network": "BTC",
        "counterpartyAddress": btc_key["address"], "forceVerifyOwnership": true}),
    )
    .await;
    let peek = create(
        json!({"userId": user(), "currency": "BTC", "network": "BTC",
        "counterpartyAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}),
    )
    .await;
    // A record awaiting its proof, to be shown framed without a wallet.
    let framed = create(
        json!({"userId": user(), "currency": "ETH", "network": "ETH",
        "counterpartyAddress": "0x52908400098527886E0F7030069857D2E4169EE7",
        "forceVerifyOwnership": true}),
    )
    .await;
    app.signed(
        &h,
        "PUT",
        &format!("{SESSIONS}/{}/declaration", framed["id"].as_str().unwrap()),
        &json!({"custody": "SELF_HOSTED", "owner": "CUSTOMER"}).to_string(),
    )
    .await
    .expect(200);
    // The BIP-322 signature the no-JavaScript customer pastes: made by bip322-js over the
    // challenge (the page shows the same message; the browser side checks that).
    let challenge = app
        .signed(
            &h,
            "GET",
            &format!(
                "{SESSIONS}/{}/ownership-challenge",
                btc["id"].as_str().unwrap()
            ),
            "",
        )
        .await
        .json()["message"]
        .as_str()
        .unwrap()
        .to_string();
    let signature = bitcoin_signer(
        "sign",
        &json!([{"kind": "p2wpkh", "secret": btc_key["secret"], "address": btc_key["address"],
                 "message": challenge}]),
    )[0]["bip322_simple"]
        .clone();

    let partner = serve(
        Router::new()
            .route("/", get(|| async { axum::response::Html(PARTNER_PAGE) }))
            .route(
                "/partner.js",
                get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], bundle) }),
            ),
    )
    .await;
    let link = |s: &Value| s["widgetUrl"].as_str().unwrap().to_string();
    let plan = json!({
        "widgetBase": app.emulator.widget_base_url(),
        "evm": {"secret": keys["evm"]["secret"], "partnerPage": format!("{partner}/?{}",
            url::form_urlencoded::Serializer::new(String::new()).append_pair("link", &link(&evm)).finish())},
        "sol": {"secret": keys["sol"]["secret"], "address": keys["sol"]["address"], "link": link(&sol)},
        "nojs": {"link": link(&btc), "signature": signature},
        "peek": {"link": link(&peek)},
        "framed": {"partnerPage": format!("{partner}/?{}",
            url::form_urlencoded::Serializer::new(String::new()).append_pair("link", &link(&framed)).finish())},
    });
    let started = Instant::now();
    let seen = hosted_script(&["run", &chromium], &plan).await;
    println!(
        "the hosted step's browser run took {:?}; it saw:\n{}",
        started.elapsed(),
        serde_json::to_string_pretty(&seen).unwrap()
    );

    // (a, e) Inside the SDK's iframe: the SDK's parameters went through the page to the
    // widget, the order completed.
    let widget = query_of(seen["evm"]["widgetUrl"].as_str().unwrap());
    assert_eq!(
        widget.get("sdkName").map(String::as_str),
        Some("@transak/transak-sdk"),
        "{seen}"
    );
    assert!(
        seen["evm"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "TRANSAK_ORDER_SUCCESSFUL"),
        "{seen}"
    );
    let evm_id = evm["id"].as_str().unwrap();
    let order = {
        let started = Instant::now();
        loop {
            let s = app.get_session(&h, evm_id).await.json();
            if !s["order"].is_null() {
                break s;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no order: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(order["order"]["status"], "COMPLETED");
    assert_eq!(order["travelRule"]["status"], "COMPLETE");
    assert_eq!(order["travelRule"]["declaration"]["source"], "HOSTED");
    assert_eq!(order["travelRule"]["ownershipProof"]["method"], "EIP191");
    // The partner's receiver, every delivery signed (checked with the partners' client crate).
    let evm_events = |d: &[Received]| {
        d.iter()
            .map(Received::json)
            .filter(|e| e["data"]["id"] == evm_id)
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let got = receiver
        .until("the EVM session's five events", |d| {
            evm_events(d).len() >= 5
        })
        .await;
    assert!(got.iter().all(|d| d.verifies(&[&secret])), "signatures");
    // Deliveries are concurrent: each once, in any order.
    let mut delivered = evm_events(&got);
    delivered.sort();
    let mut expected = types.map(str::to_string).to_vec();
    expected.sort();
    assert_eq!(delivered, expected);

    // (b) The Solana customer reached the widget; the proof is an ed25519 one.
    assert!(
        seen["sol"]["widgetUrl"]
            .as_str()
            .unwrap()
            .starts_with(&app.emulator.widget_base_url()),
        "{seen}"
    );
    let s = app
        .get_session(&h, sol["id"].as_str().unwrap())
        .await
        .json();
    assert_eq!(s["status"], "CONSUMED");
    assert_eq!(s["travelRule"]["ownershipProof"]["method"], "ED25519");

    // (c) Without JavaScript: no wallet button, the refused signature explained, the pasted
    // one accepted, the widget reached.
    assert_eq!(seen["nojs"]["message"], challenge.as_str());
    assert_eq!(seen["nojs"]["walletHidden"], true);
    assert!(
        seen["nojs"]["error"]
            .as_str()
            .unwrap()
            .contains("not a signature we can read"),
        "{seen}"
    );
    let s = app
        .get_session(&h, btc["id"].as_str().unwrap())
        .await
        .json();
    assert_eq!(s["status"], "CONSUMED");
    assert_eq!(s["travelRule"]["ownershipProof"]["method"], "BIP322");

    // (d) A plain open showed the page and consumed nothing.
    assert_eq!(seen["peek"]["status"], 200);
    assert_eq!(seen["peek"]["heading"], "Before you continue");
    let s = app
        .get_session(&h, peek["id"].as_str().unwrap())
        .await
        .json();
    assert_eq!(s["status"], "ACTIVE");

    // Framed without a wallet: the offer of a new tab, to this very link (the SDK's
    // parameters kept), and no wallet button; nothing consumed.
    let href = seen["framed"]["href"].as_str().unwrap();
    assert!(href.starts_with(&link(&framed)), "{seen}");
    assert!(href.contains("sdkName="), "{seen}");
    assert_eq!(seen["framed"]["target"], "_blank");
    assert_eq!(seen["framed"]["signHidden"], true);
    let s = app
        .get_session(&h, framed["id"].as_str().unwrap())
        .await
        .json();
    assert_eq!(s["status"], "ACTIVE");

    // (f) axe-core on every state: nothing serious or critical.
    let report = seen["axe"].as_array().unwrap();
    assert!(report.len() >= 12, "{seen}");
    for state in report {
        assert_eq!(state["serious"], json!([]), "{state}");
    }
}
