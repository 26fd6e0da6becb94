//! The reuse key: a canonical, versioned byte encoding of a session's scope, and its digest.
//!
//! The digest is persisted (with the application id) and looked up on every request, so the
//! encoding must **never change silently**: `tests::golden_digests_never_change` pins the
//! digests of fixed scopes, and a deliberate change must bump [`ReuseKey::VERSION`] and
//! ship a migration.
//!
//! # Encoding, version 1
//!
//! All lengths are single bytes (every component is at most 128 bytes long).
//!
//! | part | bytes |
//! |---|---|
//! | magic | `"wsrk"` |
//! | version | `0x01` |
//! | subject | `'U'` (user) or `'B'` (business), then the 16 UUID bytes |
//! | currency | length, then the uppercase ASCII code |
//! | network | length, then the uppercase network name (`"BTC"`, `"POLYGON"`, …) |
//! | counterparty | `'A'`, length, the normalised address; or `'L'`, then the 32 payment hash bytes |
//! | txHash | `'-'` when absent; or `'T'`, length, the normalised hash |
//!
//! The digest is SHA-256 of those bytes.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::scope::{Counterparty, SessionScope};

/// The canonical encoding of a [`SessionScope`]: equal for equivalent requests (an invoice
/// and its payment hash, EVM or bech32 addresses in any case, hex hashes in any case) and
/// different otherwise (in particular with and without a txHash).
///
/// ```
/// use domain::*;
/// let rules = Rules::default();
/// let scope = |currency: &str, network: &str, address: &str| {
///     let asset = Asset::new(currency, network, rules.ledger()).unwrap();
///     let address = CounterpartyAddress::parse(asset.network(), address, rules.bitcoin_network()).unwrap();
///     let user = Subject::User("7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44".parse().unwrap());
///     SessionScope::new(user, asset, Counterparty::Address(address), None).unwrap()
/// };
/// let a = scope("ETH", "ETH", "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359");
/// let b = scope("eth", "eth", "0xFB6916095CA1DF60BB79CE92CE3EA74C37C5D359");
/// assert_eq!(a.reuse_key(), b.reuse_key());
/// assert_eq!(a.reuse_key().digest().to_hex().len(), 64);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReuseKey(Vec<u8>);

/// SHA-256 of a [`ReuseKey`]'s encoding: what is stored and indexed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReuseKeyDigest([u8; 32]);

impl ReuseKey {
    /// The encoding version written after the magic bytes.
    pub const VERSION: u8 = 1;
    const MAGIC: &'static [u8; 4] = b"wsrk";

    /// The key of a scope.
    pub fn of(scope: &SessionScope) -> Self {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(Self::MAGIC);
        out.push(Self::VERSION);
        let subject = scope.subject();
        out.push(match subject {
            crate::ids::Subject::User(_) => b'U',
            crate::ids::Subject::Business(_) => b'B',
        });
        out.extend_from_slice(subject.id().as_bytes());
        push_short(&mut out, scope.asset().currency().as_str());
        push_short(&mut out, scope.asset().network().as_str());
        match scope.counterparty() {
            Counterparty::Address(a) => {
                out.push(b'A');
                push_short(&mut out, a.as_str());
            }
            Counterparty::Lightning(l) => {
                out.push(b'L');
                out.extend_from_slice(l.payment_hash.as_bytes());
            }
        }
        match scope.tx_hash() {
            None => out.push(b'-'),
            Some(t) => {
                out.push(b'T');
                push_short(&mut out, t.as_str());
            }
        }
        Self(out)
    }

    /// The canonical bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// SHA-256 of the canonical bytes.
    pub fn digest(&self) -> ReuseKeyDigest {
        ReuseKeyDigest(Sha256::digest(&self.0).into())
    }
}

/// Components are bounded well below 256 bytes by their parsers (addresses ≤ 128, hashes
/// ≤ 100, currency ≤ 16); `min` keeps the encoding well defined regardless.
fn push_short(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(255)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

impl fmt::Debug for ReuseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReuseKey({})", self.digest())
    }
}

impl ReuseKeyDigest {
    /// From stored bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ReuseKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ReuseKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReuseKeyDigest({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use crate::*;

    enum Cp<'a> {
        Address(&'a str),
        Hash(&'a str),
    }

    /// The reuse key of a scope built from its parts' texts.
    fn scope_key(
        subject: Subject,
        currency: &str,
        network: &str,
        cp: Cp<'_>,
        tx: Option<&str>,
    ) -> ReuseKey {
        let rules = Rules::default();
        let asset = Asset::new(currency, network, rules.ledger()).unwrap();
        let counterparty = match cp {
            Cp::Address(a) => Counterparty::Address(
                CounterpartyAddress::parse(asset.network(), a, rules.bitcoin_network()).unwrap(),
            ),
            Cp::Hash(h) => Counterparty::Lightning(LightningPayment {
                payment_hash: PaymentHash::parse(h).unwrap(),
                invoice: None,
            }),
        };
        let tx = tx.map(|t| TxHash::parse(asset.network(), t).unwrap());
        SessionScope::new(subject, asset, counterparty, tx)
            .unwrap()
            .reuse_key()
    }

    fn user(s: &str) -> Subject {
        Subject::User(Uuid::parse_str(s).unwrap())
    }

    fn business(s: &str) -> Subject {
        Subject::Business(Uuid::parse_str(s).unwrap())
    }

    const USER: &str = "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44";
    const HASH: &str = "0001020304050607080900010203040506070809000102030405060708090102";

    /// If this test fails, the persisted reuse keys of every stored session no longer match
    /// new requests. Do not update the digests: bump `ReuseKey::VERSION` and migrate.
    #[test]
    fn golden_digests_never_change() {
        let tx = format!("0x{}", "ab".repeat(32));
        let got = [
            scope_key(
                user(USER),
                "BTC",
                "BTC",
                Cp::Address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
                None,
            ),
            scope_key(user(USER), "BTC", "BTC", Cp::Hash(HASH), None),
            scope_key(
                business(USER),
                "USDT",
                "ETH",
                Cp::Address("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"),
                Some(&tx),
            ),
        ]
        .map(|k| k.digest().to_hex());
        assert_eq!(
            got,
            [
                "e6774351975035d838708c558397140bdfe7c3ce00760cc979c3843171c568cb",
                "f4730562b01817be49fa211381f06b3c98aca0cc84999f0aba19c70b15728c80",
                "77f857cbe5818132cd96df47d69202344fdbf7a800ecb0497bfd942ade706464",
            ]
        );
    }

    /// The bytes follow the table in the module documentation, byte for byte.
    #[test]
    fn encoding_matches_the_documented_layout() {
        let key = scope_key(
            business("00000000-0000-0000-0000-000000000007"),
            "usdt",
            "eth",
            Cp::Address("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"),
            Some("0xABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"),
        );
        let mut want = b"wsrk\x01B".to_vec();
        want.extend_from_slice(&[0; 15]);
        want.push(7);
        want.extend_from_slice(b"\x04USDT\x03ETH");
        want.push(b'A');
        want.push(42);
        want.extend_from_slice(b"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359");
        want.push(b'T');
        want.push(66);
        want.extend_from_slice(format!("0x{}", "ab".repeat(32)).as_bytes());
        assert_eq!(key.as_bytes(), want.as_slice());

        let lightning = scope_key(
            user("00000000-0000-0000-0000-000000000007"),
            "BTC",
            "BTC",
            Cp::Hash(HASH),
            None,
        );
        let mut want = b"wsrk\x01U".to_vec();
        want.extend_from_slice(&[0; 15]);
        want.push(7);
        want.extend_from_slice(b"\x03BTC\x03BTCL");
        want.extend_from_slice(&hex::decode(HASH).unwrap());
        want.push(b'-');
        assert_eq!(lightning.as_bytes(), want.as_slice());
    }
}
