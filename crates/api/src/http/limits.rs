//! Limits in front of the work a client can cause: per client address and in all, and the
//! request timeout's answer.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, ProblemCode};
use crate::http::launch;
use crate::state::AppState;

/// Middleware: refuses a request whose client address (or everyone) is over the limit,
/// before authentication or a launch lookup does any work. `429` with `Retry-After` (an HTML
/// page for launch links, which browsers open).
pub async fn limit_clients(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client: IpAddr = state.0.clients.client(request.headers(), peer);
    match state.0.clients.check(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            if request.uri().path().starts_with("/w/") {
                launch::too_many_requests(wait)
            } else {
                ApiError::RateLimited { retry_after: wait }.into_response()
            }
        }
    }
}

/// The request timeout answers an empty `503`; this turns it into the problem document every
/// other error is (`503 request_timeout`).
pub async fn timed_out_as_problem(response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && !response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return ApiError::Unavailable {
            code: ProblemCode::RequestTimeout,
            detail: "the request took too long to answer; try again".into(),
            retry_after: std::time::Duration::from_secs(1),
        }
        .into_response();
    }
    response
}
