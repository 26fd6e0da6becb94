//! The `Authorization: HMAC <ms>:<hex>` header (`widget-sessions-signing`'s `request` module: partners sign with it through the client crate, the service verifies with it).
//!
//! 1. The input as text goes through `parse_authorization`: never panics; whatever it
//!    accepts is canonical (the header is exactly `HMAC <ms>:<64 hex>`, with the timestamp
//!    as `i64::to_string` writes it); and `verify` accepts it for a fixed secret and request
//!    only if it is precisely the header `authorization_header` produces for them.
//! 2. The same bytes, read as structured data, drive a round trip: for any secret, time,
//!    method, path and body, `authorization_header` → `parse_authorization` → `verify`
//!    holds for timestamps in the accepted range (0 to 16 digits) and the header is refused
//!    outside it; another secret, path or body does not verify.

#![no_main]

use signing::request::{authorization_header, parse_authorization, verify};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"wss_fuzzing-secret-0123456789abcdef";
const METHOD: &str = "POST";
const PATH: &str = "/travel-rule/widget-sessions";
const BODY: &[u8] = br#"{"userId":"7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44"}"#;

/// Largest timestamp `parse_authorization` accepts: 16 digits.
const MAX_MS: i64 = 9_999_999_999_999_999;

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_arbitrary_header(header: &str) {
    let Ok(parsed) = parse_authorization(header) else {
        return;
    };
    assert!((0..=MAX_MS).contains(&parsed.unix_ms), "{}", parsed.unix_ms);
    let canonical = format!("HMAC {}:{}", parsed.unix_ms, hex_lower(&parsed.signature));
    assert_eq!(
        header.to_ascii_lowercase(),
        canonical.to_ascii_lowercase(),
        "accepted a non-canonical header"
    );
    let expected = authorization_header(SECRET, parsed.unix_ms, METHOD, PATH, BODY);
    assert_eq!(
        verify(SECRET, &parsed, METHOD, PATH, BODY),
        header.eq_ignore_ascii_case(&expected),
        "verify disagrees with authorization_header"
    );
}

fn round_trip(u: &mut Unstructured<'_>) -> Result<()> {
    let secret: &[u8] = u.arbitrary()?;
    let raw_ms: i64 = u.arbitrary()?;
    // Half the time, a timestamp in the accepted range.
    let ms = if u.arbitrary::<bool>()? {
        i64::try_from(raw_ms.unsigned_abs() % (MAX_MS as u64 + 1)).unwrap_or(0)
    } else {
        raw_ms
    };
    let method: &str = u.arbitrary()?;
    let path: &str = u.arbitrary()?;
    let body: &[u8] = u.bytes(u.len())?;

    let header = authorization_header(secret, ms, method, path, body);
    match parse_authorization(&header) {
        Ok(parsed) => {
            assert!((0..=MAX_MS).contains(&ms), "accepted timestamp {ms}");
            assert_eq!(parsed.unix_ms, ms);
            assert!(
                verify(secret, &parsed, method, path, body),
                "round trip failed"
            );
            // The method is compared in ASCII uppercase on both sides.
            assert!(verify(
                secret,
                &parsed,
                &method.to_ascii_lowercase(),
                path,
                body
            ));

            // HMAC pads short keys with zero bytes, so flip a bit instead of appending.
            let mut other_secret = secret.to_vec();
            match other_secret.first_mut() {
                Some(b) => *b ^= 0x01,
                None => other_secret.push(b'x'),
            }
            assert!(
                !verify(&other_secret, &parsed, method, path, body),
                "another secret verified"
            );
            assert!(
                !verify(secret, &parsed, method, &format!("{path}x"), body),
                "another path verified"
            );
            let mut other_body = body.to_vec();
            other_body.push(b'x');
            assert!(
                !verify(secret, &parsed, method, path, &other_body),
                "another body verified"
            );
        }
        Err(error) => {
            assert!(
                !(0..=MAX_MS).contains(&ms),
                "refused its own header for {ms}: {error}"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        parse_arbitrary_header(header);
    }
    let _ = round_trip(&mut Unstructured::new(data));
});
