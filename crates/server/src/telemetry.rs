//! Logs and traces: the process-wide `tracing` subscriber.
//!
//! [`init_tracing`] writes JSON lines in production and human-readable lines on a terminal,
//! and, in a build with the `otel` feature and [`TraceExport`] configured, exports spans
//! with OpenTelemetry over OTLP/HTTP; [`init_test_tracing`] writes logs for tests, only when
//! `TEST_LOG` is set.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Layered;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};
use url::Url;

use crate::config::variables::RUST_LOG;

/// Gauge `widget_sessions_build_info{version}`, always 1.
pub const BUILD_INFO: &str = "widget_sessions_build_info";
/// Gauge of the database pool's connections, labelled `state` (`idle`, `in_use`).
pub const DB_CONNECTIONS: &str = "widget_sessions_db_pool_connections";
/// Gauge of the database pool's most connections.
pub const DB_MAX_CONNECTIONS: &str = "widget_sessions_db_pool_max_connections";

/// Describes the metrics this module records.
pub fn describe_runtime_metrics() {
    metrics::describe_gauge!(BUILD_INFO, "Always 1; the labels say which build runs.");
    metrics::describe_gauge!(
        DB_CONNECTIONS,
        "Open database connections of this instance's pool, by state (idle, in_use)."
    );
    metrics::describe_gauge!(
        DB_MAX_CONNECTIONS,
        "The most connections this instance's pool opens (WIDGET_SESSIONS_DB_MAX_CONNECTIONS)."
    );
}

/// Records the pool's gauges. (sqlx does not tell how many tasks wait for a connection;
/// `in_use` reaching the maximum is the sign of waiting.)
pub fn record_pool(pool: &sqlx::PgPool) {
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    metrics::gauge!(DB_CONNECTIONS, "state" => "idle").set(idle);
    metrics::gauge!(DB_CONNECTIONS, "state" => "in_use").set((size - idle).max(0.0));
    metrics::gauge!(DB_MAX_CONNECTIONS).set(f64::from(pool.options().get_max_connections()));
}

/// The log filter when `RUST_LOG` is unset (or invalid).
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=info";

/// How log lines are written to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One flat JSON object per line: the event's fields and the fields of the spans it
    /// happened in (a request's `request_id`, `method`, `route`) at the top level; for
    /// production log collectors.
    Json,
    /// One human-readable line per event, coloured on a terminal.
    Pretty,
    /// [`LogFormat::Json`] when standard output is not a terminal, [`LogFormat::Pretty`]
    /// otherwise.
    #[default]
    Auto,
}

impl LogFormat {
    /// The configuration name: `json`, `pretty` or `auto`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Pretty => "pretty",
            Self::Auto => "auto",
        }
    }

    /// Whether this format writes JSON, given whether standard output is a terminal.
    fn is_json(self, stdout_is_terminal: bool) -> bool {
        match self {
            Self::Json => true,
            Self::Pretty => false,
            Self::Auto => !stdout_is_terminal,
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A log format name that is not `json`, `pretty` or `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be json, pretty or auto")]
pub struct UnknownLogFormat;

impl std::str::FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Json, Self::Pretty, Self::Auto]
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or(UnknownLogFormat)
    }
}

/// The `service.name` of exported traces, unless configured.
pub const DEFAULT_SERVICE_NAME: &str = "widget-sessions";

/// Where and as what traces are exported (`OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `OTEL_SERVICE_NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The collector's OTLP/HTTP base URL; spans go to `{endpoint}/v1/traces`.
    pub endpoint: Url,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

impl TraceExport {
    /// Where spans are sent.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.as_str().trim_end_matches('/'))
    }
}

/// Keeps trace export running; dropping it flushes the spans still buffered (call it last).
#[must_use = "dropping the guard stops trace export"]
pub struct TracingGuard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("widget-sessions: flushing traces failed: {e}");
        }
    }
}

/// Installs the process-wide `tracing` subscriber writing to standard output in `format`,
/// exporting traces to `traces` when given (only builds with the `otel` feature accept one;
/// the configuration refuses it otherwise).
///
/// The filter comes from `RUST_LOG` (e.g. `debug,hyper=info`); when it is unset, empty or
/// invalid, [`DEFAULT_LOG_FILTER`] is used (an invalid `RUST_LOG` is reported as a warning
/// once logging works).
///
/// Calling it again, or after another subscriber was installed, installs nothing.
///
/// # Errors
///
/// The trace exporter could not be built.
pub fn init_tracing(
    format: LogFormat,
    traces: Option<&TraceExport>,
) -> Result<TracingGuard, String> {
    let (filter, invalid) = log_filter(std::env::var(RUST_LOG.name()).ok());
    let is_terminal = std::io::stdout().is_terminal();
    #[cfg(feature = "otel")]
    let (export, guard) = match traces {
        Some(traces) => {
            let (layer, provider) = otel::export_layer(traces)?;
            (
                Some(layer),
                TracingGuard {
                    provider: Some(provider),
                },
            )
        }
        None => (None, TracingGuard { provider: None }),
    };
    #[cfg(not(feature = "otel"))]
    let (export, guard): (Option<OutputLayer>, TracingGuard) = match traces {
        Some(_) => {
            return Err("this build does not export traces (build with `--features otel`)".into());
        }
        None => (None, TracingGuard {}),
    };
    let installed = subscriber(
        format.is_json(is_terminal),
        is_terminal,
        filter,
        std::io::stdout,
        export,
    )
    .try_init()
    .is_ok();
    if let (true, Some(problem)) = (installed, invalid) {
        tracing::warn!("{problem}");
    }
    if let (true, Some(traces)) = (installed, traces) {
        tracing::info!(collector = %traces.traces_url(), service = %traces.service_name, "exporting traces");
    }
    Ok(guard)
}

/// Installs a subscriber that writes through the test harness (so output is captured per
/// test), only when the environment variable `TEST_LOG` is set: tests are quiet by default.
///
/// The filter is `RUST_LOG` or [`DEFAULT_LOG_FILTER`]. Safe to call from every test.
///
/// ```sh
/// TEST_LOG=1 RUST_LOG=debug cargo test -p widget-sessions some_test -- --nocapture
/// ```
pub fn init_test_tracing() {
    if std::env::var_os("TEST_LOG").is_none() {
        return;
    }
    let (filter, _) = log_filter(std::env::var(RUST_LOG.name()).ok());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The filter for `rust_log` (the value of `RUST_LOG`), with a description of the problem
/// when the value was invalid and the default was used instead.
fn log_filter(rust_log: Option<String>) -> (EnvFilter, Option<String>) {
    match rust_log {
        Some(directives) if !directives.trim().is_empty() => {
            match EnvFilter::try_new(&directives) {
                Ok(filter) => (filter, None),
                Err(err) => (
                    EnvFilter::new(DEFAULT_LOG_FILTER),
                    Some(format!(
                        "RUST_LOG={directives:?} is invalid ({err}); using {DEFAULT_LOG_FILTER:?}"
                    )),
                ),
            }
        }
        _ => (EnvFilter::new(DEFAULT_LOG_FILTER), None),
    }
}

/// The subscriber's layers sit on the filtered registry.
type Filtered = Layered<EnvFilter, Registry>;

/// One output of the subscriber: the log lines, or the trace export.
type OutputLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// The subscriber: the filter, JSON or one human-readable line per event, and `export` if
/// given.
fn subscriber<W>(
    json: bool,
    ansi: bool,
    filter: EnvFilter,
    writer: W,
    export: Option<OutputLayer>,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines: OutputLayer = if json {
        // One flat object per line, so that log pipelines index the request's fields
        // (`request_id` above all) without digging into nested span objects. The span
        // fields (`request_id`, `method`, `route`) are therefore reserved: an event must not
        // use them as its own field names.
        let mut layer = json_subscriber::JsonLayer::new(writer);
        layer
            .with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
            .with_level("level")
            .with_target("target")
            .with_flattened_event()
            .with_top_level_flattened_span_list();
        Box::new(layer)
    } else {
        Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi),
        )
    };
    let layers: Vec<OutputLayer> = std::iter::once(lines).chain(export).collect();
    Box::new(tracing_subscriber::registry().with(filter).with(layers))
}

/// OpenTelemetry trace export (the `otel` feature).
#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::{OutputLayer, TraceExport};

    /// A layer exporting every span to `traces` in batches, the provider that flushes them,
    /// and the W3C trace-context propagator installed for outgoing calls.
    pub(super) fn export_layer(
        traces: &TraceExport,
    ) -> Result<(OutputLayer, SdkTracerProvider), String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces.traces_url())
            .build()
            .map_err(|e| format!("the OTLP trace exporter could not be built: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(traces.service_name.clone())
                    .build(),
            )
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let tracer = provider.tracer("widget-sessions");
        Ok((
            Box::new(tracing_opentelemetry::layer().with_tracer(tracer)),
            provider,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io;
    use std::sync::{Arc, Mutex};

    use api::observability::{REQUEST_ID_HEADER, request_id_layers, trace_layer, track_http};
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::Response;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// One route, the layers in the order the service uses.
    fn app() -> Router {
        let (set_request_id, propagate_request_id) = request_id_layers();
        Router::new()
            .route("/x/{id}", get(|| async { "ok" }))
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

    /// A `MakeWriter` collecting everything written.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// Calls `uri` with the subscriber `json` on this thread; returns what it logged and the
    /// response's request id.
    async fn logged(json: bool, uri: &str, request_id: Option<&str>) -> (Vec<String>, String) {
        let captured = Captured::default();
        let writer = captured.clone();
        let _guard = tracing::subscriber::set_default(subscriber(
            json,
            false,
            EnvFilter::new(DEFAULT_LOG_FILTER),
            move || writer.clone(),
            None,
        ));
        let response = call(app(), "GET", uri, request_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()[REQUEST_ID_HEADER].to_str().unwrap();
        (captured.lines(), id.to_owned())
    }

    #[tokio::test]
    async fn json_logs_one_flat_line_per_response_with_request_id_route_status_and_latency() {
        let (lines, id) = logged(true, "/x/launch-s3cr3t?token=q-s3cr3t", None).await;
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "finished processing request");
        assert_eq!(line["status"], 200);
        assert!(line["latency"].as_str().unwrap().ends_with(" ms"), "{line}");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
        assert_eq!(line["target"], "tower_http::trace::on_response");
        // The request's fields are at the top level, where log pipelines index them.
        assert_eq!(line["method"], "GET");
        assert_eq!(line["route"], "/x/{id}");
        // The id assigned to the request is the one logged and sent back.
        uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(line["request_id"], id.as_str());
        assert!(
            line.get("span").is_none() && line.get("spans").is_none(),
            "{line}"
        );
        assert!(!lines[0].contains("s3cr3t"), "{}", lines[0]);
    }

    #[tokio::test]
    async fn human_readable_logs_carry_the_same_fields() {
        let (lines, _) = logged(false, "/x/launch-s3cr3t", Some("req-text-1")).await;
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let line = &lines[0];
        for part in [
            " INFO ",
            "route=/x/{id}",
            "request_id=req-text-1",
            "method=GET",
            "status=200",
            "finished processing request",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
        assert!(!line.contains("s3cr3t"), "{line}");
        assert!(
            !line.contains('\u{1b}'),
            "no colours when ansi is off: {line}"
        );
    }

    #[test]
    fn auto_is_json_unless_stdout_is_a_terminal() {
        assert!(LogFormat::Auto.is_json(false));
        assert!(!LogFormat::Auto.is_json(true));
        assert!(LogFormat::Json.is_json(true));
        assert!(!LogFormat::Pretty.is_json(false));
        assert_eq!(LogFormat::default(), LogFormat::Auto);
    }

    #[test]
    fn rust_log_overrides_the_default_filter_and_an_invalid_one_is_reported() {
        let (filter, problem) = log_filter(None);
        assert_eq!(
            filter.to_string(),
            EnvFilter::new(DEFAULT_LOG_FILTER).to_string()
        );
        assert!(problem.is_none());
        let (filter, problem) = log_filter(Some("  ".to_owned()));
        assert_eq!(
            filter.to_string(),
            EnvFilter::new(DEFAULT_LOG_FILTER).to_string()
        );
        assert!(problem.is_none());

        let (filter, problem) = log_filter(Some("debug,hyper=warn".to_owned()));
        assert!(filter.to_string().contains("hyper=warn"), "{filter}");
        assert!(problem.is_none());

        let (filter, problem) = log_filter(Some("info,sqlx=loud".to_owned()));
        assert_eq!(
            filter.to_string(),
            EnvFilter::new(DEFAULT_LOG_FILTER).to_string()
        );
        assert!(problem.unwrap().contains("sqlx=loud"));
    }
}
