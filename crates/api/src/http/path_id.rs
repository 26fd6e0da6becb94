//! The `{id}` segment of a route's path, as every handler with one reads it.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use domain::{ErrorCode, FieldError, ValidationErrors};

use crate::http::error::ApiError;

/// The `{id}` path segment, percent-decoded. One whose escapes do not decode to UTF-8 (e.g.
/// `%FF`) answers `400 validation_failed` as a problem document, like every other malformed
/// request (axum's own rejection is plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::Validation(
                ValidationErrors::single(FieldError::new(
                    "id",
                    ErrorCode::InvalidType,
                    "the id in the path must be text: its percent-escapes do not decode to UTF-8",
                )),
            )),
            // A route without `{id}`: a bug of the router, not of the request.
            Err(other) => Err(ApiError::Internal(format!(
                "the route has no id in its path: {other}"
            ))),
        }
    }
}
