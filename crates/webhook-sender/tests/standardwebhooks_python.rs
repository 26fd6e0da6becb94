//! The reference implementation agrees: a delivery made by [`HttpWebhookSender`] (signed
//! with two secrets, as after a rotation) verifies with the `standardwebhooks` package from
//! PyPI under each secret, and fails under a third.
//!
//! Needs `python3` with `venv`; the package is installed once into
//! `target/standardwebhooks-venv` (from PyPI, a package registry).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use domain::{EventId, WebhookUrl};
use ports::{OutboundWebhook, SystemClock, WebhookSender as _};
use secrecy::SecretString;
use webhook_sender::{HttpWebhookSender, SenderSettings};

const CURRENT: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const PREVIOUS: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCEhIQ==";

/// The reference package's version, pinned.
const PACKAGE: &str = "standardwebhooks==1.1.0";

/// A Python with `standardwebhooks` installed, in a venv under `target/`.
fn python() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let venv = target.join("standardwebhooks-venv");
    let python = venv.join("bin/python");
    let installed = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", "import standardwebhooks"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !installed(&python) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect(
                "python3 is needed for this test (Debian: apt-get install python3 python3-venv)",
            );
        assert!(
            made.success(),
            "python3 -m venv failed (Debian: apt-get install python3-venv)"
        );
        let pip = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PACKAGE,
            ])
            .status()
            .unwrap();
        assert!(pip.success(), "pip install {PACKAGE} failed");
    }
    assert!(installed(&python));
    python
}

/// Asks the reference package whether `secret` verifies the delivery.
fn python_verifies(python: &PathBuf, secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
case = json.load(sys.stdin)
try:
    Webhook(case["secret"]).verify(case["body"], case["headers"])
    print("ok")
except Exception as e:
    print("refused:", e)
"#;
    let header = |name: &str| headers[name].to_str().unwrap().to_string();
    let case = serde_json::json!({
        "secret": secret,
        "body": String::from_utf8(body.to_vec()).unwrap(),
        "headers": {
            "webhook-id": header("webhook-id"),
            "webhook-timestamp": header("webhook-timestamp"),
            "webhook-signature": header("webhook-signature"),
        },
    });
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), case.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    text.trim() == "ok"
}

#[tokio::test]
async fn the_reference_python_package_verifies_our_deliveries() {
    let received: Arc<Mutex<Option<(HeaderMap, Bytes)>>> = Arc::default();
    let r = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let r = r.clone();
            async move {
                *r.lock().unwrap() = Some((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sender = HttpWebhookSender::new(
        SenderSettings {
            timeout: Duration::from_secs(5),
            allow_private_networks: true,
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    let status = sender
        .send(&OutboundWebhook {
            url: WebhookUrl::parse(&url, true).unwrap(),
            event: "evt_0193a1b2-0000-7000-8000-000000000001".parse::<EventId>().unwrap(),
            body: br#"{"type":"session.consumed","timestamp":"2026-11-29T10:00:00Z","data":{"id":"0193a1b2-0000-7000-8000-0000000000aa","status":"CONSUMED"}}"#.to_vec(),
            secrets: vec![SecretString::from(CURRENT), SecretString::from(PREVIOUS)],
        })
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (headers, body) = received.lock().unwrap().take().unwrap();

    let python = python();
    assert!(python_verifies(&python, CURRENT, &headers, &body));
    assert!(python_verifies(&python, PREVIOUS, &headers, &body));
    assert!(!python_verifies(&python, OTHER, &headers, &body));
}
