//! The upstream that mints widget URLs (Transak's *Create Widget URL*).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use domain::{Asset, Counterparty, SessionId, Subject};
use secrecy::{ExposeSecret, SecretString};

/// What the upstream needs to mint a widget URL for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetRequest {
    /// Our session id (sent as `partnerOrderId`).
    pub session_id: SessionId,
    /// The customer (its id is sent as `partnerCustomerId`).
    pub subject: Subject,
    /// Currency and network.
    pub asset: Asset,
    /// The counterparty; an address is sent as `walletAddress`.
    pub counterparty: Counterparty,
}

/// A widget URL minted upstream. It carries a single-use upstream `sessionId`, so `Debug`
/// and `Display` show it with that parameter redacted; [`WidgetUrl::expose`] gives the real
/// URL, for the redirect only.
///
/// ```
/// use ports::WidgetUrl;
/// let url = WidgetUrl::new("https://global.transak.com/?apiKey=k&sessionId=s3cr3t&x=1".into());
/// assert_eq!(url.to_string(), "https://global.transak.com/?apiKey=k&sessionId=<redacted>&x=1");
/// assert!(!format!("{url:?}").contains("s3cr3t"));
/// assert!(url.expose().contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct WidgetUrl(SecretString);

impl WidgetUrl {
    /// Wraps a URL.
    pub fn new(url: String) -> Self {
        Self(SecretString::from(url))
    }

    /// The real URL, with its `sessionId`. Only for the redirect and for storage.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with the value of every `sessionId` query parameter replaced by `<redacted>`.
    pub fn redacted(&self) -> String {
        let url = self.0.expose_secret();
        let Some((base, query)) = url.split_once('?') else {
            return url.to_string();
        };
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("sessionId") => format!("{k}=<redacted>"),
                _ => pair.to_string(),
            })
            .collect();
        let mut out = format!("{base}?{}", parts.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }
}

impl fmt::Debug for WidgetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WidgetUrl({})", self.redacted())
    }
}

impl fmt::Display for WidgetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl PartialEq for WidgetUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for WidgetUrl {}

/// Why the upstream did not mint a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The upstream refused the request (a `4xx` other than an expired token, which the
    /// gateway handles itself). Carries the upstream's message; never retried.
    #[error("upstream rejected the request ({status}): {message}")]
    Rejected {
        /// The upstream HTTP status.
        status: u16,
        /// The upstream's own message (it contains no secret).
        message: String,
    },
    /// The upstream could not be reached or failed (`5xx`, timeout, connection error) after
    /// the gateway's bounded retries. Callers answer `503` with `Retry-After`.
    #[error("upstream unavailable: {reason}")]
    Unavailable {
        /// When trying again makes sense.
        retry_after: Duration,
        /// What happened (no secret, no upstream session id).
        reason: String,
    },
    /// Anything else: a malformed upstream answer, our own misconfiguration, a store failure
    /// while handling the access token.
    #[error("upstream call failed: {0}")]
    Unexpected(String),
}

/// Mints widget URLs upstream.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait WidgetGateway: Send + Sync {
    /// Mints one widget URL for `request`.
    ///
    /// # Errors
    ///
    /// [`GatewayError::Rejected`] for an upstream `4xx` (after at most one access-token
    /// refresh and one retry on `401`); [`GatewayError::Unavailable`] when the upstream is
    /// down, slow past the timeout or answering `5xx` after bounded retries;
    /// [`GatewayError::Unexpected`] otherwise.
    ///
    /// # Concurrency
    ///
    /// Safe to call from any number of tasks and instances at once. Every call mints a new
    /// upstream session; the caller (the claim protocol) makes sure one happens per key.
    async fn create_widget_url(&self, request: &WidgetRequest) -> Result<WidgetUrl, GatewayError>;

    /// Obtains a valid access token now (refreshing it if needed): for a warm start, so the
    /// first request does not wait for a refresh.
    ///
    /// # Errors
    ///
    /// As [`WidgetGateway::create_widget_url`].
    async fn check_credentials(&self) -> Result<(), GatewayError>;

    /// What the gateway last learned about its credentials, without calling anyone (for
    /// readiness reports and metrics).
    fn status(&self) -> UpstreamStatus;

    /// Verifies an order webhook from the upstream (its raw body) with the shared access
    /// token, or with the token it replaced while that is within its grace period, and
    /// reads it.
    ///
    /// # Errors
    ///
    /// [`OrderEventError::Unauthenticated`] when no such token signed it (or it is not a
    /// signed token at all); [`OrderEventError::Malformed`] when it is signed but does not
    /// describe an order; [`OrderEventError::Unavailable`] when the token store cannot be
    /// read.
    async fn verify_order_event(&self, body: &[u8]) -> Result<OrderEvent, OrderEventError>;
}

/// An order event the upstream reported, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// `eventID`, e.g. `ORDER_COMPLETED`.
    pub event_id: String,
    /// The order's id.
    pub order_id: String,
    /// The order's own status, e.g. `COMPLETED`, mapped from Transak's text by the gateway.
    pub status: domain::OrderStatus,
    /// `partnerOrderId`: what we sent (our session id), if present.
    pub partner_order_id: Option<String>,
}

/// Why an order webhook was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderEventError {
    /// Not signed by the current access token, nor by the previous one within its grace.
    #[error("the order event is not signed with this service's access token")]
    Unauthenticated,
    /// Signed, but not an order event this service understands.
    #[error("the order event is malformed: {0}")]
    Malformed(String),
    /// The token store cannot be read.
    #[error("the access token cannot be read: {0}")]
    Unavailable(String),
}

/// What a gateway last learned about its upstream credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamStatus {
    /// No token was needed yet.
    Unknown,
    /// A valid access token is held.
    Ready,
    /// The last attempt to obtain a token failed (a generic reason, no secret).
    Failing {
        /// What went wrong, for operators.
        reason: String,
    },
}
