//! EIP-191 `personal_sign` (ETH, POLYGON, BSC) and TronWeb `signMessageV2` (TRON): the same
//! 65-byte recoverable secp256k1 signature over a keccak-256 of a prefixed message.
//!
//! Hand-written on `secp256k1` (already in the tree through `bitcoin`) and `sha3`: the whole
//! scheme is a prefix, a hash and a key recovery, while the crates that package it
//! (`alloy-primitives`, `ethers`) bring some sixty crates into a pure library.

use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use bitcoin::secp256k1::{Message, Secp256k1};
use sha3::{Digest, Keccak256};

use super::{ProofError, ProofMethod, ProofUnavailable};

/// The 20 bytes of an `0x` + 40 hex address (validated when it was stored).
pub(super) fn parse_evm_address(text: &str) -> Result<[u8; 20], ProofUnavailable> {
    let mut bytes = [0u8; 20];
    let hex = text
        .strip_prefix("0x")
        .ok_or(ProofUnavailable::Unrecognised)?;
    hex::decode_to_slice(hex, &mut bytes).map_err(|_| ProofUnavailable::Unrecognised)?;
    Ok(bytes)
}

/// The 20 bytes after the 0x41 prefix of a base58check TRON address.
pub(super) fn parse_tron_address(text: &str) -> Result<[u8; 20], ProofUnavailable> {
    let payload = bs58::decode(text)
        .with_check(None)
        .into_vec()
        .map_err(|_| ProofUnavailable::Unrecognised)?;
    match payload.split_first() {
        Some((0x41, rest)) => rest.try_into().map_err(|_| ProofUnavailable::Unrecognised),
        _ => Err(ProofUnavailable::Unrecognised),
    }
}

/// `keccak256("\x19Ethereum Signed Message:\n" ‖ decimal byte length ‖ message)`.
pub(crate) fn eip191_hash(message: &[u8]) -> [u8; 32] {
    prefixed_keccak(b"\x19Ethereum Signed Message:\n", message)
}

/// `keccak256("\x19TRON Signed Message:\n" ‖ decimal byte length ‖ message)`: TronWeb's
/// `signMessageV2` hash.
pub(crate) fn tron_v2_hash(message: &[u8]) -> [u8; 32] {
    prefixed_keccak(b"\x19TRON Signed Message:\n", message)
}

fn prefixed_keccak(prefix: &[u8], message: &[u8]) -> [u8; 32] {
    Keccak256::new()
        .chain_update(prefix)
        .chain_update(message.len().to_string())
        .chain_update(message)
        .finalize()
        .into()
}

/// The 20-byte address of the key that signed `hash`: the last 20 bytes of the keccak-256 of
/// its uncompressed encoding (without the 0x04 tag).
fn recover_address(hash: [u8; 32], signature: &str) -> Result<[u8; 20], ProofError> {
    let bytes = decode_hex65(signature)?;
    let (compact, v) = bytes.split_at(64);
    let recovery = match *v {
        [v @ (27 | 28)] => v - 27,
        [v @ (0 | 1)] => v,
        _ => {
            return Err(ProofError::Malformed(
                "its last byte (v) is not 27, 28, 0 or 1",
            ));
        }
    };
    let recovery = RecoveryId::from_i32(i32::from(recovery))
        .map_err(|_| ProofError::Malformed("its last byte (v) is not 27, 28, 0 or 1"))?;
    let signature = RecoverableSignature::from_compact(compact, recovery)
        .map_err(|_| ProofError::Malformed("its r and s values are out of range"))?;
    let key = Secp256k1::verification_only()
        .recover_ecdsa(&Message::from_digest(hash), &signature)
        .map_err(|_| ProofError::Mismatch)?;
    let uncompressed = key.serialize_uncompressed();
    let digest = Keccak256::digest(uncompressed.get(1..).unwrap_or_default());
    let mut address = [0u8; 20];
    address.copy_from_slice(digest.get(12..).unwrap_or_default());
    Ok(address)
}

/// 65 bytes as 130 hex digits, `0x` optional.
fn decode_hex65(signature: &str) -> Result<[u8; 65], ProofError> {
    let hex = signature
        .strip_prefix("0x")
        .or_else(|| signature.strip_prefix("0X"))
        .unwrap_or(signature);
    let mut bytes = [0u8; 65];
    if hex.len() != 130 {
        return Err(ProofError::Malformed(
            "it is not 65 bytes written as 130 hexadecimal digits",
        ));
    }
    hex::decode_to_slice(hex, &mut bytes)
        .map_err(|_| ProofError::Malformed("it contains characters that are not hexadecimal"))?;
    Ok(bytes)
}

pub(super) fn verify_eip191(
    address: &[u8; 20],
    message: &str,
    signature: &str,
) -> Result<ProofMethod, ProofError> {
    // The comparison is of bytes, so the address's letter case (EIP-55) plays no part.
    if recover_address(eip191_hash(message.as_bytes()), signature)? == *address {
        Ok(ProofMethod::Eip191)
    } else {
        Err(ProofError::Mismatch)
    }
}

pub(super) fn verify_tron(
    address: &[u8; 20],
    message: &str,
    signature: &str,
) -> Result<ProofMethod, ProofError> {
    if recover_address(tron_v2_hash(message.as_bytes()), signature)? == *address {
        Ok(ProofMethod::TronSignMessageV2)
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip191_hash_of_hello_world_is_the_published_value() {
        assert_eq!(
            hex::encode(eip191_hash(b"hello world")),
            "d9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68"
        );
    }

    #[test]
    fn signatures_must_be_130_hex_digits_with_a_known_v() {
        let address = [0u8; 20];
        for (sig, gist) in [
            ("", "130 hexadecimal"),
            ("0x", "130 hexadecimal"),
            (&"ab".repeat(64), "130 hexadecimal"),
            (&format!("0x{}", "zz".repeat(65)), "not hexadecimal"),
            (&format!("0x{}1d", "11".repeat(64)), "(v)"),
            (&format!("0x{}02", "11".repeat(64)), "(v)"),
            (&format!("{}ff", "ff".repeat(64)), "(v)"),
            (&format!("0x{}1b", "ff".repeat(64)), "out of range"),
        ] {
            match verify_eip191(&address, "m", sig) {
                Err(ProofError::Malformed(reason)) => {
                    assert!(reason.contains(gist), "{sig}: {reason}")
                }
                other => panic!("{sig}: {other:?}"),
            }
        }
    }
}
