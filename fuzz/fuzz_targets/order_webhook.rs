//! Transak's order webhook body, `{"data": "<JWT>"}` (`widget-sessions-transak`'s `orders`).
//!
//! 1. Any bytes as a body: `token_of` and `verify` never panic, and nothing that was not
//!    signed with the key verifies.
//! 2. The same bytes as JSON claims, signed HS256 with the key and wrapped as Transak does:
//!    they verify with any key list holding the key (as an order event, or as `Malformed`
//!    when they are not one) and never with a list that lacks it; an accepted event says
//!    exactly what the claims said, within the documented bounds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ports::OrderEventError;
use secrecy::SecretString;
use transak::orders::{MAX_BODY, token_of, verify};

const KEY: &str = "fuzzing-access-token";
const OTHER: &str = "another-access-token";

fn keys(k: &[&str]) -> Vec<SecretString> {
    k.iter().map(|k| SecretString::from(*k)).collect()
}

fuzz_target!(|data: &[u8]| {
    // 1. Hostile bodies.
    match token_of(data) {
        Ok(token) => {
            let verdict = verify(&token, &keys(&[KEY]));
            assert!(
                !matches!(verdict, Ok(_)),
                "an unsigned body verified: {verdict:?}"
            );
        }
        Err(OrderEventError::Malformed(_)) => assert!(data.len() > MAX_BODY),
        Err(_) => {}
    }

    // 2. Signed claims.
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Some(object) = claims.as_object() else {
        return;
    };
    // Registered claims with their own validation (expiry, not-before, issuer, subject)
    // may refuse a token for reasons of their own.
    if ["exp", "nbf", "iss", "sub", "aud"]
        .iter()
        .any(|k| object.contains_key(*k))
    {
        return;
    }
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap();
    let body = serde_json::json!({ "data": jwt }).to_string();
    let Ok(token) = token_of(body.as_bytes()) else {
        assert!(body.len() > MAX_BODY, "a small wrapped token was refused");
        return;
    };
    assert_eq!(
        verify(&token, &keys(&[OTHER])),
        Err(OrderEventError::Unauthenticated)
    );
    match verify(&token, &keys(&[OTHER, KEY])) {
        Ok(event) => {
            assert_eq!(claims["eventID"].as_str(), Some(event.event_id.as_str()));
            assert_eq!(claims["webhookData"]["id"].as_str(), Some(event.order_id.as_str()));
            assert_eq!(
                claims["webhookData"]["status"].as_str(),
                Some(event.status.as_str())
            );
            for (v, max) in [(event.event_id.as_str(), 100), (event.order_id.as_str(), 200), (event.status.as_str(), 100)] {
                assert!(!v.is_empty() && v.len() <= max && !v.chars().any(char::is_control));
            }
            if let Some(p) = &event.partner_order_id {
                assert_eq!(claims["webhookData"]["partnerOrderId"].as_str(), Some(p.as_str()));
                assert!(!p.is_empty() && p.len() <= 200);
            }
        }
        Err(OrderEventError::Malformed(_)) => {}
        Err(e) => panic!("signed claims were refused as {e:?}: {claims}"),
    }
});
