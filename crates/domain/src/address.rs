//! On-chain counterparty addresses, validated per network and normalised so that equal
//! addresses compare equal.

use std::fmt;

use sha3::{Digest, Keccak256};

use crate::error::{ErrorCode, RuleViolation};
use crate::ledger::{BitcoinNetwork, Network, NetworkFamily};

/// A valid on-chain address for one network, in normal form.
///
/// Normal forms: bech32/bech32m segwit addresses lowercase; EVM addresses in their EIP-55
/// mixed-case checksum form; base58 addresses (bitcoin legacy, Solana, TRON) as given
/// (base58 is case-sensitive).
///
/// ```
/// use domain::{BitcoinNetwork, CounterpartyAddress, Network};
/// let btc = BitcoinNetwork::Mainnet;
/// let a = CounterpartyAddress::parse(Network::Btc, "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", btc).unwrap();
/// assert_eq!(a.as_str(), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
///
/// let e = CounterpartyAddress::parse(Network::Eth, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", btc).unwrap();
/// assert_eq!(e.as_str(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
///
/// // A wrong EIP-55 checksum is an error, not a warning.
/// let bad = CounterpartyAddress::parse(Network::Eth, "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", btc);
/// assert_eq!(bad.unwrap_err().to_string(), "the EIP-55 checksum (letter case) of this address is wrong");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterpartyAddress {
    network: Network,
    normalised: String,
}

/// Why a string is not a valid address for a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Malformed: characters, length, prefix or encoding.
    #[error("not a valid {network} address: {reason}")]
    Malformed {
        /// The network the address was checked for.
        network: Network,
        /// What is wrong.
        reason: &'static str,
    },
    /// A base58check or bech32/bech32m checksum does not match.
    #[error("the {0} checksum of this address is wrong")]
    Checksum(&'static str),
    /// Mixed-case EVM address whose case does not follow EIP-55.
    #[error("the EIP-55 checksum (letter case) of this address is wrong")]
    Eip55,
    /// A bech32 string whose prefix (human-readable part) is no bitcoin network's, e.g. a
    /// Litecoin `ltc1…` address.
    #[error(
        "its prefix \"{prefix}1\" is not the configured bitcoin network's: {expected} addresses start with {}",
        expected_prefixes(*expected)
    )]
    ForeignPrefix {
        /// The network the service is configured for.
        expected: BitcoinNetwork,
        /// The human-readable part found (lowercase).
        prefix: String,
    },
    /// A valid bitcoin address of another bitcoin network.
    #[error("this is a {found} address but the service accepts {expected} addresses")]
    BitcoinNetworkMismatch {
        /// The network the service is configured for.
        expected: BitcoinNetwork,
        /// A network the address belongs to.
        found: &'static str,
    },
}

impl RuleViolation for AddressError {
    fn code(&self) -> ErrorCode {
        match self {
            AddressError::Malformed { .. } | AddressError::ForeignPrefix { .. } => {
                ErrorCode::InvalidAddress
            }
            AddressError::Checksum(_) | AddressError::Eip55 => ErrorCode::InvalidAddressChecksum,
            AddressError::BitcoinNetworkMismatch { .. } => ErrorCode::AddressNetworkMismatch,
        }
    }
}

impl CounterpartyAddress {
    /// The longest string considered at all (the longest valid address is a 90-character
    /// bech32m one).
    pub const MAX_LEN: usize = 128;

    /// Validates `s` as an address on `network`, using `bitcoin` for bitcoin addresses.
    pub fn parse(network: Network, s: &str, bitcoin: BitcoinNetwork) -> Result<Self, AddressError> {
        let malformed = |reason| AddressError::Malformed { network, reason };
        if s.is_empty() {
            return Err(malformed("it is empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(malformed("it is too long"));
        }
        if !s.is_ascii()
            || s.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(malformed(
                "it contains spaces or characters no address uses",
            ));
        }
        let normalised = match network.family() {
            NetworkFamily::Bitcoin => parse_bitcoin(s, bitcoin)?,
            NetworkFamily::Evm => parse_evm(network, s)?,
            NetworkFamily::Solana => parse_solana(s)?,
            NetworkFamily::Tron => parse_tron(s)?,
        };
        Ok(Self {
            network,
            normalised,
        })
    }

    /// Rebuilds an address that was validated (and normalised) when it was stored, without
    /// checking it again against today's configuration (e.g. the bitcoin network).
    pub fn from_stored(network: Network, normalised: String) -> Self {
        Self {
            network,
            normalised,
        }
    }

    /// The network this address was validated for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The address in normal form.
    pub fn as_str(&self) -> &str {
        &self.normalised
    }
}

impl fmt::Display for CounterpartyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalised)
    }
}

const ALL_BITCOIN_NETWORKS: [BitcoinNetwork; 4] = [
    BitcoinNetwork::Mainnet,
    BitcoinNetwork::Testnet,
    BitcoinNetwork::Signet,
    BitcoinNetwork::Regtest,
];

fn parse_bitcoin(s: &str, expected: BitcoinNetwork) -> Result<String, AddressError> {
    let lower = s.to_ascii_lowercase();
    // The longest HRP first: "bcrt1" also starts with "bc".
    let segwit_hrp = ["bcrt", "bc", "tb"]
        .into_iter()
        .find(|hrp| lower.starts_with(hrp) && lower[hrp.len()..].starts_with('1'));
    match segwit_hrp {
        Some(hrp) => parse_segwit(s, lower, hrp, expected),
        None => match foreign_bech32_hrp(&lower) {
            // Shaped like bech32 with a prefix no bitcoin network uses (`ltc1…`, `tc1…`): say
            // so, rather than report base58 problems, unless it really is base58.
            Some(prefix) => {
                parse_base58_bitcoin(s, expected).map_err(|_| AddressError::ForeignPrefix {
                    expected,
                    prefix: prefix.to_string(),
                })
            }
            None => parse_base58_bitcoin(s, expected),
        },
    }
}

/// The bitcoin address prefixes of `network`, for messages.
fn expected_prefixes(network: BitcoinNetwork) -> &'static str {
    match network {
        BitcoinNetwork::Mainnet => "bc1, 1 or 3",
        BitcoinNetwork::Testnet | BitcoinNetwork::Signet => "tb1, m, n or 2",
        BitcoinNetwork::Regtest => "bcrt1, m, n or 2",
    }
}

/// The human-readable part of `lower` when it has the shape of a bech32 string — letters,
/// the separator `1`, then at least a checksum's worth of bech32 characters.
fn foreign_bech32_hrp(lower: &str) -> Option<&str> {
    const CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let (hrp, data) = lower.rsplit_once('1')?;
    let shaped = !hrp.is_empty()
        && hrp.len() <= 83
        && hrp.bytes().all(|b| b.is_ascii_lowercase())
        && data.len() >= 6
        && data.chars().all(|c| CHARSET.contains(c));
    shaped.then_some(hrp)
}

/// Characters of a bech32 checksum.
const CHECKSUM_LEN: usize = 6;

/// The reason given for a segwit address with an empty witness program.
const NO_WITNESS_PROGRAM: &str = "it has no witness program";

fn parse_segwit(
    s: &str,
    lower: String,
    hrp: &str,
    expected: BitcoinNetwork,
) -> Result<String, AddressError> {
    use bech32::primitives::decode::{
        ChecksumError, SegwitHrpstring, SegwitHrpstringError, UncheckedHrpstringError,
    };
    let malformed = |reason| AddressError::Malformed {
        network: Network::Btc,
        reason,
    };
    if s != lower && s != s.to_ascii_uppercase() {
        return Err(malformed(
            "bech32 addresses must not mix upper and lower case",
        ));
    }
    // Nothing between the separator and the checksum (or only a witness version): however
    // the rest is encoded, the one thing wrong is that there is no witness program.
    if lower
        .rsplit_once('1')
        .is_some_and(|(_, data)| data.len() <= CHECKSUM_LEN + 1)
    {
        return Err(malformed(NO_WITNESS_PROGRAM));
    }
    let parsed_hrp = match SegwitHrpstring::new(&lower) {
        Ok(checked) => checked.hrp().to_lowercase(),
        Err(SegwitHrpstringError::Checksum(ChecksumError::InvalidResidue)) => {
            return Err(AddressError::Checksum("bech32/bech32m"));
        }
        Err(SegwitHrpstringError::Checksum(_)) => {
            return Err(malformed("its length is not valid for a segwit address"));
        }
        Err(SegwitHrpstringError::Unchecked(UncheckedHrpstringError::Char(_))) => {
            return Err(malformed("it contains characters that bech32 does not use"));
        }
        Err(SegwitHrpstringError::InvalidWitnessVersion(_)) => {
            return Err(malformed("its witness version is not 0 to 16"));
        }
        Err(SegwitHrpstringError::WitnessLength(_)) => {
            return Err(malformed("its witness program has an invalid length"));
        }
        Err(SegwitHrpstringError::Padding(_)) => {
            return Err(malformed("its data has invalid padding"));
        }
        Err(SegwitHrpstringError::NoData) => return Err(malformed(NO_WITNESS_PROGRAM)),
        Err(SegwitHrpstringError::TooLong(_)) => return Err(malformed("it is too long")),
        Err(_) => return Err(malformed("it is not a valid segwit address")),
    };
    // bech32 allows '1' inside the human-readable part ("bc1x1…" has HRP "bc1x"): judge the
    // HRP the decoder found, not the prefix we guessed from.
    if parsed_hrp != hrp {
        return Err(malformed(
            "its human-readable part is not a bitcoin network's",
        ));
    }
    if hrp != expected.segwit_hrp() {
        let found = match hrp {
            "bc" => "mainnet",
            "tb" => "testnet or signet",
            _ => "regtest",
        };
        return Err(AddressError::BitcoinNetworkMismatch { expected, found });
    }
    Ok(lower)
}

fn parse_base58_bitcoin(s: &str, expected: BitcoinNetwork) -> Result<String, AddressError> {
    let payload = decode_base58check(Network::Btc, s)?;
    if payload.len() != 21 {
        return Err(AddressError::Malformed {
            network: Network::Btc,
            reason: "its base58check payload is not 21 bytes",
        });
    }
    let version = payload[0];
    let (p2pkh, p2sh) = expected.base58_versions();
    if version == p2pkh || version == p2sh {
        return Ok(s.to_string());
    }
    let other = ALL_BITCOIN_NETWORKS.into_iter().find(|n| {
        let (a, b) = n.base58_versions();
        version == a || version == b
    });
    match other {
        Some(n) => Err(AddressError::BitcoinNetworkMismatch {
            expected,
            found: if n == BitcoinNetwork::Mainnet {
                "mainnet"
            } else {
                "testnet, signet or regtest"
            },
        }),
        None => Err(AddressError::Malformed {
            network: Network::Btc,
            reason: "its version byte is neither P2PKH nor P2SH",
        }),
    }
}

fn decode_base58check(network: Network, s: &str) -> Result<Vec<u8>, AddressError> {
    match bs58::decode(s).with_check(None).into_vec() {
        Ok(v) => Ok(v),
        Err(bs58::decode::Error::InvalidChecksum { .. }) => {
            Err(AddressError::Checksum("base58check"))
        }
        Err(bs58::decode::Error::InvalidCharacter { .. })
        | Err(bs58::decode::Error::NonAsciiCharacter { .. }) => Err(AddressError::Malformed {
            network,
            reason: "it contains characters that base58 does not use",
        }),
        Err(_) => Err(AddressError::Malformed {
            network,
            reason: "it is too short for base58check",
        }),
    }
}

fn parse_evm(network: Network, s: &str) -> Result<String, AddressError> {
    let malformed = |reason| AddressError::Malformed { network, reason };
    let hex = s
        .strip_prefix("0x")
        .ok_or_else(|| malformed("it must start with 0x"))?;
    if hex.len() != 40 {
        return Err(malformed(
            "it must have exactly 40 hexadecimal digits after 0x",
        ));
    }
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("it contains characters that are not hexadecimal"));
    }
    let checksummed = eip55(hex);
    let all_lower = !hex.bytes().any(|b| b.is_ascii_uppercase());
    let all_upper = !hex.bytes().any(|b| b.is_ascii_lowercase());
    if all_lower || all_upper || checksummed[2..] == *hex {
        Ok(checksummed)
    } else {
        Err(AddressError::Eip55)
    }
}

/// The EIP-55 form of 40 hex digits: a letter is uppercase when the matching nibble of
/// keccak256(lowercase hex) is ≥ 8.
pub(crate) fn eip55(hex40: &str) -> String {
    let lower = hex40.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let byte = hash[i / 2];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_solana(s: &str) -> Result<String, AddressError> {
    let malformed = |reason| AddressError::Malformed {
        network: Network::Sol,
        reason,
    };
    let bytes = bs58::decode(s)
        .into_vec()
        .map_err(|_| malformed("it contains characters that base58 does not use"))?;
    if bytes.len() != 32 {
        return Err(malformed("it does not decode to a 32-byte public key"));
    }
    Ok(s.to_string())
}

fn parse_tron(s: &str) -> Result<String, AddressError> {
    let payload = decode_base58check(Network::Tron, s)?;
    if payload.len() != 21 {
        return Err(AddressError::Malformed {
            network: Network::Tron,
            reason: "its base58check payload is not 21 bytes",
        });
    }
    if payload[0] != 0x41 {
        return Err(AddressError::Malformed {
            network: Network::Tron,
            reason: "its prefix byte is not 0x41",
        });
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: BitcoinNetwork = BitcoinNetwork::Mainnet;

    fn code(network: Network, s: &str, btc: BitcoinNetwork) -> ErrorCode {
        CounterpartyAddress::parse(network, s, btc)
            .unwrap_err()
            .code()
    }

    #[test]
    fn bitcoin_legacy_addresses() {
        // Genesis coinbase P2PKH and a well-known P2SH.
        for a in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        ] {
            assert_eq!(
                CounterpartyAddress::parse(Network::Btc, a, MAIN)
                    .unwrap()
                    .as_str(),
                a
            );
        }
        // One character changed: the checksum no longer matches.
        assert_eq!(
            code(Network::Btc, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", MAIN),
            ErrorCode::InvalidAddressChecksum
        );
        // '0', 'O', 'I', 'l' are not base58.
        assert_eq!(
            code(Network::Btc, "1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a", MAIN),
            ErrorCode::InvalidAddress
        );
        // A testnet P2PKH on a mainnet service.
        assert_eq!(
            code(Network::Btc, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", MAIN),
            ErrorCode::AddressNetworkMismatch
        );
        assert!(
            CounterpartyAddress::parse(
                Network::Btc,
                "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
                BitcoinNetwork::Testnet
            )
            .is_ok()
        );
    }

    #[test]
    fn bitcoin_segwit_addresses() {
        let v0 = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        assert_eq!(
            CounterpartyAddress::parse(Network::Btc, v0, MAIN)
                .unwrap()
                .as_str(),
            v0
        );
        assert_eq!(
            code(
                Network::Btc,
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
                MAIN
            ),
            ErrorCode::InvalidAddressChecksum
        );
        assert_eq!(
            code(
                Network::Btc,
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7KV8f3t4",
                MAIN
            ),
            ErrorCode::InvalidAddress
        );
        // Regtest address on mainnet, and mainnet on regtest.
        assert_eq!(
            code(
                Network::Btc,
                "bcrt1q6rhpng9evdsfnn833a4f4vej0asu6dk5srld6x",
                MAIN
            ),
            ErrorCode::AddressNetworkMismatch
        );
        assert_eq!(
            code(Network::Btc, v0, BitcoinNetwork::Regtest),
            ErrorCode::AddressNetworkMismatch
        );
    }

    /// One case per line: the code, and the gist of the sentence a user reads.
    #[test]
    fn messages_say_what_is_wrong() {
        let cases: &[(&str, BitcoinNetwork, ErrorCode, &str)] = &[
            // Empty data part, whatever its encoding: "no witness program".
            (
                "bc1gmk9yu",
                MAIN,
                ErrorCode::InvalidAddress,
                "has no witness program",
            ), // valid bech32 checksum
            (
                "bc1a8xfp7",
                MAIN,
                ErrorCode::InvalidAddress,
                "has no witness program",
            ), // valid bech32m checksum
            (
                "bc1qqqqqq",
                MAIN,
                ErrorCode::InvalidAddress,
                "has no witness program",
            ), // wrong checksum
            (
                "BC1GMK9YU",
                MAIN,
                ErrorCode::InvalidAddress,
                "has no witness program",
            ), // upper case
            (
                "tb1cy0q7p",
                BitcoinNetwork::Testnet,
                ErrorCode::InvalidAddress,
                "has no witness program",
            ),
            (
                "bc1q9zpgru",
                MAIN,
                ErrorCode::InvalidAddress,
                "has no witness program",
            ), // a witness version only
            (
                "bc1pdg93mv",
                MAIN,
                ErrorCode::InvalidAddress,
                "has no witness program",
            ), // v1, bech32m
            // Bech32 with another chain's prefix: the prefix is named, not base58.
            (
                "ltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kgmn4n9",
                MAIN,
                ErrorCode::InvalidAddress,
                "prefix \"ltc1\" is not the configured bitcoin network's: mainnet addresses start with bc1, 1 or 3",
            ),
            (
                "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",
                MAIN,
                ErrorCode::InvalidAddress,
                "prefix \"tc1\" is not the configured bitcoin network's",
            ),
            (
                "LTC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KGMN4N9",
                MAIN,
                ErrorCode::InvalidAddress,
                "prefix \"ltc1\" is not",
            ),
            // … also when its checksum is wrong (a typo in a foreign address).
            (
                "ltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kgmn4n8",
                MAIN,
                ErrorCode::InvalidAddress,
                "prefix \"ltc1\" is not",
            ),
            (
                "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",
                BitcoinNetwork::Regtest,
                ErrorCode::InvalidAddress,
                "regtest addresses start with bcrt1, m, n or 2",
            ),
            // Unchanged verdicts keep their messages.
            (
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
                MAIN,
                ErrorCode::InvalidAddressChecksum,
                "bech32/bech32m checksum of this address is wrong",
            ),
            (
                "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",
                MAIN,
                ErrorCode::InvalidAddressChecksum,
                "base58check checksum of this address is wrong",
            ),
            (
                "1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a",
                MAIN,
                ErrorCode::InvalidAddress,
                "characters that base58 does not use",
            ),
            (
                "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
                MAIN,
                ErrorCode::AddressNetworkMismatch,
                "testnet, signet or regtest address but the service accepts mainnet",
            ),
        ];
        for (address, network, expected_code, gist) in cases {
            let e = CounterpartyAddress::parse(Network::Btc, address, *network).unwrap_err();
            assert_eq!(e.code(), *expected_code, "{address}: {e}");
            assert!(e.to_string().contains(gist), "{address}: {e:?} says {e}");
        }
    }

    #[test]
    fn segwit_hrp_is_the_decoded_one_not_a_guessed_prefix() {
        // Valid bech32 strings whose HRP contains '1': "bc1x", "tb1q", "bcrt1".
        for (s, network) in [
            ("bc1x1qw46h2at4w46h2at4w46h2at4w46h2at4w67t5z", MAIN),
            (
                "tb1q1qw46h2at4w46h2at4w46h2at4w46h2at43kwygj",
                BitcoinNetwork::Testnet,
            ),
            (
                "bcrt11qw46h2at4w46h2at4w46h2at4w46h2at47s84ts",
                BitcoinNetwork::Regtest,
            ),
        ] {
            for candidate in [s.to_string(), s.to_uppercase()] {
                assert_eq!(
                    code(Network::Btc, &candidate, network),
                    ErrorCode::InvalidAddress,
                    "{candidate}"
                );
            }
        }
    }

    #[test]
    fn signet_uses_tb_segwit_and_test_base58_versions() {
        let signet = BitcoinNetwork::Signet;
        let tb = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7";
        assert!(CounterpartyAddress::parse(Network::Btc, tb, signet).is_ok());
        assert!(
            CounterpartyAddress::parse(Network::Btc, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", signet)
                .is_ok()
        );
        assert_eq!(
            code(
                Network::Btc,
                "bcrt1q6rhpng9evdsfnn833a4f4vej0asu6dk5srld6x",
                signet
            ),
            ErrorCode::AddressNetworkMismatch
        );
        assert_eq!(
            code(
                Network::Btc,
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                signet
            ),
            ErrorCode::AddressNetworkMismatch
        );
    }

    #[test]
    fn evm_addresses() {
        for network in [Network::Eth, Network::Polygon, Network::Bsc] {
            let a = CounterpartyAddress::parse(
                network,
                "0xFB6916095CA1DF60BB79CE92CE3EA74C37C5D359",
                MAIN,
            )
            .unwrap();
            assert_eq!(a.as_str(), "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359");
            assert_eq!(
                code(network, "fB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", MAIN),
                ErrorCode::InvalidAddress
            );
            assert_eq!(
                code(network, "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d35", MAIN),
                ErrorCode::InvalidAddress
            );
            assert_eq!(
                code(network, "0xgB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", MAIN),
                ErrorCode::InvalidAddress
            );
            assert_eq!(
                code(network, "0xFb6916095ca1df60bB79Ce92cE3Ea74c37c5d359", MAIN),
                ErrorCode::InvalidAddressChecksum
            );
        }
    }

    #[test]
    fn solana_addresses() {
        // The system program (32 zero bytes) and a token program id.
        for a in [
            "11111111111111111111111111111111",
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        ] {
            assert_eq!(
                CounterpartyAddress::parse(Network::Sol, a, MAIN)
                    .unwrap()
                    .as_str(),
                a
            );
        }
        assert_eq!(
            code(Network::Sol, "1111111111111111111111111111111", MAIN),
            ErrorCode::InvalidAddress
        );
        assert_eq!(
            code(
                Network::Sol,
                "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                MAIN
            ),
            ErrorCode::InvalidAddress
        );
    }

    #[test]
    fn tron_addresses() {
        // USDT's TRC-20 contract address.
        let a = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";
        assert_eq!(
            CounterpartyAddress::parse(Network::Tron, a, MAIN)
                .unwrap()
                .as_str(),
            a
        );
        assert_eq!(
            code(Network::Tron, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", MAIN),
            ErrorCode::InvalidAddressChecksum
        );
        // Prefix 0x41 but a 33-byte payload.
        assert_eq!(
            code(
                Network::Tron,
                "3BRNG9k4msS2yCakYeoU27e6R6qezj84mGrUNaTz2TuWvu5Ny8u",
                MAIN
            ),
            ErrorCode::InvalidAddress
        );
        let long = bs58::encode([[0x41u8].as_slice(), &[7u8; 32]].concat())
            .with_check()
            .into_string();
        assert_eq!(code(Network::Tron, &long, MAIN), ErrorCode::InvalidAddress);
        // A valid base58check bitcoin address has the wrong prefix for TRON.
        assert_eq!(
            code(Network::Tron, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", MAIN),
            ErrorCode::InvalidAddress
        );
    }

    #[test]
    fn junk_is_malformed_for_every_network() {
        for network in Network::ALL {
            for junk in ["", " ", "é", "bc1 q", &"1".repeat(500)] {
                assert_eq!(
                    code(network, junk, MAIN),
                    ErrorCode::InvalidAddress,
                    "{network} {junk:?}"
                );
            }
        }
    }
}
