//! Identifiers and secrets that need randomness: session ids, launch tokens, claim tokens.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{ApplicationId, SessionId};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Randomness, injected.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new session id: a UUID v7, so ids sort by creation time.
    fn session_id(&self) -> SessionId;
    /// A new launch token for a session of `application`.
    fn launch_token(&self, application: ApplicationId) -> LaunchToken;
    /// A new claim token (identifies one attempt to mint a session for a reuse key).
    fn claim_token(&self) -> ClaimToken;
    /// A new application id (UUID v7).
    fn application_id(&self) -> ApplicationId;
    /// 32 bytes from a cryptographically secure source, for credentials and secrets.
    fn secret_bytes(&self) -> [u8; 32];
}

/// The secret in a launch link (`/w/{token}`): the owning application's id (so the lookup is
/// routed to that application's rows) followed by 32 random bytes (256 bits), base64url.
/// Only its [`LaunchTokenDigest`] is ever stored. `Debug` never shows it.
///
/// ```
/// use ports::LaunchToken;
/// use domain::ApplicationId;
/// let app = ApplicationId::from_uuid(uuid::Uuid::from_u128(9));
/// let token = LaunchToken::from_parts(app, [7; 32]);
/// let parsed = LaunchToken::parse(token.expose()).unwrap();
/// assert_eq!(parsed.application(), app);
/// assert_eq!(parsed.digest(), token.digest());
/// assert_eq!(format!("{token:?}"), "LaunchToken(<redacted>)");
/// assert!(LaunchToken::parse("short").is_none());
/// ```
#[derive(Clone)]
pub struct LaunchToken {
    application: ApplicationId,
    text: SecretString,
}

/// SHA-256 of a launch token's text: what the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaunchTokenDigest(pub [u8; 32]);

impl LaunchToken {
    /// Length of the text: base64url of 16 + 32 bytes.
    pub const TEXT_LEN: usize = 64;

    /// Builds a token from its application and 32 random bytes.
    pub fn from_parts(application: ApplicationId, random: [u8; 32]) -> Self {
        let mut bytes = [0u8; 48];
        bytes[..16].copy_from_slice(application.as_uuid().as_bytes());
        bytes[16..].copy_from_slice(&random);
        Self {
            application,
            text: SecretString::from(URL_SAFE_NO_PAD.encode(bytes)),
        }
    }

    /// Parses the text of a launch link; `None` if it cannot be a token.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != Self::TEXT_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let app: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        Some(Self {
            application: ApplicationId::from_uuid(Uuid::from_bytes(app)),
            text: SecretString::from(text.to_string()),
        })
    }

    /// The application the token belongs to.
    pub fn application(&self) -> ApplicationId {
        self.application
    }

    /// The text, for building the link. Never log it.
    pub fn expose(&self) -> &str {
        self.text.expose_secret()
    }

    /// What the store keeps and looks up.
    pub fn digest(&self) -> LaunchTokenDigest {
        LaunchTokenDigest(Sha256::digest(self.text.expose_secret().as_bytes()).into())
    }
}

impl fmt::Debug for LaunchToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LaunchToken(<redacted>)")
    }
}

/// Identifies one attempt to mint the session of a reuse key (see
/// [`SessionStore::reuse_or_claim`](crate::SessionStore::reuse_or_claim)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(pub Uuid);

/// Ids from the operating system's random source and UUID v7.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn session_id(&self) -> SessionId {
        SessionId::from_uuid(Uuid::now_v7())
    }

    fn launch_token(&self, application: ApplicationId) -> LaunchToken {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        LaunchToken::from_parts(application, random)
    }

    fn claim_token(&self) -> ClaimToken {
        ClaimToken(Uuid::now_v7())
    }

    fn application_id(&self) -> ApplicationId {
        ApplicationId::from_uuid(Uuid::now_v7())
    }

    fn secret_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_differ_and_round_trip() {
        let app = ApplicationId::from_uuid(Uuid::now_v7());
        let a = RandomIds.launch_token(app);
        let b = RandomIds.launch_token(app);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.expose().len(), LaunchToken::TEXT_LEN);
        let back = LaunchToken::parse(a.expose()).unwrap();
        assert_eq!((back.application(), back.digest()), (app, a.digest()));
    }

    #[test]
    fn session_ids_are_v7_and_increase() {
        let a = RandomIds.session_id();
        let b = RandomIds.session_id();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(b > a);
    }

    #[test]
    fn garbage_is_not_a_token() {
        for s in ["", "x", &"!".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert!(LaunchToken::parse(s).is_none(), "{s:?}");
        }
    }
}
