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

/// Readiness answer. Public, so it says what failed but never why: the detail (the
/// database's error, the records and key ids the keys do not open, the upstream's refusal)
/// is in the logs and in `widget-sessions doctor`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `not_ready` (a check that decides readiness failed) or `shutting_down`.
    pub status: &'static str,
    /// Per dependency: `ok` or `failing`.
    pub checks: Checks,
}

/// Per-dependency state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// The database (or the in-memory store) answers: `ok` or `failing`. Decides readiness.
    pub database: &'static str,
    /// The configured at-rest keys open every sealed value in use (applications' secrets,
    /// webhook endpoints' secrets, the Transak access token): `ok` or `failing`. Decides
    /// readiness.
    pub keys: &'static str,
    /// The upstream credentials as last seen: `ok`, `not used yet` or `failing`. Reported
    /// only: a Transak outage does not take the instance out of the load balancer (reads,
    /// cancels and launch links keep working).
    pub upstream: &'static str,
}

/// `ok` or `failing`.
fn verdict<E>(result: &Result<(), E>) -> &'static str {
    if result.is_ok() { "ok" } else { "failing" }
}

/// Ready to take traffic: not shutting down, the database answers (checked at most about
/// once a second, however often this is called) and the at-rest keys open every sealed value
/// in use (checked at most every 30 s). The upstream's state is reported but does not decide.
/// A check that starts failing, or that fails differently, is logged with its detail.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready (a check failed, or shutting down); `checks` says which (the logs and `widget-sessions doctor` say why)", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = state
        .0
        .readiness
        .get_or_check(
            || async { state.0.housekeeping.ping().await.map_err(|e| e.to_string()) },
            |result| match result {
                Ok(()) => tracing::info!("readiness: the database answers again"),
                Err(e) => tracing::warn!(error = %e, "readiness: the database does not answer"),
            },
        )
        .await;
    // The configured keys must open what is stored (another instance may have resealed
    // everything under a key this one does not have).
    let keys = if database.is_err() {
        Ok(())
    } else {
        state
            .0
            .key_check
            .get_or_check(
                || async {
                    match state.0.keys.check().await {
                        Ok(report) if report.ok() => Ok(()),
                        Ok(report) => Err(report.describe()),
                        Err(e) => Err(format!("cannot check the sealed values: {e}")),
                    }
                },
                |result| match result {
                    Ok(()) => {
                        tracing::info!("readiness: the at-rest keys open every sealed value in use")
                    }
                    Err(e) => {
                        tracing::warn!(problem = %e, "readiness: the at-rest keys do not open every sealed value in use")
                    }
                },
            )
            .await
    };
    let upstream = match state.0.gateway.status() {
        UpstreamStatus::Ready => "ok",
        UpstreamStatus::Unknown => "not used yet",
        UpstreamStatus::Failing { .. } => "failing",
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
            database: verdict(&database),
            keys: verdict(&keys),
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
