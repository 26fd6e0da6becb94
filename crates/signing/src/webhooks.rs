//! Verifying the webhooks the service sends (Standard Webhooks, standardwebhooks.com).
//!
//! Each delivery carries `webhook-id` (the event id, the same on every retry: use it to
//! ignore duplicates), `webhook-timestamp` (unix seconds of this attempt) and
//! `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` signatures of
//! `{webhook-id}.{webhook-timestamp}.{body}` under the endpoint's secret (the base64 after
//! `whsec_`). After a secret rotation deliveries carry one signature per secret for a while;
//! [`verify`] accepts a delivery signed by any of the secrets it is given.
//!
//! Verify the **raw body bytes** as received, before parsing them.
//!
//! ```
//! use signing::webhooks::{self, WebhookHeaders};
//! use std::time::Duration;
//!
//! let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
//! let body = br#"{"type":"session.created","timestamp":"2026-11-29T10:00:00Z","data":{}}"#;
//! let signature = webhooks::sign(secret, "evt_1", 1_800_000_000, body).unwrap();
//! let headers = WebhookHeaders { id: "evt_1", timestamp: "1800000000", signature: &signature };
//! webhooks::verify(&[secret], &headers, body, 1_800_000_010, Duration::from_secs(300)).unwrap();
//! ```

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How far a delivery's timestamp may be from now by default (Standard Webhooks' choice).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The most `v1` signatures of one delivery looked at (the service sends one per active
/// secret: two at most).
pub const MAX_SIGNATURES: usize = 10;

/// The three headers of a delivery, as received.
#[derive(Debug, Clone, Copy)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A secret is not `whsec_` followed by base64.
    #[error("a webhook secret must be whsec_ followed by base64")]
    InvalidSecret,
    /// `webhook-timestamp` is not a whole number of seconds.
    #[error("webhook-timestamp is not a unix time in seconds")]
    InvalidTimestamp,
    /// The timestamp is too far from now (a replay, or a clock far off).
    #[error("webhook-timestamp is more than the tolerance away from now")]
    TimestampOutOfTolerance,
    /// No signature matches any of the secrets.
    #[error("no webhook-signature matches")]
    InvalidSignature,
}

fn key(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .map_err(|_| VerifyError::InvalidSecret)
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC takes keys of any length; this cannot happen.
        unreachable!("HMAC accepts every key length")
    });
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `v1,<base64>` signature of a delivery under `secret` (`whsec_…`).
///
/// # Errors
///
/// [`VerifyError::InvalidSecret`].
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, VerifyError> {
    let key = key(secret)?;
    let tag = mac(&key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// Checks a delivery: its timestamp within `tolerance` of `now_unix`, and one of its `v1`
/// signatures made with one of `secrets` (compared in constant time).
///
/// # Errors
///
/// See [`VerifyError`].
pub fn verify(
    secrets: &[&str],
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let timestamp: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now_unix.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let keys = secrets
        .iter()
        .map(|s| key(s))
        .collect::<Result<Vec<_>, _>>()?;
    // A bounded number of candidates, each compared with a tag computed once per secret: a
    // forged header with thousands of signatures costs the verifier nothing more.
    let signatures: Vec<Vec<u8>> = headers
        .signature
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .take(MAX_SIGNATURES)
        .filter_map(|(_, b64)| STANDARD.decode(b64).ok())
        .collect();
    let ok = keys.iter().any(|key| {
        let tag = mac(key, headers.id, headers.timestamp.trim(), body)
            .finalize()
            .into_bytes();
        signatures.iter().any(|candidate| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                tag.as_slice(),
                candidate.as_slice(),
            ))
        })
    });
    if ok {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks reference vectors (its libraries' test suites).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const PAYLOAD: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const TIMESTAMP: i64 = 1_649_367_553;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn headers<'a>(timestamp: &'a str, signature: &'a str) -> WebhookHeaders<'a> {
        WebhookHeaders {
            id: MSG_ID,
            timestamp,
            signature,
        }
    }

    #[test]
    fn signs_the_reference_vector() {
        assert_eq!(sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD).unwrap(), EXPECTED);
        // The prefix is optional for the reference libraries too.
        assert_eq!(
            sign(&SECRET[6..], MSG_ID, TIMESTAMP, PAYLOAD).unwrap(),
            EXPECTED
        );
    }

    #[test]
    fn verifies_the_reference_vector_and_refuses_what_the_reference_refuses() {
        let ts = TIMESTAMP.to_string();
        let tol = DEFAULT_TOLERANCE;
        verify(&[SECRET], &headers(&ts, EXPECTED), PAYLOAD, TIMESTAMP, tol).unwrap();
        // A wrong signature.
        let bad = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert_eq!(
            verify(&[SECRET], &headers(&ts, bad), PAYLOAD, TIMESTAMP, tol),
            Err(VerifyError::InvalidSignature)
        );
        // Several signatures, one of them right; several, none right.
        let others = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=";
        let last = "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=";
        let multi = format!("{others} {EXPECTED} {last}");
        verify(&[SECRET], &headers(&ts, &multi), PAYLOAD, TIMESTAMP, tol).unwrap();
        let none = format!("{others} {last}");
        assert!(verify(&[SECRET], &headers(&ts, &none), PAYLOAD, TIMESTAMP, tol).is_err());
        // Timestamps more than the tolerance away, either way.
        for now in [TIMESTAMP + 301, TIMESTAMP - 301] {
            assert_eq!(
                verify(&[SECRET], &headers(&ts, EXPECTED), PAYLOAD, now, tol),
                Err(VerifyError::TimestampOutOfTolerance)
            );
        }
        // A changed body, a changed id, a version other than v1.
        assert!(verify(&[SECRET], &headers(&ts, EXPECTED), b"{}", TIMESTAMP, tol).is_err());
        let other_id = WebhookHeaders {
            id: "msg_other",
            ..headers(&ts, EXPECTED)
        };
        assert!(verify(&[SECRET], &other_id, PAYLOAD, TIMESTAMP, tol).is_err());
        let v2 = EXPECTED.replace("v1,", "v2,");
        assert!(verify(&[SECRET], &headers(&ts, &v2), PAYLOAD, TIMESTAMP, tol).is_err());
        assert_eq!(
            verify(
                &[SECRET],
                &headers("soon", EXPECTED),
                PAYLOAD,
                TIMESTAMP,
                tol
            ),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn only_the_first_few_signatures_are_looked_at() {
        let ts = TIMESTAMP.to_string();
        let junk = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        let within = format!("{} {EXPECTED}", [junk; MAX_SIGNATURES - 1].join(" "));
        verify(
            &[SECRET],
            &headers(&ts, &within),
            PAYLOAD,
            TIMESTAMP,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        let beyond = format!("{} {EXPECTED}", [junk; MAX_SIGNATURES].join(" "));
        assert_eq!(
            verify(
                &[SECRET],
                &headers(&ts, &beyond),
                PAYLOAD,
                TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn any_of_several_secrets_verifies() {
        let rotated = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let ts = TIMESTAMP.to_string();
        let both = format!(
            "{} {}",
            sign(rotated, MSG_ID, TIMESTAMP, PAYLOAD).unwrap(),
            EXPECTED
        );
        for secrets in [[SECRET].as_slice(), &[rotated], &[rotated, SECRET]] {
            verify(
                secrets,
                &headers(&ts, &both),
                PAYLOAD,
                TIMESTAMP,
                DEFAULT_TOLERANCE,
            )
            .unwrap();
        }
        assert_eq!(
            verify(
                &["whsec_not base64!"],
                &headers(&ts, &both),
                PAYLOAD,
                TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::InvalidSecret)
        );
    }
}
