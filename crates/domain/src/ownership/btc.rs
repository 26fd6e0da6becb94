//! Bitcoin: BIP-322 (simple and full, through the `bip322` crate) and BIP-137 (a lenient
//! path of our own, see [`verify_bip137`]).

use std::str::FromStr;

use base64::Engine as _;
use bitcoin::address::AddressType;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use bitcoin::secp256k1::{self, Message, Secp256k1};
use bitcoin::{Address, ScriptBuf, Transaction, Witness};

use super::{ProofError, ProofMethod, ProofUnavailable, best};

/// Base64 as wallets write it: the standard alphabet, padding optional.
pub(super) const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The single-key bitcoin address types that can sign a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    P2pkh,
    /// A P2SH address, taken as P2SH-P2WPKH (an address cannot tell more).
    P2shP2wpkh,
    P2wpkh,
    P2tr,
}

/// A bitcoin address that a single key signs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BitcoinTarget {
    kind: Kind,
    address: Address,
}

impl BitcoinTarget {
    pub(super) fn parse(text: &str) -> Result<Self, ProofUnavailable> {
        // The address was validated for the configured network when it was stored; only its
        // script matters here.
        let address = Address::from_str(text)
            .map_err(|_| ProofUnavailable::Unrecognised)?
            .assume_checked();
        let kind = match address.address_type() {
            Some(AddressType::P2pkh) => Kind::P2pkh,
            Some(AddressType::P2sh) => Kind::P2shP2wpkh,
            Some(AddressType::P2wpkh) => Kind::P2wpkh,
            Some(AddressType::P2tr) => Kind::P2tr,
            // P2WSH, pay-to-anchor, future segwit versions: scripts, not keys.
            _ => return Err(ProofUnavailable::Script),
        };
        Ok(Self { kind, address })
    }

    pub(super) fn methods(&self) -> &'static [ProofMethod] {
        match self.kind {
            Kind::P2pkh => &[ProofMethod::Bip137],
            Kind::P2shP2wpkh | Kind::P2wpkh => &[ProofMethod::Bip322, ProofMethod::Bip137],
            Kind::P2tr => &[ProofMethod::Bip322],
        }
    }

    pub(super) fn verify(&self, message: &str, signature: &str) -> Result<ProofMethod, ProofError> {
        let (variant, body) = split_variant(signature)?;
        let bytes = BASE64
            .decode(body)
            .map_err(|_| ProofError::Malformed("it is not base64"))?;
        let bip137_shaped = bytes.len() == 65 && (27..=42).contains(&bytes[0]);
        if variant == Variant::Unprefixed && bip137_shaped {
            return match self.kind {
                Kind::P2tr => Err(ProofError::Malformed(
                    "a BIP-137 signature cannot prove a Taproot address; sign with BIP-322",
                )),
                _ => verify_bip137(self, message, &bytes).map(|()| ProofMethod::Bip137),
            };
        }
        if self.kind == Kind::P2pkh {
            return Err(ProofError::Malformed(
                "a legacy (1…) address proves with a 65-byte BIP-137 signature",
            ));
        }
        let mut outcome = Err(ProofError::Malformed(
            "it is neither a BIP-137 signature nor a BIP-322 witness or transaction",
        ));
        if variant != Variant::Full
            && let Some(witness) = decode_witness(&bytes)
        {
            outcome = self.verify_simple(message, witness);
            if outcome.is_ok() {
                return outcome;
            }
        }
        if variant != Variant::Simple
            && let Some(tx) = decode_transaction(&bytes)
        {
            outcome = best(self.verify_full(message, tx), outcome);
        }
        outcome
    }

    fn verify_simple(&self, message: &str, witness: Witness) -> Result<ProofMethod, ProofError> {
        if self.kind == Kind::P2shP2wpkh && witness.len() != 2 {
            // Some other P2SH script's witness (e.g. P2SH-P2WSH multisig): the address is
            // taken as P2SH-P2WPKH, which this is not.
            return Err(ProofError::Mismatch);
        }
        classify(bip322::verify_simple(&self.address, message, witness))
    }

    fn verify_full(&self, message: &str, tx: Transaction) -> Result<ProofMethod, ProofError> {
        if self.kind == Kind::P2shP2wpkh && tx.input.first().is_none_or(|i| i.witness.len() != 2) {
            return Err(ProofError::Mismatch);
        }
        classify(bip322::verify_full(&self.address, message, tx))
    }
}

/// The BIP-322 signature variant named by a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Simple,
    Full,
    Unprefixed,
}

fn split_variant(signature: &str) -> Result<(Variant, &str), ProofError> {
    if let Some(rest) = signature.strip_prefix("smp") {
        Ok((Variant::Simple, rest))
    } else if let Some(rest) = signature.strip_prefix("ful") {
        Ok((Variant::Full, rest))
    } else if signature.starts_with("pof") {
        Err(ProofError::Malformed(
            "BIP-322 proofs of funds are not accepted; sign a simple or full proof",
        ))
    } else {
        Ok((Variant::Unprefixed, signature))
    }
}

/// Maps the `bip322` crate's verdict: a verification that ran and failed (wrong key, wrong
/// message) is a mismatch; a signature that could not be interpreted is malformed.
fn classify(
    result: Result<bip322::Verification, bip322::Error>,
) -> Result<ProofMethod, ProofError> {
    use bip322::Error as E;
    match result {
        Ok(bip322::Verification::Valid { .. }) => Ok(ProofMethod::Bip322),
        Ok(bip322::Verification::Inconclusive) => Err(ProofError::Malformed(
            "it is a BIP-322 transaction of a version this verifier does not interpret",
        )),
        Err(E::SignatureInvalid {
            source: secp256k1::Error::IncorrectSignature,
        })
        | Err(E::PublicKeyMismatch)
        | Err(E::ToSignInvalid) => Err(ProofError::Mismatch),
        Err(E::SignatureInvalid { .. }) => Err(ProofError::Malformed(
            "its signature bytes are not a valid signature",
        )),
        Err(_) => Err(ProofError::Malformed(
            "it is not a BIP-322 signature for this address type",
        )),
    }
}

/// BIP-137 ("Bitcoin Signed Message") in every header style: Bitcoin Core (27–34), Trezor
/// (35–38 P2SH-P2WPKH, 39–42 P2WPKH) and Electrum (31–34 for segwit addresses too).
///
/// Hand-written because the published verifiers (`bip322::verify_legacy`,
/// `bitcoin::sign_message::MessageSignature::is_signed_by_address`) accept P2PKH only and
/// refuse the segwit headers; the cryptography stays in `secp256k1` and `bitcoin`: the key is
/// recovered over `sha256d("\x18Bitcoin Signed Message:\n" ‖ varint(len) ‖ message)` and the
/// address of the counterparty's own type is derived from it. The header says whether the
/// key is compressed (27–30: uncompressed, which only P2PKH can use) and its recovery id
/// (`(header - 27) % 4`); which of the segwit styles it claims does not matter.
fn verify_bip137(target: &BitcoinTarget, message: &str, bytes: &[u8]) -> Result<(), ProofError> {
    let (&header, compact) = bytes
        .split_first()
        .ok_or(ProofError::Malformed("it is empty"))?;
    let recovery = header
        .checked_sub(27)
        .filter(|h| *h < 16)
        .and_then(|h| RecoveryId::from_i32(i32::from(h % 4)).ok())
        .ok_or(ProofError::Malformed("its header byte is not 27 to 42"))?;
    let signature = RecoverableSignature::from_compact(compact, recovery)
        .map_err(|_| ProofError::Malformed("its r and s values are out of range"))?;
    let digest = bitcoin::sign_message::signed_msg_hash(message);
    let key = Secp256k1::verification_only()
        .recover_ecdsa(&Message::from_digest(digest.to_byte_array()), &signature)
        .map_err(|_| ProofError::Mismatch)?;
    let key = bitcoin::PublicKey {
        compressed: header >= 31,
        inner: key,
    };
    let derived = match target.kind {
        Kind::P2pkh => ScriptBuf::new_p2pkh(&key.pubkey_hash()),
        Kind::P2wpkh | Kind::P2shP2wpkh => {
            let hash = key.wpubkey_hash().map_err(|_| ProofError::Mismatch)?;
            let p2wpkh = ScriptBuf::new_p2wpkh(&hash);
            if target.kind == Kind::P2wpkh {
                p2wpkh
            } else {
                ScriptBuf::new_p2sh(&p2wpkh.script_hash())
            }
        }
        Kind::P2tr => return Err(ProofError::Mismatch),
    };
    if derived == target.address.script_pubkey() {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// A BIP-322 simple signature: a consensus-encoded witness stack, all bytes used.
fn decode_witness(bytes: &[u8]) -> Option<Witness> {
    let mut reader = Reader(bytes);
    reader.witness()?;
    if !reader.0.is_empty() {
        return None;
    }
    bitcoin::consensus::deserialize(bytes).ok()
}

/// A BIP-322 full signature: a consensus-encoded `to_sign` transaction, all bytes used.
fn decode_transaction(bytes: &[u8]) -> Option<Transaction> {
    if !transaction_fits(bytes) {
        return None;
    }
    bitcoin::consensus::deserialize(bytes).ok()
}

/// Whether every count and length prefix of a transaction fits in the bytes that follow it.
///
/// `bitcoin`'s decoder trusts a length prefix up to its 4 MB limit when it reserves memory, so
/// a 1 KiB signature could make it reserve megabytes; this walk over the same layout (no
/// crate offers it) refuses such input first, so decoding reserves no more than a small
/// multiple of the input.
fn transaction_fits(bytes: &[u8]) -> bool {
    let mut r = Reader(bytes);
    walk_transaction(&mut r).is_some() && r.0.is_empty()
}

fn walk_transaction(r: &mut Reader<'_>) -> Option<()> {
    r.skip(4)?; // version
    let segwit = r.0.first() == Some(&0) && r.0.get(1) == Some(&1);
    if segwit {
        r.skip(2)?;
    }
    let inputs = r.count(41)?;
    for _ in 0..inputs {
        r.skip(36)?; // previous output
        let script = r.count(1)?;
        r.skip(script)?;
        r.skip(4)?; // sequence
    }
    let outputs = r.count(9)?;
    for _ in 0..outputs {
        r.skip(8)?; // value
        let script = r.count(1)?;
        r.skip(script)?;
    }
    if segwit {
        for _ in 0..inputs {
            r.witness()?;
        }
    }
    r.skip(4) // lock time
}

/// A cursor over consensus-encoded bytes that refuses any length the rest cannot hold.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn le(&mut self, n: usize) -> Option<u64> {
        let head = self.0.get(..n)?;
        self.0 = self.0.get(n..)?;
        Some(
            head.iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    /// A compact-size count of items of at least `min_item` bytes each, refused when the
    /// remaining bytes cannot hold that many.
    fn count(&mut self, min_item: usize) -> Option<usize> {
        let n = match self.byte()? {
            0xfd => self.le(2)?,
            0xfe => self.le(4)?,
            0xff => self.le(8)?,
            b => u64::from(b),
        };
        let n = usize::try_from(n).ok()?;
        (n.checked_mul(min_item)? <= self.0.len()).then_some(n)
    }

    /// A witness stack: a count of items, each a length-prefixed byte string.
    fn witness(&mut self) -> Option<()> {
        let items = self.count(1)?;
        for _ in 0..items {
            let len = self.count(1)?;
            self.skip(len)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixes_beyond_the_input_are_refused_before_decoding() {
        // One witness item claiming 4 MB.
        assert!(decode_witness(&[0x01, 0xfe, 0x00, 0x00, 0x40, 0x00, 0xaa]).is_none());
        // A count of 2^32 items.
        assert!(decode_witness(&[0xff, 0, 0, 0, 0, 1, 0, 0, 0]).is_none());
        // A transaction claiming 0xfd00 inputs in a few bytes.
        assert!(!transaction_fits(&[2, 0, 0, 0, 0xfd, 0x00, 0xfd, 0, 0]));
        // Well-formed: an empty witness stack, and two empty items.
        assert!(decode_witness(&[0x00]).is_some());
        assert_eq!(
            decode_witness(&[0x02, 0x00, 0x00]).map(|w| w.len()),
            Some(2)
        );
        // Trailing bytes are not a witness.
        assert!(decode_witness(&[0x00, 0x00]).is_none());
    }

    #[test]
    fn the_walk_accepts_what_bitcoin_encodes() {
        let tx = Transaction {
            version: bitcoin::transaction::Version(0),
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn {
                witness: Witness::from_slice(&[vec![1u8; 72], vec![2u8; 33]]),
                ..Default::default()
            }],
            output: vec![bitcoin::TxOut {
                value: bitcoin::Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(vec![0x6a]),
            }],
        };
        let bytes = bitcoin::consensus::serialize(&tx);
        assert!(transaction_fits(&bytes));
        assert_eq!(decode_transaction(&bytes), Some(tx.clone()));
        for cut in 0..bytes.len() {
            assert!(decode_transaction(&bytes[..cut]).is_none(), "{cut}");
        }
        let legacy = Transaction {
            input: vec![bitcoin::TxIn::default()],
            ..tx
        };
        let bytes = bitcoin::consensus::serialize(&legacy);
        assert_eq!(decode_transaction(&bytes), Some(legacy));
    }
}
