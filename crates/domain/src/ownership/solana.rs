//! Solana: ed25519 over the message, or over an off-chain message envelope of it.
//!
//! The proof carries only the signature, so only envelopes that the message and the
//! counterparty fully determine can be checked (see [`envelopes`]). The envelope layouts are
//! written here because no dependency-light crate provides them (`solana-offchain-message`
//! brings the Solana SDK); the signature check is `ed25519-dalek`'s `verify_strict`.

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};

use super::btc::BASE64;
use super::{ProofError, ProofMethod, ProofUnavailable};

/// The signing domain that starts every off-chain message.
pub(crate) const SIGNING_DOMAIN: &[u8; 16] = b"\xffsolana offchain";

/// A Solana address that is a usable ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SolanaTarget {
    key: VerifyingKey,
}

impl SolanaTarget {
    pub(super) fn parse(text: &str) -> Result<Self, ProofUnavailable> {
        let mut bytes = [0u8; 32];
        match bs58::decode(text).onto(&mut bytes) {
            Ok(32) => {}
            _ => return Err(ProofUnavailable::Unrecognised),
        }
        // Program-derived addresses are off the curve, and a small-order key is no one's:
        // neither can make a signature that strict verification accepts.
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| ProofUnavailable::NotAKey)?;
        if key.is_weak() {
            return Err(ProofUnavailable::NotAKey);
        }
        Ok(Self { key })
    }

    pub(super) fn verify(&self, message: &str, signature: &str) -> Result<ProofMethod, ProofError> {
        let candidates = decode_signature(signature)?;
        for signature in candidates.iter().flatten() {
            if self
                .key
                .verify_strict(message.as_bytes(), signature)
                .is_ok()
            {
                return Ok(ProofMethod::Ed25519);
            }
            let signer = self.key.as_bytes();
            for envelope in envelopes(message.as_bytes(), signer).iter().flatten() {
                if self.key.verify_strict(envelope, signature).is_ok() {
                    return Ok(ProofMethod::SolanaOffchainMessage);
                }
            }
        }
        Err(ProofError::Mismatch)
    }
}

/// The 64-byte signature as base58 (Solana's usual encoding) or base64: both readings are
/// tried when the text is valid in both alphabets.
fn decode_signature(signature: &str) -> Result<[Option<Signature>; 2], ProofError> {
    let mut base58 = [0u8; 64];
    let from_base58 = match bs58::decode(signature).onto(&mut base58) {
        Ok(64) => Some(Signature::from_bytes(&base58)),
        _ => None,
    };
    // 64 bytes are at most 88 base64 characters; longer text is not decoded at all.
    let from_base64 = (signature.len() <= 88)
        .then(|| BASE64.decode(signature).ok())
        .flatten()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes.as_slice()).ok())
        .map(|bytes| Signature::from_bytes(&bytes))
        .filter(|s| Some(s) != from_base58.as_ref());
    if from_base58.is_none() && from_base64.is_none() {
        return Err(ProofError::Malformed(
            "it is not a 64-byte signature in base58 or base64",
        ));
    }
    Ok([from_base58, from_base64])
}

/// Whether `message` is valid for message format 0 (restricted ASCII) of a version-0
/// header: bytes 0x20 to 0x7e only.
fn restricted_ascii(message: &[u8]) -> bool {
    message.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// The off-chain message envelopes of `message` that a verifier holding only the message
/// and the signer's key can rebuild, in the order they are tried:
///
/// 1. the earlier layout (solana-sdk `OffchainMessage` v0, `solana sign-offchain-message`
///    before the signer list, older Ledger apps): signing domain ‖ version 0 ‖ format 0 ‖
///    length (u16 LE) ‖ message — format 0 only when the message is restricted ASCII;
/// 2. the same with format 1 (limited UTF-8), which every message passed here satisfies;
/// 3. Anza's header version 0: signing domain ‖ version 0 ‖ application domain ‖ format 0 ‖
///    signer count 1 ‖ the signer's key ‖ length (u16 LE) ‖ message, with the application
///    domain 32 zero bytes (what the Solana CLI and Ledger sign by default).
///
/// An Anza envelope with another application domain or other signers cannot be rebuilt, since
/// a proof does not carry them. An empty message has no envelope (the layouts forbid a zero
/// length).
fn envelopes(message: &[u8], signer: &[u8; 32]) -> [Option<Vec<u8>>; 3] {
    let Ok(len) = u16::try_from(message.len()) else {
        return [None, None, None];
    };
    if message.is_empty() {
        return [None, None, None];
    }
    let len = len.to_le_bytes();
    let earlier = |format: u8| {
        let mut e = Vec::with_capacity(20 + message.len());
        e.extend_from_slice(SIGNING_DOMAIN);
        e.extend_from_slice(&[0, format]);
        e.extend_from_slice(&len);
        e.extend_from_slice(message);
        e
    };
    let anza = || {
        let mut e = Vec::with_capacity(85 + message.len());
        e.extend_from_slice(SIGNING_DOMAIN);
        e.push(0); // header version
        e.extend_from_slice(&[0u8; 32]); // application domain
        e.push(0); // format: restricted ASCII
        e.push(1); // signer count
        e.extend_from_slice(signer);
        e.extend_from_slice(&len);
        e.extend_from_slice(message);
        e
    };
    let ascii = restricted_ascii(message);
    [
        ascii.then(|| earlier(0)),
        std::str::from_utf8(message).is_ok().then(|| earlier(1)),
        ascii.then(anza),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_have_the_published_layouts() {
        let signer = [7u8; 32];
        let [a, b, c] = envelopes(b"Hi", &signer);
        let a = a.unwrap();
        assert_eq!(&a[..16], b"\xffsolana offchain");
        assert_eq!(&a[16..], &[0, 0, 2, 0, b'H', b'i']);
        assert_eq!(&b.unwrap()[16..], &[0, 1, 2, 0, b'H', b'i']);
        let c = c.unwrap();
        assert_eq!(c.len(), 16 + 1 + 32 + 1 + 1 + 32 + 2 + 2);
        assert_eq!(c[16], 0);
        assert_eq!(&c[17..49], &[0u8; 32]);
        assert_eq!(&c[49..51], &[0, 1]);
        assert_eq!(&c[51..83], &signer);
        assert_eq!(&c[83..], &[2, 0, b'H', b'i']);
        // Not restricted ASCII: only the UTF-8 format; nothing for an empty message.
        let [a, b, c] = envelopes("é\n".as_bytes(), &signer);
        assert!(a.is_none() && b.is_some() && c.is_none());
        assert_eq!(envelopes(b"", &signer), [None, None, None]);
    }

    #[test]
    fn off_curve_and_small_order_addresses_cannot_sign() {
        // The system program: 32 zero bytes, a small-order point.
        assert_eq!(
            SolanaTarget::parse("11111111111111111111111111111111"),
            Err(ProofUnavailable::NotAKey)
        );
        // Bytes that are no point on the curve, as a program-derived address's are.
        let off_curve = (0u8..=255)
            .map(|i| [i; 32])
            .find(|b| VerifyingKey::from_bytes(b).is_err())
            .unwrap();
        assert_eq!(
            SolanaTarget::parse(&bs58::encode(off_curve).into_string()),
            Err(ProofUnavailable::NotAKey)
        );
    }
}
