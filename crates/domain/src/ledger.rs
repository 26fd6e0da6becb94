//! Currencies, networks, the ledger table that ties them, and the bitcoin network in force.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{ErrorCode, RuleViolation};

/// A blockchain network the service can validate addresses and transaction hashes for.
///
/// Parsed case-insensitively, shown uppercase.
///
/// ```
/// use domain::Network;
/// assert_eq!("polygon".parse::<Network>().unwrap(), Network::Polygon);
/// assert_eq!(Network::Polygon.as_str(), "POLYGON");
/// assert!("DOGE".parse::<Network>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// Bitcoin (on-chain and Lightning).
    Btc,
    /// Ethereum mainnet.
    Eth,
    /// Polygon PoS.
    Polygon,
    /// Solana.
    Sol,
    /// BNB Smart Chain.
    Bsc,
    /// TRON.
    Tron,
}

/// How a network's addresses and transaction hashes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkFamily {
    /// base58check P2PKH/P2SH and bech32/bech32m segwit; 64-hex transaction ids.
    Bitcoin,
    /// `0x` + 40 hex addresses with EIP-55 checksums; `0x` + 64 hex transaction hashes.
    Evm,
    /// base58 32-byte public keys; base58 64-byte signatures as transaction ids.
    Solana,
    /// base58check 21-byte addresses starting with 0x41; 64-hex transaction ids.
    Tron,
}

impl Network {
    /// Every network, in declaration order.
    pub const ALL: [Network; 6] = [
        Network::Btc,
        Network::Eth,
        Network::Polygon,
        Network::Sol,
        Network::Bsc,
        Network::Tron,
    ];

    /// The uppercase name used in requests, responses and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Network::Btc => "BTC",
            Network::Eth => "ETH",
            Network::Polygon => "POLYGON",
            Network::Sol => "SOL",
            Network::Bsc => "BSC",
            Network::Tron => "TRON",
        }
    }

    /// The address family of this network.
    pub const fn family(self) -> NetworkFamily {
        match self {
            Network::Btc => NetworkFamily::Bitcoin,
            Network::Eth | Network::Polygon | Network::Bsc => NetworkFamily::Evm,
            Network::Sol => NetworkFamily::Solana,
            Network::Tron => NetworkFamily::Tron,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A network name that is not one of [`Network::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network {0:?} is not supported; use one of BTC, ETH, POLYGON, SOL, BSC, TRON")]
pub struct UnsupportedNetwork(String);

impl RuleViolation for UnsupportedNetwork {
    fn code(&self) -> ErrorCode {
        ErrorCode::UnsupportedNetwork
    }
}

impl FromStr for Network {
    type Err = UnsupportedNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|n| n.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnsupportedNetwork(quote_for_message(s)))
    }
}

/// A ledger currency code: 1 to 16 ASCII letters or digits, stored uppercase.
///
/// A `Currency` is only well formed; whether the service supports it is the
/// [`LedgerTable`]'s call.
///
/// ```
/// use domain::Currency;
/// assert_eq!(Currency::parse("usdc").unwrap().as_str(), "USDC");
/// assert!(Currency::parse("US DC").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(String);

/// A string that cannot be a currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("currency {0:?} is not a currency code (1 to 16 letters or digits)")]
pub struct MalformedCurrency(String);

impl RuleViolation for MalformedCurrency {
    fn code(&self) -> ErrorCode {
        ErrorCode::UnsupportedCurrency
    }
}

impl Currency {
    /// The longest accepted code.
    pub const MAX_LEN: usize = 16;

    /// Parses a currency code case-insensitively.
    pub fn parse(s: &str) -> Result<Self, MalformedCurrency> {
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(MalformedCurrency(quote_for_message(s)));
        }
        Ok(Self(s.to_ascii_uppercase()))
    }

    /// The uppercase code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which currency lives on which network: the data behind [`Asset`].
///
/// The default is contract §4's table; deployments override it from configuration with
/// [`LedgerTable::from_str`] (`"BTC:BTC,ETH:ETH,…"`).
///
/// ```
/// use domain::{Currency, LedgerTable, Network};
/// let table = LedgerTable::default();
/// assert_eq!(table.network_for(&Currency::parse("usdt").unwrap()), Some(Network::Eth));
///
/// let custom: LedgerTable = "BTC:BTC, usdc:polygon".parse().unwrap();
/// assert_eq!(custom.network_for(&Currency::parse("USDC").unwrap()), Some(Network::Polygon));
/// assert_eq!(custom.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTable(BTreeMap<Currency, Network>);

/// Why a ledger table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// No entries at all.
    #[error("the ledger table is empty")]
    Empty,
    /// An entry is not `CURRENCY:NETWORK`.
    #[error("ledger entry {0:?} is not of the form CURRENCY:NETWORK")]
    MalformedEntry(String),
    /// A currency code is malformed.
    #[error(transparent)]
    Currency(#[from] MalformedCurrency),
    /// A network is unknown.
    #[error(transparent)]
    Network(#[from] UnsupportedNetwork),
    /// The same currency appears twice.
    #[error("currency {0} appears more than once in the ledger table")]
    Duplicate(String),
}

impl LedgerTable {
    /// contract §4's table.
    pub const SPEC_DEFAULT: [(&'static str, Network); 8] = [
        ("BTC", Network::Btc),
        ("ETH", Network::Eth),
        ("POL", Network::Polygon),
        ("SOL", Network::Sol),
        ("BNB", Network::Bsc),
        ("TRX", Network::Tron),
        ("USDC", Network::Eth),
        ("USDT", Network::Eth),
    ];

    /// Builds a table from `(currency, network)` pairs, refusing duplicates and empty tables.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, Network)>,
    ) -> Result<Self, LedgerError> {
        let mut map = BTreeMap::new();
        for (currency, network) in entries {
            let currency = Currency::parse(currency)?;
            if map.insert(currency.clone(), network).is_some() {
                return Err(LedgerError::Duplicate(currency.0));
            }
        }
        if map.is_empty() {
            return Err(LedgerError::Empty);
        }
        Ok(Self(map))
    }

    /// The network the table assigns to `currency`, if the currency is supported.
    pub fn network_for(&self, currency: &Currency) -> Option<Network> {
        self.0.get(currency).copied()
    }

    /// The entries, ordered by currency.
    pub fn iter(&self) -> impl Iterator<Item = (&Currency, Network)> {
        self.0.iter().map(|(c, n)| (c, *n))
    }

    /// The number of currencies.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a table holds at least one currency.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for LedgerTable {
    fn default() -> Self {
        let map = Self::SPEC_DEFAULT
            .iter()
            .map(|(c, n)| (Currency(c.to_string()), *n))
            .collect();
        Self(map)
    }
}

impl FromStr for LedgerTable {
    type Err = LedgerError;

    /// Parses `CURRENCY:NETWORK` entries separated by commas (whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut entries = Vec::new();
        for raw in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (currency, network) = raw
                .split_once(':')
                .ok_or_else(|| LedgerError::MalformedEntry(raw.to_string()))?;
            entries.push((currency.trim(), network.trim().parse::<Network>()?));
        }
        Self::from_entries(entries)
    }
}

impl fmt::Display for LedgerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (c, n)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}:{n}")?;
        }
        Ok(())
    }
}

/// A currency on the network the ledger table assigns to it. Holding one means the pair is
/// supported and consistent.
///
/// ```
/// use domain::{Asset, LedgerTable};
/// let ledger = LedgerTable::default();
/// let asset = Asset::new("usdc", "eth", &ledger).unwrap();
/// assert_eq!((asset.currency().as_str(), asset.network().as_str()), ("USDC", "ETH"));
/// assert!(Asset::new("USDC", "POLYGON", &ledger).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Asset {
    currency: Currency,
    network: Network,
}

/// Why a currency/network pair is not an [`Asset`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// The currency is malformed.
    #[error(transparent)]
    MalformedCurrency(#[from] MalformedCurrency),
    /// The currency is well formed but not in the ledger table.
    #[error("currency {0} is not supported")]
    UnsupportedCurrency(Currency),
    /// The network is unknown.
    #[error(transparent)]
    UnsupportedNetwork(#[from] UnsupportedNetwork),
    /// The network differs from the one the ledger assigns to the currency.
    #[error("currency {currency} is on network {expected}, not {given}")]
    Mismatch {
        /// The currency requested.
        currency: Currency,
        /// The network the ledger table assigns to it.
        expected: Network,
        /// The network requested.
        given: Network,
    },
}

impl RuleViolation for AssetError {
    fn code(&self) -> ErrorCode {
        match self {
            AssetError::MalformedCurrency(_) | AssetError::UnsupportedCurrency(_) => {
                ErrorCode::UnsupportedCurrency
            }
            AssetError::UnsupportedNetwork(_) => ErrorCode::UnsupportedNetwork,
            AssetError::Mismatch { .. } => ErrorCode::CurrencyNetworkMismatch,
        }
    }
}

impl Asset {
    /// Parses and checks a currency/network pair against the ledger table.
    pub fn new(currency: &str, network: &str, ledger: &LedgerTable) -> Result<Self, AssetError> {
        let currency = Currency::parse(currency)?;
        let network = network.parse::<Network>()?;
        Self::from_parts(currency, network, ledger)
    }

    /// Checks already-parsed parts against the ledger table.
    pub fn from_parts(
        currency: Currency,
        network: Network,
        ledger: &LedgerTable,
    ) -> Result<Self, AssetError> {
        match ledger.network_for(&currency) {
            None => Err(AssetError::UnsupportedCurrency(currency)),
            Some(expected) if expected != network => Err(AssetError::Mismatch {
                currency,
                expected,
                given: network,
            }),
            Some(_) => Ok(Self { currency, network }),
        }
    }

    /// Rebuilds an asset that was validated when it was stored, without consulting today's
    /// ledger table: a deployment that later moves a currency to another network must still
    /// be able to load the sessions it created before.
    pub fn from_stored(currency: Currency, network: Network) -> Self {
        Self { currency, network }
    }

    /// The currency, uppercase.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Whether this is bitcoin on the bitcoin network (the only asset Lightning serves).
    pub fn is_btc_on_btc(&self) -> bool {
        lightning_serves(&self.currency, self.network)
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.currency, self.network)
    }
}

/// The bitcoin network in force for address and invoice checks.
///
/// ```
/// use domain::BitcoinNetwork;
/// assert_eq!("signet".parse::<BitcoinNetwork>().unwrap(), BitcoinNetwork::Signet);
/// assert_eq!(BitcoinNetwork::default(), BitcoinNetwork::Mainnet);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BitcoinNetwork {
    /// Bitcoin mainnet: `bc1…`, `1…`, `3…`, invoices `lnbc…`.
    #[default]
    Mainnet,
    /// Testnet: `tb1…`, `m…`/`n…`/`2…`, invoices `lntb…`.
    Testnet,
    /// Signet: `tb1…`, `m…`/`n…`/`2…`, invoices `lntbs…`.
    Signet,
    /// Regtest: `bcrt1…`, `m…`/`n…`/`2…`, invoices `lnbcrt…`.
    Regtest,
}

impl BitcoinNetwork {
    /// The lowercase configuration name.
    pub const fn as_str(self) -> &'static str {
        match self {
            BitcoinNetwork::Mainnet => "mainnet",
            BitcoinNetwork::Testnet => "testnet",
            BitcoinNetwork::Signet => "signet",
            BitcoinNetwork::Regtest => "regtest",
        }
    }

    /// The human-readable part of this network's segwit addresses.
    pub const fn segwit_hrp(self) -> &'static str {
        match self {
            BitcoinNetwork::Mainnet => "bc",
            BitcoinNetwork::Testnet | BitcoinNetwork::Signet => "tb",
            BitcoinNetwork::Regtest => "bcrt",
        }
    }

    /// The base58 version bytes of P2PKH and P2SH addresses.
    pub const fn base58_versions(self) -> (u8, u8) {
        match self {
            BitcoinNetwork::Mainnet => (0x00, 0x05),
            _ => (0x6f, 0xc4),
        }
    }
}

impl fmt::Display for BitcoinNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bitcoin network name that is not `mainnet`, `testnet`, `signet` or `regtest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bitcoin network {0:?} is unknown; use mainnet, testnet, signet or regtest")]
pub struct UnknownBitcoinNetwork(String);

impl FromStr for BitcoinNetwork {
    type Err = UnknownBitcoinNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            BitcoinNetwork::Mainnet,
            BitcoinNetwork::Testnet,
            BitcoinNetwork::Signet,
            BitcoinNetwork::Regtest,
        ]
        .into_iter()
        .find(|n| n.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| UnknownBitcoinNetwork(quote_for_message(s)))
    }
}

/// The configuration every validation depends on: the ledger table and the bitcoin network.
///
/// ```
/// use domain::{BitcoinNetwork, Rules};
/// let rules = Rules::default();
/// assert_eq!(rules.bitcoin_network(), BitcoinNetwork::Mainnet);
/// let testnet = Rules::default().with_bitcoin_network(BitcoinNetwork::Testnet);
/// assert_eq!(testnet.bitcoin_network(), BitcoinNetwork::Testnet);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    ledger: LedgerTable,
    bitcoin_network: BitcoinNetwork,
}

impl Rules {
    /// Rules from their parts.
    pub fn new(ledger: LedgerTable, bitcoin_network: BitcoinNetwork) -> Self {
        Self {
            ledger,
            bitcoin_network,
        }
    }

    /// The same rules with another ledger table.
    pub fn with_ledger(mut self, ledger: LedgerTable) -> Self {
        self.ledger = ledger;
        self
    }

    /// The same rules for another bitcoin network.
    pub fn with_bitcoin_network(mut self, network: BitcoinNetwork) -> Self {
        self.bitcoin_network = network;
        self
    }

    /// The ledger table.
    pub fn ledger(&self) -> &LedgerTable {
        &self.ledger
    }

    /// The bitcoin network for address and invoice checks.
    pub fn bitcoin_network(&self) -> BitcoinNetwork {
        self.bitcoin_network
    }
}

/// Whether Lightning serves this currency on this network: bitcoin on the bitcoin network
/// only. Judged on the parts, so the rule applies even to a pair the ledger table refuses.
///
/// ```
/// use domain::{Currency, Network, lightning_serves};
/// assert!(lightning_serves(&Currency::parse("btc").unwrap(), Network::Btc));
/// assert!(!lightning_serves(&Currency::parse("BTC").unwrap(), Network::Eth));
/// ```
pub fn lightning_serves(currency: &Currency, network: Network) -> bool {
    currency.as_str() == "BTC" && network == Network::Btc
}

/// Shortens user input quoted back in an error message, so a megabyte of garbage does not
/// become a megabyte of error.
pub fn quote_for_message(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_table_is_the_default() {
        let t = LedgerTable::default();
        let got: Vec<(String, Network)> = t.iter().map(|(c, n)| (c.to_string(), n)).collect();
        let mut want: Vec<(String, Network)> = LedgerTable::SPEC_DEFAULT
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(t.to_string().parse::<LedgerTable>().unwrap(), t);
    }

    #[test]
    fn every_network_round_trips_its_name_in_any_case() {
        for n in Network::ALL {
            assert_eq!(n.as_str().parse::<Network>().unwrap(), n);
            assert_eq!(n.as_str().to_lowercase().parse::<Network>().unwrap(), n);
        }
    }

    #[test]
    fn asset_checks_currency_and_network() {
        let l = LedgerTable::default();
        assert!(Asset::new("btc", "Btc", &l).unwrap().is_btc_on_btc());
        assert!(!Asset::new("USDC", "ETH", &l).unwrap().is_btc_on_btc());
        assert_eq!(
            Asset::new("DOGE", "BTC", &l).unwrap_err().code(),
            ErrorCode::UnsupportedCurrency
        );
        assert_eq!(
            Asset::new("BTC", "LTC", &l).unwrap_err().code(),
            ErrorCode::UnsupportedNetwork
        );
        assert_eq!(
            Asset::new("POL", "ETH", &l).unwrap_err().code(),
            ErrorCode::CurrencyNetworkMismatch
        );
        assert_eq!(
            Asset::new("", "ETH", &l).unwrap_err().code(),
            ErrorCode::UnsupportedCurrency
        );
    }

    #[test]
    fn ledger_overrides_are_validated() {
        assert_eq!("".parse::<LedgerTable>(), Err(LedgerError::Empty));
        assert!(matches!(
            "BTC".parse::<LedgerTable>(),
            Err(LedgerError::MalformedEntry(_))
        ));
        assert!(matches!(
            "BTC:BTC,btc:ETH".parse::<LedgerTable>(),
            Err(LedgerError::Duplicate(_))
        ));
        assert!(matches!(
            "BTC:LTC".parse::<LedgerTable>(),
            Err(LedgerError::Network(_))
        ));
        let t: LedgerTable = "LINK:ETH".parse().unwrap();
        assert!(Asset::new("link", "eth", &t).is_ok());
        assert!(Asset::new("BTC", "BTC", &t).is_err());
    }

    #[test]
    fn long_input_is_truncated_in_messages() {
        let long = "x".repeat(10_000);
        let msg = long.parse::<Network>().unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
    }
}
