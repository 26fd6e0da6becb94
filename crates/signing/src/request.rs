//! Request signing (the `Authorization` header every `/api/v1` call carries).
//!
//! Compatible with Striga's API: `Authorization: HMAC <unix-ms>:<hex HMAC-SHA256(secret,
//! unix-ms + METHOD + path + md5hex(body))>`, where `path` is the request path below
//! `/api/v1` including its query string and an empty body is hashed as the two characters
//! `{}`. The `api-key` header carries the application's API key.
//!
//! The server refuses a timestamp more than 5 minutes old or more than 30 seconds ahead of
//! its clock, and a signature it has already accepted: **every request needs a fresh
//! timestamp** (two requests signed in the same millisecond with the same method, path and
//! body are the same request, and the second is refused as a replay). The client crate signs
//! each call with the current time.
//!
//! This module is pure (no I/O, no clock reads): partners sign with it (through the client
//! crate) and the service verifies with it.

use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------------------------
// Request signing
// ---------------------------------------------------------------------------------------------

/// The authentication scheme of the `Authorization` header. Matched exactly: `hmac` or
/// `Hmac` is refused, as Striga's clients always send `HMAC`.
const SCHEME: &str = "HMAC";

/// Timestamps longer than this are refused before parsing (16 digits reach the year 318857,
/// and always fit in an `i64`).
const MAX_TIMESTAMP_DIGITS: usize = 16;

/// What is hashed in place of an empty body (Striga: "for GET requests, please include an
/// empty body `{}`").
const EMPTY_BODY: &[u8] = b"{}";

/// The HMAC of a request, as it is computed for the `Authorization` header.
///
/// The signed message is the decimal `unix_ms`, the method in ASCII uppercase, the path and
/// query below `/api/v1` (e.g. `/travel-rule/widget-sessions?limit=5`) and the lowercase hex
/// MD5 of the body, concatenated without separators. An empty body is hashed as `{}`.
///
/// `secret` is the application's API secret exactly as issued (the UTF-8 bytes of the
/// `wss_…` string), not a decoding of it. `path_and_query` is used byte for byte, so the
/// caller must pass it as it appeared on the wire (no re-encoding, no normalisation).
pub fn signature(
    secret: &[u8],
    unix_ms: i64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> [u8; 32] {
    request_mac(secret, unix_ms, method, path_and_query, body)
        .finalize()
        .into_bytes()
        .into()
}

/// The value of the `Authorization` header for a request: `HMAC <unix_ms>:<64 lowercase hex>`.
///
/// See [`signature`] for what is signed.
///
/// ```
/// let header = signing::request::authorization_header(b"secret", 1_700_000_000_000, "GET", "/ping", b"");
/// assert!(header.starts_with("HMAC 1700000000000:"));
/// assert_eq!(header.len(), "HMAC 1700000000000:".len() + 64);
/// ```
pub fn authorization_header(
    secret: &[u8],
    unix_ms: i64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    let signature = signature(secret, unix_ms, method, path_and_query, body);
    format!("{SCHEME} {unix_ms}:{}", hex::encode(signature))
}

/// A syntactically valid `Authorization` header, not yet verified.
///
/// Deliberately not `PartialEq`: compare signatures only with [`verify`], which runs in
/// constant time.
#[derive(Debug, Clone, Copy)]
pub struct ParsedAuthorization {
    /// The request timestamp claimed by the client, in milliseconds since the Unix epoch.
    /// Never negative.
    pub unix_ms: i64,
    /// The HMAC-SHA256 the client sent.
    pub signature: [u8; 32],
}

/// Why an `Authorization` header value is not `HMAC <unix-ms>:<64 hex>`.
///
/// The messages never repeat the header value: it may be a secret pasted by mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    /// The value does not start with `HMAC` followed by one space (this includes other
    /// schemes, `hmac` in lowercase and leading whitespace).
    #[error("the Authorization header must start with `HMAC ` (uppercase, one space)")]
    MissingScheme,
    /// There is no `:` between the timestamp and the signature.
    #[error("the Authorization header must be `HMAC <unix-ms>:<signature>`; the `:` is missing")]
    MissingSeparator,
    /// The timestamp is empty or has something other than ASCII digits (a sign, a space, a
    /// decimal point).
    #[error("the Authorization timestamp must be a decimal number of milliseconds")]
    TimestampNotDecimal,
    /// The timestamp has a leading zero; it must be written as `Date.now().toString()`
    /// writes it, since that exact text is signed.
    #[error("the Authorization timestamp must not have leading zeros")]
    TimestampLeadingZero,
    /// The timestamp has more digits than any plausible time in milliseconds.
    #[error("the Authorization timestamp has {digits} digits; at most 16 are accepted")]
    TimestampTooLong {
        /// How many characters the timestamp had.
        digits: usize,
    },
    /// The signature is not 64 characters long.
    #[error("the Authorization signature must be 64 hex digits; found {found} characters")]
    SignatureLength {
        /// How many characters (bytes) the signature had.
        found: usize,
    },
    /// The signature is 64 characters long but not all are hex digits.
    #[error("the Authorization signature must be 64 hex digits; found a non-hex character")]
    SignatureNotHex,
}

/// Parses an `Authorization` header value strictly.
///
/// Accepted: exactly `HMAC`, one space, the timestamp in decimal (ASCII digits only, no
/// sign, no leading zero unless it is `0`, at most 16 digits), `:`, and exactly 64 hex
/// digits in either case. Nothing may precede or follow (no extra spaces).
///
/// Leading zeros are refused because the timestamp's text is what the client signed:
/// [`verify`] re-formats [`ParsedAuthorization::unix_ms`], which only reproduces a
/// canonical number.
///
/// # Errors
///
/// The [`AuthorizationError`] variant naming the first problem found, scanning left to right.
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization, AuthorizationError> {
    let rest = value
        .strip_prefix(SCHEME)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(AuthorizationError::MissingScheme)?;
    let (timestamp, signature_hex) = rest
        .split_once(':')
        .ok_or(AuthorizationError::MissingSeparator)?;

    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthorizationError::TimestampNotDecimal);
    }
    if timestamp.len() > MAX_TIMESTAMP_DIGITS {
        return Err(AuthorizationError::TimestampTooLong {
            digits: timestamp.len(),
        });
    }
    if timestamp.len() > 1 && timestamp.starts_with('0') {
        return Err(AuthorizationError::TimestampLeadingZero);
    }
    // At most 16 ASCII digits: always fits in an i64, so this cannot fail; mapped anyway.
    let unix_ms = timestamp
        .parse::<i64>()
        .map_err(|_| AuthorizationError::TimestampNotDecimal)?;

    if signature_hex.len() != 64 {
        return Err(AuthorizationError::SignatureLength {
            found: signature_hex.len(),
        });
    }
    let mut signature = [0u8; 32];
    hex::decode_to_slice(signature_hex, &mut signature)
        .map_err(|_| AuthorizationError::SignatureNotHex)?;

    Ok(ParsedAuthorization { unix_ms, signature })
}

/// Whether `parsed` carries the right signature for this request under `secret`.
///
/// The signature is recomputed as in [`signature`] (with `parsed.unix_ms` as the timestamp)
/// and compared in constant time. This does not check the timestamp against the clock; use
/// the server checks it against its clock (5 minutes back, 30 seconds ahead) and refuses a signature it has already accepted.
#[must_use]
pub fn verify(
    secret: &[u8],
    parsed: &ParsedAuthorization,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> bool {
    request_mac(secret, parsed.unix_ms, method, path_and_query, body)
        .verify_slice(&parsed.signature)
        .is_ok()
}

/// The HMAC state after absorbing the whole signed message, ready to finalize or verify.
fn request_mac(
    secret: &[u8],
    unix_ms: i64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed), so this never fails.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret) else {
        unreachable!("HMAC-SHA256 accepts keys of any length")
    };
    mac.update(unix_ms.to_string().as_bytes());
    mac.update(method.to_ascii_uppercase().as_bytes());
    mac.update(path_and_query.as_bytes());
    mac.update(body_md5_hex(body).as_bytes());
    mac
}

/// The lowercase hex MD5 of the body, `{}` standing in for an empty body.
pub fn body_md5_hex(body: &[u8]) -> String {
    let hashed = if body.is_empty() { EMPTY_BODY } else { body };
    hex::encode(Md5::digest(hashed))
}

/// The part of a request path that is signed: the path below `/api/v1`, with its query
/// string, byte for byte as sent (`/api/v1/travel-rule/widget-sessions?limit=5` →
/// `/travel-rule/widget-sessions?limit=5`). A path not under `/api/v1` is signed whole.
///
/// ```
/// use signing::request::signed_path;
/// assert_eq!(signed_path("/api/v1/webhook-endpoints?x=1"), "/webhook-endpoints?x=1");
/// assert_eq!(signed_path("/travel-rule/widget-sessions"), "/travel-rule/widget-sessions");
/// ```
pub fn signed_path(path_and_query: &str) -> &str {
    match path_and_query.strip_prefix("/api/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') => rest,
        _ => path_and_query,
    }
}

/// The two headers that authenticate one request.
///
/// `Debug` shows the API key's first characters only.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The `api-key` header.
    pub api_key: String,
    /// The `Authorization` header.
    pub authorization: String,
}

impl std::fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: String = self.api_key.chars().take(8).collect();
        f.debug_struct("SignedHeaders")
            .field("api_key", &format_args!("{shown}…"))
            .field("authorization", &self.authorization)
            .finish()
    }
}

/// Signs one request: `method` and `path_and_query` as they go on the wire (a leading
/// `/api/v1` is not signed, see [`signed_path`]), `body` as sent (empty for none), at
/// `unix_ms`.
///
/// ```
/// use signing::request::{sign, parse_authorization, verify};
/// let h = sign("wsk_key", b"wss_secret", 1_700_000_000_000, "POST",
///     "/api/v1/travel-rule/widget-sessions", br#"{"currency":"BTC"}"#);
/// assert_eq!(h.api_key, "wsk_key");
/// let parsed = parse_authorization(&h.authorization).unwrap();
/// assert!(verify(b"wss_secret", &parsed, "POST", "/travel-rule/widget-sessions", br#"{"currency":"BTC"}"#));
/// ```
pub fn sign(
    api_key: &str,
    secret: &[u8],
    unix_ms: i64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> SignedHeaders {
    SignedHeaders {
        api_key: api_key.to_string(),
        authorization: authorization_header(
            secret,
            unix_ms,
            method,
            signed_path(path_and_query),
            body,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"my-api-secret";
    const MS: i64 = 1_700_000_000_000;

    // -- Striga compatibility ------------------------------------------------------------------

    /// Striga's "Authenticating with the API" page
    /// (https://docs.striga.com/reference/authenticating-with-the-api) publishes the MD5 an
    /// empty GET body must hash to: `{}` → `99914b932bd37a50b983c5e7c90ae93b`.
    #[test]
    fn empty_body_is_hashed_as_braces_per_striga_docs() {
        assert_eq!(body_md5_hex(b""), "99914b932bd37a50b983c5e7c90ae93b");
        assert_eq!(body_md5_hex(b"{}"), "99914b932bd37a50b983c5e7c90ae93b");
    }

    /// Striga publishes reference code but no concrete (secret, time, request) → signature
    /// example. These vectors were produced by running the `calcSig` function of Striga's
    /// Node.js sample (https://docs.striga.com/reference/js-hmac-sample-snippet: `createHmac`
    /// updated with time, method, endpoint, then `md5(JSON.stringify(body))` in hex) under
    /// Node v20 with the secret `my-api-secret` and the time fixed to `1700000000000`; the
    /// POST one was cross-checked with Python's `hmac`/`hashlib`. The POST request mirrors
    /// Striga's PHP sample (`/ping` with body `{"ping":"pong"}`).
    #[test]
    fn matches_strigas_reference_node_implementation() {
        let cases: [(&str, &str, &[u8], &str); 3] = [
            (
                "GET",
                "/user/474f3a7b-eaf4-45f8-b548-b784a0ba008f",
                b"",
                "aca505f421beb2a68a282ac400e414db6823dc59f16dd2095833ace01dad263e",
            ),
            (
                "POST",
                "/ping",
                br#"{"ping":"pong"}"#,
                "9c23dea781030e30208b783dba34ae34bc625d73be1f666c84ff4e266b3064eb",
            ),
            (
                "GET",
                "/travel-rule/widget-sessions?limit=5",
                b"{}",
                "2ae366960cda191aab5a1caf5a077bdcf20c167dbc68c11cfc61a8194bf287e7",
            ),
        ];
        for (method, path, body, expected) in cases {
            assert_eq!(
                authorization_header(SECRET, MS, method, path, body),
                format!("HMAC 1700000000000:{expected}"),
                "{method} {path}"
            );
            assert_eq!(
                hex::encode(signature(SECRET, MS, method, path, body)),
                expected
            );
        }
    }

    // -- signing and verification --------------------------------------------------------------

    #[test]
    fn header_has_the_exact_format() {
        let header = authorization_header(SECRET, MS, "GET", "/ping", b"");
        let (prefix, hex_part) = header.split_at("HMAC 1700000000000:".len());
        assert_eq!(prefix, "HMAC 1700000000000:");
        assert_eq!(hex_part.len(), 64);
        assert!(
            hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let body = br#"{"amount":"10"}"#;
        let path = "/travel-rule/widget-sessions?limit=5";
        let header = authorization_header(SECRET, MS, "POST", path, body);
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(parsed.unix_ms, MS);
        assert_eq!(parsed.signature, signature(SECRET, MS, "POST", path, body));
        assert!(verify(SECRET, &parsed, "POST", path, body));
    }

    #[test]
    fn any_change_breaks_verification() {
        let path = "/travel-rule/widget-sessions?limit=5";
        let body = br#"{"amount":"10"}"#;
        let parsed =
            parse_authorization(&authorization_header(SECRET, MS, "POST", path, body)).unwrap();
        assert!(verify(SECRET, &parsed, "POST", path, body));

        let other_ms = ParsedAuthorization {
            unix_ms: MS + 1,
            ..parsed
        };
        assert!(!verify(SECRET, &other_ms, "POST", path, body), "ms");
        assert!(!verify(SECRET, &parsed, "PUT", path, body), "method");
        assert!(
            !verify(
                SECRET,
                &parsed,
                "POST",
                "/travel-rule/widget-session?limit=5",
                body
            ),
            "path"
        );
        assert!(
            !verify(
                SECRET,
                &parsed,
                "POST",
                "/travel-rule/widget-sessions?limit=6",
                body
            ),
            "query"
        );
        assert!(
            !verify(
                SECRET,
                &parsed,
                "POST",
                "/travel-rule/widget-sessions",
                body
            ),
            "query dropped"
        );
        assert!(
            !verify(SECRET, &parsed, "POST", path, br#"{"amount":"11"}"#),
            "body"
        );
        assert!(!verify(SECRET, &parsed, "POST", path, b""), "body dropped");
        assert!(
            !verify(b"my-api-secreT", &parsed, "POST", path, body),
            "secret"
        );

        let mut flipped = parsed;
        flipped.signature[31] ^= 1;
        assert!(!verify(SECRET, &flipped, "POST", path, body), "signature");
    }

    #[test]
    fn empty_body_signs_like_braces() {
        let path = "/travel-rule/widget-sessions";
        assert_eq!(
            signature(SECRET, MS, "GET", path, b""),
            signature(SECRET, MS, "GET", path, b"{}")
        );
        let parsed =
            parse_authorization(&authorization_header(SECRET, MS, "GET", path, b"")).unwrap();
        assert!(verify(SECRET, &parsed, "GET", path, b"{}"));
        assert_ne!(
            signature(SECRET, MS, "GET", path, b""),
            signature(SECRET, MS, "GET", path, b"[]")
        );
    }

    #[test]
    fn method_is_signed_in_uppercase() {
        assert_eq!(
            signature(SECRET, MS, "get", "/ping", b""),
            signature(SECRET, MS, "GET", "/ping", b"")
        );
    }

    #[test]
    fn empty_and_long_secrets_work() {
        let long = [7u8; 200];
        for secret in [&b""[..], &long[..]] {
            let header = authorization_header(secret, MS, "GET", "/ping", b"");
            let parsed = parse_authorization(&header).unwrap();
            assert!(verify(secret, &parsed, "GET", "/ping", b""));
        }
    }

    #[test]
    fn signed_path_strips_only_the_api_prefix() {
        assert_eq!(signed_path("/api/v1/x?y=1"), "/x?y=1");
        assert_eq!(signed_path("/api/v1"), "");
        assert_eq!(signed_path("/api/v10/x"), "/api/v10/x");
        assert_eq!(signed_path("/x"), "/x");
    }

    // -- parsing -------------------------------------------------------------------------------

    fn hex64() -> String {
        "ab".repeat(32)
    }

    #[test]
    fn parse_accepts_either_hex_case_and_zero() {
        let lower = parse_authorization(&format!("HMAC {MS}:{}", hex64())).unwrap();
        let upper = parse_authorization(&format!("HMAC {MS}:{}", hex64().to_uppercase())).unwrap();
        assert_eq!(lower.signature, [0xab; 32]);
        assert_eq!(upper.signature, [0xab; 32]);
        assert_eq!(lower.unix_ms, MS);
        let zero = parse_authorization(&format!("HMAC 0:{}", hex64())).unwrap();
        assert_eq!(zero.unix_ms, 0);
        let max = parse_authorization(&format!("HMAC 9999999999999999:{}", hex64())).unwrap();
        assert_eq!(max.unix_ms, 9_999_999_999_999_999);
    }

    #[test]
    fn parse_rejects_bad_scheme() {
        let sig = hex64();
        for value in [
            String::new(),
            format!("{MS}:{sig}"),
            format!("hmac {MS}:{sig}"),
            format!("Hmac {MS}:{sig}"),
            format!("Bearer {MS}:{sig}"),
            format!(" HMAC {MS}:{sig}"),
            format!("HMAC\t{MS}:{sig}"),
            format!("HMAC{MS}:{sig}"),
            "HMAC".to_owned(),
        ] {
            assert_eq!(
                parse_authorization(&value).unwrap_err(),
                AuthorizationError::MissingScheme,
                "{value:?}"
            );
        }
    }

    #[test]
    fn parse_rejects_missing_separator() {
        for value in ["HMAC ", "HMAC 1700000000000", "HMAC 1700000000000 abcdef"] {
            assert_eq!(
                parse_authorization(value).unwrap_err(),
                AuthorizationError::MissingSeparator,
                "{value:?}"
            );
        }
    }

    #[test]
    fn parse_rejects_bad_timestamps() {
        let sig = hex64();
        for ts in [
            "",
            " 1700000000000",
            "1700000000000 ",
            "+1700000000000",
            "-1700000000000",
            "1700000000000.5",
            "1e12",
            "0x10",
            "１７", // full-width digits
        ] {
            assert_eq!(
                parse_authorization(&format!("HMAC {ts}:{sig}")).unwrap_err(),
                AuthorizationError::TimestampNotDecimal,
                "{ts:?}"
            );
        }
        assert_eq!(
            parse_authorization(&format!("HMAC  {MS}:{sig}")).unwrap_err(),
            AuthorizationError::TimestampNotDecimal,
            "two spaces after the scheme"
        );
        assert_eq!(
            parse_authorization(&format!("HMAC 01700000000000:{sig}")).unwrap_err(),
            AuthorizationError::TimestampLeadingZero
        );
        assert_eq!(
            parse_authorization(&format!("HMAC 12345678901234567:{sig}")).unwrap_err(),
            AuthorizationError::TimestampTooLong { digits: 17 }
        );
        let huge = "9".repeat(400);
        assert_eq!(
            parse_authorization(&format!("HMAC {huge}:{sig}")).unwrap_err(),
            AuthorizationError::TimestampTooLong { digits: 400 }
        );
    }

    #[test]
    fn parse_rejects_bad_signatures() {
        let sig = hex64();
        let cases = [
            (
                sig[..63].to_owned(),
                AuthorizationError::SignatureLength { found: 63 },
            ),
            (
                format!("{sig}a"),
                AuthorizationError::SignatureLength { found: 65 },
            ),
            (
                String::new(),
                AuthorizationError::SignatureLength { found: 0 },
            ),
            (
                format!("{sig} "),
                AuthorizationError::SignatureLength { found: 65 },
            ),
            (
                format!(" {}", &sig[1..]),
                AuthorizationError::SignatureNotHex,
            ),
            (
                format!("{}g", &sig[..63]),
                AuthorizationError::SignatureNotHex,
            ),
            (
                format!("{}:", &sig[..63]),
                AuthorizationError::SignatureNotHex,
            ),
            // 62 ASCII characters and a 2-byte character: 64 bytes, not hex.
            (
                format!("{}é", &sig[..62]),
                AuthorizationError::SignatureNotHex,
            ),
        ];
        for (signature, expected) in cases {
            assert_eq!(
                parse_authorization(&format!("HMAC {MS}:{signature}")).unwrap_err(),
                expected,
                "{signature:?}"
            );
        }
        assert_eq!(
            parse_authorization(&format!("HMAC {MS}:{sig}:{sig}")).unwrap_err(),
            AuthorizationError::SignatureLength { found: 129 }
        );
    }

    #[test]
    fn parse_errors_do_not_echo_the_value() {
        let leaked = "wss_SUPERSECRETVALUE";
        for value in [
            leaked.to_owned(),
            format!("HMAC {leaked}:{}", hex64()),
            format!("HMAC 1:{leaked}"),
        ] {
            let message = parse_authorization(&value).unwrap_err().to_string();
            assert!(!message.contains("SUPERSECRET"), "{message}");
        }
    }
}
