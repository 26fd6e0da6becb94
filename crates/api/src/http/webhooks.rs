//! Webhook endpoints (register, list, delete, rotate the secret), a session's events with
//! their deliveries, and the JSON partners receive for each event ([`JsonEvents`]).

use app::{EndpointWithSecret, WebhookError};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::{
    ErrorCode, EventType, FieldError, PreviousSecretLifetime, RuleViolation as _, SessionId,
    ValidationErrors, WebhookEndpointId,
};
use ports::{Delivery, EventEncoder, EventRecord, SessionEvent, SessionView, WebhookEndpoint};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Signed;
use crate::http::error::{ApiError, Problem, ProblemCode};
use crate::http::path_id::PathId;
use crate::http::sessions::{BASE, SessionBody};
use crate::state::AppState;

/// Where endpoints live.
pub const ENDPOINTS: &str = "/api/v1/webhook-endpoints";

/// What a partner registers.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body for OpenAPI; it is read member by member.
#[schema(rename_all = "camelCase")]
pub struct CreateEndpointBody {
    /// `https://…` (`http` only where private networks are allowed), on port 443 or a port
    /// from 1024 up (also 80 where `http` is allowed). Its host must resolve to public
    /// addresses only.
    #[schema(example = "https://hooks.example.com/widget-sessions")]
    url: String,
    /// The event types to receive; all when absent or empty.
    #[schema(value_type = Option<Vec<String>>, example = json!(["session.consumed", "session.expired"]))]
    event_types: Option<Vec<String>>,
}

/// What a rotation may say (the body is optional).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body for OpenAPI; it is read member by member.
#[schema(rename_all = "camelCase")]
pub struct RotateSecretBody {
    /// How long the secret being replaced keeps signing deliveries alongside the new one,
    /// in whole seconds from 0 (it stops at once) to 86400 (the default).
    #[schema(minimum = 0, maximum = 86400, example = 3600, nullable = false)]
    previous_secret_expires_in_secs: Option<u32>,
}

/// The member of [`RotateSecretBody`].
const PREVIOUS_EXPIRES: &str = "previousSecretExpiresInSecs";

/// A webhook endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointBody {
    /// `we_…`.
    #[schema(example = "we_0193a1b2-0000-7000-8000-000000000001")]
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives; empty: all.
    pub event_types: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`): only in the answer that created it (registration or
    /// rotation). Store it: it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Never the secret, nor the URL's path (it may carry the partner's own token).
impl std::fmt::Debug for EndpointBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointBody")
            .field("id", &self.id)
            .field("event_types", &self.event_types)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl EndpointBody {
    fn of(endpoint: &WebhookEndpoint) -> Self {
        Self {
            id: endpoint.id.to_string(),
            url: endpoint.url.as_str().to_string(),
            event_types: endpoint
                .event_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            created_at: endpoint.created_at,
            secret: None,
        }
    }

    fn with_secret(created: &EndpointWithSecret) -> Self {
        Self {
            secret: Some(created.secret.expose_secret().to_string()),
            ..Self::of(&created.endpoint)
        }
    }
}

/// The application's endpoints.
#[derive(Serialize, ToSchema)]
pub struct EndpointList {
    /// Oldest first.
    pub data: Vec<EndpointBody>,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryBody {
    /// The endpoint (`we_…`).
    pub endpoint_id: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    #[schema(example = "DELIVERED")]
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got an answer.
    pub last_status_code: Option<u16>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl DeliveryBody {
    fn of(d: &Delivery) -> Self {
        Self {
            endpoint_id: d.endpoint.to_string(),
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: d.next_attempt_at,
        }
    }
}

/// An event with its deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    /// `evt_…`: the `webhook-id` of its deliveries.
    pub id: String,
    /// `session.created`, `session.consumed`, `session.cancelled`, `session.expired` or
    /// `session.order_updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// The session right after the change.
    pub data: SessionBody,
    /// One per endpoint it was addressed to.
    pub deliveries: Vec<DeliveryBody>,
}

/// A session's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Oldest first.
    pub data: Vec<EventBody>,
}

/// The session of an event as it was right after the change.
fn event_session(event: &SessionEvent) -> SessionBody {
    let session = event.session.session.clone();
    let status = session.status_at(event.created_at);
    SessionBody::of(
        &SessionView {
            session,
            status,
            order: event.session.order.clone(),
        },
        event.created_at,
    )
}

/// The body of a webhook delivery (Standard Webhooks: `type`, `timestamp`, `data`).
#[derive(Debug, Serialize)]
struct Delivered<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: DateTime<Utc>,
    data: SessionBody,
}

/// [`EventEncoder`]: the JSON partners receive, `{"type", "timestamp", "data": <session>}`,
/// the session as `GET` shows it, as it was right after the change.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonEvents;

impl EventEncoder for JsonEvents {
    fn encode(&self, event: &SessionEvent) -> Vec<u8> {
        serde_json::to_vec(&Delivered {
            kind: event.kind.as_str(),
            timestamp: event.created_at,
            data: event_session(event),
        })
        .unwrap_or_else(|_| b"{}".to_vec())
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Url(u) => ApiError::BadRequest {
                code: match u {
                    domain::WebhookUrlError::Invalid(_) => ProblemCode::InvalidWebhookUrl,
                    domain::WebhookUrlError::NotPublic(_)
                    | domain::WebhookUrlError::HostNotPublic => ProblemCode::WebhookUrlNotPublic,
                },
                detail: u.to_string(),
                errors: Vec::new(),
            },
            WebhookError::TooMany(n) => ApiError::Conflict {
                code: ProblemCode::TooManyWebhookEndpoints,
                detail: format!(
                    "the application already has {n} webhook endpoints, the most allowed; delete one first"
                ),
            },
            WebhookError::Store(e) => e.into(),
        }
    }
}

fn endpoint_not_found() -> ApiError {
    ApiError::NotFound {
        code: ProblemCode::WebhookEndpointNotFound,
        detail: "no such webhook endpoint for this application".into(),
    }
}

/// Reads `{"url", "eventTypes"}`: every problem at once.
fn read_create(body: &[u8]) -> Result<(String, Vec<EventType>), ApiError> {
    let problem = |field: &str, code, message: String| FieldError::new(field, code, message);
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::Validation(ValidationErrors::single(problem(
            "",
            ErrorCode::InvalidJson,
            "the body must be a JSON object".into(),
        )))
    })?;
    let Value::Object(members) = value else {
        return Err(ApiError::Validation(ValidationErrors::single(problem(
            "",
            ErrorCode::InvalidJson,
            "the body must be a JSON object".into(),
        ))));
    };
    let mut errors = Vec::new();
    let mut url = None;
    let mut types = Vec::new();
    for (name, v) in &members {
        match (name.as_str(), v) {
            ("url", Value::String(s)) => url = Some(s.clone()),
            ("url", _) => errors.push(problem(
                "url",
                ErrorCode::InvalidType,
                "url must be a string".into(),
            )),
            ("eventTypes", Value::Null) => {}
            ("eventTypes", Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().and_then(EventType::parse) {
                        Some(t) => types.push(t),
                        None => errors.push(problem(
                            &format!("eventTypes[{i}]"),
                            ErrorCode::UnknownEventType,
                            format!(
                                "not an event type; use {}",
                                EventType::ALL.map(EventType::as_str).join(", ")
                            ),
                        )),
                    }
                }
            }
            ("eventTypes", _) => errors.push(problem(
                "eventTypes",
                ErrorCode::InvalidType,
                "eventTypes must be an array of event type names".into(),
            )),
            (other, _) => {
                let shown: String = other.chars().take(64).collect();
                errors.push(problem(
                    &shown,
                    ErrorCode::UnknownField,
                    format!("{shown} is not a member of a webhook endpoint (url, eventTypes)"),
                ));
            }
        }
    }
    let missing_url = || problem("url", ErrorCode::Required, "url is required".into());
    if url.is_none() && !errors.iter().any(|e| e.field == "url") {
        errors.push(missing_url());
    }
    match (url, ValidationErrors::from_vec(errors)) {
        (_, Some(errors)) => Err(ApiError::Validation(errors)),
        (Some(url), None) => Ok((url, types)),
        (None, None) => Err(ApiError::Validation(
            ValidationErrors::single(missing_url()),
        )),
    }
}

/// Reads the optional `{"previousSecretExpiresInSecs": N}` (no body: the default).
fn read_rotate(body: &[u8]) -> Result<PreviousSecretLifetime, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PreviousSecretLifetime::default());
    }
    let not_object = || {
        ApiError::Validation(ValidationErrors::single(FieldError::new(
            "",
            ErrorCode::InvalidJson,
            "the body must be a JSON object (or empty)",
        )))
    };
    let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(body) else {
        return Err(not_object());
    };
    let mut lifetime = PreviousSecretLifetime::default();
    let mut errors = Vec::new();
    for (name, v) in &members {
        match (name.as_str(), v) {
            (PREVIOUS_EXPIRES, Value::Number(n)) if n.is_i64() || n.is_u64() => {
                let secs = n.as_i64().unwrap_or(i64::MAX);
                match PreviousSecretLifetime::from_secs(secs) {
                    Ok(l) => lifetime = l,
                    Err(e) => errors.push(e.at(PREVIOUS_EXPIRES)),
                }
            }
            (PREVIOUS_EXPIRES, _) => errors.push(FieldError::new(
                PREVIOUS_EXPIRES,
                ErrorCode::InvalidType,
                "previousSecretExpiresInSecs must be a whole number of seconds",
            )),
            (other, _) => {
                let shown: String = other.chars().take(64).collect();
                errors.push(FieldError::new(
                    shown.clone(),
                    ErrorCode::UnknownField,
                    format!("{shown} is not a member of a rotation (previousSecretExpiresInSecs)"),
                ));
            }
        }
    }
    match ValidationErrors::from_vec(errors) {
        Some(errors) => Err(ApiError::Validation(errors)),
        None => Ok(lifetime),
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Register a webhook endpoint. Its signing secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints",
    tag = "webhooks",
    request_body = CreateEndpointBody,
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 201, description = "Registered; `secret` is shown this once", body = EndpointBody),
        (status = 400, description = "`validation_failed`; `invalid_webhook_url` (not `https`, malformed, credentials, or a port below 1024 other than 443 — and 80 where `http` is allowed); `webhook_url_not_public` (a non-public address, or a host name that does not resolve to public addresses only: one answer whether it resolves to a private address or not at all)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_webhook_endpoints`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    Signed { application, body }: Signed,
) -> Result<Response, ApiError> {
    let (url, types) = read_create(&body)?;
    let created = state
        .0
        .webhooks
        .create_endpoint(application, &url, types)
        .await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            axum::Json(EndpointBody::with_secret(&created)),
        )
            .into_response(),
    ))
}

/// The application's webhook endpoints (no secrets).
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints",
    tag = "webhooks",
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 200, description = "Oldest first", body = EndpointList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    Signed { application, .. }: Signed,
) -> Result<Response, ApiError> {
    let endpoints = state.0.webhooks.list_endpoints(application).await?;
    Ok(axum::Json(EndpointList {
        data: endpoints.iter().map(EndpointBody::of).collect(),
    })
    .into_response())
}

/// Delete a webhook endpoint; its pending deliveries end `FAILED`.
#[utoipa::path(
    delete,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`we_…`)")),
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`webhook_endpoint_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    PathId(id): PathId,
    Signed { application, .. }: Signed,
) -> Result<Response, ApiError> {
    let id: WebhookEndpointId = id.parse().map_err(|_| endpoint_not_found())?;
    if state.0.webhooks.delete_endpoint(application, id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(endpoint_not_found())
    }
}

/// Replace an endpoint's signing secret. Until `previousSecretExpiresInSecs` (default 24
/// hours; `0`: at once) deliveries carry signatures under both the secret it replaces — the
/// one last handed out — and the new one. Any older secret stops at once: only those two
/// are ever live, and no rotation extends an older secret's life.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints/{id}/rotate-secret",
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`we_…`)")),
    request_body(content = RotateSecretBody, description = "Optional: no body rotates with the default"),
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 200, description = "The endpoint with its new `secret`, shown this once", body = EndpointBody),
        (status = 400, description = "`validation_failed`: the body is not a JSON object, or `previousSecretExpiresInSecs` is not a whole number from 0 to 86400 (`out_of_range`, `invalid_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`webhook_endpoint_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    PathId(id): PathId,
    Signed { application, body }: Signed,
) -> Result<Response, ApiError> {
    let id: WebhookEndpointId = id.parse().map_err(|_| endpoint_not_found())?;
    let previous_lifetime = read_rotate(&body)?;
    let rotated = state
        .0
        .webhooks
        .rotate_secret(application, id, previous_lifetime)
        .await?
        .ok_or_else(endpoint_not_found)?;
    Ok(no_store(
        axum::Json(EndpointBody::with_secret(&rotated)).into_response(),
    ))
}

/// A session's events, oldest first, each with its deliveries: its audit trail.
#[utoipa::path(
    get,
    path = "/api/v1/travel-rule/widget-sessions/{id}/events",
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    security(("api_key" = [], "hmac" = [])),
    responses(
        (status = 200, description = "Oldest first", body = EventList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`session_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn session_events(
    State(state): State<AppState>,
    PathId(id): PathId,
    Signed { application, .. }: Signed,
) -> Result<Response, ApiError> {
    let id: SessionId = id.parse().map_err(|_| ApiError::session_not_found())?;
    let records = state
        .0
        .webhooks
        .session_events(application, id)
        .await?
        .ok_or_else(ApiError::session_not_found)?;
    Ok(axum::Json(EventList {
        data: records.iter().map(event_body).collect(),
    })
    .into_response())
}

fn event_body(r: &EventRecord) -> EventBody {
    EventBody {
        id: r.event.id.to_string(),
        kind: r.event.kind.as_str().to_string(),
        created_at: r.event.created_at,
        data: event_session(&r.event),
        deliveries: r.deliveries.iter().map(DeliveryBody::of).collect(),
    }
}

/// The route of a session's events.
pub fn events_route() -> String {
    format!("{BASE}/{{id}}/events")
}
