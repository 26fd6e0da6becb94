//! One error type for the whole API, rendered as `application/problem+json` (RFC 9457) with
//! a stable `code`. Internal causes are logged, never sent.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{FieldError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

/// The most field problems one problem document lists.
pub const MAX_FIELD_PROBLEMS: usize = 20;

macro_rules! problem_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, )*) => {
        /// Every problem `code` the API sends, each spelled once here (docs/api.md lists them
        /// with their statuses; a test checks that list, and the partners' client crate, know
        /// every one).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ProblemCode {
            /// Every code.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant),*];

            /// The code as sent.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ProblemCode::$variant => $code, )*
                }
            }
        }
    };
}

problem_codes! {
    /// `400`: the body or query breaks rules; `errors` lists every problem.
    ValidationFailed = "validation_failed",
    /// `400`: a webhook URL that is not `https`, is malformed or carries credentials.
    InvalidWebhookUrl = "invalid_webhook_url",
    /// `400`: a webhook URL whose host is, or resolves to, a non-public address.
    WebhookUrlNotPublic = "webhook_url_not_public",
    /// `400`: Transak's order webhook is signed but is not an order event.
    MalformedOrderEvent = "malformed_order_event",
    /// `401`: no `api-key` or no `Authorization`.
    MissingCredentials = "missing_credentials",
    /// `401`: `Authorization` is not `HMAC <ms>:<64 hex>`.
    MalformedAuthorization = "malformed_authorization",
    /// `401`: the signed time is too old or too far ahead.
    StaleTimestamp = "stale_timestamp",
    /// `401`: this exact signature was already accepted.
    ReplayedRequest = "replayed_request",
    /// `401`: unknown API key, or wrong signature.
    InvalidCredentials = "invalid_credentials",
    /// `401`: Transak's order webhook is not signed with the service's access token.
    InvalidOrderSignature = "invalid_order_signature",
    /// `403`: the application is disabled.
    ApplicationDisabled = "application_disabled",
    /// `404`: no such session for this application.
    SessionNotFound = "session_not_found",
    /// `404`: no such webhook endpoint for this application.
    WebhookEndpointNotFound = "webhook_endpoint_not_found",
    /// `404`: no such endpoint.
    NotFound = "not_found",
    /// `405`: wrong method for the endpoint.
    MethodNotAllowed = "method_not_allowed",
    /// `408`: the body did not arrive in time; `503`: the answer took too long.
    RequestTimeout = "request_timeout",
    /// `409`: the session is not ACTIVE.
    SessionNotActive = "session_not_active",
    /// `409`: the application has as many webhook endpoints as allowed.
    TooManyWebhookEndpoints = "too_many_webhook_endpoints",
    /// `409`: the session was cancelled: it takes no travel-rule declaration or proof.
    SessionCancelled = "session_cancelled",
    /// `409`: the travel-rule record is complete and the declaration differs.
    DeclarationAlreadyRecorded = "declaration_already_recorded",
    /// `409`: the counterparty cannot sign (a bare payment hash, a script address).
    OwnershipProofUnavailable = "ownership_proof_unavailable",
    /// `410`: the session's travel-rule window has closed.
    TravelRuleWindowClosed = "travel_rule_window_closed",
    /// `413`: the body is too large.
    PayloadTooLarge = "payload_too_large",
    /// `422`: the signature is not decodable as any accepted form.
    SignatureMalformed = "signature_malformed",
    /// `422`: a well-formed signature, but not by the counterparty over the challenge.
    SignatureMismatch = "signature_mismatch",
    /// `415`: the body is not `application/json`.
    UnsupportedMediaType = "unsupported_media_type",
    /// `429`: over a rate limit.
    RateLimited = "rate_limited",
    /// `502`: Transak refused the request.
    UpstreamRejected = "upstream_rejected",
    /// `502`: Transak answered something it should not.
    UpstreamInvalidResponse = "upstream_invalid_response",
    /// `503`: Transak is unavailable; nothing was stored.
    UpstreamUnavailable = "upstream_unavailable",
    /// `503`: another request is still creating this very session.
    SessionBusy = "session_busy",
    /// `503`: the database is unavailable.
    DatabaseUnavailable = "database_unavailable",
    /// `500`: a bug on the service's side.
    Internal = "internal",
}

impl ProblemCode {
    /// Whether partners' calls can receive it (the rest answer Transak's order webhooks).
    pub const fn for_partners(self) -> bool {
        !matches!(
            self,
            ProblemCode::MalformedOrderEvent | ProblemCode::InvalidOrderSignature
        )
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem document (RFC 9457) as this API sends it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `tag:widget-sessions,2026:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// Stable machine code (see docs/api.md).
    pub code: String,
    /// For `validation_failed`: every problem with the request, each with its field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
}

/// One problem with one field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The request member (camelCase), a group joined with `|`, or `""` for the whole body.
    pub field: String,
    /// Stable code, e.g. `currency_network_mismatch`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

impl From<FieldError> for FieldProblem {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            code: e.code.as_str().to_string(),
            message: e.message,
        }
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `400 validation_failed`: the request breaks rules; every problem is listed.
    #[error("the request is invalid")]
    Validation(ValidationErrors),
    /// `400` with a specific code (query parameters and the like).
    #[error("{detail}")]
    BadRequest {
        /// Stable code.
        code: ProblemCode,
        /// Human detail.
        detail: String,
        /// Field problems, if any.
        errors: Vec<FieldError>,
    },
    /// `401`: credentials missing, malformed, stale or wrong.
    #[error("{detail}")]
    Unauthorized {
        /// Stable code.
        code: ProblemCode,
        /// Human detail.
        detail: String,
    },
    /// `403 application_disabled`.
    #[error("this application is disabled")]
    Disabled,
    /// `404`.
    #[error("{detail}")]
    NotFound {
        /// Stable code.
        code: ProblemCode,
        /// Human detail.
        detail: String,
    },
    /// `405 method_not_allowed`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `409`: the request conflicts with the current state (`session_not_active`,
    /// `too_many_webhook_endpoints`).
    #[error("{detail}")]
    Conflict {
        /// Stable code.
        code: ProblemCode,
        /// Human detail.
        detail: String,
    },
    /// `410`: the resource's time is over (`travel_rule_window_closed`).
    #[error("{detail}")]
    Gone {
        /// Stable code.
        code: ProblemCode,
        /// Human detail.
        detail: String,
    },
    /// `422`: well-formed, but refused (`signature_malformed`, `signature_mismatch`).
    #[error("{detail}")]
    Unprocessable {
        /// Stable code.
        code: ProblemCode,
        /// Human detail.
        detail: String,
    },
    /// `408 request_timeout`: the body arrived too slowly.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// `413 payload_too_large`.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// `415 unsupported_media_type`.
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// `429 rate_limited`.
    #[error("too many requests for this application; retry after {retry_after:?}")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// `502 upstream_rejected`.
    #[error("Transak rejected the request ({status}): {message}")]
    UpstreamRejected {
        /// Upstream status.
        status: u16,
        /// Upstream message.
        message: String,
    },
    /// `502 upstream_invalid_response`.
    #[error("Transak answered unexpectedly")]
    UpstreamInvalid,
    /// `503` with `Retry-After`: upstream outage, a busy key, or the database.
    #[error("{detail}")]
    Unavailable {
        /// Stable code.
        code: ProblemCode,
        /// Human detail.
        detail: String,
        /// When to retry.
        retry_after: Duration,
    },
    /// `500 internal`: logged with its cause; the client sees only that something failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A `404 session_not_found`.
    pub fn session_not_found() -> Self {
        ApiError::NotFound {
            code: ProblemCode::SessionNotFound,
            detail: "no such session for this application".into(),
        }
    }

    /// `401 replayed_request`: this signature was accepted before.
    pub fn replayed() -> Self {
        ApiError::unauthorized(
            ProblemCode::ReplayedRequest,
            "this signed request was already accepted; sign every request with a fresh timestamp",
        )
    }

    /// A `401` with this code and detail.
    pub fn unauthorized(code: ProblemCode, detail: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            detail: detail.into(),
        }
    }

    fn parts(&self) -> (StatusCode, ProblemCode, &'static str) {
        match self {
            ApiError::Validation(_) => (
                StatusCode::BAD_REQUEST,
                ProblemCode::ValidationFailed,
                "The request is invalid",
            ),
            ApiError::BadRequest { code, .. } => {
                (StatusCode::BAD_REQUEST, *code, "The request is invalid")
            }
            ApiError::Unauthorized { code, .. } => {
                (StatusCode::UNAUTHORIZED, *code, "Not authenticated")
            }
            ApiError::Disabled => (
                StatusCode::FORBIDDEN,
                ProblemCode::ApplicationDisabled,
                "Application disabled",
            ),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, *code, "Not found"),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ProblemCode::MethodNotAllowed,
                "Method not allowed",
            ),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, *code, "Conflict"),
            ApiError::Gone { code, .. } => (StatusCode::GONE, *code, "Gone"),
            ApiError::Unprocessable { code, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, *code, "Refused")
            }
            ApiError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                ProblemCode::RequestTimeout,
                "Request timeout",
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ProblemCode::PayloadTooLarge,
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ProblemCode::UnsupportedMediaType,
                "Unsupported media type",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                ProblemCode::RateLimited,
                "Too many requests",
            ),
            ApiError::UpstreamRejected { .. } => (
                StatusCode::BAD_GATEWAY,
                ProblemCode::UpstreamRejected,
                "Transak rejected the request",
            ),
            ApiError::UpstreamInvalid => (
                StatusCode::BAD_GATEWAY,
                ProblemCode::UpstreamInvalidResponse,
                "Transak answered unexpectedly",
            ),
            ApiError::Unavailable { code, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                *code,
                "Temporarily unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ProblemCode::Internal,
                "Internal error",
            ),
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let detail = match self {
            ApiError::Internal(_) => {
                "something went wrong on our side; it has been logged".to_string()
            }
            ApiError::UpstreamRejected {
                status: 401 | 403, ..
            } => "Transak refused this service's partner credentials; the operators have been told in the logs"
                .to_string(),
            ApiError::UpstreamInvalid => {
                "Transak answered in a way this service does not understand; try again later"
                    .to_string()
            }
            other => other.to_string(),
        };
        let errors: Option<Vec<FieldProblem>> = match self {
            ApiError::Validation(v) => {
                Some(v.clone().into_iter().map(FieldProblem::from).collect())
            }
            ApiError::BadRequest { errors, .. } if !errors.is_empty() => {
                Some(errors.iter().cloned().map(FieldProblem::from).collect())
            }
            _ => None,
        };
        // A body can carry any number of unknown members: list a bounded number of problems.
        let (errors, detail) = match errors {
            Some(mut list) if list.len() > MAX_FIELD_PROBLEMS => {
                let more = list.len() - MAX_FIELD_PROBLEMS;
                list.truncate(MAX_FIELD_PROBLEMS);
                (
                    Some(list),
                    format!("{detail} ({more} more problems are not listed)"),
                )
            }
            other => (other, detail),
        };
        Problem {
            kind: format!("tag:widget-sessions,2026:problem:{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            code: code.as_str().to_string(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.parts();
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable { detail, .. } => {
                tracing::warn!(code = code.as_str(), %detail, "unavailable")
            }
            ApiError::UpstreamRejected { .. } | ApiError::UpstreamInvalid => {
                tracing::warn!(code = code.as_str(), error = %self, "upstream problem")
            }
            _ => tracing::debug!(code = code.as_str(), "request refused"),
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let retry = match &self {
            ApiError::RateLimited { retry_after } | ApiError::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        };
        if let Some(after) = retry {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        if let ApiError::Unauthorized { .. } = self {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("HMAC realm=\"widget-sessions\""),
            );
        }
        response
    }
}

impl From<ports::StoreError> for ApiError {
    fn from(e: ports::StoreError) -> Self {
        match e {
            ports::StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                ApiError::Unavailable {
                    code: ProblemCode::DatabaseUnavailable,
                    detail: "the database is unavailable; try again shortly".into(),
                    retry_after: Duration::from_secs(2),
                }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<app::TravelRuleError> for ApiError {
    fn from(e: app::TravelRuleError) -> Self {
        use app::TravelRuleError as E;
        let detail = e.to_string();
        match e {
            E::NotFound => ApiError::session_not_found(),
            E::SessionCancelled => ApiError::Conflict {
                code: ProblemCode::SessionCancelled,
                detail: "the session was cancelled; it takes no travel-rule declaration or proof"
                    .into(),
            },
            E::WindowClosed => ApiError::Gone {
                code: ProblemCode::TravelRuleWindowClosed,
                detail: "the travel-rule window of this session has closed; create a new session"
                    .into(),
            },
            E::DeclarationAlreadyRecorded => ApiError::Conflict {
                code: ProblemCode::DeclarationAlreadyRecorded,
                detail: "the travel-rule record is complete; its declaration cannot be changed"
                    .into(),
            },
            E::ProofUnavailable(_) => ApiError::Conflict {
                code: ProblemCode::OwnershipProofUnavailable,
                detail: format!("no ownership proof can be made for this counterparty: {detail}"),
            },
            // The reason already says "the signature cannot be read: …".
            E::SignatureMalformed(_) => ApiError::Unprocessable {
                code: ProblemCode::SignatureMalformed,
                detail,
            },
            E::SignatureMismatch(_) => ApiError::Unprocessable {
                code: ProblemCode::SignatureMismatch,
                detail: "the signature is not by this counterparty over this session's challenge"
                    .into(),
            },
            E::Store(e) => e.into(),
        }
    }
}

impl From<app::AuthError> for ApiError {
    fn from(e: app::AuthError) -> Self {
        use app::AuthError;
        match e {
            AuthError::Malformed(m) => ApiError::unauthorized(
                ProblemCode::MalformedAuthorization,
                format!("Authorization: {m}"),
            ),
            e @ AuthError::StaleTimestamp { .. } => {
                ApiError::unauthorized(ProblemCode::StaleTimestamp, e.to_string())
            }
            e @ AuthError::InvalidCredentials => {
                ApiError::unauthorized(ProblemCode::InvalidCredentials, e.to_string())
            }
            AuthError::Disabled => ApiError::Disabled,
            e @ AuthError::Sealing { .. } => ApiError::Internal(e.to_string()),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<ports::CreateError> for ApiError {
    fn from(e: ports::CreateError) -> Self {
        match e {
            ports::CreateError::UpstreamRejected { status, message } => {
                ApiError::UpstreamRejected { status, message }
            }
            ports::CreateError::UpstreamInvalid { reason } => {
                tracing::warn!(%reason, "upstream answered unexpectedly");
                ApiError::UpstreamInvalid
            }
            ports::CreateError::UpstreamUnavailable {
                retry_after,
                reason,
            } => ApiError::Unavailable {
                code: ProblemCode::UpstreamUnavailable,
                detail: format!("Transak is unavailable ({reason}); nothing was stored, try again"),
                retry_after,
            },
            ports::CreateError::Busy { retry_after } => ApiError::Unavailable {
                code: ProblemCode::SessionBusy,
                detail: "another request is still creating this session; try again".into(),
                retry_after,
            },
            ports::CreateError::Replayed => ApiError::replayed(),
            ports::CreateError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_carry_a_stable_code_and_retry_after() {
        let r = ApiError::RateLimited {
            retry_after: Duration::from_millis(1500),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let p = ApiError::Internal("secret cause".into()).problem();
        assert_eq!(p.code, "internal");
        assert!(!p.detail.contains("secret cause"));
    }

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../../../docs/api.md");
        for code in ProblemCode::ALL {
            assert!(
                doc.contains(&format!("`{code}` |")),
                "docs/api.md does not list `{code}`"
            );
        }
    }
}
