//! The HTTP surface: the two partner-API endpoints, the widget page and the
//! `/_emulator/*` control endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::page;
use crate::state::{FaultAction, FaultsUpdate, OpenOutcome, Shared, TokenCheck, constant_time_eq};

/// Path of Transak's Refresh Access Token endpoint.
pub const REFRESH_TOKEN_PATH: &str = "/partners/api/v2/refresh-token";
/// Path of Transak's Create Widget URL endpoint.
pub const CREATE_SESSION_PATH: &str = "/api/v2/auth/session";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let partner_api = Router::new()
        .route(REFRESH_TOKEN_PATH, post(refresh_token))
        .route(CREATE_SESSION_PATH, post(create_session))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            inject_faults,
        ));
    let control = Router::new()
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/sessions", get(sessions))
        .route(
            "/_emulator/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/_emulator/clock", get(get_clock).post(advance_clock))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/orders", post(order));
    Router::new()
        .route("/", get(widget_page))
        .merge(partner_api)
        .merge(control)
        .fallback(not_found)
        .with_state(shared)
}

/// A Transak-style JSON error: `{"error": {"statusCode", "name", "message"}}`.
fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut name: String = reason.chars().filter(char::is_ascii_alphanumeric).collect();
    if !name.ends_with("Error") {
        name.push_str("Error");
    }
    let body = json!({
        "error": {
            "statusCode": status.as_u16(),
            "name": name,
            "message": message.into(),
        }
    });
    (status, axum::Json(body)).into_response()
}

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, JsonBodyError> {
    serde_json::from_slice(body).map_err(JsonBodyError)
}

/// A request body that is not the expected JSON; answers `400`.
struct JsonBodyError(serde_json::Error);

impl IntoResponse for JsonBodyError {
    fn into_response(self) -> Response {
        error_response(
            StatusCode::BAD_REQUEST,
            format!("Invalid JSON body: {}", self.0),
        )
    }
}

/// Applies latency, hangs and injected failures to the partner-API endpoints, and counts
/// their calls.
async fn inject_faults(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let random_failure =
        shared.config.fail_rate > 0.0 && rand::random::<f64>() < shared.config.fail_rate;
    let (latency, action) = {
        let mut inner = shared.lock();
        match request.uri().path() {
            REFRESH_TOKEN_PATH => inner.stats.refresh_calls += 1,
            CREATE_SESSION_PATH => inner.stats.session_calls += 1,
            _ => {}
        }
        let latency = shared
            .config
            .latency
            .saturating_add(Duration::from_millis(inner.faults.latency_ms));
        (latency, inner.take_fault(random_failure))
    };
    if !shared.sleep(latency).await {
        return shutting_down();
    }
    match action {
        FaultAction::Proceed => {
            let response = next.run(request).await;
            if response.status() == StatusCode::UNAUTHORIZED {
                shared.lock().stats.unauthorized += 1;
            }
            response
        }
        FaultAction::Fail(status) => {
            tracing::debug!(status, path = %request.uri().path(), "injecting failure");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, "Injected failure (Transak emulator fault)")
        }
        FaultAction::Hang => {
            tracing::debug!(path = %request.uri().path(), "hanging call");
            if shared.sleep(shared.config.hang_duration).await {
                error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "Injected hang ended (Transak emulator fault)",
                )
            } else {
                shutting_down()
            }
        }
    }
}

fn shutting_down() -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "Transak emulator is shutting down",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    #[serde(default)]
    api_key: Option<String>,
}

async fn refresh_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = headers.get("api-secret").and_then(|v| v.to_str().ok()) else {
        return error_response(StatusCode::UNAUTHORIZED, "Missing api-secret header");
    };
    let body: RefreshBody = match parse_json(&body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let Some(api_key) = body.api_key.filter(|key| !key.is_empty()) else {
        return error_response(StatusCode::BAD_REQUEST, "apiKey is required");
    };
    let config = &shared.config;
    let key_ok = constant_time_eq(api_key.as_bytes(), config.api_key.as_bytes());
    let secret_ok = constant_time_eq(secret.as_bytes(), config.api_secret.as_bytes());
    if !(key_ok && secret_ok) {
        return error_response(StatusCode::UNAUTHORIZED, "Invalid API key or API secret");
    }
    let (access_token, expires_at) = shared.lock().issue_token(&config.api_key, config.token_ttl);
    tracing::info!(
        expires_at,
        "access token refreshed; the previous one is now invalid"
    );
    axum::Json(json!({
        "data": { "accessToken": access_token, "expiresAt": expires_at }
    }))
    .into_response()
}

async fn create_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = headers.get("access-token").and_then(|v| v.to_str().ok()) else {
        return error_response(StatusCode::UNAUTHORIZED, "Missing access-token header");
    };
    let check = shared.lock().check_token(token);
    if check != TokenCheck::Valid {
        tracing::debug!(?check, "rejecting access token");
        return error_response(StatusCode::UNAUTHORIZED, "Invalid or expired access token");
    }
    let body: Value = match parse_json(&body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let Some(Value::Object(params)) = body.get("widgetParams") else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "widgetParams is required and must be a JSON object",
        );
    };
    if let Err(problems) = validate_widget_params(params, &shared.config.api_key) {
        return error_response(StatusCode::BAD_REQUEST, problems.join("; "));
    }
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let session_id =
        shared
            .lock()
            .mint_session(params.clone(), traceparent, shared.config.max_sessions);
    tracing::debug!("widget session minted");
    let widget_url = format!(
        "{}/?apiKey={}&sessionId={}",
        shared.widget_base_url,
        page::encode_query_value(&shared.config.api_key),
        page::encode_query_value(&session_id),
    );
    axum::Json(json!({ "data": { "widgetUrl": widget_url } })).into_response()
}

/// Checks the mandatory widget params, returning every problem found.
fn validate_widget_params(params: &Map<String, Value>, api_key: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    match params.get("apiKey") {
        Some(Value::String(given)) if !given.is_empty() => {
            if !constant_time_eq(given.as_bytes(), api_key.as_bytes()) {
                problems.push("widgetParams.apiKey does not match the partner's API key".into());
            }
        }
        _ => problems.push("widgetParams.apiKey is required".into()),
    }
    match params.get("referrerDomain") {
        Some(Value::String(domain)) if !domain.trim().is_empty() => {}
        _ => problems.push("widgetParams.referrerDomain is required".into()),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

async fn widget_page(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let outcome = match query.get("sessionId") {
        Some(session_id) => shared.lock().open_session(
            session_id,
            query.get("apiKey").map(String::as_str),
            shared.config.session_ttl,
        ),
        None => OpenOutcome::Unknown,
    };
    let status = match outcome {
        OpenOutcome::Opened(params) => {
            shared.lock().stats.widget_opens += 1;
            let session_id = query
                .get("sessionId")
                .map(String::as_str)
                .unwrap_or_default();
            return Html(page::widget_page(session_id, &params)).into_response();
        }
        OpenOutcome::Unknown => StatusCode::BAD_REQUEST,
        OpenOutcome::AlreadyUsed | OpenOutcome::Expired => StatusCode::GONE,
    };
    tracing::debug!(?status, "widget page refused");
    shared.lock().stats.widget_rejections += 1;
    (status, Html(page::invalid_session_page())).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.lock().stats;
    axum::Json(stats).into_response()
}

async fn sessions(State(shared): State<Arc<Shared>>) -> Response {
    let sessions = shared.lock().sessions();
    axum::Json(sessions).into_response()
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    let faults = shared.lock().faults;
    axum::Json(faults).into_response()
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let update: FaultsUpdate = match parse_json(&body) {
        Ok(update) => update,
        Err(error) => return error.into_response(),
    };
    let result = shared.lock().apply_faults(&update);
    match result {
        Ok(faults) => {
            tracing::info!(?update, "faults updated");
            axum::Json(faults).into_response()
        }
        Err(error) => error_response(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    let faults = {
        let mut inner = shared.lock();
        inner.clear_faults();
        inner.faults
    };
    tracing::info!("faults cleared");
    axum::Json(faults).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockBody {
    advance_secs: u64,
}

fn clock_view(shared: &Shared) -> Response {
    let inner = shared.lock();
    axum::Json(json!({
        "now": inner.now().as_secs(),
        "offsetSecs": inner.clock_offset().as_secs(),
    }))
    .into_response()
}

async fn get_clock(State(shared): State<Arc<Shared>>) -> Response {
    clock_view(&shared)
}

async fn advance_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: ClockBody = match parse_json(&body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    shared
        .lock()
        .advance_clock(Duration::from_secs(body.advance_secs));
    tracing::info!(advance_secs = body.advance_secs, "clock advanced");
    clock_view(&shared)
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().reset();
    tracing::info!("state reset: tokens, sessions, counters, faults and clock forgotten");
    axum::Json(json!({ "reset": true })).into_response()
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "Not found")
}

/// `POST /_emulator/orders` (and the widget page's buttons): `{"sessionId", "eventID"}`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderRequest {
    session_id: String,
    #[serde(rename = "eventID")]
    event_id: String,
}

/// The order status Transak reports with each event.
fn order_status(event_id: &str) -> Option<&'static str> {
    Some(match event_id {
        "ORDER_CREATED" => "AWAITING_PAYMENT_FROM_USER",
        "ORDER_PROCESSING" => "PROCESSING",
        "ORDER_COMPLETED" => "COMPLETED",
        "ORDER_FAILED" => "FAILED",
        _ => return None,
    })
}

/// Plays the customer completing (or failing) an order in the widget: sends Transak's order
/// webhook — `{"data": "<JWT>"}`, HS256 with the current access token — to the configured
/// webhook URL. One widget session has one order, with a stable id.
async fn order(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: OrderRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"sessionId\", \"eventID\"}}: {e}"),
            );
        }
    };
    let Some(status) = order_status(&request.event_id) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "eventID must be ORDER_CREATED, ORDER_PROCESSING, ORDER_COMPLETED or ORDER_FAILED",
        );
    };
    let (found, token, url) = {
        let mut inner = shared.lock();
        (
            inner.order_for(&request.session_id),
            inner.current_token(),
            inner.webhook_url.clone(),
        )
    };
    let Some((params, order_id)) = found else {
        return error_response(StatusCode::NOT_FOUND, "no such widget session");
    };
    let Some(token) = token else {
        return error_response(
            StatusCode::CONFLICT,
            "no access token was issued yet: nothing to sign with",
        );
    };
    let Some(url) = url else {
        return error_response(
            StatusCode::CONFLICT,
            "no webhook URL is configured (--webhook-url)",
        );
    };
    let field = |name: &str| params.get(name).cloned().unwrap_or(Value::Null);
    let claims = json!({
        "eventID": request.event_id,
        "createdAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "webhookData": {
            "id": order_id,
            "status": status,
            "isBuyOrSell": "BUY",
            "partnerOrderId": field("partnerOrderId"),
            "partnerCustomerId": field("partnerCustomerId"),
            "cryptoCurrency": field("cryptoCurrencyCode"),
            "network": field("network"),
            "walletAddress": field("walletAddress"),
        },
    });
    let jwt = match jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(token.as_bytes()),
    ) {
        Ok(jwt) => jwt,
        Err(e) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("signing failed: {e}"),
            );
        }
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap_or_default();
    let delivered = client
        .post(&url)
        .json(&json!({ "data": jwt }))
        .send()
        .await
        .map(|r| r.status().as_u16());
    shared.lock().stats.orders_sent += 1;
    match delivered {
        Ok(code) => axum::Json(json!({
            "orderId": order_id,
            "status": status,
            "eventID": request.event_id,
            "webhookStatus": code,
        }))
        .into_response(),
        Err(e) => error_response(
            StatusCode::BAD_GATEWAY,
            format!("the webhook could not be delivered: {e}"),
        ),
    }
}
