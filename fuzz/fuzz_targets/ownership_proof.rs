//! Arbitrary bytes as an ownership proof: `domain::verify` must never panic, for every kind
//! of proof target, whatever the message and the signature. The first byte picks the target,
//! the second how many of the remaining bytes are the message (the rest is the signature).
//! Verification must also be deterministic, and an accepted proof's method must be one the
//! target lists.

#![no_main]

use std::sync::LazyLock;

use domain::{BitcoinNetwork, CounterpartyAddress, Network, NodeId, ProofTarget, verify};
use libfuzzer_sys::fuzz_target;

/// One target per kind. The key behind the EVM, TRON, Solana and Lightning ones is
/// 0x0102…20; the bitcoin ones are addresses of the published BIP-322 vectors, so the seeds
/// (fuzz/corpus/ownership_proof) hold valid proofs over "Hello World" for each kind.
static TARGETS: LazyLock<Vec<ProofTarget>> = LazyLock::new(|| {
    let address = |network, s: &str| {
        let a = CounterpartyAddress::parse(network, s, BitcoinNetwork::Mainnet)
            .unwrap_or_else(|e| panic!("{s}: {e}"));
        ProofTarget::for_address(&a).unwrap_or_else(|e| panic!("{s}: {e}"))
    };
    vec![
        address(Network::Btc, "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l"),
        address(Network::Btc, "bc1ppv609nr0vr25u07u95waq5lucwfm6tde4nydujnu8npg4q75mr5sxq8lt3"),
        address(Network::Btc, "32Utb7Seg6EXq7UesMNJXhQ1gdohYNyzQ9"),
        address(Network::Btc, "13vU5PUSuArDXJdCWZvUFEbgJ2wcmtSJWn"),
        address(Network::Eth, "0x6370eF2f4Db3611D657b90667De398a2Cc2a370C"),
        address(Network::Tron, "TK31Bs4p7BZionueRbSrG5ZTfxPyHCLy3a"),
        address(Network::Sol, "9C6hybhQ6Aycep9jaUnP6uL9ZYvDjUp1aSkFWPUFJtpj"),
        ProofTarget::for_node(
            NodeId::parse("0284bf7562262bbd6940085748f3be6afa52ae317155181ece31b66351ccffa4b0")
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    ]
});

fuzz_target!(|data: &[u8]| {
    let [kind, split, rest @ ..] = data else {
        return;
    };
    let target = &TARGETS[usize::from(*kind) % TARGETS.len()];
    let (message, signature) = rest.split_at(usize::from(*split).min(rest.len()));
    let message = String::from_utf8_lossy(message);
    let signature = String::from_utf8_lossy(signature);
    let first = verify(target, &message, &signature);
    if let Ok(method) = &first {
        assert!(target.methods().contains(method), "{method} for {target:?}");
    }
    assert_eq!(verify(target, &message, &signature), first);
});
