//! `/api/v1/travel-rule/widget-sessions`: create-or-reuse, get, list, cancel.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::{Counterparty, ErrorCode, FieldError, SessionEnd, SessionId, SessionStatus, Subject};
use ports::{CancelError, CancelOutcome, LaunchToken, ListError, SessionView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Authenticated, Signed};
use crate::http::create_body::{self, CreateSessionBody};
use crate::http::error::{ApiError, Problem, ProblemCode};
use crate::http::path_id::PathId;
use crate::observability;
use crate::state::AppState;

/// The base path of the session resources.
pub const BASE: &str = "/api/v1/travel-rule/widget-sessions";

/// A session's status.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Usable.
    Active,
    /// Its launch link was opened.
    Consumed,
    /// Its lifetime ran out.
    Expired,
    /// The application cancelled it.
    Cancelled,
}

impl From<SessionStatus> for Status {
    fn from(s: SessionStatus) -> Self {
        match s {
            SessionStatus::Active => Status::Active,
            SessionStatus::Consumed => Status::Consumed,
            SessionStatus::Expired => Status::Expired,
            SessionStatus::Cancelled => Status::Cancelled,
        }
    }
}

/// What a bolt11 invoice said.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceInfo {
    /// The invoice's creation time.
    pub created_at: DateTime<Utc>,
    /// When the invoice expires (accepted even when past: a held payment can outlive it).
    pub expires_at: DateTime<Utc>,
    /// Whether it had expired when this response was made.
    pub expired: bool,
    /// The amount it asks for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_msat: Option<u64>,
}

/// The counterparty of a session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CounterpartyBody {
    /// An on-chain address (normal form).
    Address {
        /// The address.
        address: String,
    },
    /// A Lightning payment.
    Lightning {
        /// The payment hash, 64 lowercase hex.
        #[serde(rename = "paymentHash")]
        payment_hash: String,
        /// Present when the session was created (or reused) from an invoice.
        #[serde(skip_serializing_if = "Option::is_none")]
        invoice: Option<InvoiceInfo>,
    },
}

/// A widget session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    /// The session id (UUID v7).
    pub id: Uuid,
    /// Status when this response was made.
    pub status: Status,
    /// The single-use launch link: `{public base}/w/{launch token}`, the same on every
    /// create-or-reuse response for one session. Only in create-or-reuse responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widget_url: Option<String>,
    /// When the session expires.
    pub expires_at: DateTime<Utc>,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// Whether an existing session was returned. Only in create-or-reuse responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused: Option<bool>,
    /// The stored (upgrade-only) flag.
    pub force_verify_ownership: bool,
    /// The user, when the session is for a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// The business, when the session is for a business.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_id: Option<Uuid>,
    /// Currency, uppercase.
    pub currency: String,
    /// Network, uppercase.
    pub network: String,
    /// The counterparty.
    pub counterparty: CounterpartyBody,
    /// The held deposit's transaction hash, or null.
    pub tx_hash: Option<String>,
    /// When the launch link was opened, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_at: Option<DateTime<Utc>>,
    /// When the session was cancelled, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The customer's order in the widget, as Transak last reported it; `null` until then.
    pub order: Option<OrderBody>,
    /// The travel-rule record.
    pub travel_rule: TravelRuleBody,
}

/// A session's travel-rule record (contract §10).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TravelRuleBody {
    /// `AWAITING_DECLARATION`, `AWAITING_PROOF` or `COMPLETE` (derived, never stored).
    #[schema(
        example = "AWAITING_DECLARATION",
        pattern = "^(AWAITING_DECLARATION|AWAITING_PROOF|COMPLETE)$"
    )]
    pub status: String,
    /// Whether an ownership proof is required; `null` before a declaration.
    pub proof_required: Option<bool>,
    /// The application's policy when the session was created: `ALWAYS` or `WHEN_FORCED`.
    #[schema(example = "WHEN_FORCED", pattern = "^(ALWAYS|WHEN_FORCED)$")]
    pub proof_policy: String,
    /// The current declaration, with when and where it was made; `null` before one.
    #[schema(value_type = Option<Object>)]
    pub declaration: Option<serde_json::Value>,
    /// The verified ownership proof: `{"method", "verifiedAt"}`; `null` before one.
    pub ownership_proof: Option<OwnershipProofBody>,
}

/// A verified ownership proof.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnershipProofBody {
    /// `BIP322`, `BIP137`, `EIP191`, `TRON_SIGN_MESSAGE_V2`, `ED25519`,
    /// `SOLANA_OFFCHAIN_MESSAGE` or `LIGHTNING_SIGNMESSAGE`.
    #[schema(example = "EIP191")]
    pub method: String,
    /// When it was verified.
    pub verified_at: DateTime<Utc>,
}

impl TravelRuleBody {
    /// The record of `session`.
    pub fn of(session: &domain::Session) -> Self {
        let record = session.travel_rule();
        Self {
            status: session.travel_rule_status().as_str().to_string(),
            proof_required: session.proof_required(),
            proof_policy: record.policy.as_str().to_string(),
            declaration: record.declaration.as_ref().map(|d| {
                let mut json = crate::http::declaration_body::to_json(&d.declaration);
                if let serde_json::Value::Object(map) = &mut json {
                    map.insert("declaredAt".into(), serde_json::json!(d.declared_at));
                    map.insert("source".into(), serde_json::json!(d.source.as_str()));
                }
                json
            }),
            ownership_proof: record.proof.map(|p| OwnershipProofBody {
                method: p.method.as_str().to_string(),
                verified_at: p.verified_at,
            }),
        }
    }
}

/// The customer's order in the widget.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderBody {
    /// Transak's order id.
    pub id: String,
    /// The order's own status, e.g. `PROCESSING`, `COMPLETED`, `FAILED`.
    #[schema(example = "COMPLETED")]
    pub status: String,
    /// The event that reported it, e.g. `ORDER_COMPLETED`.
    #[schema(example = "ORDER_COMPLETED")]
    pub event_id: String,
    /// When this service received that event.
    pub updated_at: DateTime<Utc>,
}

impl SessionBody {
    /// The body of a session as seen at `now`.
    pub fn of(view: &SessionView, now: DateTime<Utc>) -> Self {
        let s = &view.session;
        let scope = s.scope();
        let (user_id, business_id) = match scope.subject() {
            Subject::User(id) => (Some(id), None),
            Subject::Business(id) => (None, Some(id)),
        };
        let counterparty = match scope.counterparty() {
            Counterparty::Address(a) => CounterpartyBody::Address {
                address: a.as_str().to_string(),
            },
            Counterparty::Lightning(l) => CounterpartyBody::Lightning {
                payment_hash: l.payment_hash.to_string(),
                invoice: l.invoice.map(|i| InvoiceInfo {
                    created_at: i.created_at,
                    expires_at: i.expires_at,
                    expired: i.is_expired_at(now),
                    amount_msat: i.amount_msat,
                }),
            },
        };
        let (consumed_at, cancelled_at) = match s.end() {
            Some(SessionEnd::Consumed { at }) => (Some(at), None),
            Some(SessionEnd::Cancelled { at }) => (None, Some(at)),
            Some(SessionEnd::Expired { .. }) | None => (None, None),
        };
        let travel_rule = TravelRuleBody::of(s);
        Self {
            id: s.id().as_uuid(),
            status: view.status.into(),
            widget_url: None,
            expires_at: s.expires_at(),
            created_at: s.created_at(),
            reused: None,
            force_verify_ownership: s.force_verify_ownership(),
            user_id,
            business_id,
            currency: scope.asset().currency().as_str().to_string(),
            network: scope.asset().network().as_str().to_string(),
            counterparty,
            tx_hash: scope.tx_hash().map(|t| t.as_str().to_string()),
            consumed_at,
            cancelled_at,
            order: view.order.as_ref().map(|o| OrderBody {
                id: o.id.clone(),
                status: o.status.to_string(),
                event_id: o.event_id.clone(),
                updated_at: o.updated_at,
            }),
            travel_rule,
        }
    }
}

/// A page of sessions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionList {
    /// Newest first.
    pub data: Vec<SessionBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The launch link for a token.
pub fn launch_link(public_base: &str, token: &LaunchToken) -> String {
    format!("{public_base}/w/{}", token.expose())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// Create or reuse a session.
#[utoipa::path(
    post,
    path = "/api/v1/travel-rule/widget-sessions",
    tag = "sessions",
    request_body = CreateSessionBody,
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 201, description = "A new session was minted upstream", body = SessionBody,
            headers(("Location" = String, description = "The session's URL"))),
        (status = 200, description = "The application's existing session for the same key was reused", body = SessionBody),
        (status = 400, description = "Invalid request; every problem is listed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, malformed, stale or wrong credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The application is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Transak rejected the request or answered unexpectedly", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Transak or the database is unavailable, or the session is being created by another request; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Authenticated {
        caller,
        nonce,
        body,
    }: Authenticated,
) -> Result<Response, ApiError> {
    // A request refused before the use case still records its signature: a signed request
    // is accepted once, whatever its answer.
    let refuse = |e: ApiError| async {
        match state.0.sessions.remember_request(nonce).await {
            Ok(true) => e,
            Ok(false) => ApiError::replayed(),
            Err(store) => store.into(),
        }
    };
    if !is_json(&headers) {
        return Err(refuse(ApiError::UnsupportedMediaType).await);
    }
    let request = match create_body::parse_json(&body, &state.0.rules) {
        Ok(r) => r,
        Err(errors) => return Err(refuse(ApiError::Validation(errors)).await),
    };
    let outcome = state
        .0
        .sessions
        .create_or_reuse(caller, request, nonce)
        .await?;
    let now = state.0.clock.now();
    let mut body = SessionBody::of(&outcome.session, now);
    body.widget_url = Some(launch_link(&state.0.public_base, &outcome.launch_token));
    body.reused = Some(outcome.reused);
    let mut response = if outcome.reused {
        observability::session_reused();
        (StatusCode::OK, axum::Json(body)).into_response()
    } else {
        observability::session_created();
        let location = format!("{BASE}/{}", outcome.session.session.id());
        let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// One session of the calling application.
#[utoipa::path(
    get,
    path = "/api/v1/travel-rule/widget-sessions/{id}",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 200, description = "The session", body = SessionBody),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session for this application", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathId(id): PathId,
    Signed {
        application: app, ..
    }: Signed,
) -> Result<Response, ApiError> {
    let id: SessionId = id.parse().map_err(|_| ApiError::session_not_found())?;
    let view = state
        .0
        .sessions
        .get(app, id)
        .await?
        .ok_or_else(ApiError::session_not_found)?;
    Ok(axum::Json(SessionBody::of(&view, state.0.clock.now())).into_response())
}

/// Query parameters of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this user's sessions (not with `businessId`).
    #[param(value_type = Option<Uuid>)]
    pub user_id: Option<String>,
    /// Only this business's sessions (not with `userId`).
    #[param(value_type = Option<Uuid>)]
    pub business_id: Option<String>,
    /// Only sessions in this status.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// Reads a query string. Unknown and repeated parameters are reported as field problems
    /// (`unknown_field`, `invalid_type`), so that every problem is listed at once, together
    /// with those of the values.
    fn read(query: &str) -> (Self, Vec<FieldError>) {
        let mut p = Self {
            user_id: None,
            business_id: None,
            status: None,
            limit: None,
            cursor: None,
        };
        let mut errors = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            // An empty value (`?status=`) means "not given", as HTML forms send it.
            if value.is_empty() {
                continue;
            }
            let slot = match name.as_ref() {
                "userId" => &mut p.user_id,
                "businessId" => &mut p.business_id,
                "status" => &mut p.status,
                "limit" => &mut p.limit,
                "cursor" => &mut p.cursor,
                other => {
                    // Quoted back cut short: a query string can be long.
                    let shown: String = other.chars().take(64).collect();
                    errors.push(FieldError::new(
                        shown.clone(),
                        ErrorCode::UnknownField,
                        format!(
                            "{shown} is not a parameter of this list (userId, businessId, status, limit, cursor)"
                        ),
                    ));
                    continue;
                }
            };
            if slot.is_some() {
                if !errors
                    .iter()
                    .any(|e| e.field == name && e.code == ErrorCode::InvalidType)
                {
                    errors.push(FieldError::new(
                        name.as_ref(),
                        ErrorCode::InvalidType,
                        format!("{name} must be given at most once"),
                    ));
                }
            } else {
                *slot = Some(value.into_owned());
            }
        }
        (p, errors)
    }
}

/// The application's sessions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/travel-rule/widget-sessions",
    tag = "sessions",
    params(ListParams),
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 200, description = "A page of sessions", body = SessionList),
        (status = 400, description = "Invalid parameters; every problem is listed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Signed {
        application: app, ..
    }: Signed,
) -> Result<Response, ApiError> {
    let (p, mut errors) = ListParams::read(query.as_deref().unwrap_or(""));
    let uuid = |field: &str, v: &str, errors: &mut Vec<FieldError>| match Uuid::try_parse(v) {
        Ok(id) if v.len() == 36 => Some(id),
        _ => {
            errors.push(FieldError::new(
                field,
                ErrorCode::InvalidUuid,
                format!("{field} must be a UUID"),
            ));
            None
        }
    };
    let subject = match (p.user_id.as_deref(), p.business_id.as_deref()) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                create_body::fields::SUBJECT,
                ErrorCode::ExactlyOneSubject,
                "filter by userId or businessId, not both",
            ));
            None
        }
        (Some(u), None) => uuid("userId", u, &mut errors).map(Subject::User),
        (None, Some(b)) => uuid("businessId", b, &mut errors).map(Subject::Business),
        (None, None) => None,
    };
    let status = p.status.as_deref().and_then(|s| {
        SessionStatus::parse(s).or_else(|| {
            errors.push(FieldError::new(
                "status",
                ErrorCode::InvalidType,
                "status must be ACTIVE, CONSUMED, EXPIRED or CANCELLED",
            ));
            None
        })
    });
    let limit = match p.limit.as_deref() {
        None => 20,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    ErrorCode::InvalidType,
                    "limit must be a whole number from 1 to 100",
                ));
                20
            }
        },
    };
    let before = p.cursor.as_deref().and_then(|c| {
        let id = URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .map(|b| SessionId::from_uuid(Uuid::from_bytes(b)));
        if id.is_none() {
            errors.push(FieldError::new(
                "cursor",
                ErrorCode::InvalidType,
                "cursor must be a nextCursor from a previous page",
            ));
        }
        id
    });
    if !errors.is_empty() {
        return Err(ApiError::BadRequest {
            code: ProblemCode::ValidationFailed,
            detail: "the query parameters are invalid".into(),
            errors,
        });
    }
    let page = state
        .0
        .sessions
        .list(app, subject, status, limit, before)
        .await
        .map_err(|e| match e {
            ListError::InvalidLimit => ApiError::BadRequest {
                code: ProblemCode::ValidationFailed,
                detail: "limit must be from 1 to 100".into(),
                errors: vec![],
            },
            ListError::Store(e) => e.into(),
        })?;
    let now = state.0.clock.now();
    Ok(axum::Json(SessionList {
        data: page.items.iter().map(|v| SessionBody::of(v, now)).collect(),
        next_cursor: page
            .next
            .map(|id| URL_SAFE_NO_PAD.encode(id.as_uuid().as_bytes())),
    })
    .into_response())
}

/// Cancel an ACTIVE session; its links stop working. Idempotent.
#[utoipa::path(
    post,
    path = "/api/v1/travel-rule/widget-sessions/{id}/cancel",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 200, description = "The session, now (or already) CANCELLED", body = SessionBody),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session for this application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The session is CONSUMED or EXPIRED", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    PathId(id): PathId,
    Signed {
        application: app, ..
    }: Signed,
) -> Result<Response, ApiError> {
    let id: SessionId = id.parse().map_err(|_| ApiError::session_not_found())?;
    let now = state.0.clock.now();
    let view = match state.0.sessions.cancel(app, id).await {
        Ok(CancelOutcome::Cancelled(v)) => {
            observability::session_cancelled();
            v
        }
        Ok(CancelOutcome::AlreadyCancelled(v)) => v,
        Err(CancelError::NotFound) => return Err(ApiError::session_not_found()),
        Err(CancelError::NotActive(v)) => {
            return Err(ApiError::Conflict {
                code: ProblemCode::SessionNotActive,
                detail: format!(
                    "the session is {}; only an ACTIVE session can be cancelled",
                    v.status
                ),
            });
        }
        Err(CancelError::Store(e)) => return Err(e.into()),
    };
    Ok(axum::Json(SessionBody::of(&view, now)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_query_values_are_absent_and_unknown_names_are_cut_short() {
        let (p, errors) =
            ListParams::read("status=&limit=&cursor=&userId=7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((p.status, p.limit, p.cursor), (None, None, None));
        assert!(p.user_id.is_some());
        let long = "x".repeat(1000);
        let (_, errors) = ListParams::read(&format!("{long}=1"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, ErrorCode::UnknownField);
        assert!(errors[0].field.len() <= 64 && errors[0].message.len() < 200);
    }
}
