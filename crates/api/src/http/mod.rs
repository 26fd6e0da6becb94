//! The axum router: routes, layers, and the problem+json fallbacks.

pub mod create_body;
pub mod declaration_body;
pub mod error;
pub mod health;
pub mod hosted;
pub mod launch;
pub mod limits;
pub mod openapi;
pub mod path_id;
pub mod sessions;
pub mod transak_orders;
pub mod travel_rule;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{delete, get, post};
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::auth;
use crate::http::error::{ApiError, ProblemCode};
use crate::observability;
use crate::state::AppState;

/// The whole HTTP API, `/metrics` included.
pub fn router(state: AppState) -> Router {
    router_with(state, true)
}

/// The HTTP API; `/metrics` only when `with_metrics` (otherwise serve [`metrics_router`] on
/// a listener of its own).
pub fn router_with(state: AppState, with_metrics: bool) -> Router {
    // Everything a client can make the instance do before it knows who the client is
    // (authentication, launch links) goes through the per-client and global limits.
    let limited = Router::new()
        .route(sessions::BASE, post(sessions::create).get(sessions::list))
        .route(&format!("{}/{{id}}", sessions::BASE), get(sessions::get))
        .route(
            &format!("{}/{{id}}/cancel", sessions::BASE),
            post(sessions::cancel),
        )
        .route(&webhooks::events_route(), get(webhooks::session_events))
        .route(
            &format!("{}/{{id}}/declaration", sessions::BASE),
            axum::routing::put(travel_rule::declare),
        )
        .route(
            &format!("{}/{{id}}/ownership-challenge", sessions::BASE),
            get(travel_rule::challenge),
        )
        .route(
            &format!("{}/{{id}}/ownership-proof", sessions::BASE),
            post(travel_rule::prove),
        )
        .route(
            webhooks::ENDPOINTS,
            post(webhooks::create_endpoint).get(webhooks::list_endpoints),
        )
        .route(
            &format!("{}/{{id}}", webhooks::ENDPOINTS),
            delete(webhooks::delete_endpoint),
        )
        .route(
            &format!("{}/{{id}}/rotate-secret", webhooks::ENDPOINTS),
            post(webhooks::rotate_secret),
        )
        .route("/w/{token}", get(launch::launch))
        .route("/w/{token}/travel-rule", post(hosted::post_travel_rule))
        .route("/w/{token}/continue", post(hosted::post_continue))
        .route("/webhooks/transak", post(transak_orders::transak_order))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limits::limit_clients,
        ));

    let limits = state.0.limits;
    let (set_request_id, propagate_request_id) = observability::request_id_layers();
    let mut router = Router::new()
        .merge(limited)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/openapi.json", get(openapi::openapi_json));
    if with_metrics {
        router = router.route("/metrics", get(health::metrics));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost: a panicking handler still gets counted, logged and a request id.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(DefaultBodyLimit::max(auth::MAX_BODY))
        // A client that sends its body too slowly gets `408` (see the `Signed` extractor).
        .layer(MapRequestBodyLayer::new(axum::body::Body::new))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(middleware::map_response(limits::timed_out_as_problem))
        .layer(middleware::from_fn(observability::track_http))
        .layer(observability::trace_layer())
        .layer(propagate_request_id)
        .layer(set_request_id)
        .layer(middleware::map_request(
            observability::drop_unusable_request_id,
        ))
        .with_state(state)
}

/// `/metrics` alone, for its own listener (`WIDGET_SESSIONS_METRICS_LISTEN`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: ProblemCode::NotFound,
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
