//! The [`WidgetGateway`] over Transak's partner API.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ports::{
    AccessTokenStore, Clock, GatewayError, OrderEvent, OrderEventError, StoredAccessToken,
    UpstreamStatus, WidgetGateway, WidgetRequest, WidgetUrl,
};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use secrecy::ExposeSecret;
use url::Url;

use crate::config::{ConfigError, DEFAULT_RETRY_AFTER, TransakConfig, endpoint};
use crate::http::{Response, Transport};
use crate::params::widget_params;
use crate::token::TokenState;
use crate::wire::{self, CreateWidgetUrlBody, RefreshTokenBody, RefreshedToken};

const CREATE_OPERATION: &str = "create widget URL";
const REFRESH_OPERATION: &str = "refresh access token";
/// Counter of logical upstream calls, labelled `call` and `outcome`.
const UPSTREAM_CALLS: &str = "widget_sessions_upstream_calls_total";
/// Histogram of logical upstream call durations in seconds, labelled `call` and `outcome`.
const UPSTREAM_DURATION: &str = "widget_sessions_upstream_call_duration_seconds";
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The real gateway to Transak: *Create Widget URL* with the shared access token.
///
/// Each instance keeps the current token in memory (so minting costs no store read while the
/// token is fresh) and coordinates refreshes with every other instance through the
/// [`AccessTokenStore`] and its refresh lease. See the crate documentation for the
/// algorithm and the error mapping.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn ports::AccessTokenStore>) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use ports::{SystemClock, WidgetGateway};
/// use secrecy::SecretString;
/// use transak::{Environment, TransakConfig, TransakGateway};
///
/// let config = TransakConfig::builder(
///     Environment::Staging,
///     "my-api-key",
///     SecretString::from("my-api-secret"),
///     "partner.example.com",
/// )
/// .build()?;
/// let gateway = TransakGateway::new(config, store, Arc::new(SystemClock))?;
/// gateway.check_credentials().await?; // readiness: a token is held or can be obtained
/// # Ok(()) }
/// ```
pub struct TransakGateway {
    config: TransakConfig,
    transport: Transport,
    create_url: Url,
    refresh_url: Url,
    tokens: TokenState,
    /// The stored tokens as last read for verifying order webhooks, and when.
    order_keys: tokio::sync::Mutex<Option<(std::time::Instant, Option<StoredAccessToken>)>>,
}

enum Minted {
    Url(WidgetUrl),
    /// `401`: the access token was refused; carries Transak's message.
    Unauthorized(String),
}

impl TransakGateway {
    /// A gateway for `config`, sharing its access token through `store` and reading the time
    /// from `clock`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::HttpClient`] when the HTTP client cannot be built.
    pub fn new(
        config: TransakConfig,
        store: Arc<dyn AccessTokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("widget-sessions/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.request_timeout())
            // A redirect would forward the `access-token`/`api-secret` headers (reqwest only
            // strips its own sensitive headers); the partner API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ConfigError::HttpClient(err.without_url().to_string()))?;
        let transport = Transport::new(client, Arc::clone(&clock), &config);
        let tokens = TokenState::new(&config, store, clock);
        Ok(Self {
            create_url: endpoint(config.gateway_url(), "api/v2/auth/session"),
            refresh_url: endpoint(config.api_url(), "partners/api/v2/refresh-token"),
            transport,
            tokens,
            order_keys: tokio::sync::Mutex::new(None),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TransakConfig {
        &self.config
    }

    /// The key of this upstream account in the access-token store.
    pub fn token_account(&self) -> &str {
        self.tokens.account()
    }

    /// One *Create Widget URL* call (with transport retries) using `token`.
    async fn mint_once(
        &self,
        body: &[u8],
        token: &StoredAccessToken,
    ) -> Result<Minted, GatewayError> {
        let mut access_token =
            HeaderValue::from_str(token.token.expose_secret()).map_err(|_| {
                GatewayError::Unexpected(
                    "the stored access token cannot be sent as a header".to_string(),
                )
            })?;
        access_token.set_sensitive(true);
        let response = self
            .transport
            .send(CREATE_OPERATION, || {
                self.transport
                    .client()
                    .post(self.create_url.clone())
                    .header("access-token", access_token.clone())
                    .header(CONTENT_TYPE, JSON)
                    .header(ACCEPT, JSON)
                    .body(body.to_vec())
            })
            .await?;
        match response.status {
            status if status.is_success() => {
                let url = wire::parse_widget_url(&response.body).map_err(|malformed| {
                    GatewayError::Unexpected(format!("{CREATE_OPERATION}: {}", malformed.0))
                })?;
                Ok(Minted::Url(WidgetUrl::new(url)))
            }
            StatusCode::UNAUTHORIZED => Ok(Minted::Unauthorized(upstream_message(&response))),
            _ => Err(failure(
                CREATE_OPERATION,
                &response,
                upstream_message(&response),
            )),
        }
    }

    /// `POST {api}/partners/api/v2/refresh-token` (with transport retries), counted once.
    async fn refresh_upstream(&self) -> Result<RefreshedToken, GatewayError> {
        let started = std::time::Instant::now();
        let result = self.request_refresh().await;
        count_call("refresh_token", &result, started);
        result
    }

    async fn request_refresh(&self) -> Result<RefreshedToken, GatewayError> {
        let body = serde_json::to_vec(&RefreshTokenBody {
            api_key: self.config.api_key(),
        })
        .map_err(|err| GatewayError::Unexpected(format!("{REFRESH_OPERATION}: {err}")))?;
        // The configuration checked that the secret is a valid header value.
        let mut api_secret = HeaderValue::from_str(self.config.api_secret().expose_secret())
            .map_err(|_| {
                GatewayError::Unexpected("the API secret cannot be sent as a header".to_string())
            })?;
        api_secret.set_sensitive(true);
        tracing::debug!(account = %self.tokens.account(), holder = %self.tokens.holder(), "refreshing the Transak access token");
        let response = self
            .transport
            .send(REFRESH_OPERATION, || {
                self.transport
                    .client()
                    .post(self.refresh_url.clone())
                    .header("api-secret", api_secret.clone())
                    .header(CONTENT_TYPE, JSON)
                    .header(ACCEPT, JSON)
                    .body(body.clone())
            })
            .await?;
        match response.status {
            status if status.is_success() => {
                wire::parse_refresh(&response.body).map_err(|malformed| {
                    GatewayError::Unexpected(format!("{REFRESH_OPERATION}: {}", malformed.0))
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let message = format!(
                    "Transak refused the partner credentials (API key and secret) when \
                     refreshing the access token: {}",
                    upstream_message(&response)
                );
                tracing::error!(status = response.status.as_u16(), %message);
                Err(GatewayError::Rejected {
                    status: response.status.as_u16(),
                    message,
                })
            }
            _ => {
                let message = format!(
                    "access-token refresh refused: {}",
                    upstream_message(&response)
                );
                Err(failure(REFRESH_OPERATION, &response, message))
            }
        }
    }

    async fn token(&self) -> Result<Arc<StoredAccessToken>, GatewayError> {
        self.tokens.current(|| self.refresh_upstream()).await
    }
}

/// Describes the gateway's metrics to the installed recorder (once at start-up).
pub fn describe_metrics() {
    metrics::describe_counter!(
        UPSTREAM_CALLS,
        "Logical calls to the upstream (Transak) API, by call and outcome; retries are not counted separately."
    );
    metrics::describe_histogram!(
        UPSTREAM_DURATION,
        metrics::Unit::Seconds,
        "Duration of logical upstream calls, by call and outcome."
    );
    crate::token::describe_metrics();
}

/// Counts one logical upstream call (whatever its retries) by its outcome, with its
/// duration since `started`.
fn count_call<T>(
    call: &'static str,
    result: &Result<T, GatewayError>,
    started: std::time::Instant,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(GatewayError::Rejected { .. }) => "rejected",
        Err(GatewayError::Unavailable { .. }) => "unavailable",
        Err(GatewayError::Unexpected(_)) => "unexpected",
    };
    metrics::counter!(UPSTREAM_CALLS, "call" => call, "outcome" => outcome).increment(1);
    metrics::histogram!(UPSTREAM_DURATION, "call" => call, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

/// Transak's message, or the status's reason phrase.
fn upstream_message(response: &Response) -> String {
    wire::error_message(&response.body).unwrap_or_else(|| {
        response
            .status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_string()
    })
}

/// A non-success answer other than `401` (and `5xx`/`408`, which the transport retries):
/// `429` is an outage to wait out, other `4xx` a rejection, anything else unexpected.
fn failure(operation: &str, response: &Response, message: String) -> GatewayError {
    let status = response.status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        GatewayError::Unavailable {
            retry_after: response
                .retry_after
                .unwrap_or(DEFAULT_RETRY_AFTER)
                .max(std::time::Duration::from_secs(1)),
            reason: format!("{operation}: upstream rate limit ({status})"),
        }
    } else if status.is_client_error() {
        GatewayError::Rejected {
            status: status.as_u16(),
            message,
        }
    } else if status.is_server_error() {
        GatewayError::Unavailable {
            retry_after: response.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            reason: format!("{operation}: upstream answered {status}"),
        }
    } else {
        GatewayError::Unexpected(format!("{operation}: unexpected upstream status {status}"))
    }
}

impl TransakGateway {
    /// [`WidgetGateway::create_widget_url`], uncounted: the token, the mint, and on `401`
    /// one replacement token and one more mint.
    async fn create(&self, request: &WidgetRequest) -> Result<WidgetUrl, GatewayError> {
        let params = widget_params(&self.config, request);
        let body = serde_json::to_vec(&CreateWidgetUrlBody {
            widget_params: &params,
        })
        .map_err(|err| GatewayError::Unexpected(format!("{CREATE_OPERATION}: {err}")))?;

        let token = self.token().await?;
        let message = match self.mint_once(&body, &token).await? {
            Minted::Url(url) => {
                tracing::info!(widget_url = %url, "minted a Transak widget URL");
                return Ok(url);
            }
            Minted::Unauthorized(message) => message,
        };

        tracing::warn!(
            version = token.version,
            %message,
            "Transak refused the access token; replacing it and retrying once"
        );
        let replacement = self
            .tokens
            .replace_rejected(&token, || self.refresh_upstream())
            .await?;
        match self.mint_once(&body, &replacement).await? {
            Minted::Url(url) => {
                tracing::info!(widget_url = %url, "minted a Transak widget URL");
                Ok(url)
            }
            Minted::Unauthorized(message) => Err(GatewayError::Rejected {
                status: StatusCode::UNAUTHORIZED.as_u16(),
                message: format!("Transak refused a freshly obtained access token: {message}"),
            }),
        }
    }
}

#[async_trait]
impl WidgetGateway for TransakGateway {
    #[tracing::instrument(skip_all, fields(session_id = %request.session_id))]
    async fn create_widget_url(&self, request: &WidgetRequest) -> Result<WidgetUrl, GatewayError> {
        let started = std::time::Instant::now();
        let result = self.create(request).await;
        count_call("create_widget_url", &result, started);
        result
    }

    #[tracing::instrument(skip_all)]
    async fn check_credentials(&self) -> Result<(), GatewayError> {
        self.token().await.map(|_| ())
    }

    fn status(&self) -> UpstreamStatus {
        self.tokens.status()
    }

    async fn verify_order_event(&self, body: &[u8]) -> Result<OrderEvent, OrderEventError> {
        let token = crate::orders::token_of(body)?;
        let now = self.tokens.now();
        let stored = self.order_keys(ORDER_KEYS_TTL).await?;
        match crate::orders::verify(&token, &crate::orders::keys_at(stored.as_ref(), now)) {
            // Another instance may have refreshed the token a moment ago: read the store
            // again (at most every ORDER_KEYS_REREAD, so forged events cannot load it).
            Err(OrderEventError::Unauthenticated) => {
                let stored = self.order_keys(ORDER_KEYS_REREAD).await?;
                crate::orders::verify(&token, &crate::orders::keys_at(stored.as_ref(), now))
            }
            verdict => verdict,
        }
    }
}

/// How long a snapshot of the stored tokens verifies order webhooks.
const ORDER_KEYS_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// How soon a snapshot is read again when an event does not verify with it.
const ORDER_KEYS_REREAD: std::time::Duration = std::time::Duration::from_millis(100);

impl TransakGateway {
    /// The stored tokens (current and previous) that verify order webhooks: the shared
    /// store's, not this instance's cache (another instance may have refreshed the token,
    /// keeping the previous one with when it was replaced), through a snapshot younger than
    /// `max_age` that one task at a time renews. A snapshot older than the token this
    /// instance itself uses is renewed whatever its age.
    async fn order_keys(
        &self,
        max_age: std::time::Duration,
    ) -> Result<Option<StoredAccessToken>, OrderEventError> {
        let mut snapshot = self.order_keys.lock().await;
        let ours = self.tokens.cached_version();
        if let Some((at, stored)) = snapshot.as_ref()
            && at.elapsed() < max_age
            && ours <= stored.as_ref().map(|t| t.version)
        {
            return Ok(stored.clone());
        }
        let stored = self
            .tokens
            .stored()
            .await
            .map_err(|e| OrderEventError::Unavailable(e.to_string()))?;
        *snapshot = Some((std::time::Instant::now(), stored.clone()));
        Ok(stored)
    }
}

impl fmt::Debug for TransakGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransakGateway")
            .field("config", &self.config)
            .field("create_url", &self.create_url.as_str())
            .field("refresh_url", &self.refresh_url.as_str())
            .field("token_account", &self.tokens.account())
            .field("holder", &self.tokens.holder())
            .finish_non_exhaustive()
    }
}
