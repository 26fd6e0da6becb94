//! Verifying the webhooks the service sends (Standard Webhooks, standardwebhooks.com): the
//! pure primitives of the `widget-sessions-signing` crate (which the service signs with), and
//! [`verify_now`], which reads the system clock.
//!
//! ```
//! use widget_sessions_client::webhooks::{self, WebhookHeaders};
//!
//! let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
//! let body = br#"{"type":"session.created","timestamp":"2026-11-29T10:00:00Z","data":{}}"#;
//! let now = chrono::Utc::now().timestamp();
//! let signature = webhooks::sign(secret, "evt_1", now, body).unwrap();
//! let headers = WebhookHeaders { id: "evt_1", timestamp: &now.to_string(), signature: &signature };
//! webhooks::verify_now(&[secret], &headers, body).unwrap();
//! ```

pub use ::signing::webhooks::*;

/// [`verify`] against the system clock, with [`DEFAULT_TOLERANCE`].
///
/// # Errors
///
/// See [`VerifyError`].
pub fn verify_now(
    secrets: &[&str],
    headers: &WebhookHeaders<'_>,
    body: &[u8],
) -> Result<(), VerifyError> {
    verify(
        secrets,
        headers,
        body,
        chrono::Utc::now().timestamp(),
        DEFAULT_TOLERANCE,
    )
}
