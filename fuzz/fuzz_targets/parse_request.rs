//! Arbitrary bytes as a create-session body: the API's `parse_json` must never panic, must
//! report at least one problem when it refuses, and an accepted request must have a
//! well-defined reuse key — under the default rules (bitcoin mainnet) and with regtest.

#![no_main]

use std::sync::LazyLock;

use api::http::create_body::parse_json;
use domain::{BitcoinNetwork, Counterparty, Rules};
use libfuzzer_sys::fuzz_target;

static MAINNET: LazyLock<Rules> = LazyLock::new(Rules::default);
static REGTEST: LazyLock<Rules> =
    LazyLock::new(|| Rules::default().with_bitcoin_network(BitcoinNetwork::Regtest));

fuzz_target!(|data: &[u8]| {
    for rules in [&*MAINNET, &*REGTEST] {
        match parse_json(data, rules) {
            Ok(valid) => {
                let key = valid.reuse_key();
                let digest = key.digest();
                assert_eq!(digest.to_hex().len(), 64);
                // The key encodes each variable-length component behind a one-byte length
                // (`push_short`, which truncates at 255): an accepted component that long
                // would make different counterparties share a key.
                let scope = valid.scope();
                if let Counterparty::Address(address) = scope.counterparty() {
                    assert!(
                        address.as_str().len() < 256,
                        "address of {} bytes",
                        address.as_str().len()
                    );
                }
                if let Some(tx) = scope.tx_hash() {
                    assert!(
                        tx.as_str().len() < 256,
                        "txHash of {} bytes",
                        tx.as_str().len()
                    );
                }
                // Deterministic: the same bytes give the same request.
                assert_eq!(parse_json(data, rules).ok().as_ref(), Some(&valid));
            }
            Err(errors) => {
                assert!(
                    !errors.is_empty(),
                    "a refusal must name at least one problem"
                );
                for error in errors.errors() {
                    assert!(!error.code.as_str().is_empty());
                    assert!(!error.message.is_empty());
                }
                let _ = errors.to_string();
            }
        }
    }
});
