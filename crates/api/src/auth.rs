//! Authentication, as extractors (contract §6). [`Authenticated`] reads the `api-key` and
//! `Authorization` headers and the body, and calls [`app::Applications::authenticate`]; a
//! handler that takes it only runs for an authenticated, enabled, not rate-limited
//! application, and must hand the request's nonce to a use case that records it (the
//! create path records it in its own statement: no extra round trip). [`Signed`] is the same
//! with the replay check done: every other signed route takes it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use domain::ApplicationId;
use ports::{Caller, RequestNonce};

use crate::http::error::{ApiError, ProblemCode};
use crate::state::AppState;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Bodies up to this size are read to the end even when refused as too large.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// An authenticated request whose signature is not yet recorded: the calling application,
/// the request's nonce (to record) and the body the signature covered.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The calling application, its name and settings.
    pub caller: Caller,
    /// The request's signature, to be recorded once (replay protection).
    pub nonce: RequestNonce,
    /// The body, as signed.
    pub body: Bytes,
}

/// An authenticated request seen for the first time (a replay is refused with `401
/// replayed_request`): the calling application and the body the signature covered.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The calling application.
    pub application: ApplicationId,
    /// The body, as signed.
    pub body: Bytes,
}

/// The path the signature covers: below `/api/v1`, with the query string, as received.
pub fn signed_path(uri: &axum::http::Uri) -> &str {
    signing::request::signed_path(uri.path_and_query().map_or("/", |p| p.as_str()))
}

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

impl FromRequest<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        // A request that changes something is recorded so that a store crash cannot forget it
        // (replayed, it could hand out a new webhook secret); reads need not be.
        let durable = request.method() != axum::http::Method::GET;
        let mut a = Authenticated::from_request(request, state).await?;
        a.nonce.durable = durable;
        if !state.0.sessions.remember_request(a.nonce).await? {
            return Err(ApiError::replayed());
        }
        Ok(Signed {
            application: a.caller.application,
            body: a.body,
        })
    }
}

impl FromRequest<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let missing = || {
            ApiError::unauthorized(
                ProblemCode::MissingCredentials,
                "send the api-key and Authorization headers",
            )
        };
        let api_key = header(&parts.headers, "api-key").ok_or_else(missing)?;
        let authorization = header(&parts.headers, header::AUTHORIZATION).ok_or_else(missing)?;
        let body = read_body(&parts.headers, body).await?;
        let path = signed_path(&parts.uri).to_string();
        let proof = state
            .0
            .applications
            .authenticate(app::SignedRequest {
                api_key,
                authorization,
                method: parts.method.as_str(),
                path_and_query: &path,
                body: &body,
            })
            .await?;
        let application = proof.caller.application;
        if let Some(limiter) = &state.0.limiter
            && let Err(wait) = limiter.check(application)
        {
            return Err(ApiError::RateLimited { retry_after: wait });
        }
        tracing::Span::current().record("application", tracing::field::display(application));
        Ok(Authenticated {
            nonce: proof.nonce(),
            caller: proof.caller,
            body,
        })
    }
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
///
/// A body a little too large is read and dropped before the `413`, so that the client is
/// done sending and reads the answer (a server that closes a connection with unread data
/// makes the client's kernel reset it, and the answer is lost). A much larger one is refused
/// at once.
///
/// # Errors
///
/// `413 payload_too_large`, or `408` when the body-read timeout passes.
pub(crate) async fn read_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<axum::body::Bytes, ApiError> {
    if let Some(len) = header(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        && len > DRAIN_LIMIT as u64
    {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    let body = axum::body::to_bytes(body, DRAIN_LIMIT)
        .await
        .map_err(body_error)?;
    if body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    Ok(body)
}

/// Why a body could not be read: too slow (the body-read timeout) or too large.
fn body_error(e: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::RequestTimeout;
        }
        source = err.source();
    }
    ApiError::PayloadTooLarge(MAX_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_path_is_below_api_v1_with_the_query() {
        let uri: axum::http::Uri = "/api/v1/travel-rule/widget-sessions?userId=x&limit=5"
            .parse()
            .unwrap();
        assert_eq!(
            signed_path(&uri),
            "/travel-rule/widget-sessions?userId=x&limit=5"
        );
        let uri: axum::http::Uri = "/api/v1/travel-rule/widget-sessions/abc/cancel"
            .parse()
            .unwrap();
        assert_eq!(signed_path(&uri), "/travel-rule/widget-sessions/abc/cancel");
    }
}
