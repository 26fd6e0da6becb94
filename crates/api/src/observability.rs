//! Logs, metrics and request ids.
//!
//! - [`Metrics::install`] installs the Prometheus recorder behind the `metrics` facade;
//!   [`Metrics::render`] is the body of `GET /metrics`.
//! - [`track_http`], [`request_id_layers`] and [`trace_layer`] are the HTTP middleware.
//!
//! # Metrics
//!
//! The metrics this crate records (the Transak gateway and the binary record more; the whole
//! list is in `docs/operations.md`):
//!
//! | name | type | labels | counts |
//! |---|---|---|---|
//! | `widget_sessions_http_requests_total` | counter | `method`, `route`, `status` | HTTP responses |
//! | `widget_sessions_http_request_duration_seconds` | histogram | `method`, `route`, `status` | time from request to response head, in seconds |
//! | `widget_sessions_created_total` | counter | — | sessions created (an upstream widget URL minted) |
//! | `widget_sessions_reused_total` | counter | — | create requests answered with an existing session |
//! | `widget_sessions_consumed_total` | counter | — | launch links opened for the first time |
//! | `widget_sessions_cancelled_total` | counter | — | sessions cancelled |
//! | `widget_sessions_launch_gone_total` | counter | — | launch links opened after use, cancellation or expiry (`410`) |
//!
//! Label values are bounded: `route` is the route *template* (`/w/{token}`, never the path,
//! which would carry the launch token and make one series per request) or `unmatched`;
//! `method` is one of the standard methods or `OTHER`.
//!
//! `widget_sessions_http_request_duration_seconds` has the buckets [`HTTP_DURATION_BUCKETS`] (0.5 ms to 10 s).
//!
//! # Middleware order
//!
//! Add the layers with [`Router::layer`](axum::Router::layer), so that they run after routing
//! and see the matched route (outside the router every request would look `unmatched`). The
//! last layer added runs first:
//!
//! ```
//! use axum::{Router, middleware, routing::get};
//! use api::observability::{Metrics, request_id_layers, trace_layer, track_http};
//!
//! let metrics = Metrics::install();
//! let (set_request_id, propagate_request_id) = request_id_layers();
//! let app: Router = Router::new()
//!     .route("/api/v1/travel-rule/widget-sessions/{id}", get(|| async { "…" }))
//!     .route("/metrics", get(move || std::future::ready(metrics.render())))
//!     .layer(middleware::from_fn(track_http))
//!     .layer(propagate_request_id) // copies the id onto the response
//!     .layer(trace_layer()) // the span carries the id
//!     .layer(set_request_id); // first: keeps or assigns `x-request-id`
//! ```

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{
    DefaultOnRequest, DefaultOnResponse, HttpMakeClassifier, MakeSpan, TraceLayer,
};
use tracing::Level;

/// The request-id header, read from requests and echoed on responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// `route` label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Bucket bounds of `http_request_duration_seconds`, in seconds.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds of `widget_sessions_webhook_delivery_latency_seconds`, in seconds (1 ms
/// to a day: a delivery may succeed only after retries).
pub const WEBHOOK_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    3600.0, 21600.0, 86400.0,
];

const HTTP_REQUESTS: &str = "widget_sessions_http_requests_total";
const HTTP_DURATION: &str = "widget_sessions_http_request_duration_seconds";
const SESSIONS_CREATED: &str = "widget_sessions_created_total";
const SESSIONS_REUSED: &str = "widget_sessions_reused_total";
const SESSIONS_CONSUMED: &str = "widget_sessions_consumed_total";
const SESSIONS_CANCELLED: &str = "widget_sessions_cancelled_total";
const LAUNCH_GONE: &str = "widget_sessions_launch_gone_total";

// ---------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------

/// The process's Prometheus recorder (see the [module documentation](self) for the metrics).
///
/// Cheap to clone; every clone renders the same metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

static INSTALLED: OnceLock<PrometheusHandle> = OnceLock::new();

impl Metrics {
    /// Installs the Prometheus recorder as the process-global `metrics` recorder and
    /// describes every metric, the first time it is called in the process; later calls
    /// (another router, another test) return the same recorder.
    ///
    /// If a different global recorder was installed before (not through this function), a
    /// warning is logged and [`Metrics::render`] stays empty: the `metrics` facade has one
    /// global recorder per process.
    ///
    /// The recorder does no background work: run [`Metrics::run_upkeep`] periodically (see
    /// [`Metrics::upkeep_every`]) so histogram samples do not pile up between scrapes.
    pub fn install() -> Self {
        let handle = INSTALLED.get_or_init(|| {
            // Every `*_duration_seconds` histogram (the HTTP one, the upstream calls', the
            // webhook deliveries') shares the buckets; the others are counters and gauges.
            // The webhook delivery latency (from the event to the 2xx) spans retries: up to
            // a day.
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    HTTP_DURATION_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(app::webhook_metrics::LATENCY.to_owned()),
                        WEBHOOK_LATENCY_BUCKETS,
                    )
                })
                // Only fails for an empty bucket list.
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            if let Err(err) = metrics::set_global_recorder(recorder) {
                tracing::warn!(
                    error = %err,
                    "another metrics recorder is already installed; /metrics will be empty"
                );
            }
            describe();
            handle
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// The current metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets, so memory stays bounded when
    /// nobody scrapes for a while. [`Metrics::render`] does the same.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Runs [`Metrics::run_upkeep`] every `period`, forever: spawn it once at start-up,
    /// e.g. `tokio::spawn(metrics.clone().upkeep_every(Duration::from_secs(5)))`.
    pub async fn upkeep_every(self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.run_upkeep();
        }
    }
}

fn describe() {
    app::webhook_metrics::describe_metrics();
    metrics::describe_counter!(HTTP_REQUESTS, Unit::Count, "HTTP responses sent.");
    metrics::describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from receiving an HTTP request to sending the response head."
    );
    metrics::describe_counter!(
        SESSIONS_CREATED,
        Unit::Count,
        "Widget sessions created (an upstream widget URL minted)."
    );
    metrics::describe_counter!(
        SESSIONS_REUSED,
        Unit::Count,
        "Create requests answered with an existing active session."
    );
    metrics::describe_counter!(
        SESSIONS_CONSUMED,
        Unit::Count,
        "Launch links opened for the first time (session consumed)."
    );
    metrics::describe_counter!(
        SESSIONS_CANCELLED,
        Unit::Count,
        "Widget sessions cancelled."
    );
    metrics::describe_counter!(
        LAUNCH_GONE,
        Unit::Count,
        "Launch links opened after use, cancellation or expiry (410 Gone)."
    );
}

/// Counts a created session (`widget_sessions_created_total`).
pub fn session_created() {
    metrics::counter!(SESSIONS_CREATED).increment(1);
}

/// Counts a create request answered with an existing session (`widget_sessions_reused_total`).
pub fn session_reused() {
    metrics::counter!(SESSIONS_REUSED).increment(1);
}

/// Counts a first launch (`widget_sessions_consumed_total`).
pub fn session_consumed() {
    metrics::counter!(SESSIONS_CONSUMED).increment(1);
}

/// Counts a cancellation (`widget_sessions_cancelled_total`).
pub fn session_cancelled() {
    metrics::counter!(SESSIONS_CANCELLED).increment(1);
}

/// Counts a launch of a used, cancelled or expired session (`widget_sessions_launch_gone_total`).
pub fn launch_gone() {
    metrics::counter!(LAUNCH_GONE).increment(1);
}

// ---------------------------------------------------------------------------------------
// HTTP middleware
// ---------------------------------------------------------------------------------------

/// Middleware (for [`axum::middleware::from_fn`]) recording `http_requests_total` and
/// `http_request_duration_seconds` for every response, labelled with the method, the
/// matched route template (or `unmatched`) and the status.
///
/// Add it with [`Router::layer`](axum::Router::layer): outside the router no route is known.
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = route_label(&req);
    let response = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(elapsed);
    response
}

/// The route template, never the path (unbounded, and launch paths carry secrets).
fn route_label<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned())
}

/// The method, or `OTHER` for extension methods (clients choose them freely).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// The longest client-chosen request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether a client's `x-request-id` is short and plain enough to be kept (and logged, and
/// used as a metric-free span field): 1 to 64 of `A-Z a-z 0-9 . _ : -`.
pub fn usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Request middleware (for [`axum::middleware::map_request`], outside the request-id layers):
/// drops an `x-request-id` that is not [usable](usable_request_id), so that a fresh one is
/// made instead of echoing and logging whatever a client sent.
pub async fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = request
        .headers()
        .get_all(REQUEST_ID_HEADER)
        .iter()
        .map(|v| usable_request_id(v.as_bytes()))
        .collect::<Vec<_>>();
    if usable != [true] && !usable.is_empty() {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// The `x-request-id` layers: the first keeps a request's id or assigns a random UUID, the
/// second copies it onto the response. Add the setting layer outside [`trace_layer`] (so the
/// span carries the id) and the propagating one inside or next to it — see the
/// [module documentation](self).
pub fn request_id_layers() -> (SetRequestIdLayer<MakeRequestUuid>, PropagateRequestIdLayer) {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    (
        SetRequestIdLayer::new(header.clone(), MakeRequestUuid),
        PropagateRequestIdLayer::new(header),
    )
}

/// A [`TraceLayer`] whose span (`http_request`) carries `method`, `route` (the matched
/// template, never the path or query: launch paths carry secret tokens) and `request_id`
/// (from `x-request-id`), and which logs one INFO line per response with `status` and
/// `latency` (ms); server errors also get a WARN line (their cause is logged by the error).
pub fn trace_layer()
-> TraceLayer<HttpMakeClassifier, RouteSpan, DefaultOnRequest, DefaultOnResponse> {
    TraceLayer::new_for_http()
        .make_span_with(RouteSpan)
        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
        // Expected 5xx (an upstream or database outage answered 503) are warnings; a real
        // bug (500) is logged at ERROR, with its cause, by the handler's error itself.
        .on_failure(tower_http::trace::DefaultOnFailure::new().level(Level::WARN))
}

/// The [`MakeSpan`] of [`trace_layer`]: method, route template and request id, nothing from
/// the URI.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteSpan;

impl<B> MakeSpan<B> for RouteSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|id| id.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!(
            "http_request",
            method = %request.method(),
            route = %route_label(request),
            request_id = %request_id,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderValue, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// The app the tests call: one route, the layers in the documented order.
    fn app() -> Router {
        let (set_request_id, propagate_request_id) = request_id_layers();
        Router::new()
            .route("/x/{id}", get(|| async { "ok" }))
            .route(
                "/fail/{id}",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .layer(axum::middleware::from_fn(track_http))
            .layer(propagate_request_id)
            .layer(trace_layer())
            .layer(set_request_id)
    }

    async fn call(app: Router, method: &str, uri: &str, request_id: Option<&str>) -> Response {
        let mut request = axum::http::Request::builder().method(method).uri(uri);
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID_HEADER, id);
        }
        app.oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    /// The labels of a sample line `name{a="1",b="2"} value`, unescaped.
    fn labels_of(line: &str) -> Vec<(String, String)> {
        let Some(open) = line.find('{') else {
            return Vec::new();
        };
        let mut labels = Vec::new();
        let mut chars = line[open + 1..].chars();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() || key.starts_with('}') {
                return labels;
            }
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().unwrap()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.push((key.trim_start_matches(',').to_owned(), value));
            if chars.clone().next() == Some('}') {
                return labels;
            }
        }
    }

    /// The values of the samples of `name` whose labels include `want` (in any order).
    fn samples(rendered: &str, name: &str, want: &[(&str, &str)]) -> Vec<f64> {
        rendered
            .lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .filter(|line| {
                let labels = labels_of(line);
                want.iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|line| line.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect()
    }

    #[test]
    fn the_sample_parser_reads_labels_in_any_order() {
        let line = r#"m{status="200",route="/x/{id}",method="GET",q="a\"b"} 3"#;
        assert_eq!(
            labels_of(line),
            [
                ("status".to_owned(), "200".to_owned()),
                ("route".to_owned(), "/x/{id}".to_owned()),
                ("method".to_owned(), "GET".to_owned()),
                ("q".to_owned(), "a\"b".to_owned()),
            ]
        );
        assert_eq!(samples(line, "m", &[("method", "GET")]), [3.0]);
        assert!(samples(line, "m", &[("method", "POST")]).is_empty());
    }

    #[tokio::test]
    async fn counts_requests_by_route_template_never_by_path() {
        let metrics = Metrics::install();
        let response = call(app(), "GET", "/x/raw-path-s3cr3t?q=also-s3cr3t", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = call(app(), "GET", "/fail/raw-path-s3cr3t", None).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

        let rendered = metrics.render();
        let ok = [("method", "GET"), ("route", "/x/{id}"), ("status", "200")];
        let counted = samples(&rendered, "widget_sessions_http_requests_total", &ok);
        assert!(
            counted.len() == 1 && counted[0] >= 1.0,
            "{counted:?} in\n{rendered}"
        );
        let failed = [
            ("method", "GET"),
            ("route", "/fail/{id}"),
            ("status", "500"),
        ];
        assert_eq!(
            samples(&rendered, "widget_sessions_http_requests_total", &failed).len(),
            1
        );
        // The configured buckets, not a summary.
        let bucket = [("route", "/x/{id}"), ("status", "200"), ("le", "0.0005")];
        assert_eq!(
            samples(
                &rendered,
                "widget_sessions_http_request_duration_seconds_bucket",
                &bucket
            )
            .len(),
            1,
            "{rendered}"
        );
        assert!(
            !samples(
                &rendered,
                "widget_sessions_http_request_duration_seconds_count",
                &ok
            )
            .is_empty()
        );
        assert!(
            rendered.contains("# TYPE widget_sessions_http_request_duration_seconds histogram")
        );
        assert!(rendered.contains("# HELP widget_sessions_http_requests_total "));
        assert!(!rendered.contains("s3cr3t"), "{rendered}");
    }

    #[tokio::test]
    async fn unmatched_requests_and_odd_methods_have_bounded_labels() {
        let metrics = Metrics::install();
        let response = call(app(), "GET", "/w/unknown-launch-t0ken", None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = call(app(), "BREW", "/x/1", None).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

        let rendered = metrics.render();
        let unmatched = [
            ("method", "GET"),
            ("route", UNMATCHED_ROUTE),
            ("status", "404"),
        ];
        assert_eq!(
            samples(&rendered, "widget_sessions_http_requests_total", &unmatched).len(),
            1,
            "{rendered}"
        );
        assert!(!rendered.contains("t0ken"), "{rendered}");
        assert!(!rendered.contains("BREW"), "{rendered}");
        let other = samples(
            &rendered,
            "widget_sessions_http_requests_total",
            &[("method", "OTHER"), ("status", "405")],
        );
        assert_eq!(other.len(), 1, "{rendered}");
    }

    #[tokio::test]
    async fn assigns_a_request_id_or_echoes_the_incoming_one() {
        let response = call(app(), "GET", "/x/1", None).await;
        let assigned = response.headers().get(REQUEST_ID_HEADER).unwrap();
        uuid::Uuid::parse_str(assigned.to_str().unwrap()).unwrap();

        let response = call(app(), "GET", "/x/1", Some("client-chosen-id-42")).await;
        assert_eq!(
            response.headers().get(REQUEST_ID_HEADER),
            Some(&HeaderValue::from_static("client-chosen-id-42"))
        );
        // Also on responses no route produced.
        let response = call(app(), "GET", "/nowhere", Some("id-7")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers().get(REQUEST_ID_HEADER),
            Some(&HeaderValue::from_static("id-7"))
        );
    }

    #[test]
    fn the_metrics_recorder_is_installed_once() {
        let first = Metrics::install();
        let second = Metrics::install();
        session_created();
        session_reused();
        session_consumed();
        session_cancelled();
        launch_gone();
        for name in [
            SESSIONS_CREATED,
            SESSIONS_REUSED,
            SESSIONS_CONSUMED,
            SESSIONS_CANCELLED,
            LAUNCH_GONE,
        ] {
            let rendered = second.render();
            assert!(
                rendered.contains(&format!("# TYPE {name} counter")),
                "{name} in\n{rendered}"
            );
            assert!(rendered.contains(&format!("# HELP {name} ")), "{rendered}");
            assert!(first.render().contains(&format!("{name} ")));
        }
        second.run_upkeep();
    }
}
