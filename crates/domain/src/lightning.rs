//! Lightning counterparties: payment hashes and bolt11 invoices.
//!
//! `lightning-invoice` is kept at arm's length: nothing of its types leaves this module, so
//! an upgrade of that crate touches [`Invoice::decode`] only.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use lightning_invoice::{Bolt11Invoice, Bolt11SemanticError, Currency, ParseOrSemanticError};

use crate::error::{ErrorCode, RuleViolation};
use crate::ledger::BitcoinNetwork;

/// A Lightning payment hash: 32 bytes, written as 64 lowercase hex digits.
///
/// ```
/// use domain::PaymentHash;
/// let h = PaymentHash::parse("0001020304050607080900010203040506070809000102030405060708090102").unwrap();
/// assert_eq!(h.as_bytes()[1], 1);
/// let upper = PaymentHash::parse("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789").unwrap();
/// assert_eq!(upper.to_string(), "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
/// assert!(PaymentHash::parse("abc").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentHash([u8; 32]);

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payment hash is exactly 64 hexadecimal characters")]
pub struct InvalidPaymentHash;

impl RuleViolation for InvalidPaymentHash {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidPaymentHash
    }
}

impl PaymentHash {
    /// Parses 64 hex digits in any case.
    pub fn parse(s: &str) -> Result<Self, InvalidPaymentHash> {
        let mut bytes = [0u8; 32];
        if s.len() != 64 {
            return Err(InvalidPaymentHash);
        }
        hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidPaymentHash)?;
        Ok(Self(bytes))
    }

    /// From raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentHash({self})")
    }
}

impl FromStr for PaymentHash {
    type Err = InvalidPaymentHash;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What a decoded invoice tells about the payment besides its hash, kept with the session
/// so callers can see, for instance, that the invoice had already expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvoiceDetails {
    /// When the invoice was created (its BOLT 11 timestamp).
    pub created_at: DateTime<Utc>,
    /// When the invoice expires: its timestamp plus its expiry (default 3600 s).
    pub expires_at: DateTime<Utc>,
    /// The amount requested, if the invoice names one.
    pub amount_msat: Option<u64>,
    /// The payee's node id ([`Invoice::payee_node_id`]): the key whose `signmessage` proves
    /// control of the invoice. `None` for sessions stored before it was kept.
    pub payee: Option<NodeId>,
}

impl InvoiceDetails {
    /// The latest expiry reported: 9999-12-31T23:59:59Z. Invoices that expire later (their
    /// expiry field allows ~10^9 years) are reported as expiring then, which every store can
    /// hold.
    pub const FAR_FUTURE: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
        Some(t) => t,
        None => DateTime::<Utc>::MAX_UTC,
    };

    /// Whether the invoice had expired at `now`. Expired invoices are accepted (a held
    /// payment can outlive its invoice); this is reported, not enforced.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// A decoded, signature-checked bolt11 invoice for the configured bitcoin network.
///
/// ```
/// use domain::{BitcoinNetwork, Invoice};
/// // BOLT 11's "Please make a donation of any amount" example.
/// let s = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";
/// let invoice = Invoice::decode(&format!("LIGHTNING:{}", s.to_uppercase()), BitcoinNetwork::Mainnet).unwrap();
/// assert_eq!(invoice.payment_hash().to_string(), "0001020304050607080900010203040506070809000102030405060708090102");
/// assert_eq!(invoice.details().amount_msat, None);
/// // The same invoice on a testnet service is refused.
/// assert!(Invoice::decode(s, BitcoinNetwork::Testnet).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    payment_hash: PaymentHash,
    details: InvoiceDetails,
    payee: NodeId,
}

/// Why a string is not an acceptable bolt11 invoice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// Not decodable, or breaks a BOLT 11 rule other than the signature.
    #[error("not a valid bolt11 invoice: {0}")]
    Malformed(&'static str),
    /// Decodes, but the signature does not verify.
    #[error("the invoice's signature does not verify")]
    Signature,
    /// A valid invoice for another bitcoin network.
    #[error("this is a {found} invoice but the service accepts {expected} invoices")]
    NetworkMismatch {
        /// The configured network.
        expected: BitcoinNetwork,
        /// The invoice's network.
        found: &'static str,
    },
}

impl RuleViolation for InvoiceError {
    fn code(&self) -> ErrorCode {
        match self {
            InvoiceError::Malformed(_) => ErrorCode::InvalidInvoice,
            InvoiceError::Signature => ErrorCode::InvalidInvoiceSignature,
            InvoiceError::NetworkMismatch { .. } => ErrorCode::InvoiceNetworkMismatch,
        }
    }
}

impl Invoice {
    /// BOLT 11 invoices longer than this are refused (the limit lightning-invoice and LND
    /// apply).
    pub const MAX_LEN: usize = lightning_invoice::MAX_LENGTH;

    /// Decodes an invoice: an optional `lightning:` prefix in any case is stripped, an
    /// all-uppercase invoice is accepted (mixed case is not, as bech32 requires), the
    /// signature is verified, and the invoice's currency must be `network`'s.
    pub fn decode(s: &str, network: BitcoinNetwork) -> Result<Self, InvoiceError> {
        let s = strip_prefix_ignore_case(s, "lightning:");
        if s.is_empty() {
            return Err(InvoiceError::Malformed("it is empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(InvoiceError::Malformed("it is longer than 7089 characters"));
        }
        let has_lower = s.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = s.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            return Err(InvoiceError::Malformed("it mixes upper and lower case"));
        }
        let lower = s.to_ascii_lowercase();
        let invoice = Bolt11Invoice::from_str(&lower).map_err(classify)?;

        let (expected, found) = (currency_of(network), invoice.currency());
        if expected != found {
            return Err(InvoiceError::NetworkMismatch {
                expected: network,
                found: currency_name(&found),
            });
        }
        // BOLT 11 timestamps are 35-bit seconds, always representable. An expiry can be
        // absurdly far away; it is reported (saturated), never a reason to refuse.
        let created_at = to_datetime(invoice.duration_since_epoch())
            .ok_or(InvoiceError::Malformed("its timestamp is out of range"))?;
        let expires_at = invoice
            .expires_at()
            .and_then(to_datetime)
            .unwrap_or(InvoiceDetails::FAR_FUTURE)
            .min(InvoiceDetails::FAR_FUTURE);
        let hash: &[u8; 32] = invoice.payment_hash().as_ref();
        // The explicit payee field when the invoice has one (its signature was checked against
        // it), else the key recovered from the signature (BOLT 11: the payee's node key).
        let payee = NodeId(invoice.get_payee_pub_key().serialize());
        let details = InvoiceDetails {
            created_at,
            expires_at,
            amount_msat: invoice.amount_milli_satoshis(),
            payee: Some(payee),
        };
        Ok(Self {
            payment_hash: PaymentHash(*hash),
            details,
            payee,
        })
    }

    /// The payment hash: what identifies the counterparty.
    pub fn payment_hash(&self) -> PaymentHash {
        self.payment_hash
    }

    /// Timestamp, expiry and amount.
    pub fn details(&self) -> InvoiceDetails {
        self.details
    }

    /// The payee's node id: the invoice's explicit payee field if it has one, otherwise the
    /// key recovered from its signature. Its `signmessage` proves control of the invoice.
    ///
    /// ```
    /// use domain::{BitcoinNetwork, Invoice};
    /// // BOLT 11's "Please make a donation of any amount" example, signed by the spec's node.
    /// let s = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";
    /// let invoice = Invoice::decode(s, BitcoinNetwork::Mainnet).unwrap();
    /// assert_eq!(
    ///     invoice.payee_node_id().to_string(),
    ///     "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad"
    /// );
    /// ```
    pub fn payee_node_id(&self) -> NodeId {
        self.payee
    }
}

/// A Lightning node id: a compressed secp256k1 public key (33 bytes), written as 66
/// lowercase hex digits.
///
/// ```
/// use domain::NodeId;
/// let id = NodeId::parse("03E7156AE33B0A208D0744199163177E909E80176E55D97A2F221EDE0F934DD9AD").unwrap();
/// assert_eq!(id.to_string(), "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad");
/// assert!(NodeId::parse(&format!("04{}", "00".repeat(32))).is_err()); // not a compressed key
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; 33]);

/// A string that is not 66 hex digits encoding a compressed secp256k1 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a node id is 66 hexadecimal characters encoding a compressed secp256k1 public key")]
pub struct InvalidNodeId;

impl NodeId {
    /// Parses 66 hex digits in any case that encode a valid compressed public key (e.g. one
    /// stored earlier from [`Invoice::payee_node_id`]).
    pub fn parse(s: &str) -> Result<Self, InvalidNodeId> {
        let mut bytes = [0u8; 33];
        if s.len() != 66 {
            return Err(InvalidNodeId);
        }
        hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidNodeId)?;
        Self::from_bytes(bytes)
    }

    /// From the 33-byte compressed encoding, checked to be a point on the curve.
    pub fn from_bytes(bytes: [u8; 33]) -> Result<Self, InvalidNodeId> {
        bitcoin::secp256k1::PublicKey::from_slice(&bytes).map_err(|_| InvalidNodeId)?;
        Ok(Self(bytes))
    }

    /// The 33-byte compressed encoding.
    pub const fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = InvalidNodeId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> &'a str {
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &s[prefix.len()..],
        _ => s,
    }
}

fn currency_of(network: BitcoinNetwork) -> Currency {
    match network {
        BitcoinNetwork::Mainnet => Currency::Bitcoin,
        BitcoinNetwork::Testnet => Currency::BitcoinTestnet,
        BitcoinNetwork::Signet => Currency::Signet,
        BitcoinNetwork::Regtest => Currency::Regtest,
    }
}

fn currency_name(c: &Currency) -> &'static str {
    match c {
        Currency::Bitcoin => "mainnet",
        Currency::BitcoinTestnet => "testnet",
        Currency::Signet => "signet",
        Currency::Regtest => "regtest",
        Currency::Simnet => "simnet",
    }
}

fn to_datetime(d: std::time::Duration) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
}

fn classify(e: ParseOrSemanticError) -> InvoiceError {
    use lightning_invoice::Bolt11ParseError as P;
    match e {
        ParseOrSemanticError::SemanticError(s) => match s {
            Bolt11SemanticError::InvalidSignature => InvoiceError::Signature,
            Bolt11SemanticError::NoPaymentHash => InvoiceError::Malformed("it has no payment hash"),
            Bolt11SemanticError::MultiplePaymentHashes => {
                InvoiceError::Malformed("it has more than one payment hash")
            }
            Bolt11SemanticError::NoDescription => InvoiceError::Malformed("it has no description"),
            Bolt11SemanticError::MultipleDescriptions => {
                InvoiceError::Malformed("it has more than one description")
            }
            Bolt11SemanticError::NoPaymentSecret => {
                InvoiceError::Malformed("it has no payment secret")
            }
            Bolt11SemanticError::MultiplePaymentSecrets => {
                InvoiceError::Malformed("it has more than one payment secret")
            }
            Bolt11SemanticError::InvalidFeatures => {
                InvoiceError::Malformed("its feature bits are invalid")
            }
            Bolt11SemanticError::ImpreciseAmount => {
                InvoiceError::Malformed("its amount is not a whole number of millisatoshis")
            }
        },
        ParseOrSemanticError::ParseError(p) => match p {
            P::Bech32Error(_) => {
                InvoiceError::Malformed("its bech32 encoding or checksum is invalid")
            }
            P::MalformedSignature(_) => InvoiceError::Signature,
            P::BadPrefix | P::MalformedHRP => {
                InvoiceError::Malformed("it does not start with ln followed by a currency prefix")
            }
            P::UnknownCurrency => InvoiceError::Malformed("its currency prefix is unknown"),
            P::UnknownSiPrefix | P::ParseAmountError(_) => {
                InvoiceError::Malformed("its amount is malformed")
            }
            P::TooShortDataPart => InvoiceError::Malformed("its data part is too short"),
            _ => InvoiceError::Malformed("its data part is malformed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_hash_rejects_everything_but_64_hex() {
        for bad in [
            "",
            "zz",
            &"g".repeat(64),
            &"a".repeat(63),
            &"a".repeat(65),
            &"é".repeat(32),
        ] {
            assert!(PaymentHash::parse(bad).is_err(), "{bad:?}");
        }
        let h = PaymentHash::parse(&"Ab".repeat(32)).unwrap();
        assert_eq!(h.to_string(), "ab".repeat(32));
    }

    #[test]
    fn prefix_is_stripped_in_any_case() {
        assert_eq!(
            strip_prefix_ignore_case("LiGhTnInG:lnbc", "lightning:"),
            "lnbc"
        );
        assert_eq!(strip_prefix_ignore_case("lnbc", "lightning:"), "lnbc");
        assert_eq!(strip_prefix_ignore_case("é", "lightning:"), "é");
    }

    #[test]
    fn junk_is_malformed() {
        for junk in ["", "lightning:", "lnbc", "lnbc1", "hello", "lnxx1qqqq", "é"] {
            let e = Invoice::decode(junk, BitcoinNetwork::Mainnet).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidInvoice, "{junk:?}: {e}");
        }
        let e = Invoice::decode(&"a".repeat(8000), BitcoinNetwork::Mainnet).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInvoice);
    }
}
