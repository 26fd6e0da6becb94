#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{DateTime, Utc};
use domain::EventId;
use ports::SystemClock;
use secrecy::SecretString;
use signing::webhooks::{DEFAULT_TOLERANCE, WebhookHeaders, verify};

use super::*;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(AxumHeaders, Bytes)>>>);

/// A receiver on a free local port: `/ok` answers 204, `/redirect` 307 to `/ok`, `/slow`
/// answers after 2 s. Returns its base URL.
async fn receiver(received: Received) -> String {
    let r = received.clone();
    let app = Router::new()
        .route(
            "/ok",
            post(move |headers: AxumHeaders, body: Bytes| {
                let r = r.clone();
                async move {
                    r.0.lock().unwrap().push((headers, body));
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/redirect",
            post(|| async {
                (StatusCode::TEMPORARY_REDIRECT, [("location", "/ok")]).into_response()
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                StatusCode::OK
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn sender(allow_private_networks: bool, timeout: Duration) -> HttpWebhookSender {
    HttpWebhookSender::new(
        SenderSettings {
            timeout,
            allow_private_networks,
        },
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn webhook(url: &str, secrets: &[&str]) -> OutboundWebhook {
    OutboundWebhook {
        url: WebhookUrl::parse(url, true).unwrap(),
        event: "evt_0193a1b2-0000-7000-8000-000000000001"
            .parse::<EventId>()
            .unwrap(),
        body: br#"{"type":"session.created","timestamp":"2026-11-29T10:00:00Z","data":{}}"#
            .to_vec(),
        secrets: secrets.iter().map(|s| SecretString::from(*s)).collect(),
    }
}

#[tokio::test]
async fn sends_standard_webhooks_headers_signed_with_every_secret() {
    let received = Received::default();
    let base = receiver(received.clone()).await;
    let s = sender(true, Duration::from_secs(5));
    let w = webhook(&format!("{base}/ok"), &[SECRET, OLD_SECRET]);
    assert_eq!(s.send(&w).await.unwrap(), 204);

    let (headers, body) = received.0.lock().unwrap().pop().unwrap();
    assert_eq!(body.as_ref(), w.body.as_slice());
    assert_eq!(headers["content-type"], "application/json");
    let h = |name: &str| headers[name].to_str().unwrap().to_string();
    assert_eq!(h("webhook-id"), w.event.to_string());
    let signature = h("webhook-signature");
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    let timestamp = h("webhook-timestamp");
    let now: DateTime<Utc> = Utc::now();
    assert!((now.timestamp() - timestamp.parse::<i64>().unwrap()).abs() < 5);
    // Each secret alone verifies it (a partner mid-rotation holds either).
    for secret in [SECRET, OLD_SECRET] {
        verify(
            &[secret],
            &WebhookHeaders {
                id: &h("webhook-id"),
                timestamp: &timestamp,
                signature: &signature,
            },
            &body,
            now.timestamp(),
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_slow_endpoints_time_out() {
    let received = Received::default();
    let base = receiver(received.clone()).await;
    let s = sender(true, Duration::from_millis(300));
    assert_eq!(
        s.send(&webhook(&format!("{base}/redirect"), &[SECRET]))
            .await
            .unwrap(),
        307
    );
    assert!(
        received.0.lock().unwrap().is_empty(),
        "the redirect was not followed"
    );
    assert_eq!(
        s.send(&webhook(&format!("{base}/slow"), &[SECRET])).await,
        Err(SendError::Timeout)
    );
}

#[tokio::test]
async fn private_addresses_are_refused_at_registration_and_at_delivery() {
    let received = Received::default();
    let base = receiver(received.clone()).await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let s = sender(false, Duration::from_secs(2));
    for host in [
        "127.0.0.1".to_string(),
        "[::1]".to_string(),
        "[::ffff:127.0.0.1]".to_string(),
        "10.0.0.1".to_string(),
        "192.168.1.20".to_string(),
        "169.254.169.254".to_string(),
        "[fd00::1]".to_string(),
        "[fe80::1]".to_string(),
        // A name that resolves to loopback: refused by the resolver itself.
        "localhost".to_string(),
    ] {
        let url = format!("https://{host}:{port}/ok");
        let parsed = WebhookUrl::parse(&url, true).unwrap();
        let checked = s.check(&parsed).await;
        assert!(
            matches!(
                checked,
                Err(WebhookUrlError::NotPublic(_) | WebhookUrlError::HostNotPublic)
            ),
            "{url}: {checked:?}"
        );
        let sent = s.send(&webhook(&url, &[SECRET])).await;
        assert!(
            matches!(sent, Err(SendError::Refused(WebhookUrlError::NotPublic(_)))),
            "{url}: {sent:?}"
        );
    }
    assert!(
        received.0.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
    // With private networks allowed, the same receiver is reachable.
    let open = sender(true, Duration::from_secs(2));
    assert!(
        open.check(&WebhookUrl::parse(&format!("{base}/ok"), true).unwrap())
            .await
            .is_ok()
    );
}

/// A name that does not resolve and one that resolves to a loopback address get the same
/// refusal, word for word: registration tells nothing about which internal names exist.
#[tokio::test]
async fn a_name_that_does_not_resolve_is_refused_like_a_private_one() {
    let s = sender(false, Duration::from_secs(2));
    let missing = WebhookUrl::parse("https://no-such-host.invalid/hook", false).unwrap();
    // `localhost` is refused by the URL rules themselves; parsed as allowed here so that the
    // sender resolves it (to loopback), as it would an internal name.
    let private = WebhookUrl::parse("https://localhost:8443/hook", true).unwrap();
    let missing = s.check(&missing).await.unwrap_err();
    let private = s.check(&private).await.unwrap_err();
    assert_eq!(missing, WebhookUrlError::HostNotPublic);
    assert_eq!(private, missing);
    assert_eq!(private.to_string(), missing.to_string());
    assert!(!missing.to_string().contains("no-such-host"), "{missing}");
}
