//! Transak's order webhooks coming in (`POST /webhooks/transak`): verified and recorded
//! through the order use case; each answer says what became of the event.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

/// Transak's order webhook: `{"data": "<JWT>"}`, signed with the partner access token.
/// `200` when recorded (or already recorded, or late), `202` when it names no session of this
/// service whose link was opened, `401` when not signed with the access token (nothing
/// stored).
#[utoipa::path(
    post,
    path = "/webhooks/transak",
    tag = "upstream",
    request_body(content = String, description = "`{\"data\": \"<JWT>\"}`, as Transak sends it", content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"status\"}`: `recorded` (the session's order updated), `duplicate` (this event was recorded before) or `stale` (a late non-final status after a final one: recorded, the order unchanged)"),
        (status = 202, description = "`{\"status\": \"unmatched\"}`: no session of this service whose link was opened; recorded for operators"),
        (status = 503, description = "The store cannot be reached: retry", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`malformed_order_event`: signed, but not an order event", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_order_signature`: not signed with this service's access token; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transak_order(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = crate::auth::read_body(&headers, body).await?;
    match state.0.orders.accept(&body).await {
        Ok(app::OrderAccepted::Updated) => {
            Ok(axum::Json(serde_json::json!({"status": "recorded"})).into_response())
        }
        Ok(app::OrderAccepted::Duplicate) => {
            Ok(axum::Json(serde_json::json!({"status": "duplicate"})).into_response())
        }
        Ok(app::OrderAccepted::Stale) => {
            Ok(axum::Json(serde_json::json!({"status": "stale"})).into_response())
        }
        Ok(app::OrderAccepted::Unmatched) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({"status": "unmatched"})),
        )
            .into_response()),
        Err(app::OrderError::Unauthenticated) => Err(ApiError::unauthorized(
            ProblemCode::InvalidOrderSignature,
            "the order event is not signed with this service's Transak access token",
        )),
        Err(app::OrderError::Malformed(why)) => Err(ApiError::BadRequest {
            code: ProblemCode::MalformedOrderEvent,
            detail: format!("the order event is malformed: {why}"),
            errors: Vec::new(),
        }),
        Err(app::OrderError::Unavailable(why)) => {
            tracing::warn!(reason = %why, "order webhook not recorded: the store is unavailable");
            Err(ApiError::Unavailable {
                code: ProblemCode::DatabaseUnavailable,
                detail: "the service cannot record the event right now; retry later".into(),
                retry_after: std::time::Duration::from_secs(5),
            })
        }
        Err(app::OrderError::Internal(why)) => Err(ApiError::Internal(why)),
    }
}
