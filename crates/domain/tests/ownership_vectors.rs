//! Published BIP-322 test vectors (bitcoin/bips `bip-0322/basic-test-vectors.json` and
//! `generated-test-vectors.json`, verbatim in `tests/vectors/`) through `domain::verify`, for
//! every address type: what the contract accepts verifies, what it does not is refused with
//! the right code, and a script address has no proof target at all. Also: the BOLT 11
//! examples' payee is the node id the spec names.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use domain::{
    BitcoinNetwork, CounterpartyAddress, Invoice, Network, ProofError, ProofMethod, ProofTarget,
    ProofUnavailable, verify,
};
use serde_json::Value;

fn vectors(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn target(address: &str) -> Result<ProofTarget, ProofUnavailable> {
    let a = CounterpartyAddress::parse(Network::Btc, address, BitcoinNetwork::Mainnet)
        .unwrap_or_else(|e| panic!("{address}: {e}"));
    ProofTarget::for_address(&a)
}

fn str_of<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {case}"))
}

/// What the contract says about a vector of this type and signature variant.
#[derive(Debug, PartialEq)]
enum Expect {
    Valid,
    /// No proof target: the address is a script.
    Unavailable,
    /// Refused as not a form this address type proves with.
    Malformed,
    /// A well-formed proof that is not this address's (P2SH is taken as P2SH-P2WPKH).
    Mismatch,
}

fn expectation(kind: &str, signature: &str) -> Expect {
    let variant = &signature[..3];
    match (kind, variant) {
        ("p2wpkh" | "p2tr" | "p2sh-p2wpkh", "smp" | "ful") => Expect::Valid,
        // A Taproot script-path spend (a time-locked script): only key-path spends, a 64- or
        // 65-byte Schnorr signature, prove a Taproot address here.
        ("p2tr-time-lock", _) => Expect::Malformed,
        (k, _) if k.starts_with("p2wsh") => Expect::Unavailable,
        // P2PKH proves with BIP-137 only; no address proves with a proof of funds.
        ("p2pkh", _) | (_, "pof") => Expect::Malformed,
        // Multisig behind P2SH: an address cannot tell, so it is taken as P2SH-P2WPKH.
        ("p2sh-p2wsh-multisig-2of2" | "p2sh-multisig-2of2", _) => Expect::Mismatch,
        _ => Expect::Valid, // unprefixed simple signatures of single-key types
    }
}

fn outcome(address: &str, message: &str, signature: &str) -> Expect {
    match target(address) {
        Err(ProofUnavailable::Script) => Expect::Unavailable,
        Err(e) => panic!("{address}: {e:?}"),
        Ok(t) => match verify(&t, message, signature) {
            Ok(ProofMethod::Bip322) => Expect::Valid,
            Ok(other) => panic!("{address}: verified as {other}"),
            Err(ProofError::Malformed(_)) => Expect::Malformed,
            Err(ProofError::Mismatch) => Expect::Mismatch,
        },
    }
}

#[test]
fn bip322_signatures_verify_per_address_type() {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for file in ["bip322-basic-test-vectors", "bip322-generated-test-vectors"] {
        let v = vectors(file);
        for group in ["simple", "full", "proof_of_funds"] {
            let Some(cases) = v[group].as_array() else {
                continue;
            };
            for case in cases {
                let (address, message) = (str_of(case, "address"), str_of(case, "message"));
                let kind = str_of(case, "type");
                for signature in case["bip322_signatures"].as_array().unwrap() {
                    let signature = signature.as_str().unwrap();
                    let expected = expectation(kind, signature);
                    assert_eq!(
                        outcome(address, message, signature),
                        expected,
                        "{file} {group} {kind} {address} {signature}"
                    );
                    *counts.entry(format!("{kind} {expected:?}")).or_default() += 1;
                }
            }
        }
    }
    // Every supported BIP-322 address type was exercised with valid signatures.
    for kind in ["p2wpkh", "p2tr", "p2sh-p2wpkh"] {
        assert!(counts.contains_key(&format!("{kind} Valid")), "{counts:?}");
    }
    assert!(counts.contains_key("p2pkh Malformed"), "{counts:?}");
    assert!(
        counts.contains_key("p2sh-multisig-2of2 Mismatch"),
        "{counts:?}"
    );
}

#[test]
fn bip322_error_vectors_are_refused() {
    for file in ["bip322-basic-test-vectors", "bip322-generated-test-vectors"] {
        for case in vectors(file)["error"].as_array().unwrap() {
            let (address, message) = (str_of(case, "address"), str_of(case, "message"));
            let (signature, description) = (str_of(case, "signature"), str_of(case, "description"));
            let Ok(t) = target(address) else {
                // A P2WSH address: no proof at all (ownership_proof_unavailable).
                assert!(
                    address.starts_with("bc1q") && address.len() == 62,
                    "{address}"
                );
                continue;
            };
            let result = verify(&t, message, signature);
            assert!(result.is_err(), "{file}: {description}: {result:?}");
            let single_key_bip322 = ["p2wpkh", "p2tr", "p2sh-p2wpkh"]
                .iter()
                .any(|k| description.contains(&format!("for {k} ")));
            if description.starts_with("wrong") && single_key_bip322 {
                assert_eq!(result, Err(ProofError::Mismatch), "{file}: {description}");
            }
            if description.contains("base64") || description.contains("prefix") {
                assert!(
                    matches!(result, Err(ProofError::Malformed(_))),
                    "{file}: {description}: {result:?}"
                );
            }
        }
    }
}

#[test]
fn taproot_accepts_65_byte_schnorr_signatures_too() {
    // A SIGHASH_ALL (65-byte) key-path signature: the "Hello World" vector of bip322-js's
    // verifier tests (ACken2/bip322-js `test/Verifier.test.ts`), also in the `bip322` crate.
    let t = target("bc1ppv609nr0vr25u07u95waq5lucwfm6tde4nydujnu8npg4q75mr5sxq8lt3").unwrap();
    let sig = "smpAUHd69PrJQEv+oKTfZ8l+WROBHuy9HKrbFCJu7U1iK2iiEy1vMU5EfMtjc+VSHM7aU0SDbak5IUZRVno2P5mjSafAQ==";
    assert_eq!(verify(&t, "Hello World", sig), Ok(ProofMethod::Bip322));
    assert_eq!(verify(&t, "Hello World!", sig), Err(ProofError::Mismatch));
    // The 64-byte form (SIGHASH_DEFAULT) is the basic vectors' unprefixed one, above.
}

#[test]
fn a_stored_proof_verifies_again_from_the_record_alone() {
    let v = vectors("bip322-generated-test-vectors");
    let case = &v["full"].as_array().unwrap()[4]; // p2sh-p2wpkh, full
    assert_eq!(str_of(case, "type"), "p2sh-p2wpkh");
    let record = (
        str_of(case, "address").to_string(),
        str_of(case, "message").to_string(),
        case["bip322_signatures"][0].as_str().unwrap().to_string(),
    );
    // The record holds the address as stored, the message and the signature: nothing else.
    let address = CounterpartyAddress::from_stored(Network::Btc, record.0.clone());
    let target = ProofTarget::for_address(&address).unwrap();
    let first = verify(&target, &record.1, &record.2);
    assert_eq!(first, Ok(ProofMethod::Bip322));
    for _ in 0..3 {
        assert_eq!(verify(&target, &record.1, &record.2), first);
    }
}

#[test]
fn the_bolt11_examples_name_the_spec_node_as_payee() {
    let v = vectors("bolt11");
    let payee = str_of(&v, "payee_pubkey_hex");
    let mut checked = 0;
    for case in v["valid"].as_array().unwrap() {
        let network = match str_of(case, "currency") {
            "bc" => BitcoinNetwork::Mainnet,
            "tb" => BitcoinNetwork::Testnet,
            "bcrt" => BitcoinNetwork::Regtest,
            _ => continue,
        };
        let invoice = Invoice::decode(str_of(case, "invoice"), network).unwrap();
        assert_eq!(invoice.payee_node_id().to_string(), payee);
        assert_eq!(
            ProofTarget::for_node(invoice.payee_node_id()).address_text(),
            payee
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}
