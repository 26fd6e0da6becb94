//! `/healthz`, `/readyz`, `/metrics`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use ports::UpstreamStatus;

use crate::state::AppState;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Response {
    axum::Json(Health { status: "ok" }).into_response()
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `not_ready` (the database does not answer) or `shutting_down`.
    pub status: &'static str,
    /// `ok` or what is wrong, per dependency.
    pub checks: Checks,
}

/// Per-dependency state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// The database (or the in-memory store): `ok` or why not. Decides readiness.
    pub database: String,
    /// Whether the configured at-rest keys open every stored application secret: `ok` or
    /// which key ids are involved. Decides readiness.
    pub keys: String,
    /// The upstream credentials as last seen: `ok`, `not used yet`, or what failed.
    /// Reported only: a Transak outage does not take the instance out of the load balancer
    /// (reads, cancels and launch links keep working).
    pub upstream: String,
}

/// Ready to take traffic: not shutting down, and the database answers (checked at most
/// about once a second, however often this is called). The upstream's state is reported but
/// does not decide.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready (database down, or shutting down); `checks` says why", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match state.0.readiness.get() {
        Some(cached) => cached,
        None => {
            let result = state.0.housekeeping.ping().await.map_err(|e| e.to_string());
            state.0.readiness.put(result.clone());
            result
        }
    };
    // The configured keys must open what is stored (another instance may have resealed
    // everything under a key this one does not have).
    let keys = match (&database, state.0.key_check.get()) {
        (Err(_), _) => Ok(()),
        (Ok(()), Some(cached)) => cached,
        (Ok(()), None) => {
            let result = match state.0.applications.check_keys().await {
                Ok(report) if report.ok() => Ok(()),
                Ok(report) => Err(report.describe()),
                Err(e) => Err(e.to_string()),
            };
            state.0.key_check.put(result.clone());
            result
        }
    };
    let upstream = match state.0.gateway.status() {
        UpstreamStatus::Ready => "ok".to_string(),
        UpstreamStatus::Unknown => "not used yet".to_string(),
        UpstreamStatus::Failing { reason } => format!("failing: {reason}"),
    };
    let draining = state.0.lifecycle.is_draining();
    let status = match (&database, &keys, draining) {
        (_, _, true) => "shutting_down",
        (Ok(()), Ok(()), false) => "ready",
        _ => "not_ready",
    };
    let body = Readiness {
        status,
        checks: Checks {
            database: match database {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("unavailable: {e}"),
            },
            keys: match keys {
                Ok(()) => "ok".to_string(),
                Err(e) => e,
            },
            upstream,
        },
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut r = (code, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = state.0.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
