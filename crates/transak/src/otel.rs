//! W3C trace context on upstream calls (the `otel` feature): each attempt carries the
//! `traceparent` (and `tracestate`) of the span it runs in, so Transak's side of a call can
//! be joined to ours in a tracing backend.

use opentelemetry_http::HeaderInjector;
use reqwest::header::HeaderMap;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The trace-context headers of the current span, per the globally installed propagator
/// (none when no propagator was installed, e.g. trace export is not configured).
pub(crate) fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(&mut headers));
    });
    headers
}
