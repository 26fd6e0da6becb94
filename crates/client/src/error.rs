//! Errors: the service's problem documents as typed values.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

macro_rules! problem_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, )*) => {
        /// The stable `code` of a problem document (see the API reference). Codes a newer
        /// service adds arrive as [`ProblemCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ProblemCode {
            $( $(#[$doc])* $variant, )*
            /// A code this client version does not know.
            Other(String),
        }

        impl ProblemCode {
            /// Every code this client knows, in the order of the API reference.
            pub const KNOWN: &'static [&'static str] = &[$($code),*];

            /// The code as sent.
            pub fn as_str(&self) -> &str {
                match self {
                    $( ProblemCode::$variant => $code, )*
                    ProblemCode::Other(s) => s,
                }
            }

            /// Reads a code.
            pub fn parse(code: &str) -> Self {
                match code {
                    $( $code => ProblemCode::$variant, )*
                    other => ProblemCode::Other(other.to_string()),
                }
            }
        }
    };
}

problem_codes! {
    /// `400`: the body or query breaks rules; [`ApiProblem::errors`] lists every problem.
    ValidationFailed = "validation_failed",
    /// `400`: the webhook URL is not `https`, is malformed or carries credentials.
    InvalidWebhookUrl = "invalid_webhook_url",
    /// `400`: the webhook URL's host resolves to a private or otherwise non-public address.
    WebhookUrlNotPublic = "webhook_url_not_public",
    /// `401`: no `api-key` or no `Authorization` header.
    MissingCredentials = "missing_credentials",
    /// `401`: `Authorization` is not `HMAC <ms>:<64 hex>`.
    MalformedAuthorization = "malformed_authorization",
    /// `401`: the signed time is too old or too far ahead.
    StaleTimestamp = "stale_timestamp",
    /// `401`: this exact signature was already accepted; sign every request afresh.
    ReplayedRequest = "replayed_request",
    /// `401`: unknown API key, or wrong signature.
    InvalidCredentials = "invalid_credentials",
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
    /// `408`: the body did not arrive in time; `503`: the answer took too long (retryable).
    RequestTimeout = "request_timeout",
    /// `409`: the session is not ACTIVE (cancel of a consumed or expired session).
    SessionNotActive = "session_not_active",
    /// `409`: the application has as many webhook endpoints as allowed.
    TooManyWebhookEndpoints = "too_many_webhook_endpoints",
    /// `409`: the session was cancelled; it takes no travel-rule declaration or proof.
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
    /// `429`: over the rate limit; see [`ApiProblem::retry_after`].
    RateLimited = "rate_limited",
    /// `502`: Transak refused the request.
    UpstreamRejected = "upstream_rejected",
    /// `502`: Transak answered something it should not.
    UpstreamInvalidResponse = "upstream_invalid_response",
    /// `503`: Transak is unavailable; nothing was stored.
    UpstreamUnavailable = "upstream_unavailable",
    /// `503`: another request is still creating this very session.
    SessionBusy = "session_busy",
    /// `503`: the service's database is unavailable.
    DatabaseUnavailable = "database_unavailable",
    /// `500`: a bug on the service's side.
    Internal = "internal",
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldProblem {
    /// The member (camelCase), a group joined with `|`, or `""` for the whole body.
    pub field: String,
    /// A stable code, e.g. `currency_network_mismatch`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

/// A problem document (RFC 9457) the service answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiProblem {
    /// The HTTP status.
    pub status: u16,
    /// The stable code: match on this.
    pub code: ProblemCode,
    /// A short summary.
    pub title: String,
    /// What happened in this case (for humans; do not match on it).
    pub detail: String,
    /// For [`ProblemCode::ValidationFailed`]: every problem, each with its field.
    pub errors: Vec<FieldProblem>,
    /// From `Retry-After`, when the service sent one.
    pub retry_after: Option<Duration>,
    /// The `x-request-id` of the answer, to quote when asking for help.
    pub request_id: Option<String>,
}

#[cfg(feature = "http")]
#[derive(Deserialize)]
pub(crate) struct ProblemBody {
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) detail: String,
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) errors: Vec<FieldProblem>,
}

/// Why a call failed.
#[cfg(feature = "http")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with a problem document.
    #[error("{} {}: {}", .0.status, .0.code, .0.detail)]
    Api(Box<ApiProblem>),
    /// The service could not be reached, or the connection failed.
    #[error("could not reach the service: {0}")]
    Transport(#[source] reqwest::Error),
    /// The service answered something this client cannot read.
    #[error("unexpected answer (HTTP {status}): {reason}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
    },
    /// An argument cannot be sent (e.g. a base URL that is not a URL).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

#[cfg(feature = "http")]
impl Error {
    /// The problem document, when the service answered with one.
    pub fn problem(&self) -> Option<&ApiProblem> {
        match self {
            Error::Api(p) => Some(p),
            _ => None,
        }
    }

    /// The problem's code, when the service answered with a problem.
    pub fn code(&self) -> Option<&ProblemCode> {
        self.problem().map(|p| &p.code)
    }

    /// Whether trying the same call again later may succeed: a transport failure, `429`, or
    /// a `503`. (Sign the retry afresh: [`crate::Client`] does.)
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Api(p) => p.status == 429 || p.status == 503,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept() {
        for code in ProblemCode::KNOWN {
            let parsed = ProblemCode::parse(code);
            assert!(!matches!(parsed, ProblemCode::Other(_)), "{code}");
            assert_eq!(parsed.as_str(), *code);
        }
        assert_eq!(
            ProblemCode::parse("brand_new"),
            ProblemCode::Other("brand_new".into())
        );
    }
}
