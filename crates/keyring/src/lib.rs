//! # The at-rest keys
//!
//! [`Keyring`] holds the configured at-rest keys — one current key and any number of older
//! ones kept for rotation — and implements [`ports::SecretSealer`]: ChaCha20-Poly1305 with a
//! fresh random nonce per seal, the key id and the record the secret belongs to
//! ([`SealContext`]) bound in as associated data, so a sealed secret copied into another row
//! does not open.
//!
//! It also implements [`ports::LaunchLinks`]: a launch token is the application and session
//! ids with 128 bits of HMAC-SHA256 under a key derived from the at-rest key (HKDF-SHA256),
//! so nothing about it is stored, a session's link is always the same, and links issued
//! under an older key still open after a rotation.
//!
//! Key ids are `k2-` and the first 8 hex digits of the key's SHA-256: stored with each sealed
//! secret, they name the key without revealing it. Secrets sealed by earlier versions
//! (`k1-` ids, bound to the key only) still open; [`SecretSealer::is_current`] says they must
//! be resealed, which `widget-sessions apps reseal` does.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use domain::{ApplicationId, SessionId};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use ports::{EncryptedSecret, LaunchLinks, LaunchToken, SealContext, SealError, SecretSealer};
use rand::rngs::OsRng;
use rand::{RngCore as _, TryRngCore as _};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

/// Nonce length of ChaCha20-Poly1305.
const NONCE_LEN: usize = 12;

/// Authentication tag length of ChaCha20-Poly1305.
const TAG_LEN: usize = 16;

/// HKDF `info` of the launch-link key.
const LINK_KEY_INFO: &[u8] = b"widget-sessions launch-link key v1";

/// Domain separation of the launch-link MAC.
const LINK_MAC_DOMAIN: &[u8] = b"widget-sessions launch link v1\0";

type HmacSha256 = Hmac<Sha256>;

/// The key-id prefix of the current format (key id and record bound in).
const CURRENT: &str = "k2-";

/// The key-id prefix of the earlier format (key id bound in, not the record).
const LEGACY: &str = "k1-";

/// Standard base64 that accepts a key with or without its `=` padding.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a configured key is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The value is not base64.
    #[error(
        "is not valid base64: it must be 32 bytes, base64-encoded, e.g. from `openssl rand -base64 32`"
    )]
    NotBase64,
    /// The value does not decode to 32 bytes.
    #[error(
        "decodes to {found} bytes: it must be 32 bytes, base64-encoded, e.g. from `openssl rand -base64 32`"
    )]
    WrongLength {
        /// How many bytes it decoded to.
        found: usize,
    },
}

/// One at-rest key.
struct AtRestKey {
    cipher: ChaCha20Poly1305,
    /// The launch-link MAC key derived from it (HKDF-SHA256).
    link_key: Zeroizing<[u8; 32]>,
    /// First 8 hex digits of the key's SHA-256.
    fingerprint: String,
}

impl AtRestKey {
    fn from_base64(s: &str) -> Result<Self, KeyError> {
        let decoded = Zeroizing::new(
            KEY_BASE64
                .decode(s.trim_ascii())
                .map_err(|_| KeyError::NotBase64)?,
        );
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(decoded.as_slice().try_into().map_err(
            |_| KeyError::WrongLength {
                found: decoded.len(),
            },
        )?);
        Ok(Self::from_bytes(&key))
    }

    fn from_bytes(key: &[u8; 32]) -> Self {
        let digest = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(key)));
        let mut link_key = Zeroizing::new([0u8; 32]);
        // HKDF-Expand of a uniformly random key: a 32-byte output never exceeds its limit.
        let expanded = Hkdf::<Sha256>::new(None, key).expand(LINK_KEY_INFO, link_key.as_mut());
        debug_assert!(expanded.is_ok());
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            link_key,
            fingerprint: hex::encode(&digest[..4]),
        }
    }

    /// The launch-link MAC of a session, before truncation.
    fn link_mac(&self, application: ApplicationId, session: SessionId) -> HmacSha256 {
        // HMAC takes keys of any length, so this never fails.
        let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(self.link_key.as_slice()) else {
            unreachable!("HMAC-SHA256 accepts keys of any length")
        };
        mac.update(LINK_MAC_DOMAIN);
        mac.update(application.as_uuid().as_bytes());
        mac.update(session.as_uuid().as_bytes());
        mac
    }

    fn id(&self) -> String {
        format!("{CURRENT}{}", self.fingerprint)
    }
}

/// The configured at-rest keys. `Debug` shows key ids only; the keys are wiped from memory
/// with the cipher state (and the derived link keys) when the keyring is dropped.
pub struct Keyring {
    current: AtRestKey,
    old: Vec<AtRestKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring from the current key and the older keys still to open with, each 32 bytes
    /// in standard base64 (with or without padding; surrounding whitespace ignored).
    ///
    /// ```
    /// use keyring::Keyring;
    /// use ports::SecretSealer;
    /// let k = Keyring::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &[]).unwrap();
    /// assert!(k.key_ids()[0].starts_with("k2-"));
    /// assert!(Keyring::from_base64("c2hvcnQ=", &[]).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// The first unusable key: its position (0 = current) and why.
    pub fn from_base64(current: &str, old: &[&str]) -> Result<Self, (usize, KeyError)> {
        let current = AtRestKey::from_base64(current).map_err(|e| (0, e))?;
        let old = old
            .iter()
            .enumerate()
            .map(|(i, k)| AtRestKey::from_base64(k).map_err(|e| (i + 1, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { current, old })
    }

    /// Checks one key's text without building a keyring (for configuration checks).
    ///
    /// # Errors
    ///
    /// Why the key is unusable.
    pub fn check_key(text: &str) -> Result<(), KeyError> {
        AtRestKey::from_base64(text).map(|_| ())
    }

    /// A keyring with one fresh random key, for in-memory runs and tests: what it seals
    /// cannot be opened after the process exits.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails.
    pub fn generate() -> Self {
        let key = Zeroizing::new(random_bytes::<32>());
        Self {
            current: AtRestKey::from_bytes(&key),
            old: Vec::new(),
        }
    }

    fn by_fingerprint(&self, fingerprint: &str) -> Option<&AtRestKey> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.fingerprint == fingerprint)
    }
}

impl SecretSealer for Keyring {
    fn seal(&self, secret: &SecretString, context: SealContext) -> EncryptedSecret {
        let key_id = self.current.id();
        let nonce = random_bytes::<NONCE_LEN>();
        let aad = associated_data(&key_id, Some(context));
        let Ok(ciphertext) = self.current.cipher.encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.expose_secret().as_bytes(),
                aad: &aad,
            },
        ) else {
            unreachable!("ChaCha20-Poly1305 encrypts any secret shorter than 256 GiB")
        };
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        EncryptedSecret { key_id, sealed }
    }

    fn open(
        &self,
        sealed: &EncryptedSecret,
        context: SealContext,
    ) -> Result<SecretString, SealError> {
        let (fingerprint, bound) = if let Some(f) = sealed.key_id.strip_prefix(CURRENT) {
            (f, Some(context))
        } else if let Some(f) = sealed.key_id.strip_prefix(LEGACY) {
            (f, None)
        } else {
            return Err(self.unknown(sealed));
        };
        let key = self
            .by_fingerprint(fingerprint)
            .ok_or_else(|| self.unknown(sealed))?;
        if sealed.sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.sealed.split_at(NONCE_LEN);
        let aad = associated_data(&sealed.key_id, bound);
        let plaintext = Zeroizing::new(
            key.cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| SealError::Corrupt)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| SealError::Corrupt)?;
        // `to_owned` allocates exactly `len` bytes, so the secret's boxed `str` is this very
        // allocation (no unwiped copy); `plaintext` is wiped on drop.
        Ok(SecretString::from(text.to_owned()))
    }

    fn is_current(&self, sealed: &EncryptedSecret) -> bool {
        sealed.key_id == self.current.id()
    }

    fn key_ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .map(AtRestKey::id)
            .collect()
    }
}

impl LaunchLinks for Keyring {
    fn issue(&self, application: ApplicationId, session: SessionId) -> LaunchToken {
        let tag = self
            .current
            .link_mac(application, session)
            .finalize()
            .into_bytes();
        let mut mac = [0u8; 16];
        mac.copy_from_slice(&tag[..16]);
        LaunchToken::from_parts(application, session, mac)
    }

    fn verify(&self, text: &str) -> Option<(ApplicationId, SessionId)> {
        let (application, session, mac) = LaunchToken::split(text)?;
        // Links issued under an older key still open after a rotation; each comparison is
        // constant-time.
        std::iter::once(&self.current)
            .chain(&self.old)
            .any(|k| {
                k.link_mac(application, session)
                    .verify_truncated_left(&mac)
                    .is_ok()
            })
            .then_some((application, session))
    }
}

impl Keyring {
    fn unknown(&self, sealed: &EncryptedSecret) -> SealError {
        SealError::UnknownKey {
            found: sealed.key_id.clone(),
            configured: self.key_ids(),
        }
    }
}

/// The associated data: the key id, then (current format) the record.
fn associated_data(key_id: &str, context: Option<SealContext>) -> Vec<u8> {
    let mut aad = key_id.as_bytes().to_vec();
    if let Some(c) = context {
        aad.push(0);
        aad.extend_from_slice(&c.associated_data());
    }
    aad
}

/// `N` bytes from the operating system's random source.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Panics only if the operating system's random source fails, which it does not once
    // the system has booted.
    OsRng.unwrap_err().fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests;
