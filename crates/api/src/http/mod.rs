//! The axum router: routes, layers, and the problem+json fallbacks.

pub mod error;
pub mod health;
pub mod launch;
pub mod openapi;
pub mod request;
pub mod sessions;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use crate::auth;
use crate::http::error::ApiError;
use crate::observability;
use crate::state::AppState;

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let signed = Router::new()
        .route(sessions::BASE, post(sessions::create).get(sessions::list))
        .route(&format!("{}/{{id}}", sessions::BASE), get(sessions::get))
        .route(
            &format!("{}/{{id}}/cancel", sessions::BASE),
            post(sessions::cancel),
        );

    let (set_request_id, propagate_request_id) = observability::request_id_layers();
    Router::new()
        .merge(signed)
        .route("/w/{token}", get(launch::launch))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost: a panicking handler still gets counted, logged and a request id.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(DefaultBodyLimit::max(auth::MAX_BODY))
        .layer(middleware::from_fn(observability::track_http))
        .layer(observability::trace_layer())
        .layer(propagate_request_id)
        .layer(set_request_id)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        detail: "no such endpoint; see /api/v1/openapi.json".into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::Internal("a handler panicked".into()).into_response()
}
