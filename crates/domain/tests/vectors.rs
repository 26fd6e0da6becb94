//! Published test vectors: BIP-173, BIP-350, EIP-55, BOLT 11 and Bitcoin Core's base58
//! address vectors, read from `tests/vectors/*.json` (each file names its source).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use domain::{BitcoinNetwork, CounterpartyAddress, ErrorCode, Invoice, Network, RuleViolation};
use serde_json::Value;

fn vectors(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key].as_array().unwrap_or_else(|| panic!("missing {key}"))
}

const ALL_BTC: [BitcoinNetwork; 4] = [
    BitcoinNetwork::Mainnet,
    BitcoinNetwork::Testnet,
    BitcoinNetwork::Signet,
    BitcoinNetwork::Regtest,
];

fn segwit_network(address: &str) -> BitcoinNetwork {
    let lower = address.to_lowercase();
    if lower.starts_with("bcrt1") {
        BitcoinNetwork::Regtest
    } else if lower.starts_with("bc1") {
        BitcoinNetwork::Mainnet
    } else {
        BitcoinNetwork::Testnet
    }
}

fn btc(
    address: &str,
    network: BitcoinNetwork,
) -> Result<CounterpartyAddress, domain::AddressError> {
    CounterpartyAddress::parse(Network::Btc, address, network)
}

#[test]
fn bip350_valid_segwit_addresses_are_accepted_and_lowercased() {
    let v = vectors("bip350");
    let valid = list(&v, "valid_addresses");
    assert!(valid.len() >= 6);
    for case in valid {
        let address = case["address"].as_str().unwrap();
        let parsed =
            btc(address, segwit_network(address)).unwrap_or_else(|e| panic!("{address}: {e}"));
        assert_eq!(parsed.as_str(), address.to_lowercase());
    }
}

#[test]
fn bip350_invalid_segwit_addresses_are_refused_on_every_network() {
    let v = vectors("bip350");
    for case in list(&v, "invalid_addresses") {
        let address = case["address"].as_str().unwrap();
        for n in ALL_BTC {
            assert!(
                btc(address, n).is_err(),
                "{address} ({}) accepted on {n}",
                case["reason"]
            );
        }
    }
}

#[test]
fn bip173_v0_addresses_are_accepted_and_v1_plus_need_bech32m() {
    let v = vectors("bip173");
    let mut v0 = 0;
    for case in list(&v, "valid_addresses") {
        let address = case["address"].as_str().unwrap();
        let script = case["scriptpubkey_hex"].as_str().unwrap();
        let result = btc(address, segwit_network(address));
        if script.starts_with("00") {
            v0 += 1;
            assert_eq!(result.unwrap().as_str(), address.to_lowercase());
        } else {
            // BIP-350: witness v1+ written with the bech32 (not bech32m) checksum.
            assert_eq!(
                result.unwrap_err().code(),
                ErrorCode::InvalidAddressChecksum,
                "{address}"
            );
        }
    }
    assert!(v0 >= 2);
    for case in list(&v, "invalid_addresses") {
        let address = case["address"].as_str().unwrap();
        for n in ALL_BTC {
            assert!(btc(address, n).is_err(), "{address} accepted on {n}");
        }
    }
}

#[test]
fn bip173_wrong_checksum_is_a_checksum_error() {
    // From the invalid list: "Invalid checksum".
    let e = btc(
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
        BitcoinNetwork::Mainnet,
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidAddressChecksum);
}

fn base58_network(chain: &str) -> BitcoinNetwork {
    match chain {
        "main" => BitcoinNetwork::Mainnet,
        "signet" => BitcoinNetwork::Signet,
        "regtest" => BitcoinNetwork::Regtest,
        _ => BitcoinNetwork::Testnet,
    }
}

#[test]
fn base58check_addresses_from_bitcoin_core() {
    let v = vectors("base58check");
    let valid = list(&v, "valid");
    assert!(valid.len() >= 10);
    for case in valid {
        let address = case["address"].as_str().unwrap();
        let network = base58_network(case["chain"].as_str().unwrap());
        assert_eq!(btc(address, network).unwrap().as_str(), address);
        // Mainnet and test-network version bytes differ: the other side refuses it.
        let other = if network == BitcoinNetwork::Mainnet {
            BitcoinNetwork::Testnet
        } else {
            BitcoinNetwork::Mainnet
        };
        assert_eq!(
            btc(address, other).unwrap_err().code(),
            ErrorCode::AddressNetworkMismatch
        );
    }
    for case in list(&v, "invalid") {
        let address = case.as_str().unwrap();
        for n in ALL_BTC {
            assert!(btc(address, n).is_err(), "{address:?} accepted on {n}");
        }
    }
}

#[test]
fn eip55_examples() {
    let v = vectors("eip55");
    let valid = list(&v, "valid_checksummed");
    assert_eq!(valid.len(), 8);
    for case in valid {
        let address = case.as_str().unwrap();
        for network in [Network::Eth, Network::Polygon, Network::Bsc] {
            let parsed =
                CounterpartyAddress::parse(network, address, BitcoinNetwork::Mainnet).unwrap();
            // All-caps and all-lower examples are their own checksum form only when they
            // contain no letters that EIP-55 would capitalise differently.
            assert!(parsed.as_str().eq_ignore_ascii_case(address));
            let lower = format!("0x{}", address[2..].to_lowercase());
            let from_lower =
                CounterpartyAddress::parse(network, &lower, BitcoinNetwork::Mainnet).unwrap();
            assert_eq!(from_lower, parsed);
        }
    }
    // The "normal" (mixed-case) examples are exactly the EIP-55 form; flipping one letter's
    // case breaks the checksum.
    for case in v["groups"]["normal"].as_array().unwrap() {
        let address = case.as_str().unwrap();
        let parsed =
            CounterpartyAddress::parse(Network::Eth, address, BitcoinNetwork::Mainnet).unwrap();
        assert_eq!(parsed.as_str(), address);
        let i = address[2..]
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap()
            + 2;
        let mut flipped: Vec<char> = address.chars().collect();
        flipped[i] = if flipped[i].is_ascii_uppercase() {
            flipped[i].to_ascii_lowercase()
        } else {
            flipped[i].to_ascii_uppercase()
        };
        let flipped: String = flipped.into_iter().collect();
        let e = CounterpartyAddress::parse(Network::Eth, &flipped, BitcoinNetwork::Mainnet)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidAddressChecksum, "{flipped}");
    }
}

fn invoice_network(currency: &str) -> BitcoinNetwork {
    match currency {
        "bc" => BitcoinNetwork::Mainnet,
        "tb" => BitcoinNetwork::Testnet,
        "tbs" => BitcoinNetwork::Signet,
        _ => BitcoinNetwork::Regtest,
    }
}

#[test]
fn bolt11_valid_examples_decode_to_their_payment_hash() {
    let v = vectors("bolt11");
    let valid = list(&v, "valid");
    assert!(valid.len() >= 10);
    for case in valid {
        let invoice = case["invoice"].as_str().unwrap();
        let network = invoice_network(case["currency"].as_str().unwrap());
        let decoded = Invoice::decode(invoice, network)
            .unwrap_or_else(|e| panic!("{}: {e}", case["description"]));
        assert_eq!(
            decoded.payment_hash().to_string(),
            case["payment_hash_hex"].as_str().unwrap()
        );
        // The examples date from 2017: expired, accepted, and reported as expired.
        let now = domain::chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(decoded.details().is_expired_at(now));
        assert!(decoded.details().expires_at > decoded.details().created_at);
        // With a `lightning:` prefix in any case, and all uppercase: the same hash.
        let prefixed = format!("LIGHTNING:{}", invoice.to_uppercase());
        assert_eq!(
            Invoice::decode(&prefixed, network).unwrap().payment_hash(),
            decoded.payment_hash()
        );
        // On any other network: refused as a network mismatch.
        for other in ALL_BTC.into_iter().filter(|n| *n != network) {
            let e = Invoice::decode(invoice, other).unwrap_err();
            assert_eq!(
                e.code(),
                ErrorCode::InvoiceNetworkMismatch,
                "{} on {other}",
                case["description"]
            );
        }
    }
}

#[test]
fn bolt11_invalid_examples_are_refused() {
    let v = vectors("bolt11");
    let invalid = list(&v, "invalid");
    assert!(invalid.len() >= 6);
    for case in invalid {
        let invoice = case["invoice"].as_str().unwrap();
        let e = Invoice::decode(invoice, BitcoinNetwork::Mainnet)
            .expect_err(case["description"].as_str().unwrap());
        assert!(
            matches!(
                e.code(),
                ErrorCode::InvalidInvoice | ErrorCode::InvalidInvoiceSignature
            ),
            "{}: {e}",
            case["description"]
        );
    }
}
