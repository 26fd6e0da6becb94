//! A local webhook receiver for end-to-end tests: records every delivery and checks
//! Standard Webhooks signatures with the partners' client crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use client::webhooks::{DEFAULT_TOLERANCE, WebhookHeaders, verify};
use serde_json::Value;

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request's headers.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// A header, or empty.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// Whether one of `secrets` signed it (Standard Webhooks). Judged at the delivery's own
    /// timestamp: the instance's clock is moved forward by some tests.
    pub fn verifies(&self, secrets: &[&str]) -> bool {
        let at: i64 = self.header("webhook-timestamp").parse().unwrap();
        verify(
            secrets,
            &WebhookHeaders {
                id: self.header("webhook-id"),
                timestamp: self.header("webhook-timestamp"),
                signature: self.header("webhook-signature"),
            },
            &self.body,
            at,
            DEFAULT_TOLERANCE,
        )
        .is_ok()
    }
}

/// A local webhook receiver: answers `500` to the first `fail_first` deliveries (all of them
/// when `None`), `204` after.
#[derive(Clone)]
pub struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    calls: Arc<AtomicU32>,
    fail_first: Option<u32>,
    delay: Duration,
    /// Where it receives: `http://127.0.0.1:<port>/hooks`.
    pub url: String,
}

impl Receiver {
    /// A receiver answering `500` to the first `fail_first` deliveries (all when `None`).
    pub async fn start(fail_first: Option<u32>) -> Self {
        Self::start_with_delay(fail_first, Duration::ZERO).await
    }

    /// A receiver that takes `delay` to answer each delivery.
    pub async fn start_with_delay(fail_first: Option<u32>, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let r = Self {
            got: Arc::default(),
            calls: Arc::default(),
            fail_first,
            delay,
            url,
        };
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `check` holds for the deliveries received (2xx'd or not), or panics.
    pub async fn until(&self, what: &str, check: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.deliveries();
            if check(&got) {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; received: {:#?}",
                got.iter().map(Received::json).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = r.calls.fetch_add(1, Ordering::SeqCst) + 1;
    r.got.lock().unwrap().push(Received {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    });
    tokio::time::sleep(r.delay).await;
    match r.fail_first {
        Some(n_fail) if n > n_fail => StatusCode::NO_CONTENT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
