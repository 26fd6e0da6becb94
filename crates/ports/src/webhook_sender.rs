//! Webhooks on the wire: the sender and the body partners receive.

use async_trait::async_trait;
use domain::{EventId, WebhookUrl, WebhookUrlError};
use secrecy::SecretString;

use crate::delivery_queue::SessionEvent;

/// A webhook on its way out.
#[derive(Debug)]
pub struct OutboundWebhook {
    /// Where.
    pub url: WebhookUrl,
    /// The event id (`webhook-id`).
    pub event: EventId,
    /// The body, exactly as signed and sent.
    pub body: Vec<u8>,
    /// The secrets to sign with (`whsec_…`): one signature each.
    pub secrets: Vec<SecretString>,
}

/// Why a webhook could not be sent (no answer from the endpoint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The host does not resolve to public addresses only (checked at every delivery).
    #[error(transparent)]
    Refused(#[from] WebhookUrlError),
    /// No answer within the timeout.
    #[error("no answer within the timeout")]
    Timeout,
    /// Connection, TLS or protocol failure, in a few words.
    #[error("{0}")]
    Transport(String),
}

/// Sends webhooks (Standard Webhooks headers and signatures) and checks where they may go.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs the webhook; the HTTP status of the answer (any status: the caller judges it).
    /// Redirects are not followed.
    ///
    /// # Errors
    ///
    /// [`SendError`] when there was no answer.
    async fn send(&self, webhook: &OutboundWebhook) -> Result<u16, SendError>;

    /// Whether webhooks may be sent to `url` now: its host resolves, and only to public
    /// addresses unless private networks are allowed.
    ///
    /// # Errors
    ///
    /// [`WebhookUrlError::NotPublic`] for an IP address that is not public;
    /// [`WebhookUrlError::HostNotPublic`] for a name that resolves to a non-public address
    /// or does not resolve (one refusal for both).
    async fn check(&self, url: &WebhookUrl) -> Result<(), WebhookUrlError>;
}

/// Turns an event into the body partners receive (the API's JSON).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait EventEncoder: Send + Sync {
    /// The body of `event`'s deliveries: the same bytes for every attempt.
    fn encode(&self, event: &SessionEvent) -> Vec<u8>;
}
