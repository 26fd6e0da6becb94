//! Authentication, as an extractor: [`Signed`] reads the `api-key` and `Authorization`
//! headers and the body, and calls [`app::Applications::authenticate`] (contract §6). A handler
//! that takes a [`Signed`] only runs for an authenticated, enabled, not rate-limited
//! application.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use domain::ApplicationId;

use crate::http::error::ApiError;
use crate::state::AppState;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// An authenticated request: the calling application and the body the signature covered.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The calling application.
    pub application: ApplicationId,
    /// The proof of this request, for the replay check.
    pub proof: app::Authenticated,
    /// The body, as signed.
    pub body: Bytes,
}

/// The path the signature covers: below `/api/v1`, with the query string, as received.
pub fn signed_path(uri: &axum::http::Uri) -> &str {
    client::signing::signed_path(uri.path_and_query().map_or("/", |p| p.as_str()))
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
        let (parts, body) = request.into_parts();
        let missing = || {
            ApiError::unauthorized(
                "missing_credentials",
                "send the api-key and Authorization headers",
            )
        };
        let api_key = header(&parts.headers, "api-key").ok_or_else(missing)?;
        let authorization = header(&parts.headers, header::AUTHORIZATION).ok_or_else(missing)?;
        if let Some(len) =
            header(&parts.headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
            && len > MAX_BODY as u64
        {
            return Err(ApiError::PayloadTooLarge(MAX_BODY));
        }
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY))?;
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
        let application = proof.application;
        if let Some(limiter) = &state.0.limiter
            && let Err(wait) = limiter.check(application)
        {
            return Err(ApiError::RateLimited { retry_after: wait });
        }
        tracing::Span::current().record("application", tracing::field::display(application));
        Ok(Signed {
            application,
            proof,
            body,
        })
    }
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
