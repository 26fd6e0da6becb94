//! Secrets at rest: sealing and opening with the configured at-rest keys.

use domain::ApplicationId;
use secrecy::SecretString;
use uuid::Uuid;

use crate::application_store::EncryptedSecret;

/// What a sealed secret belongs to. The context is bound into the seal (AEAD associated
/// data): a sealed value copied to another row does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealContext {
    /// An application's HMAC secret.
    Application(ApplicationId),
    /// A webhook endpoint's signing secret.
    WebhookEndpoint {
        /// The owning application.
        application: ApplicationId,
        /// The endpoint.
        endpoint: Uuid,
    },
    /// The shared upstream (Transak) access token.
    UpstreamAccessToken,
}

impl SealContext {
    /// The bytes bound into the seal.
    pub fn associated_data(&self) -> Vec<u8> {
        match self {
            SealContext::Application(a) => {
                let mut v = b"application:".to_vec();
                v.extend_from_slice(a.as_uuid().as_bytes());
                v
            }
            SealContext::WebhookEndpoint {
                application,
                endpoint,
            } => {
                let mut v = b"webhook-endpoint:".to_vec();
                v.extend_from_slice(application.as_uuid().as_bytes());
                v.extend_from_slice(endpoint.as_bytes());
                v
            }
            SealContext::UpstreamAccessToken => b"upstream-access-token".to_vec(),
        }
    }
}

/// Why a sealed secret did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// It was sealed under a key that is not configured.
    #[error(
        "sealed with key {found}, which is not configured (configured: {}); \
         WIDGET_SESSIONS_SECRET_KEY differs from the key that sealed it",
        .configured.join(", ")
    )]
    UnknownKey {
        /// The key id stored with the secret.
        found: String,
        /// The ids of the configured keys, current first.
        configured: Vec<String>,
    },
    /// The bytes are truncated, were altered, or belong to another context (a row copied
    /// from elsewhere).
    #[error("the sealed secret is corrupt, altered or belongs to another record")]
    Corrupt,
}

/// Seals secrets for storage and opens them again.
///
/// Implementations hold one current key (used to seal) and any number of older keys (used
/// only to open), so the key can be rotated: configure the new key, keep the old one among
/// the old keys, reseal every stored secret, then drop the old key.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait SecretSealer: Send + Sync {
    /// Seals `secret` under the current key, bound to `context`.
    fn seal(&self, secret: &SecretString, context: SealContext) -> EncryptedSecret;

    /// Opens a sealed secret.
    ///
    /// # Errors
    ///
    /// [`SealError::UnknownKey`] when no configured key has the stored key id;
    /// [`SealError::Corrupt`] when authentication fails (altered bytes, another context).
    fn open(
        &self,
        sealed: &EncryptedSecret,
        context: SealContext,
    ) -> Result<SecretString, SealError>;

    /// Whether `sealed` is sealed under the current key in the current format (if not,
    /// reseal it).
    fn is_current(&self, sealed: &EncryptedSecret) -> bool;

    /// The ids of the configured keys, current first (never the keys themselves).
    fn key_ids(&self) -> Vec<String>;
}
