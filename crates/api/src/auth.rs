//! Application authentication, Striga-style (SPEC §6): header `api-key`, and
//! `Authorization: HMAC <unix-ms>:<hex HMAC-SHA256(secret, unix-ms + METHOD + path + md5hex(body))>`
//! where `path` is the request path below `/api/v1` with its query string, and an empty body
//! is hashed as `{}`. Timestamps more than 5 minutes off are refused; signatures are compared
//! in constant time.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use domain::ApplicationId;
use ports::{ApiKeyDigest, ApplicationStatus};
use secrecy::ExposeSecret;

use crate::http::error::ApiError;
use crate::security;
use crate::state::{AppState, Credentials};

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// The application a request was authenticated as (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated(pub ApplicationId);

/// The path the signature covers: below `/api/v1`, with the query string.
pub fn signed_path(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let below = path.strip_prefix("/api/v1").unwrap_or(path);
    match uri.query() {
        Some(q) => format!("{below}?{q}"),
        None => below.to_string(),
    }
}

/// Reads the body (at most [`MAX_BODY`]) so the signature can cover it.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_BODY as u64
    {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY))
}

/// The middleware: authenticates, rate-limits, and passes the request on with its body
/// restored and an [`Authenticated`] extension.
pub async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let api_key = parts
        .headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_credentials",
                "send the api-key and Authorization headers",
            )
        })?
        .to_string();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_credentials",
                "send the api-key and Authorization headers",
            )
        })?;
    let parsed = security::parse_authorization(authorization).map_err(|e| {
        ApiError::unauthorized("malformed_authorization", format!("Authorization: {e}"))
    })?;
    let now_ms = state.0.clock.now().timestamp_millis();
    if !security::within_skew(parsed.unix_ms, now_ms, security::MAX_CLOCK_SKEW_MS) {
        return Err(ApiError::unauthorized(
            "stale_timestamp",
            format!(
                "the signature's timestamp is more than 5 minutes from the server's clock ({now_ms} ms since the epoch)"
            ),
        ));
    }

    let credentials = lookup(&state, &api_key).await?;
    let body = read_body(&parts.headers, body).await?;
    let path = signed_path(&parts.uri);
    let verified = match &credentials {
        Some(c) => security::verify(
            c.secret.expose_secret().as_bytes(),
            &parsed,
            parts.method.as_str(),
            &path,
            &body,
        ),
        None => false,
    };
    let Some(credentials) = credentials.filter(|_| verified) else {
        // Unknown key and wrong signature look the same from outside.
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "the api-key or the signature is not valid",
        ));
    };
    if credentials.record.application.status == ApplicationStatus::Disabled {
        return Err(ApiError::Disabled);
    }
    let app = credentials.record.application.id;
    if let Some(limiter) = &state.0.limiter
        && let Err(wait) = limiter.check(app)
    {
        return Err(ApiError::RateLimited { retry_after: wait });
    }
    tracing::Span::current().record("application", tracing::field::display(app));
    parts.extensions.insert(Authenticated(app));
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}

async fn lookup(state: &AppState, api_key: &str) -> Result<Option<Credentials>, ApiError> {
    let digest = ApiKeyDigest::of(api_key);
    if let Some(cached) = state.0.credentials.get(&digest) {
        return Ok(cached);
    }
    let found = match state.0.applications.find_by_api_key(&digest).await? {
        None => None,
        Some(record) => {
            let secret = state.0.sealer.open(&record.secret).map_err(|e| {
                ApiError::Internal(format!(
                    "cannot open the secret of application {}: {e}",
                    record.application.id
                ))
            })?;
            Some(Credentials { record, secret })
        }
    };
    state.0.credentials.put(digest, found.clone());
    Ok(found)
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
