//! Partners' webhook endpoints.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventType, WebhookEndpointId, WebhookUrl};

use crate::application_store::EncryptedSecret;
use crate::store_error::StoreError;

/// A partner's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// `we_…`.
    pub id: WebhookEndpointId,
    /// The owning application.
    pub application: ApplicationId,
    /// Where events are POSTed.
    pub url: WebhookUrl,
    /// The event types it receives; empty: all.
    pub event_types: Vec<EventType>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// Whether it receives events of type `kind`.
    pub fn receives(&self, kind: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&kind)
    }
}

/// Which of an endpoint's signing secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretSlot {
    /// The secret deliveries are signed with.
    Current,
    /// The secret a rotation replaced, which keeps signing until its end.
    Previous,
}

/// One sealed endpoint secret as stored, for the at-rest key check and reseal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEndpointSecret {
    /// The owning application.
    pub application: ApplicationId,
    /// The endpoint.
    pub endpoint: WebhookEndpointId,
    /// Current or previous.
    pub slot: SecretSlot,
    /// The sealed secret.
    pub secret: EncryptedSecret,
    /// Until when a previous secret signs deliveries (`None` for the current one).
    pub signs_until: Option<DateTime<Utc>>,
}

/// Why an endpoint could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The application already has the most endpoints allowed.
    #[error("the application already has {0} webhook endpoints, the most allowed")]
    TooMany(u32),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The application's webhook endpoints and their signing secrets.
///
/// # Errors
///
/// [`StoreError::Unavailable`] when the store cannot be reached; [`StoreError::Unexpected`]
/// for anything else.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Registers `endpoint` with its sealed `secret`, unless the application already has
    /// `limit` endpoints ([`EndpointError::TooMany`]).
    ///
    /// # Concurrency
    ///
    /// Concurrent registrations never take an application past `limit`.
    async fn create(
        &self,
        endpoint: &WebhookEndpoint,
        secret: EncryptedSecret,
        limit: u32,
    ) -> Result<(), EndpointError>;

    /// The application's endpoints, oldest first.
    async fn list(&self, application: ApplicationId) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Deletes an endpoint; its pending deliveries become [`DeliveryStatus::Failed`].
    /// `false` when the application has no such endpoint.
    async fn delete(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
    ) -> Result<bool, StoreError>;

    /// Replaces an endpoint's secret with `secret`; the current one (the secret last handed
    /// out) becomes the previous secret and keeps signing deliveries alongside it until
    /// `previous_until`. An earlier previous secret is dropped whatever its time: only the
    /// secret last handed out and the new one are ever live, and no rotation extends an
    /// older secret's life. `None` when there is no such endpoint.
    async fn rotate_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        secret: EncryptedSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// Every endpoint's sealed secrets, current and previous (a previous one with the end of
    /// its signing, past or not), by application and endpoint.
    async fn sealed_secrets(&self) -> Result<Vec<SealedEndpointSecret>, StoreError>;

    /// Replaces one sealed secret of an endpoint with the same secret sealed anew (at-rest
    /// key rotation), only if the stored one in that slot is still `current`. Returns whether
    /// it was replaced (`false` too when the endpoint is gone).
    ///
    /// # Concurrency
    ///
    /// A compare-and-swap: a rotation or another reseal that changed the slot since it was
    /// read wins, and this one changes nothing.
    async fn reseal_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        slot: SecretSlot,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError>;
}
