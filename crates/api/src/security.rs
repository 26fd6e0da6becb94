//! Request signing, credential generation and secrets at rest (SPEC §6).
//!
//! Everything here is pure: no I/O, no clock reads, no async. The HTTP layer reads the
//! headers, the clock and the application store, then calls these functions.
//!
//! - **Request signing** is compatible with Striga's API: the `Authorization` header is
//!   `HMAC <unix-ms>:<hex HMAC-SHA256(secret, unix-ms + METHOD + path + md5hex(body))>`, where
//!   `path` is the request path below `/api/v1` including its query string and an empty body
//!   is hashed as the two characters `{}`. See [`authorization_header`], [`parse_authorization`],
//!   [`verify`] and [`within_skew`].
//! - **Credentials**: [`generate_api_key`] and [`generate_api_secret`].
//! - **Secrets at rest**: [`SecretSealer`] encrypts application secrets with
//!   ChaCha20-Poly1305 under the key from [`SECRET_KEY_ENV`].

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use md5::Md5;
use rand::rngs::OsRng;
use rand::{RngCore as _, TryRngCore as _};
use secrecy::zeroize::{Zeroize as _, Zeroizing};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------------------------
// Request signing
// ---------------------------------------------------------------------------------------------

/// The largest accepted difference between a request's timestamp and the server clock, in
/// milliseconds (5 minutes, either direction).
pub const MAX_CLOCK_SKEW_MS: i64 = 300_000;

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
/// let header = api::security::authorization_header(b"secret", 1_700_000_000_000, "GET", "/ping", b"");
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
/// [`within_skew`] for that.
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

/// Whether `unix_ms` is at most `max_skew_ms` away from `now_ms`, in either direction
/// (inclusive). Never overflows; a negative `max_skew_ms` accepts nothing.
///
/// ```
/// use api::security::{within_skew, MAX_CLOCK_SKEW_MS};
/// assert!(within_skew(1_000_000, 1_300_000, MAX_CLOCK_SKEW_MS));
/// assert!(!within_skew(1_000_000, 1_300_001, MAX_CLOCK_SKEW_MS));
/// ```
#[must_use]
pub fn within_skew(unix_ms: i64, now_ms: i64, max_skew_ms: i64) -> bool {
    match u64::try_from(max_skew_ms) {
        Ok(max) => unix_ms.abs_diff(now_ms) <= max,
        Err(_) => false,
    }
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
fn body_md5_hex(body: &[u8]) -> String {
    let hashed = if body.is_empty() { EMPTY_BODY } else { body };
    hex::encode(Md5::digest(hashed))
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// The prefix of every API key, so a leaked key is recognisable (secret scanners, logs).
pub const API_KEY_PREFIX: &str = "wsk_";

/// The prefix of every API secret.
pub const API_SECRET_PREFIX: &str = "wss_";

/// Random bytes in a credential (256 bits).
const CREDENTIAL_BYTES: usize = 32;

/// Length of a credential: prefix plus 32 bytes in unpadded base64url (43 characters).
const CREDENTIAL_LEN: usize = 4 + 43;

/// A new API key: `wsk_` followed by 32 bytes from the operating system's random source in
/// unpadded base64url (47 characters in all).
///
/// The key identifies an application; only its SHA-256 is stored
/// (`ports::ApiKeyDigest::of`), and it must never be logged.
///
/// # Panics
///
/// If the operating system's random source fails, which it does not once the system has
/// booted.
pub fn generate_api_key() -> String {
    credential(API_KEY_PREFIX)
}

/// A new API secret: `wss_` followed by 32 bytes from the operating system's random source
/// in unpadded base64url (47 characters in all).
///
/// The secret's UTF-8 bytes are the HMAC key of [`signature`]. It is shown to the operator
/// once and stored only sealed by a [`SecretSealer`].
///
/// # Panics
///
/// If the operating system's random source fails, which it does not once the system has
/// booted.
pub fn generate_api_secret() -> SecretString {
    SecretString::from(credential(API_SECRET_PREFIX))
}

/// `prefix` followed by 32 random bytes in unpadded base64url. The string is allocated at
/// its final size, so no partial copy of it is left behind in freed memory, and the random
/// bytes are wiped.
fn credential(prefix: &str) -> String {
    let random = Zeroizing::new(random_bytes::<CREDENTIAL_BYTES>());
    let mut out = String::with_capacity(CREDENTIAL_LEN);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(random.as_slice(), &mut out);
    out
}

/// `N` bytes from the operating system's random source.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.unwrap_err().fill_bytes(&mut bytes);
    bytes
}

// ---------------------------------------------------------------------------------------------
// Secrets at rest
// ---------------------------------------------------------------------------------------------

/// The environment variable holding the at-rest key: 32 random bytes in standard base64.
pub const SECRET_KEY_ENV: &str = "WIDGET_SESSIONS_SECRET_KEY";

/// Nonce length of ChaCha20-Poly1305.
const NONCE_LEN: usize = 12;

/// Authentication tag length of ChaCha20-Poly1305.
const TAG_LEN: usize = 16;

/// Standard base64 that accepts the key with or without its `=` padding.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a sealer could not be built, or a sealed secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealerError {
    /// The configured key is not base64.
    #[error(
        "WIDGET_SESSIONS_SECRET_KEY is not valid base64: it must be 32 bytes, base64-encoded, \
         e.g. from `openssl rand -base64 32`"
    )]
    KeyNotBase64,
    /// The configured key is base64 but does not decode to 32 bytes.
    #[error(
        "WIDGET_SESSIONS_SECRET_KEY decodes to {found} bytes: it must be 32 bytes, \
         base64-encoded, e.g. from `openssl rand -base64 32`"
    )]
    KeyWrongLength {
        /// How many bytes the value decoded to.
        found: usize,
    },
    /// The secret was sealed under another key than the configured one.
    #[error(
        "the secret was sealed with key {found}, but the configured WIDGET_SESSIONS_SECRET_KEY \
         is key {expected}: WIDGET_SESSIONS_SECRET_KEY differs from the one that sealed it"
    )]
    WrongKey {
        /// The key id of the configured key (this sealer's [`SecretSealer::key_id`]).
        expected: String,
        /// The key id recorded with the sealed secret.
        found: String,
    },
    /// The sealed bytes are truncated or were altered (authentication failed).
    #[error("the sealed secret is corrupt: it is truncated or failed authentication")]
    Corrupt,
}

/// Encrypts application secrets for storage and decrypts them again (ChaCha20-Poly1305).
///
/// Each [`seal`](Self::seal) uses a fresh random 12-byte nonce; the stored bytes are the
/// nonce followed by the ciphertext and its tag, and the key id is bound in as associated
/// data. The key id is derived from the key, so opening with a different key is reported as
/// [`SealerError::WrongKey`] instead of as corruption.
///
/// `Debug` shows only the key id; the key is wiped from memory when the sealer is dropped.
#[derive(Clone)]
pub struct SecretSealer {
    cipher: ChaCha20Poly1305,
    key_id: String,
}

impl SecretSealer {
    /// Builds a sealer from the value of [`SECRET_KEY_ENV`]: 32 bytes in standard base64,
    /// with or without `=` padding. Surrounding ASCII whitespace (a trailing newline from a
    /// file) is ignored.
    ///
    /// ```
    /// use api::security::SecretSealer;
    /// let sealer = SecretSealer::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    /// assert!(sealer.key_id().starts_with("k1-"));
    /// assert!(SecretSealer::from_base64("c2hvcnQ=").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`SealerError::KeyNotBase64`] if the value is not base64,
    /// [`SealerError::KeyWrongLength`] if it does not decode to 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, SealerError> {
        let decoded = Zeroizing::new(
            KEY_BASE64
                .decode(s.trim_ascii())
                .map_err(|_| SealerError::KeyNotBase64)?,
        );
        let key: Zeroizing<[u8; 32]> =
            Zeroizing::new(decoded.as_slice().try_into().map_err(|_| {
                SealerError::KeyWrongLength {
                    found: decoded.len(),
                }
            })?);
        Ok(Self::from_key(&key))
    }

    /// A sealer with a fresh random key, for in-memory runs and tests. Whatever it seals
    /// cannot be opened after the process exits.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails.
    pub fn generate() -> Self {
        let key = Zeroizing::new(random_bytes::<32>());
        Self::from_key(&key)
    }

    /// The id of this sealer's key: `k1-` and the first 8 hex digits of the key's SHA-256.
    /// It is stored with every sealed secret, so a changed key is detected.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `secret` under this sealer's key with a fresh random nonce.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails, or if the secret is longer than
    /// ChaCha20-Poly1305 can encrypt (256 GiB).
    pub fn seal(&self, secret: &SecretString) -> ports::EncryptedSecret {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let payload = Payload {
            msg: secret.expose_secret().as_bytes(),
            aad: self.key_id.as_bytes(),
        };
        let Ok(ciphertext) = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), payload)
        else {
            unreachable!("ChaCha20-Poly1305 encrypts any secret shorter than 256 GiB")
        };
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        ports::EncryptedSecret {
            key_id: self.key_id.clone(),
            sealed,
        }
    }

    /// Decrypts a secret sealed by a sealer with the same key.
    ///
    /// # Errors
    ///
    /// [`SealerError::WrongKey`] if `sealed.key_id` is not this sealer's key id (the
    /// configured key changed); [`SealerError::Corrupt`] if the bytes are shorter than a
    /// nonce and a tag, fail authentication, or are not UTF-8.
    pub fn open(&self, sealed: &ports::EncryptedSecret) -> Result<SecretString, SealerError> {
        if sealed.key_id != self.key_id {
            return Err(SealerError::WrongKey {
                expected: self.key_id.clone(),
                found: sealed.key_id.clone(),
            });
        }
        if sealed.sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SealerError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: sealed.key_id.as_bytes(),
        };
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), payload)
                .map_err(|_| SealerError::Corrupt)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| SealerError::Corrupt)?;
        // `to_owned` allocates exactly `len` bytes, so turning it into the secret's boxed
        // `str` does not reallocate and leave an unwiped copy; `plaintext` is wiped on drop.
        Ok(SecretString::from(text.to_owned()))
    }

    fn from_key(key: &[u8; 32]) -> Self {
        let mut digest: [u8; 32] = Sha256::digest(key).into();
        let key_id = format!("k1-{}", hex::encode(&digest[..4]));
        digest.zeroize();
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            key_id,
        }
    }
}

impl fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSealer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
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

    // -- clock skew ----------------------------------------------------------------------------

    #[test]
    fn skew_bounds_are_inclusive() {
        let now = MS;
        assert!(within_skew(now, now, MAX_CLOCK_SKEW_MS));
        assert!(within_skew(now + 300_000, now, MAX_CLOCK_SKEW_MS));
        assert!(within_skew(now - 300_000, now, MAX_CLOCK_SKEW_MS));
        assert!(!within_skew(now + 300_001, now, MAX_CLOCK_SKEW_MS));
        assert!(!within_skew(now - 300_001, now, MAX_CLOCK_SKEW_MS));
        assert!(within_skew(now, now, 0));
        assert!(!within_skew(now + 1, now, 0));
        assert!(!within_skew(now, now, -1));
    }

    #[test]
    fn skew_never_overflows() {
        assert!(!within_skew(i64::MIN, i64::MAX, MAX_CLOCK_SKEW_MS));
        assert!(!within_skew(i64::MAX, i64::MIN, MAX_CLOCK_SKEW_MS));
        assert!(!within_skew(i64::MIN, 0, MAX_CLOCK_SKEW_MS));
        assert!(!within_skew(i64::MAX, 0, i64::MAX - 1));
        assert!(within_skew(i64::MAX, 0, i64::MAX));
        assert!(within_skew(i64::MIN, i64::MIN, 0));
        assert!(within_skew(i64::MAX, i64::MAX - 300_000, MAX_CLOCK_SKEW_MS));
        assert!(!within_skew(i64::MIN, i64::MAX, i64::MAX));
        assert!(within_skew(i64::MIN + 300_000, i64::MIN, MAX_CLOCK_SKEW_MS));
    }

    // -- credentials ---------------------------------------------------------------------------

    fn assert_credential(value: &str, prefix: &str) {
        let random = value.strip_prefix(prefix).unwrap();
        assert_eq!(random.len(), 43, "{value}");
        assert_eq!(URL_SAFE_NO_PAD.decode(random).unwrap().len(), 32);
    }

    #[test]
    fn api_keys_have_prefix_length_and_differ() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_credential(&a, "wsk_");
        assert_credential(&b, "wsk_");
        assert_eq!(a.len(), 47);
        assert_ne!(a, b);
    }

    #[test]
    fn api_secrets_have_prefix_length_and_differ() {
        let a = generate_api_secret();
        let b = generate_api_secret();
        assert_credential(a.expose_secret(), "wss_");
        assert_credential(b.expose_secret(), "wss_");
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(&a.expose_secret()[4..]));
    }

    // -- sealing -------------------------------------------------------------------------------

    /// 32 bytes 0x00..=0x1f in standard base64.
    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn sealer_round_trip() {
        let sealer = SecretSealer::from_base64(KEY_B64).unwrap();
        let secret = SecretString::from("wss_some-secret-value");
        let sealed = sealer.seal(&secret);
        assert_eq!(sealed.key_id, sealer.key_id());
        assert_eq!(sealed.sealed.len(), 12 + "wss_some-secret-value".len() + 16);
        assert!(
            !sealed.sealed.windows(6).any(|w| w == b"secret"),
            "plaintext must not appear in the sealed bytes"
        );
        assert_eq!(
            sealer.open(&sealed).unwrap().expose_secret(),
            "wss_some-secret-value"
        );
        let empty = sealer.seal(&SecretString::from(""));
        assert_eq!(sealer.open(&empty).unwrap().expose_secret(), "");
    }

    #[test]
    fn sealing_twice_uses_fresh_nonces() {
        let sealer = SecretSealer::generate();
        let secret = SecretString::from("same");
        let a = sealer.seal(&secret);
        let b = sealer.seal(&secret);
        assert_ne!(a.sealed, b.sealed);
        assert_ne!(a.sealed[..12], b.sealed[..12]);
    }

    #[test]
    fn key_id_is_derived_from_the_key() {
        let sealer = SecretSealer::from_base64(KEY_B64).unwrap();
        let key: Vec<u8> = (0u8..32).collect();
        let expected = format!("k1-{}", &hex::encode(Sha256::digest(&key))[..8]);
        assert_eq!(sealer.key_id(), expected);
        assert_eq!(sealer.key_id().len(), 11);
        assert_ne!(SecretSealer::generate().key_id(), sealer.key_id());
    }

    #[test]
    fn from_base64_accepts_with_or_without_padding_and_whitespace() {
        let padded = SecretSealer::from_base64(KEY_B64).unwrap();
        let unpadded = SecretSealer::from_base64(KEY_B64.trim_end_matches('=')).unwrap();
        let newline = SecretSealer::from_base64(&format!("{KEY_B64}\n")).unwrap();
        assert_eq!(padded.key_id(), unpadded.key_id());
        assert_eq!(padded.key_id(), newline.key_id());
        // Sealed by one, opened by another built from the same key.
        let sealed = padded.seal(&SecretString::from("x"));
        assert_eq!(unpadded.open(&sealed).unwrap().expose_secret(), "x");
    }

    #[test]
    fn from_base64_rejects_wrong_lengths() {
        for (value, found) in [
            ("", 0),
            ("c2hvcnQ=", 5),
            ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 31),
            ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 33),
        ] {
            let err = SecretSealer::from_base64(value).unwrap_err();
            assert_eq!(err, SealerError::KeyWrongLength { found }, "{value:?}");
            let message = err.to_string();
            assert!(
                message.contains(
                    "must be 32 bytes, base64-encoded, e.g. from `openssl rand -base64 32`"
                ),
                "{message}"
            );
        }
    }

    #[test]
    fn from_base64_rejects_non_base64() {
        for value in [
            "not base64 at all!",
            // The same key in base64url (`-`/`_` instead of `+`/`/`) is not standard base64.
            "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==",
        ] {
            let err = SecretSealer::from_base64(value).unwrap_err();
            assert_eq!(err, SealerError::KeyNotBase64, "{value:?}");
            assert!(err.to_string().contains("must be 32 bytes, base64-encoded"));
            assert!(!err.to_string().contains(value));
        }
    }

    #[test]
    fn tampering_any_byte_is_corrupt() {
        let sealer = SecretSealer::generate();
        let sealed = sealer.seal(&SecretString::from("wss_secret"));
        for i in 0..sealed.sealed.len() {
            let mut tampered = sealed.clone();
            tampered.sealed[i] ^= 0x01;
            assert_eq!(
                sealer.open(&tampered).unwrap_err(),
                SealerError::Corrupt,
                "byte {i}"
            );
        }
    }

    #[test]
    fn truncated_blobs_are_corrupt() {
        let sealer = SecretSealer::generate();
        let sealed = sealer.seal(&SecretString::from("wss_secret"));
        for len in [0, 1, 11, 12, 27, 28, sealed.sealed.len() - 1] {
            let truncated = ports::EncryptedSecret {
                key_id: sealed.key_id.clone(),
                sealed: sealed.sealed[..len].to_vec(),
            };
            assert_eq!(
                sealer.open(&truncated).unwrap_err(),
                SealerError::Corrupt,
                "len {len}"
            );
        }
    }

    #[test]
    fn another_key_is_wrong_key() {
        let original = SecretSealer::from_base64(KEY_B64).unwrap();
        let other = SecretSealer::generate();
        let sealed = original.seal(&SecretString::from("wss_secret"));
        let err = other.open(&sealed).unwrap_err();
        assert_eq!(
            err,
            SealerError::WrongKey {
                expected: other.key_id().to_owned(),
                found: original.key_id().to_owned(),
            }
        );
        let message = err.to_string();
        assert!(message.contains(other.key_id()), "{message}");
        assert!(message.contains(original.key_id()), "{message}");
        assert!(
            message.contains("WIDGET_SESSIONS_SECRET_KEY differs from the one that sealed it"),
            "{message}"
        );
    }

    #[test]
    fn relabelled_key_id_is_corrupt_not_opened() {
        // Editing the stored key id to the current one does not get another key's blob
        // opened: it fails authentication instead of decrypting to garbage.
        let sealer = SecretSealer::generate();
        let other = SecretSealer::generate();
        let mut sealed = other.seal(&SecretString::from("wss_secret"));
        sealed.key_id = sealer.key_id().to_owned();
        assert_eq!(sealer.open(&sealed).unwrap_err(), SealerError::Corrupt);
    }

    #[test]
    fn debug_shows_only_the_key_id() {
        let sealer = SecretSealer::from_base64(KEY_B64).unwrap();
        let debug = format!("{sealer:?}");
        assert_eq!(
            debug,
            format!("SecretSealer {{ key_id: {:?}, .. }}", sealer.key_id())
        );
        assert!(!debug.contains("AAECAw"));
    }
}
