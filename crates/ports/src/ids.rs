//! Identifiers and tokens: session, application and claim ids from randomness, and launch
//! tokens.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{ApplicationId, EventId, SessionId, WebhookEndpointId};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// Everything random the use cases need — new ids, secret bytes, retry jitter — injected so
/// that tests choose it.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait Randomness: Send + Sync {
    /// A new session id: a UUID v7, so ids sort by creation time.
    fn session_id(&self) -> SessionId;
    /// A new claim token (identifies one attempt to mint a session for a reuse key).
    fn claim_token(&self) -> ClaimToken;
    /// A new application id (UUID v7).
    fn application_id(&self) -> ApplicationId;
    /// 32 bytes from a cryptographically secure source, for credentials and secrets.
    fn secret_bytes(&self) -> [u8; 32];
    /// A new event id (UUID v7, so events sort by creation).
    fn event_id(&self) -> EventId;
    /// A new webhook endpoint id (UUID v7).
    fn endpoint_id(&self) -> WebhookEndpointId;
    /// A number in `[-1, 1]`, for retry jitter.
    fn jitter(&self) -> f64;
}

/// The secret in a launch link (`/w/{token}`): the owning application's id, the session id
/// and a MAC over both (128 bits of HMAC-SHA256 under a key derived from the at-rest key),
/// base64url — 64 characters. Nothing about it is stored: a [`LaunchLinks`] implementation
/// issues it and checks it, and a session's link is the same every time it is handed out.
/// `Debug` never shows it.
///
/// ```
/// use ports::LaunchToken;
/// use domain::{ApplicationId, EventId, SessionId, WebhookEndpointId};
/// let app = ApplicationId::from_uuid(uuid::Uuid::from_u128(9));
/// let session = SessionId::from_uuid(uuid::Uuid::from_u128(7));
/// let token = LaunchToken::from_parts(app, session, [3; 16]);
/// let (a, s, mac) = LaunchToken::split(token.expose()).unwrap();
/// assert_eq!((a, s, mac), (app, session, [3; 16]));
/// assert_eq!(token.expose().len(), LaunchToken::TEXT_LEN);
/// assert_eq!(format!("{token:?}"), "LaunchToken(<redacted>)");
/// assert!(LaunchToken::split("short").is_none());
/// ```
#[derive(Clone)]
pub struct LaunchToken {
    application: ApplicationId,
    session: SessionId,
    text: SecretString,
}

impl LaunchToken {
    /// Length of the text: base64url of 16 + 16 + 16 bytes.
    pub const TEXT_LEN: usize = 64;

    /// The token of `session` of `application` with this MAC.
    pub fn from_parts(application: ApplicationId, session: SessionId, mac: [u8; 16]) -> Self {
        let mut bytes = [0u8; 48];
        bytes[..16].copy_from_slice(application.as_uuid().as_bytes());
        bytes[16..32].copy_from_slice(session.as_uuid().as_bytes());
        bytes[32..].copy_from_slice(&mac);
        Self {
            application,
            session,
            text: SecretString::from(URL_SAFE_NO_PAD.encode(bytes)),
        }
    }

    /// The parts of a token's text (not checked: only a [`LaunchLinks`] can tell whether the
    /// MAC is right); `None` if the text cannot be a token.
    pub fn split(text: &str) -> Option<(ApplicationId, SessionId, [u8; 16])> {
        if text.len() != Self::TEXT_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let app: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        let session: [u8; 16] = bytes.get(16..32)?.try_into().ok()?;
        let mac: [u8; 16] = bytes.get(32..48)?.try_into().ok()?;
        Some((
            ApplicationId::from_uuid(Uuid::from_bytes(app)),
            SessionId::from_uuid(Uuid::from_bytes(session)),
            mac,
        ))
    }

    /// The application the token belongs to.
    pub fn application(&self) -> ApplicationId {
        self.application
    }

    /// The session it opens.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The text, for building the link. Never log it.
    pub fn expose(&self) -> &str {
        self.text.expose_secret()
    }
}

impl fmt::Debug for LaunchToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LaunchToken(<redacted>)")
    }
}

/// Issues and checks launch tokens. Nothing is stored: the token is the application and
/// session ids and a MAC over them, so any instance with the at-rest keys can check it.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait LaunchLinks: Send + Sync {
    /// The launch token of `session` of `application` (always the same for one session).
    fn issue(&self, application: ApplicationId, session: SessionId) -> LaunchToken;

    /// The session a token's text opens, if the text is a token this service issued (under
    /// the current at-rest key or an older one); `None` for anything else.
    fn verify(&self, text: &str) -> Option<(ApplicationId, SessionId)>;
}

/// Identifies one attempt to mint the session of a reuse key (see
/// [`SessionStore::reuse_or_claim`](crate::SessionStore::reuse_or_claim)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(pub Uuid);

/// Ids from the operating system's random source and UUID v7.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRandomness;

impl Randomness for SystemRandomness {
    fn session_id(&self) -> SessionId {
        SessionId::from_uuid(Uuid::now_v7())
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

    fn event_id(&self) -> EventId {
        EventId::from_uuid(Uuid::now_v7())
    }

    fn endpoint_id(&self) -> WebhookEndpointId {
        WebhookEndpointId::from_uuid(Uuid::now_v7())
    }

    fn jitter(&self) -> f64 {
        rand::Rng::random_range(&mut rand::rng(), -1.0..=1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let app = ApplicationId::from_uuid(Uuid::now_v7());
        let session = SystemRandomness.session_id();
        let token = LaunchToken::from_parts(app, session, [0xab; 16]);
        assert_eq!(token.expose().len(), LaunchToken::TEXT_LEN);
        assert_eq!((token.application(), token.session()), (app, session));
        assert_eq!(
            LaunchToken::split(token.expose()),
            Some((app, session, [0xab; 16]))
        );
    }

    #[test]
    fn session_ids_are_v7_and_increase() {
        let a = SystemRandomness.session_id();
        let b = SystemRandomness.session_id();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(b > a);
    }

    #[test]
    fn garbage_is_not_a_token() {
        for s in ["", "x", &"!".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert!(LaunchToken::split(s).is_none(), "{s:?}");
        }
    }
}
