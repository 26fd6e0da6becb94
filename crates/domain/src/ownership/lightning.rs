//! Lightning: a node's `signmessage` (lnd, Core Lightning).
//!
//! The signature is the 65-byte compact recoverable form (header `31 + recovery id`, or
//! `27 + recovery id`, then r ‖ s) over `sha256d("Lightning Signed Message:" ‖ message)`,
//! written in z-base-32. The recovered compressed key must be the payee's node id.

use bitcoin::hashes::{Hash as _, sha256d};
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use bitcoin::secp256k1::{Message, Secp256k1};

use super::{ProofError, ProofMethod};
use crate::lightning::NodeId;

/// What lnd and Core Lightning put before the message they sign.
const PREFIX: &[u8] = b"Lightning Signed Message:";

pub(super) fn verify(
    node: &NodeId,
    message: &str,
    signature: &str,
) -> Result<ProofMethod, ProofError> {
    let bytes: [u8; 65] = zbase32_decode(signature).ok_or(ProofError::Malformed(
        "it is not 65 bytes written in z-base-32 (104 characters)",
    ))?;
    let (&header, compact) = bytes
        .split_first()
        .ok_or(ProofError::Malformed("it is empty"))?;
    let recovery = match header {
        31..=34 => header - 31,
        27..=30 => header - 27,
        _ => return Err(ProofError::Malformed("its header byte is not 27 to 34")),
    };
    let recovery = RecoveryId::from_i32(i32::from(recovery))
        .map_err(|_| ProofError::Malformed("its header byte is not 27 to 34"))?;
    let signature = RecoverableSignature::from_compact(compact, recovery)
        .map_err(|_| ProofError::Malformed("its r and s values are out of range"))?;
    let mut engine = sha256d::Hash::engine();
    bitcoin::hashes::HashEngine::input(&mut engine, PREFIX);
    bitcoin::hashes::HashEngine::input(&mut engine, message.as_bytes());
    let digest = sha256d::Hash::from_engine(engine).to_byte_array();
    let key = Secp256k1::verification_only()
        .recover_ecdsa(&Message::from_digest(digest), &signature)
        .map_err(|_| ProofError::Mismatch)?;
    if key.serialize() == *node.as_bytes() {
        Ok(ProofMethod::LightningSignmessage)
    } else {
        Err(ProofError::Mismatch)
    }
}

/// The z-base-32 alphabet (Zooko's "human-oriented base-32").
const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Decodes exactly `N` bytes of z-base-32 (letters in either case): `ceil(8N / 5)`
/// characters, the unused low bits of the last one zero.
///
/// Hand-written: the only crate (`zbase32`) is LGPL-licensed, and decoding is a table lookup
/// and a bit accumulator.
pub(crate) fn zbase32_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != (N * 8).div_ceil(5) {
        return None;
    }
    let mut out = [0u8; N];
    let mut filled = 0;
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let c = c.to_ascii_lowercase();
        let value = ZBASE32.iter().position(|&z| z == c)?;
        acc = (acc << 5) | u32::try_from(value).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(filled)? = u8::try_from((acc >> bits) & 0xff).ok()?;
            filled += 1;
        }
        acc &= (1 << bits) - 1;
    }
    (filled == N && acc == 0).then_some(out)
}

/// Encodes bytes in z-base-32 (the inverse of [`zbase32_decode`]), for tests.
#[cfg(test)]
pub(crate) fn zbase32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut push = |v: u32| {
        if let Some(&c) = usize::try_from(v & 31).ok().and_then(|i| ZBASE32.get(i)) {
            out.push(char::from(c));
        }
    };
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            push(acc >> bits);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        push(acc << (5 - bits));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zbase32_matches_the_published_examples() {
        // From the z-base-32 specification's examples of whole octets.
        assert_eq!(zbase32_encode(&[0xf0, 0xbf, 0xc7]), "6n9hq");
        assert_eq!(zbase32_encode(&[0xd4, 0x7a, 0x04]), "4t7ye");
        assert_eq!(zbase32_decode::<3>("6n9hq"), Some([0xf0, 0xbf, 0xc7]));
        assert_eq!(zbase32_decode::<3>("4T7YE"), Some([0xd4, 0x7a, 0x04]));
    }

    #[test]
    fn zbase32_round_trips_and_refuses_junk() {
        let bytes: Vec<u8> = (0u8..65).map(|i| i.wrapping_mul(37)).collect();
        let text = zbase32_encode(&bytes);
        assert_eq!(text.len(), 104);
        assert_eq!(zbase32_decode::<65>(&text).map(|b| b.to_vec()), Some(bytes));
        assert!(zbase32_decode::<65>(&text[1..]).is_none());
        assert!(zbase32_decode::<65>(&format!("{}l", &text[1..])).is_none()); // 'l' is not in the alphabet
        assert!(zbase32_decode::<65>(&"é".repeat(52)).is_none());
        // Non-zero unused bits in the last character.
        assert!(zbase32_decode::<3>("6n9hd").is_none());
    }
}
