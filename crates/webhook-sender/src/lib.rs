//! # The webhook sender
//!
//! [`HttpWebhookSender`] implements [`ports::WebhookSender`]: it POSTs an event to a
//! partner's endpoint with the Standard Webhooks headers (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature`, one `v1,` signature per secret), within a
//! timeout, never following redirects.
//!
//! **Outbound safety.** Partner-supplied URLs must not reach private networks (the service's
//! own, a cloud metadata endpoint, …). Unless private networks are allowed, every delivery
//! resolves the host itself ([`PublicOnlyResolver`], installed as reqwest's resolver) and
//! refuses the connection if *any* address is not public
//! ([`domain::is_public_address`]); reqwest then connects only to the addresses that were
//! checked, so a name cannot resolve to a public address for the check and a private one for
//! the connection. IP literals, which reqwest does not resolve, are checked before sending.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::{WebhookUrl, WebhookUrlError, is_public_address};
use ports::{Clock, OutboundWebhook, SendError, WebhookSender};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use secrecy::ExposeSecret as _;
use url::Host;

/// Settings of the sender.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Longest wait for an answer (connect included).
    pub timeout: Duration,
    /// Allow `http` and private addresses (local runs and tests only).
    pub allow_private_networks: bool,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            allow_private_networks: false,
        }
    }
}

/// A host resolved to an address that is not public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPublic {
    /// The host.
    pub host: String,
    /// The first non-public address it resolved to.
    pub address: std::net::IpAddr,
}

impl fmt::Display for NotPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves to {}, which is not a public address",
            self.host, self.address
        )
    }
}

impl StdError for NotPublic {}

/// Longest wait for a registration-time lookup.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves names and refuses any that resolves to a non-public address.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

/// Resolves `host` (with the system resolver) and checks every address.
async fn resolve_public(
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    if addrs.is_empty() {
        return Err(format!("{host} does not resolve").into());
    }
    if let Some(bad) = addrs.iter().find(|a| !is_public_address(a.ip())) {
        return Err(Box::new(NotPublic {
            host: host.to_string(),
            address: bad.ip(),
        }));
    }
    Ok(addrs)
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs = resolve_public(name.as_str(), 0).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Sends webhooks over HTTP(S).
pub struct HttpWebhookSender {
    client: reqwest::Client,
    settings: SenderSettings,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HttpWebhookSender {
    /// A sender with these settings; `clock` stamps `webhook-timestamp`.
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built (TLS set-up).
    pub fn new(settings: SenderSettings, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("widget-sessions/", env!("CARGO_PKG_VERSION"))),
        );
        // No proxy, whatever the environment says (`HTTPS_PROXY`, …): through a proxy the
        // partner's host would be resolved by the proxy, unchecked.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .default_headers(headers)
            .pool_idle_timeout(Duration::from_secs(30));
        if !settings.allow_private_networks {
            builder = builder
                .dns_resolver(Arc::new(PublicOnlyResolver))
                .https_only(true);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            settings,
            clock,
        })
    }

    /// An IP-literal host that is not public (reqwest does not resolve IP literals).
    fn literal_not_public(&self, url: &WebhookUrl) -> Option<WebhookUrlError> {
        if self.settings.allow_private_networks {
            return None;
        }
        let ip = match url.as_url().host()? {
            Host::Ipv4(ip) => ip.into(),
            Host::Ipv6(ip) => ip.into(),
            Host::Domain(_) => return None,
        };
        (!is_public_address(ip)).then(|| WebhookUrlError::NotPublic(ip.to_string()))
    }
}

/// The reason in a reqwest error's source chain, if it is our resolver's refusal.
fn not_public_in(error: &reqwest::Error) -> Option<NotPublic> {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(np) = e.downcast_ref::<NotPublic>() {
            return Some(np.clone());
        }
        source = e.source();
    }
    None
}

/// A reqwest failure in a few words, without the URL (its query may carry a partner's
/// token).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "could not connect"
    } else if error.is_request() {
        "the request failed"
    } else if error.is_body() {
        "sending the body failed"
    } else {
        "the exchange failed"
    };
    let mut cause = String::new();
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = source {
        cause = e.to_string();
        source = e.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, webhook: &OutboundWebhook) -> Result<u16, SendError> {
        if let Some(refused) = self.literal_not_public(&webhook.url) {
            return Err(SendError::Refused(refused));
        }
        let timestamp = self.clock.now().timestamp();
        let id = webhook.event.to_string();
        let mut signatures = Vec::with_capacity(webhook.secrets.len());
        for secret in &webhook.secrets {
            let signature =
                signing::webhooks::sign(secret.expose_secret(), &id, timestamp, &webhook.body)
                    .map_err(|e| SendError::Transport(format!("signing failed: {e}")))?;
            signatures.push(signature);
        }
        let result = self
            .client
            .post(webhook.url.as_str())
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(webhook.body.clone())
            .send()
            .await;
        match result {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) => Err(if let Some(np) = not_public_in(&e) {
                SendError::Refused(WebhookUrlError::NotPublic(np.to_string()))
            } else if e.is_timeout() {
                SendError::Timeout
            } else {
                SendError::Transport(describe(&e))
            }),
        }
    }

    async fn check(&self, url: &WebhookUrl) -> Result<(), WebhookUrlError> {
        if self.settings.allow_private_networks {
            return Ok(());
        }
        if let Some(refused) = self.literal_not_public(url) {
            return Err(refused);
        }
        let Some(Host::Domain(host)) = url.as_url().host() else {
            return Ok(());
        };
        let port = url.as_url().port_or_known_default().unwrap_or(443);
        // The partner sees one refusal whether the name resolves to a non-public address or
        // does not resolve at all, never what it resolved to: otherwise registrations would
        // tell which internal names exist. The detail is logged.
        let reason = match tokio::time::timeout(RESOLVE_TIMEOUT, resolve_public(host, port)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("looking up {host} timed out"),
        };
        tracing::info!(%reason, "webhook URL refused: its host does not resolve to public addresses only");
        Err(WebhookUrlError::HostNotPublic)
    }
}

#[cfg(test)]
mod tests;
