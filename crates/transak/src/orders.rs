//! Transak's order webhooks: `POST` with `{"data": "<JWT>"}`, the JWT signed HS256 with the
//! partner access token, its claims holding `eventID` and `webhookData` (the order).
//!
//! Verification uses `jsonwebtoken` (HS256 only; no other algorithm, `none` included, is
//! accepted). The token and its signature are never logged or put in an error.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ports::{OrderEvent, OrderEventError};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// How long after a refresh the token it replaced still verifies order webhooks: events
/// signed just before the refresh may still be in flight.
pub const PREVIOUS_TOKEN_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The longest body read (a JWT of an order is a few kilobytes).
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
struct Envelope {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    #[serde(rename = "eventID")]
    event_id: String,
    webhook_data: Order,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    id: String,
    status: String,
    #[serde(default)]
    partner_order_id: Option<String>,
}

/// The JWT of a webhook body `{"data": "<JWT>"}`.
///
/// # Errors
///
/// [`OrderEventError::Unauthenticated`]: without a token there is nothing to verify (the
/// body says nothing trustworthy).
pub fn token_of(body: &[u8]) -> Result<String, OrderEventError> {
    if body.len() > MAX_BODY {
        return Err(OrderEventError::Malformed("the body is too large".into()));
    }
    let token = serde_json::from_slice::<Envelope>(body)
        .map(|e| e.data)
        .map_err(|_| OrderEventError::Unauthenticated)?;
    // Refused before any key is looked up: a token that cannot be HS256.
    match jsonwebtoken::decode_header(&token) {
        Ok(header) if header.alg == Algorithm::HS256 && token.split('.').count() == 3 => Ok(token),
        _ => Err(OrderEventError::Unauthenticated),
    }
}

/// The keys an order webhook may be signed with at `now`: the current access token, and the
/// one it replaced while within [`PREVIOUS_TOKEN_GRACE`].
pub fn keys_at(
    current: Option<&ports::StoredAccessToken>,
    now: DateTime<Utc>,
) -> Vec<SecretString> {
    let Some(current) = current else {
        return Vec::new();
    };
    let mut keys = vec![current.token.clone()];
    if let Some(previous) = &current.previous {
        let grace = chrono::TimeDelta::from_std(PREVIOUS_TOKEN_GRACE).unwrap_or_default();
        if now < previous.replaced_at + grace {
            keys.push(previous.token.clone());
        }
    }
    keys
}

/// Verifies `token` with any of `keys` and reads the order event.
///
/// # Errors
///
/// [`OrderEventError::Unauthenticated`] when no key verifies it; [`OrderEventError::Malformed`]
/// when it verifies but is not an order event.
pub fn verify(token: &str, keys: &[SecretString]) -> Result<OrderEvent, OrderEventError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Transak's order tokens need not carry `exp`; one that does is still checked.
    validation.required_spec_claims.clear();
    validation.leeway = 60;
    // Transak documents no audience: a token that names one is not refused for it.
    validation.validate_aud = false;
    validation.validate_nbf = true;
    // Any JSON claims at first: only once a key verified the signature is the content judged
    // (a token that does not verify says nothing, not even that it is malformed).
    let verified = keys.iter().find_map(|key| {
        let key = DecodingKey::from_secret(key.expose_secret().as_bytes());
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).ok()
    });
    let Some(data) = verified else {
        return Err(OrderEventError::Unauthenticated);
    };
    // jsonwebtoken checks `exp` and `nbf` only when they read as whole non-negative numbers
    // of seconds, and passes over them otherwise (a string, a fraction, a negative number):
    // a time claim that is present must be such a number, or the token is refused as if it
    // did not verify.
    for claim in ["exp", "nbf"] {
        if data.claims.get(claim).is_some_and(|v| !v.is_u64()) {
            return Err(OrderEventError::Unauthenticated);
        }
    }
    let c: Claims = serde_json::from_value(data.claims).map_err(|_| {
        OrderEventError::Malformed(
            "the claims are not an order event (eventID, webhookData.id, webhookData.status)"
                .into(),
        )
    })?;
    let bounded = |field: &str, v: &str, max: usize| {
        if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
            Err(OrderEventError::Malformed(format!(
                "{field} is empty, too long or not plain text"
            )))
        } else {
            Ok(())
        }
    };
    bounded("eventID", &c.event_id, 100)?;
    bounded("webhookData.id", &c.webhook_data.id, 200)?;
    bounded("webhookData.status", &c.webhook_data.status, 100)?;
    Ok(OrderEvent {
        event_id: c.event_id,
        order_id: c.webhook_data.id,
        // The one place Transak's status text becomes ours: unknown statuses are kept.
        status: domain::OrderStatus::parse(&c.webhook_data.status),
        // Not one of our session ids unless plain text: such an event is unmatched.
        partner_order_id: c
            .webhook_data
            .partner_order_id
            .filter(|p| !p.is_empty() && p.len() <= 200 && !p.chars().any(char::is_control)),
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    fn sign(claims: &serde_json::Value, key: &str, alg: Algorithm) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    }

    fn order(event: &str, status: &str) -> serde_json::Value {
        json!({"eventID": event, "webhookData": {"id": "ord-1", "status": status,
            "partnerOrderId": "0193a1b2-0000-7000-8000-000000000001", "cryptoCurrency": "BTC"}})
    }

    fn keys(k: &[&str]) -> Vec<SecretString> {
        k.iter().map(|k| SecretString::from(*k)).collect()
    }

    #[test]
    fn verifies_with_any_key_and_reads_the_order() {
        let jwt = sign(
            &order("ORDER_COMPLETED", "COMPLETED"),
            "previous",
            Algorithm::HS256,
        );
        let e = verify(&jwt, &keys(&["current", "previous"])).unwrap();
        assert_eq!(e.event_id, "ORDER_COMPLETED");
        assert_eq!(e.order_id, "ord-1");
        assert_eq!(e.status, domain::OrderStatus::Completed);
        assert_eq!(
            e.partner_order_id.as_deref(),
            Some("0193a1b2-0000-7000-8000-000000000001")
        );
        assert_eq!(
            verify(&jwt, &keys(&["current"])),
            Err(OrderEventError::Unauthenticated)
        );
        assert_eq!(verify(&jwt, &[]), Err(OrderEventError::Unauthenticated));
    }

    #[test]
    fn time_claims_that_are_not_whole_seconds_are_refused() {
        let past = chrono::Utc::now().timestamp() - 3600;
        for (claim, value) in [
            ("exp", serde_json::json!("1")),
            ("exp", serde_json::json!(past.to_string())),
            ("exp", serde_json::json!(1.5)),
            ("exp", serde_json::json!(-1)),
            ("exp", serde_json::json!(null)),
            ("nbf", serde_json::json!("9999999999")),
            ("nbf", serde_json::json!(9_999_999_999.5)),
            ("nbf", serde_json::json!([1])),
        ] {
            let mut claims = order("ORDER_COMPLETED", "COMPLETED");
            claims[claim] = value.clone();
            let token = sign(&claims, "k", Algorithm::HS256);
            assert_eq!(
                verify(&token, &keys(&["k"])),
                Err(OrderEventError::Unauthenticated),
                "{claim}: {value}"
            );
        }
        // Whole seconds are checked as before.
        let mut expired = order("ORDER_COMPLETED", "COMPLETED");
        expired["exp"] = serde_json::json!(past);
        assert!(verify(&sign(&expired, "k", Algorithm::HS256), &keys(&["k"])).is_err());
        let mut fine = order("ORDER_COMPLETED", "COMPLETED");
        fine["exp"] = serde_json::json!(past + 7200);
        fine["nbf"] = serde_json::json!(past);
        assert!(verify(&sign(&fine, "k", Algorithm::HS256), &keys(&["k"])).is_ok());
    }

    #[test]
    fn refuses_other_algorithms_tampering_and_garbage() {
        let claims = order("ORDER_COMPLETED", "COMPLETED");
        let hs512 = sign(&claims, "current", Algorithm::HS512);
        assert_eq!(
            verify(&hs512, &keys(&["current"])),
            Err(OrderEventError::Unauthenticated)
        );
        // alg "none": header {"alg":"none"}, no signature.
        let none = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                claims.to_string()
            )
        );
        assert_eq!(
            verify(&none, &keys(&["current"])),
            Err(OrderEventError::Unauthenticated)
        );
        let jwt = sign(&claims, "current", Algorithm::HS256);
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            order("ORDER_COMPLETED", "REFUNDED").to_string(),
        );
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), &keys(&["current"])),
            Err(OrderEventError::Unauthenticated)
        );
        for garbage in ["", "x", "a.b.c", "…"] {
            assert_eq!(
                verify(garbage, &keys(&["current"])),
                Err(OrderEventError::Unauthenticated)
            );
        }
        // Signed, but not an order.
        let other = sign(&json!({"hello": "world"}), "current", Algorithm::HS256);
        assert!(matches!(
            verify(&other, &keys(&["current"])),
            Err(OrderEventError::Malformed(_))
        ));
        // An expired token that carries exp.
        let mut expired = order("ORDER_COMPLETED", "COMPLETED");
        expired["exp"] = json!(1_000_000_000);
        let expired = sign(&expired, "current", Algorithm::HS256);
        assert_eq!(
            verify(&expired, &keys(&["current"])),
            Err(OrderEventError::Unauthenticated)
        );
    }

    #[test]
    fn the_body_carries_the_token_in_data() {
        let hs256 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        assert_eq!(
            token_of(format!(r#"{{"data":"{hs256}"}}"#).as_bytes()).unwrap(),
            hs256
        );
        // Not even a JWT header saying HS256: refused before any key is read.
        for other in [
            "a.b.c",
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJhbGciOiJIUzUxMiJ9.e30.c2ln",
        ] {
            let body = format!(r#"{{"data":"{other}"}}"#);
            assert_eq!(
                token_of(body.as_bytes()),
                Err(OrderEventError::Unauthenticated)
            );
        }
        for bad in [&b"{}"[..], b"[]", b"not json", br#"{"data": 1}"#] {
            assert_eq!(token_of(bad), Err(OrderEventError::Unauthenticated));
        }
        let big = format!(r#"{{"data":"{}"}}"#, "a".repeat(MAX_BODY));
        assert!(matches!(
            token_of(big.as_bytes()),
            Err(OrderEventError::Malformed(_))
        ));
    }

    #[test]
    fn the_previous_token_verifies_only_within_its_grace() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let current = ports::StoredAccessToken {
            token: SecretString::from("current"),
            expires_at: now,
            version: 2,
            previous: Some(ports::PreviousAccessToken {
                token: SecretString::from("previous"),
                replaced_at: now - chrono::TimeDelta::minutes(10),
            }),
        };
        assert_eq!(keys_at(Some(&current), now).len(), 2);
        assert_eq!(
            keys_at(Some(&current), now + chrono::TimeDelta::minutes(6)).len(),
            1
        );
        assert!(keys_at(None, now).is_empty());
    }
}
