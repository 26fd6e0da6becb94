//! Wallet ownership proofs: what a counterparty can sign, and the verification of a signature
//! over a session's challenge.
//!
//! A proof is checked against a [`ProofTarget`], built from the session's counterparty
//! ([`ProofTarget::for_address`], [`ProofTarget::for_node`]): the target knows which
//! [`ProofMethod`]s the counterparty can use, and [`verify`] recognises the method from the
//! signature itself. Verification is pure, bounded ([`MAX_SIGNATURE_LEN`],
//! [`MAX_MESSAGE_LEN`]) and never panics; a stored proof (target, message, signature)
//! verifies again with the same function.
//!
//! | counterparty | methods |
//! |---|---|
//! | BTC P2WPKH, P2SH (taken as P2SH-P2WPKH) | [`ProofMethod::Bip322`] (simple or full), [`ProofMethod::Bip137`] |
//! | BTC P2TR | [`ProofMethod::Bip322`] |
//! | BTC P2PKH | [`ProofMethod::Bip137`] |
//! | ETH, POLYGON, BSC | [`ProofMethod::Eip191`] |
//! | TRON | [`ProofMethod::TronSignMessageV2`] |
//! | SOL | [`ProofMethod::Ed25519`], [`ProofMethod::SolanaOffchainMessage`] |
//! | a bolt11 invoice's payee | [`ProofMethod::LightningSignmessage`] |
//!
//! `docs/ownership-proofs.md` lists, per method, the exact bytes signed and the encodings
//! accepted.

mod btc;
mod challenge;
mod evm;
mod lightning;
mod solana;

use std::fmt;

use crate::address::CounterpartyAddress;
use crate::error::{ErrorCode, RuleViolation};
use crate::ledger::NetworkFamily;
use crate::lightning::NodeId;
use crate::scope::Counterparty;

pub use challenge::{Challenge, ChallengeError, ChallengeNonce};

/// The longest signature text considered at all (after nothing: the raw input). The largest
/// accepted form, a BIP-322 full transaction of a P2SH-P2WPKH spend, is under 400 characters.
pub const MAX_SIGNATURE_LEN: usize = 2048;

/// The longest message a proof can be over: a challenge is at most this many bytes (what
/// hardware wallets sign).
pub const MAX_MESSAGE_LEN: usize = 240;

/// How an ownership proof was made.
///
/// ```
/// use domain::ProofMethod;
/// assert_eq!(ProofMethod::TronSignMessageV2.as_str(), "TRON_SIGN_MESSAGE_V2");
/// assert_eq!(ProofMethod::parse("BIP322"), Some(ProofMethod::Bip322));
/// assert_eq!(ProofMethod::parse("bip322"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProofMethod {
    /// BIP-322 generic signed message, simple or full format (bitcoin segwit addresses).
    Bip322,
    /// BIP-137 / "Bitcoin Signed Message" recoverable signature (bitcoin P2PKH and P2WPKH,
    /// P2SH-P2WPKH), in any header style.
    Bip137,
    /// EIP-191 `personal_sign` (EVM networks).
    Eip191,
    /// TronWeb `signMessageV2` (TRON).
    TronSignMessageV2,
    /// ed25519 over the message bytes (Solana wallets' `signMessage`).
    Ed25519,
    /// ed25519 over a Solana off-chain message envelope of the message.
    SolanaOffchainMessage,
    /// A Lightning node's `signmessage` (lnd, Core Lightning).
    LightningSignmessage,
}

impl ProofMethod {
    /// Every method, in declaration order.
    pub const ALL: [ProofMethod; 7] = [
        ProofMethod::Bip322,
        ProofMethod::Bip137,
        ProofMethod::Eip191,
        ProofMethod::TronSignMessageV2,
        ProofMethod::Ed25519,
        ProofMethod::SolanaOffchainMessage,
        ProofMethod::LightningSignmessage,
    ];

    /// The stable name shown in challenges and recorded with a proof.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProofMethod::Bip322 => "BIP322",
            ProofMethod::Bip137 => "BIP137",
            ProofMethod::Eip191 => "EIP191",
            ProofMethod::TronSignMessageV2 => "TRON_SIGN_MESSAGE_V2",
            ProofMethod::Ed25519 => "ED25519",
            ProofMethod::SolanaOffchainMessage => "SOLANA_OFFCHAIN_MESSAGE",
            ProofMethod::LightningSignmessage => "LIGHTNING_SIGNMESSAGE",
        }
    }

    /// Parses the stable name (exact spelling, as stored).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for ProofMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a proof is checked against: a counterparty that can sign a message.
///
/// ```
/// use domain::*;
/// let btc = BitcoinNetwork::Mainnet;
/// let a = CounterpartyAddress::parse(Network::Btc, "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l", btc).unwrap();
/// let target = ProofTarget::for_address(&a).unwrap();
/// assert_eq!(target.methods(), &[ProofMethod::Bip322, ProofMethod::Bip137]);
/// assert_eq!(target.address_text(), "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l");
///
/// // A P2WSH script cannot sign a message.
/// let p2wsh = CounterpartyAddress::parse(
///     Network::Btc, "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", btc).unwrap();
/// assert_eq!(ProofTarget::for_address(&p2wsh).unwrap_err().code(), ErrorCode::OwnershipProofUnavailable);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofTarget {
    kind: TargetKind,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TargetKind {
    Bitcoin(btc::BitcoinTarget),
    Evm([u8; 20]),
    Tron([u8; 20]),
    Solana(solana::SolanaTarget),
    Lightning(NodeId),
}

/// Why a counterparty cannot prove ownership by signing a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofUnavailable {
    /// A Lightning payment known only by its hash: no key is named. Creating the session
    /// with the invoice instead names the payee.
    #[error(
        "a bare payment hash names no key that could sign; create the session with the invoice instead"
    )]
    PaymentHashOnly,
    /// A script address (P2WSH, or a segwit version without a single-key spend) that no
    /// single key signs for.
    #[error("this address is a script (multisig or contract), which cannot sign a message")]
    Script,
    /// A Solana address that is no usable ed25519 public key (a program-derived address).
    #[error("this Solana address is not a public key that can sign (a program-derived address)")]
    NotAKey,
    /// An address the verifier cannot read as any signing type.
    #[error("this address cannot be checked for a signature")]
    Unrecognised,
}

impl RuleViolation for ProofUnavailable {
    fn code(&self) -> ErrorCode {
        ErrorCode::OwnershipProofUnavailable
    }
}

/// Why a signature does not prove ownership.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Not decodable as any signature form the counterparty can make.
    #[error("the signature cannot be read: {0}")]
    Malformed(&'static str),
    /// Well formed, but not made by this counterparty over this message (another key,
    /// another message — another session's challenge included — or a message longer than
    /// [`MAX_MESSAGE_LEN`], which no challenge is).
    #[error("the signature was not made by this address over this challenge")]
    Mismatch,
}

impl RuleViolation for ProofError {
    fn code(&self) -> ErrorCode {
        match self {
            ProofError::Malformed(_) => ErrorCode::SignatureMalformed,
            ProofError::Mismatch => ErrorCode::SignatureMismatch,
        }
    }
}

impl ProofTarget {
    /// The target for an on-chain counterparty address.
    ///
    /// # Errors
    /// [`ProofUnavailable::Script`] for a P2WSH address or a segwit version other than 0 and
    /// 1 (P2SH addresses are taken as P2SH-P2WPKH: an address cannot tell more);
    /// [`ProofUnavailable::NotAKey`] for a Solana address that is no usable ed25519 key.
    pub fn for_address(address: &CounterpartyAddress) -> Result<Self, ProofUnavailable> {
        let text = address.as_str();
        let kind = match address.network().family() {
            NetworkFamily::Bitcoin => TargetKind::Bitcoin(btc::BitcoinTarget::parse(text)?),
            NetworkFamily::Evm => TargetKind::Evm(evm::parse_evm_address(text)?),
            NetworkFamily::Tron => TargetKind::Tron(evm::parse_tron_address(text)?),
            NetworkFamily::Solana => TargetKind::Solana(solana::SolanaTarget::parse(text)?),
        };
        Ok(Self {
            kind,
            text: text.to_string(),
        })
    }

    /// The target for a Lightning node (a bolt11 invoice's payee).
    pub fn for_node(node: NodeId) -> Self {
        Self {
            kind: TargetKind::Lightning(node),
            text: node.to_string(),
        }
    }

    /// The target for a session's counterparty: its address, or the payee of its invoice
    /// ([`crate::InvoiceDetails::payee`]).
    ///
    /// # Errors
    /// As [`ProofTarget::for_address`]; [`ProofUnavailable::PaymentHashOnly`] for a Lightning
    /// counterparty without a known payee (a bare payment hash).
    pub fn for_counterparty(counterparty: &Counterparty) -> Result<Self, ProofUnavailable> {
        match counterparty {
            Counterparty::Address(a) => Self::for_address(a),
            Counterparty::Lightning(payment) => match payment.invoice.and_then(|i| i.payee) {
                Some(node) => Ok(Self::for_node(node)),
                None => Err(ProofUnavailable::PaymentHashOnly),
            },
        }
    }

    /// What the counterparty can sign with, in the order a challenge lists them.
    pub fn methods(&self) -> &'static [ProofMethod] {
        match &self.kind {
            TargetKind::Bitcoin(b) => b.methods(),
            TargetKind::Evm(_) => &[ProofMethod::Eip191],
            TargetKind::Tron(_) => &[ProofMethod::TronSignMessageV2],
            TargetKind::Solana(_) => &[ProofMethod::Ed25519, ProofMethod::SolanaOffchainMessage],
            TargetKind::Lightning(_) => &[ProofMethod::LightningSignmessage],
        }
    }

    /// The `<address>` of the challenge: the address as stored, or the node id in hex.
    pub fn address_text(&self) -> &str {
        &self.text
    }
}

/// Verifies that `signature` was made by `target` over exactly `message`, and says how.
///
/// The signature is trimmed of surrounding whitespace (a pasted signature often ends with a
/// newline); everything else must be exact.
///
/// # Errors
/// [`ProofError::Malformed`] when the signature is no form the target can make (wrong
/// encoding, length, header; longer than [`MAX_SIGNATURE_LEN`]); [`ProofError::Mismatch`]
/// when it is well formed but not by this counterparty over this message.
///
/// ```
/// use domain::*;
/// let a = CounterpartyAddress::parse(
///     Network::Btc, "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l", BitcoinNetwork::Mainnet).unwrap();
/// let target = ProofTarget::for_address(&a).unwrap();
/// // The BIP-322 test vector for "Hello World".
/// let sig = "AkcwRAIgZRfIY3p7/DoVTty6YZbWS71bc5Vct9p9Fia83eRmw2QCICK/ENGfwLtptFluMGs2KsqoNSk89pO7F29zJLUx9a/sASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI=";
/// assert_eq!(verify(&target, "Hello World", sig), Ok(ProofMethod::Bip322));
/// assert_eq!(verify(&target, "Hello World!", sig), Err(ProofError::Mismatch));
/// assert_eq!(verify(&target, "Hello World", "not a signature").unwrap_err().code(), ErrorCode::SignatureMalformed);
/// ```
pub fn verify(
    target: &ProofTarget,
    message: &str,
    signature: &str,
) -> Result<ProofMethod, ProofError> {
    if signature.len() > MAX_SIGNATURE_LEN {
        return Err(ProofError::Malformed("it is far longer than any signature"));
    }
    let signature = signature.trim_ascii();
    if signature.is_empty() {
        return Err(ProofError::Malformed("it is empty"));
    }
    if message.len() > MAX_MESSAGE_LEN {
        // No challenge is this long, so nothing signed over it proves anything; refused
        // before any hashing, which keeps verification bounded whatever the caller passes.
        return Err(ProofError::Mismatch);
    }
    match &target.kind {
        TargetKind::Bitcoin(b) => b.verify(message, signature),
        TargetKind::Evm(address) => evm::verify_eip191(address, message, signature),
        TargetKind::Tron(address) => evm::verify_tron(address, message, signature),
        TargetKind::Solana(key) => key.verify(message, signature),
        TargetKind::Lightning(node) => lightning::verify(node, message, signature),
    }
}

/// Of two attempts at reading one signature, the more telling outcome: a success, else a
/// mismatch (it was readable), else the first malformed reason.
fn best(
    a: Result<ProofMethod, ProofError>,
    b: Result<ProofMethod, ProofError>,
) -> Result<ProofMethod, ProofError> {
    match (a, b) {
        (Ok(m), _) | (_, Ok(m)) => Ok(m),
        (Err(ProofError::Mismatch), _) | (_, Err(ProofError::Mismatch)) => {
            Err(ProofError::Mismatch)
        }
        (Err(e), _) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{BitcoinNetwork, Network};
    use crate::lightning::PaymentHash;
    use crate::scope::LightningPayment;

    #[test]
    fn method_names_round_trip() {
        for m in ProofMethod::ALL {
            assert_eq!(ProofMethod::parse(m.as_str()), Some(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(ProofMethod::parse("ed25519"), None);
    }

    #[test]
    fn no_message_longer_than_a_challenge_is_verified() {
        let a = CounterpartyAddress::parse(
            Network::Btc,
            "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l",
            BitcoinNetwork::Mainnet,
        )
        .unwrap();
        let t = ProofTarget::for_address(&a).unwrap();
        let long = "x".repeat(MAX_MESSAGE_LEN + 1);
        assert_eq!(verify(&t, &long, "AAAA"), Err(ProofError::Mismatch));
        assert_eq!(
            verify(&t, "m", &"A".repeat(MAX_SIGNATURE_LEN + 1)),
            Err(ProofError::Malformed("it is far longer than any signature"))
        );
        assert_eq!(
            verify(&t, "m", " \n"),
            Err(ProofError::Malformed("it is empty"))
        );
    }

    #[test]
    fn counterparties_give_their_targets() {
        let node =
            NodeId::parse("03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad")
                .unwrap();
        let details = |payee| crate::InvoiceDetails {
            created_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            expires_at: chrono::DateTime::from_timestamp(1_800_003_600, 0).unwrap(),
            amount_msat: None,
            payee,
        };
        let invoice = Counterparty::Lightning(LightningPayment {
            payment_hash: PaymentHash::from_bytes([7; 32]),
            invoice: Some(details(Some(node))),
        });
        let t = ProofTarget::for_counterparty(&invoice).unwrap();
        assert_eq!(t.methods(), [ProofMethod::LightningSignmessage]);
        assert_eq!(t.address_text(), node.to_string());
        for payment in [
            Counterparty::Lightning(LightningPayment {
                payment_hash: PaymentHash::from_bytes([7; 32]),
                invoice: None,
            }),
            Counterparty::Lightning(LightningPayment {
                payment_hash: PaymentHash::from_bytes([7; 32]),
                invoice: Some(details(None)),
            }),
        ] {
            assert_eq!(
                ProofTarget::for_counterparty(&payment).unwrap_err(),
                ProofUnavailable::PaymentHashOnly
            );
        }
        let e = ProofTarget::for_counterparty(&Counterparty::Lightning(LightningPayment {
            payment_hash: PaymentHash::from_bytes([7; 32]),
            invoice: None,
        }))
        .unwrap_err();
        assert_eq!(e, ProofUnavailable::PaymentHashOnly);
        assert_eq!(e.code(), ErrorCode::OwnershipProofUnavailable);
        for (network, address, methods) in [
            (
                Network::Eth,
                "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359",
                &[ProofMethod::Eip191][..],
            ),
            (
                Network::Tron,
                "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
                &[ProofMethod::TronSignMessageV2],
            ),
            (
                Network::Sol,
                "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
                &[ProofMethod::Ed25519, ProofMethod::SolanaOffchainMessage],
            ),
            (
                Network::Btc,
                "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
                &[ProofMethod::Bip137],
            ),
            (
                Network::Btc,
                "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
                &[ProofMethod::Bip322, ProofMethod::Bip137],
            ),
        ] {
            let a = CounterpartyAddress::parse(network, address, BitcoinNetwork::Mainnet).unwrap();
            let t = ProofTarget::for_counterparty(&Counterparty::Address(a)).unwrap();
            assert_eq!(t.methods(), methods, "{address}");
            assert_eq!(
                t.address_text(),
                CounterpartyAddress::parse(network, address, BitcoinNetwork::Mainnet)
                    .unwrap()
                    .as_str()
            );
        }
        // Taproot, and a future segwit version (a script, as far as anyone can tell).
        let v2 =
            bech32::segwit::encode(bech32::Hrp::parse("bc").unwrap(), bech32::Fe32::Z, &[1; 32])
                .unwrap();
        let v2 = CounterpartyAddress::parse(Network::Btc, &v2, BitcoinNetwork::Mainnet).unwrap();
        assert_eq!(ProofTarget::for_address(&v2), Err(ProofUnavailable::Script));
    }
}
