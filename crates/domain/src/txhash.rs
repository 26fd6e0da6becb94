//! On-chain transaction hashes, validated per network.

use std::fmt;

use crate::error::{ErrorCode, RuleViolation};
use crate::ledger::{Network, NetworkFamily};

/// The hash of an on-chain transaction on one network, in normal form: lowercase hex for
/// bitcoin and TRON (64 digits) and EVM networks (`0x` + 64 digits); Solana signatures as
/// given (base58 is case-sensitive).
///
/// ```
/// use domain::{Network, TxHash};
/// let h = TxHash::parse(Network::Eth, &format!("0x{}", "AB".repeat(32))).unwrap();
/// assert_eq!(h.as_str(), format!("0x{}", "ab".repeat(32)));
/// assert!(TxHash::parse(Network::Btc, &format!("0x{}", "ab".repeat(32))).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxHash {
    network: Network,
    normalised: String,
}

/// A string that is not a transaction hash on the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {network} transaction hash: expected {expected}")]
pub struct InvalidTxHash {
    network: Network,
    expected: &'static str,
}

impl RuleViolation for InvalidTxHash {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidTxHash
    }
}

impl TxHash {
    /// Validates `s` as a transaction hash on `network`.
    pub fn parse(network: Network, s: &str) -> Result<Self, InvalidTxHash> {
        let err = |expected| InvalidTxHash { network, expected };
        let normalised = match network.family() {
            NetworkFamily::Bitcoin | NetworkFamily::Tron => {
                if !is_hex(s, 64) {
                    return Err(err("64 hexadecimal characters"));
                }
                s.to_ascii_lowercase()
            }
            NetworkFamily::Evm => match s.strip_prefix("0x") {
                Some(hex) if is_hex(hex, 64) => s.to_ascii_lowercase(),
                _ => return Err(err("0x followed by 64 hexadecimal characters")),
            },
            NetworkFamily::Solana => {
                let ok = s.len() <= 100
                    && bs58::decode(s)
                        .into_vec()
                        .is_ok_and(|bytes| bytes.len() == 64);
                if !ok {
                    return Err(err("a base58 signature of 64 bytes"));
                }
                s.to_string()
            }
        };
        Ok(Self {
            network,
            normalised,
        })
    }

    /// Rebuilds a hash that was validated (and normalised) when it was stored.
    pub fn from_stored(network: Network, normalised: String) -> Self {
        Self {
            network,
            normalised,
        }
    }

    /// The network the hash was validated for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The hash in normal form.
    pub fn as_str(&self) -> &str {
        &self.normalised
    }
}

impl fmt::Display for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalised)
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_network_formats() {
        let hex64 = "4A5E1E4BAAB89F3A32518A88C31BC87F618F76673E2CC77AB2127B7AFDEDA33B";
        for n in [Network::Btc, Network::Tron] {
            assert_eq!(
                TxHash::parse(n, hex64).unwrap().as_str(),
                hex64.to_lowercase()
            );
            assert!(TxHash::parse(n, &hex64[1..]).is_err());
            assert!(TxHash::parse(n, &format!("0x{hex64}")).is_err());
        }
        for n in [Network::Eth, Network::Polygon, Network::Bsc] {
            let h = format!("0x{hex64}");
            assert_eq!(TxHash::parse(n, &h).unwrap().as_str(), h.to_lowercase());
            assert!(TxHash::parse(n, hex64).is_err());
            assert!(TxHash::parse(n, &format!("0X{hex64}")).is_err());
            assert!(TxHash::parse(n, &format!("0x{}", &hex64[2..])).is_err());
        }
        let sig64 = bs58::encode([7u8; 64]).into_string();
        assert_eq!(TxHash::parse(Network::Sol, &sig64).unwrap().as_str(), sig64);
        let sig32 = bs58::encode([7u8; 32]).into_string();
        assert!(TxHash::parse(Network::Sol, &sig32).is_err());
        // Valid base58 characters, but 47 bytes once decoded.
        assert!(TxHash::parse(Network::Sol, hex64).is_err());
        assert!(TxHash::parse(Network::Sol, "0OIl").is_err());
    }

    #[test]
    fn errors_carry_the_stable_code() {
        let e = TxHash::parse(Network::Btc, "x").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidTxHash);
        assert_eq!(
            e.to_string(),
            "not a valid BTC transaction hash: expected 64 hexadecimal characters"
        );
    }
}
