//! A session's travel-rule record over the API (contract §10): the customer's declaration,
//! the ownership challenge, and the proof. Every answer about a session comes in the same
//! order: another application's session `404`; a cancelled one `409 session_cancelled`; a
//! closed window `410 travel_rule_window_closed`; then a malformed body `400`; then the rules.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::{DeclarationSource, ErrorCode, FieldError, SessionId, ValidationErrors};
use ports::SessionView;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Signed;
use crate::http::declaration_body::{self, DeclarationBody};
use crate::http::error::{ApiError, Problem};
use crate::http::path_id::PathId;
use crate::http::sessions::SessionBody;
use crate::state::AppState;

/// The ownership challenge: what to sign, who signs it, how.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeBody {
    /// The exact message to sign: one line of printable ASCII, at most 240 bytes.
    #[schema(
        example = "Acme Travel Rule check: I control bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 (session 0193a1b2-0000-7000-8000-000000000001, nonce abcdefgh23, valid until 2026-12-05T10:00:00Z)"
    )]
    pub message: String,
    /// The address that must sign it (or the invoice's payee node id, 66 hex).
    pub address: String,
    /// The session's network.
    #[schema(example = "BTC")]
    pub network: String,
    /// The methods the counterparty can sign with.
    #[schema(example = json!(["BIP322", "BIP137"]))]
    pub methods: Vec<String>,
    /// The end of the travel-rule window: a proof must come before it.
    pub expires_at: DateTime<Utc>,
}

/// The body of `POST …/ownership-proof`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body for OpenAPI; it is read member by member.
pub struct ProofBody {
    /// The signature over exactly the challenge's message, as the wallet gave it (base64,
    /// hex with or without `0x`, base58 or zbase32, per method).
    signature: String,
}

fn session_id(id: &str) -> Result<SessionId, ApiError> {
    id.parse().map_err(|_| ApiError::session_not_found())
}

fn answer(state: &AppState, view: &SessionView) -> Response {
    let mut r = axum::Json(SessionBody::of(view, state.0.clock.now())).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_only(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Record the customer's declaration about the counterparty. While the record is not
/// complete a different declaration replaces the current one (every version is kept); once
/// it is, the same declaration answers `200` and a different one `409`.
#[utoipa::path(
    put,
    path = "/api/v1/travel-rule/widget-sessions/{id}/declaration",
    tag = "travel rule",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("api_key" = [], "hmac" = [])),
    request_body = DeclarationBody,
    responses(
        (status = 200, description = "The session with its travel-rule record", body = SessionBody),
        (status = 400, description = "`validation_failed`: every problem with the declaration", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`session_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`session_cancelled` or `declaration_already_recorded`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`travel_rule_window_closed`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn declare(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
    Signed { application, body }: Signed,
) -> Result<Response, ApiError> {
    let id = session_id(&id)?;
    let rule = &state.0.travel_rule;
    rule.open(application, id).await?;
    json_only(&headers)?;
    let declaration = declaration_body::parse_json(&body).map_err(ApiError::Validation)?;
    let view = rule
        .declare(application, id, declaration, DeclarationSource::Api)
        .await?;
    Ok(answer(&state, &view))
}

/// The ownership challenge: the exact message the counterparty signs to prove that the
/// customer controls it, rendered once when the session was created.
#[utoipa::path(
    get,
    path = "/api/v1/travel-rule/widget-sessions/{id}/ownership-challenge",
    tag = "travel rule",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 200, description = "The challenge", body = ChallengeBody),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`session_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`session_cancelled`, or `ownership_proof_unavailable` for a counterparty that cannot sign", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`travel_rule_window_closed`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn challenge(
    State(state): State<AppState>,
    PathId(id): PathId,
    Signed { application, .. }: Signed,
) -> Result<Response, ApiError> {
    let id = session_id(&id)?;
    let c = state.0.travel_rule.challenge(application, id).await?;
    let mut r = axum::Json(ChallengeBody {
        message: c.message,
        address: c.address,
        network: c.network.as_str().to_string(),
        methods: c.methods.iter().map(|m| m.as_str().to_string()).collect(),
        expires_at: c.expires_at,
    })
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Reads `{"signature": "…"}`: every problem at once.
fn read_signature(body: &[u8]) -> Result<String, ValidationErrors> {
    let invalid = |field: &str, code, message: String| {
        ValidationErrors::single(FieldError::new(field, code, message))
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            "",
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(invalid(
            "",
            ErrorCode::InvalidJson,
            "the body must be a JSON object".into(),
        ));
    };
    let mut errors = Vec::new();
    for key in map.keys().filter(|k| *k != "signature") {
        let shown = domain::quote_for_message(key);
        errors.push(FieldError::new(
            shown.clone(),
            ErrorCode::UnknownField,
            format!("{shown} is not a member of this request"),
        ));
    }
    let signature = match map.get("signature") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "signature",
                ErrorCode::Required,
                "signature is required",
            ));
            None
        }
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                "signature",
                ErrorCode::Required,
                "signature is empty",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                "signature",
                ErrorCode::InvalidType,
                "signature must be a string",
            ));
            None
        }
    };
    match (signature, ValidationErrors::from_vec(errors)) {
        (Some(s), None) => Ok(s),
        (_, Some(errors)) => Err(errors),
        (None, None) => Err(invalid(
            "signature",
            ErrorCode::Required,
            "signature is required".into(),
        )),
    }
}

/// Prove that the customer controls the counterparty: a signature over exactly the
/// challenge's message, verified in-process against the session's counterparty (the method
/// is recognised from the signature and the address type). A refused proof is kept in the
/// compliance record (its time and code).
#[utoipa::path(
    post,
    path = "/api/v1/travel-rule/widget-sessions/{id}/ownership-proof",
    tag = "travel rule",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("api_key" = [], "hmac" = [])),
    request_body = ProofBody,
    responses(
        (status = 200, description = "The session, its `ownershipProof` set (a second valid proof changes nothing)", body = SessionBody),
        (status = 400, description = "`validation_failed`: no `signature`, or not a string", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`session_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`session_cancelled`, or `ownership_proof_unavailable` for a counterparty that cannot sign", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`travel_rule_window_closed`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`signature_malformed` or `signature_mismatch`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn prove(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
    Signed { application, body }: Signed,
) -> Result<Response, ApiError> {
    let id = session_id(&id)?;
    let rule = &state.0.travel_rule;
    rule.open(application, id).await?;
    json_only(&headers)?;
    let signature = read_signature(&body).map_err(ApiError::Validation)?;
    let view = rule.prove(application, id, &signature).await?;
    Ok(answer(&state, &view))
}
