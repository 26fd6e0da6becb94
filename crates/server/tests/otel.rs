//! OpenTelemetry trace export (`--features otel`): the real binary, an OTLP/HTTP collector
//! stand-in that keeps what it receives, and the Transak emulator recording the
//! `traceparent` each upstream call carried.
//!
//! ```sh
//! cargo test -p widget-sessions --features otel --test otel
//! ```

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod process_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use process_support::{Deployment, create_body};

/// Everything POSTed to the collector's `/v1/traces`.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Bytes>>>);

impl Collector {
    /// Serves on a free local port; returns its base URL.
    async fn serve(&self) -> String {
        let received = self.0.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push(body);
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    /// Whether any export so far contains `needle` (protobuf keeps strings and ids as raw
    /// bytes, so a byte search finds them).
    fn saw(&self, needle: &[u8]) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|body| body.windows(needle.len()).any(|w| w == needle))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_and_upstream_calls_carry_the_trace_context() {
    let collector = Collector::default();
    let endpoint = collector.serve().await;
    let d = Deployment::new().await;
    let api = d
        .start(
            "traced",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_SERVICE_NAME", "widget-sessions-under-test"),
            ],
        )
        .await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);

    // The Create Widget URL call carried a W3C traceparent: 00-<trace id>-<span id>-<flags>.
    let minted = d.emulator.sessions();
    let traceparent = minted
        .last()
        .and_then(|s| s.traceparent.clone())
        .expect("the upstream call carried a traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00", "{traceparent}");
    let trace_id = hex::decode(parts[1]).unwrap();
    assert_eq!(trace_id.len(), 16, "{traceparent}");
    assert_ne!(trace_id, [0u8; 16], "a real trace id");

    // The spans of that request reach the collector (batched: within a few seconds), under
    // the same trace id, with the configured service name.
    let started = std::time::Instant::now();
    while !(collector.saw(&trace_id)
        && collector.saw(b"widget-sessions-under-test")
        && collector.saw(b"http_request")
        && collector.saw(b"create_widget_url"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the collector did not receive the request's spans (trace {}).\n{}",
            parts[1],
            api.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Without the feature the variable is refused at start-up instead of silently ignored: see
/// `config::tests`. With it, a malformed endpoint is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_collector_url_is_refused() {
    let d = Deployment::new().await;
    let (ok, log) = d
        .start_expecting_exit(
            "bad-endpoint",
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
        )
        .await;
    assert!(!ok, "{log}");
    assert!(log.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{log}");
}
