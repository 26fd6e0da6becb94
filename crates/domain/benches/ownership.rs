//! Ownership-proof verification per method, on one core: [`domain::verify`] beside the bare
//! library call it rests on, so the ratio shows what the crate adds (decoding, hashing, the
//! address derivation, trying the forms a signature may take).
//!
//! | method | fixture | bare call |
//! |---|---|---|
//! | BIP-322 simple P2WPKH, P2TR | the BIP-322 vectors' "Hello World" | `bip322::verify_simple_encoded` |
//! | BIP-322 full P2SH-P2WPKH | the generated vectors' full proof | `bip322::verify_full_encoded` |
//! | BIP-137 (P2WPKH, Electrum header) | bitcoinjs-message, key 0x0102…20 | secp256k1 recovery of the decoded signature |
//! | EIP-191, TRON | eth-account, tronpy, key 0x0102…20 | secp256k1 recovery of the decoded signature |
//! | ED25519 raw, SOLANA_OFFCHAIN_MESSAGE (Anza) | PyNaCl, key 0x0102…20 | `VerifyingKey::verify_strict` once |
//! | LIGHTNING_SIGNMESSAGE | coincurve, key 0x0102…20 | secp256k1 recovery of the decoded signature |
//!
//! Criterion runs its groups first. Then, as a benchmark (`cargo bench`), `main` times every
//! pair itself in the same process — 31 interleaved rounds of ~40 ms each — and prints the
//! medians, verifications per second and the ratio; those are the figures quoted in
//! `docs/ownership-proofs.md`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bitcoin::hashes::{Hash as _, sha256d};
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use bitcoin::secp256k1::{Message, Secp256k1};
use criterion::{Criterion, criterion_group};
use domain::{
    BitcoinNetwork, CounterpartyAddress, Network, NodeId, ProofMethod, ProofTarget, verify,
};
use sha3::{Digest, Keccak256};

const HELLO: &str = "Hello World";
const ROUNDS: usize = 31;
const ROUND_TARGET: Duration = Duration::from_millis(40);

/// A bare library call, prepared outside the timed loop.
type Bare = Box<dyn FnMut() -> bool>;

struct Case {
    name: &'static str,
    method: ProofMethod,
    target: ProofTarget,
    message: String,
    signature: String,
    bare: Bare,
}

fn address(network: Network, s: &str) -> ProofTarget {
    let a = CounterpartyAddress::parse(network, s, BitcoinNetwork::Mainnet).unwrap();
    ProofTarget::for_address(&a).unwrap()
}

/// secp256k1 recovery of a prepared 65-byte signature (`header` − `base` = recovery id)
/// over a prepared digest.
fn recover(compact: &[u8], recid: u8, digest: [u8; 32]) -> Bare {
    let sig = RecoverableSignature::from_compact(
        compact,
        RecoveryId::from_i32(i32::from(recid)).unwrap(),
    )
    .unwrap();
    let msg = Message::from_digest(digest);
    Box::new(move || {
        Secp256k1::verification_only()
            .recover_ecdsa(black_box(&msg), black_box(&sig))
            .is_ok()
    })
}

fn keccak_prefixed(prefix: &str, m: &str) -> [u8; 32] {
    Keccak256::digest(format!("{prefix}{}{m}", m.len())).into()
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // BIP-322 simple, P2WPKH and P2TR (published vectors).
    for (name, addr, sig) in [
        (
            "bip322_simple_p2wpkh",
            "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l",
            "smpAkcwRAIgZRfIY3p7/DoVTty6YZbWS71bc5Vct9p9Fia83eRmw2QCICK/ENGfwLtptFluMGs2KsqoNSk89pO7F29zJLUx9a/sASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI=",
        ),
        (
            "bip322_simple_p2tr",
            "bc1ppv609nr0vr25u07u95waq5lucwfm6tde4nydujnu8npg4q75mr5sxq8lt3",
            "smpAUHd69PrJQEv+oKTfZ8l+WROBHuy9HKrbFCJu7U1iK2iiEy1vMU5EfMtjc+VSHM7aU0SDbak5IUZRVno2P5mjSafAQ==",
        ),
    ] {
        cases.push(Case {
            name,
            method: ProofMethod::Bip322,
            target: address(Network::Btc, addr),
            message: HELLO.into(),
            signature: sig.into(),
            bare: Box::new(move || {
                bip322::verify_simple_encoded(addr, HELLO, black_box(sig)).is_ok()
            }),
        });
    }
    // BIP-322 full, P2SH-P2WPKH (generated vectors).
    let generated: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/bip322-generated-test-vectors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let full = generated["full"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "p2sh-p2wpkh")
        .unwrap();
    let (addr, message, sig) = (
        full["address"].as_str().unwrap().to_string(),
        full["message"].as_str().unwrap().to_string(),
        full["bip322_signatures"][0].as_str().unwrap().to_string(),
    );
    cases.push(Case {
        name: "bip322_full_p2sh_p2wpkh",
        method: ProofMethod::Bip322,
        target: address(Network::Btc, &addr),
        message: message.clone(),
        signature: sig.clone(),
        bare: Box::new(move || {
            bip322::verify_full_encoded(&addr, &message, black_box(&sig)).is_ok()
        }),
    });
    // BIP-137, Electrum header for a P2WPKH address.
    let bip137 =
        "IFkpWeUw7uSCAzYdxfbiC4pAqCGoRzxiyy+TOvEfYB9KKynuGMwX5VMkse0JcFc154NiGfHszemxByEpGeah9v0=";
    let bytes = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(bip137)
            .unwrap()
    };
    cases.push(Case {
        name: "bip137_p2wpkh_electrum",
        method: ProofMethod::Bip137,
        target: address(Network::Btc, "bc1qtp7fhly84qm6q4hhzmp0nh5frtdugmys2sa75y"),
        message: HELLO.into(),
        signature: bip137.into(),
        bare: recover(
            &bytes[1..],
            (bytes[0] - 27) % 4,
            bitcoin::sign_message::signed_msg_hash(HELLO).to_byte_array(),
        ),
    });
    // EIP-191 and TRON.
    let eth = "13ddcbd02d47adf9a644f0e187ac60319959474ce52264f75a54a8997f3b06a75afd3070eabbdd865d005d6d33a7d2c9e6a64b537c8ef07483a6427cf9c004531c";
    let tron = "40580188b10720ac5eac12f9fc83642d9bb904f7f0f2660187a9fd5dda44c60029aa6eb79b0fd0d3ca371510ac1ecc2e2b4341dfd0a5d86a5df251027701bf7800";
    let (eb, tb) = (hex::decode(eth).unwrap(), hex::decode(tron).unwrap());
    cases.push(Case {
        name: "eip191",
        method: ProofMethod::Eip191,
        target: address(Network::Eth, "0x6370eF2f4Db3611D657b90667De398a2Cc2a370C"),
        message: HELLO.into(),
        signature: format!("0x{eth}"),
        bare: recover(
            &eb[..64],
            eb[64] - 27,
            keccak_prefixed("\x19Ethereum Signed Message:\n", HELLO),
        ),
    });
    cases.push(Case {
        name: "tron_sign_message_v2",
        method: ProofMethod::TronSignMessageV2,
        target: address(Network::Tron, "TK31Bs4p7BZionueRbSrG5ZTfxPyHCLy3a"),
        message: HELLO.into(),
        signature: tron.into(),
        bare: recover(
            &tb[..64],
            tb[64],
            keccak_prefixed("\x19TRON Signed Message:\n", HELLO),
        ),
    });
    // Solana: raw ed25519 and the Anza envelope (tried last of four forms).
    let sol_key = ed25519_dalek::VerifyingKey::from_bytes(
        &bs58::decode("9C6hybhQ6Aycep9jaUnP6uL9ZYvDjUp1aSkFWPUFJtpj")
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    for (name, method, sig) in [
        (
            "ed25519_raw",
            ProofMethod::Ed25519,
            "4o3kP7PmHBYFuj4E2sExG5hvXZ8voW5gxH6i9XoinrA7HVarnBJGh9cGA4cngcWDuSP16EmBhw59WjkbERr79HTg",
        ),
        (
            "solana_offchain_anza",
            ProofMethod::SolanaOffchainMessage,
            "nejESxMgbjs827BRpkq5qL5TUCf99zEbEzu78Y5ApWEqZWmJH74HVXqpk5ibfnYrvPuMsHcNad4NixtVEcCZxBv",
        ),
    ] {
        let raw: [u8; 64] = bs58::decode("4o3kP7PmHBYFuj4E2sExG5hvXZ8voW5gxH6i9XoinrA7HVarnBJGh9cGA4cngcWDuSP16EmBhw59WjkbERr79HTg")
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap();
        let raw = ed25519_dalek::Signature::from_bytes(&raw);
        cases.push(Case {
            name,
            method,
            target: address(Network::Sol, "9C6hybhQ6Aycep9jaUnP6uL9ZYvDjUp1aSkFWPUFJtpj"),
            message: HELLO.into(),
            signature: sig.into(),
            bare: Box::new(move || {
                sol_key
                    .verify_strict(black_box(HELLO.as_bytes()), black_box(&raw))
                    .is_ok()
            }),
        });
    }
    // Lightning signmessage.
    let ln = "dh7bzzoy1hmqk3r3gngkcrei5jtow5k96kpz9wufdmjhr976pk7rrjf8u5acibkktm5d3yahued6w6hkjqqbqyhp4ck86ofww7si96bi";
    let node = NodeId::parse("0284bf7562262bbd6940085748f3be6afa52ae317155181ece31b66351ccffa4b0")
        .unwrap();
    let digest =
        sha256d::Hash::hash(format!("Lightning Signed Message:{HELLO}").as_bytes()).to_byte_array();
    let ln_bytes = zbase32_decode(ln);
    cases.push(Case {
        name: "lightning_signmessage",
        method: ProofMethod::LightningSignmessage,
        target: ProofTarget::for_node(node),
        message: HELLO.into(),
        signature: ln.into(),
        bare: recover(&ln_bytes[1..], ln_bytes[0] - 31, digest),
    });
    for case in &mut cases {
        assert_eq!(
            verify(&case.target, &case.message, &case.signature),
            Ok(case.method),
            "{}",
            case.name
        );
        assert!(
            (case.bare)(),
            "{}: the bare call refuses the fixture",
            case.name
        );
    }
    cases
}

/// z-base-32 for the fixture, written again here so the bench does not reach into the crate.
fn zbase32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "ybndrfg8ejkmcpqxot1uwisza345h769";
    let bits: String = s
        .chars()
        .map(|c| format!("{:05b}", ALPHABET.find(c).unwrap()))
        .collect();
    bits.as_bytes()
        .chunks(8)
        .filter(|c| c.len() == 8)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
        .collect()
}

fn bench_verify(c: &mut Criterion) {
    for mut case in cases() {
        let mut group = c.benchmark_group(case.name);
        group.bench_function("domain", |b| {
            b.iter(|| {
                verify(
                    black_box(&case.target),
                    black_box(&case.message),
                    black_box(&case.signature),
                )
            })
        });
        group.bench_function("bare", |b| b.iter(|| (case.bare)()));
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_verify
}

fn calibrate(f: &mut dyn FnMut()) -> u32 {
    let start = Instant::now();
    let mut n: u32 = 0;
    while start.elapsed() < ROUND_TARGET / 4 {
        f();
        n += 1;
    }
    let per = start.elapsed() / n.max(1);
    u32::try_from(ROUND_TARGET.as_nanos() / per.as_nanos().max(1))
        .unwrap_or(u32::MAX)
        .max(1)
}

fn round(f: &mut dyn FnMut(), n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn in_process_report() {
    println!();
    println!(
        "== in-process timing, one core: median of {ROUNDS} interleaved rounds of ~{ROUND_TARGET:?} =="
    );
    println!(
        "{:<26} {:>12} {:>12} {:>12} {:>12} {:>7}",
        "case", "domain µs", "verif/s", "bare µs", "bare/s", "ratio"
    );
    for mut case in cases() {
        let mut ours = || {
            let _ = black_box(verify(
                black_box(&case.target),
                black_box(&case.message),
                black_box(&case.signature),
            ));
        };
        let bare = &mut case.bare;
        let mut theirs = || {
            black_box(bare());
        };
        let (n1, n2) = (calibrate(&mut ours), calibrate(&mut theirs));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            a.push(round(&mut ours, n1));
            b.push(round(&mut theirs, n2));
        }
        let (a, b) = (median(a), median(b));
        println!(
            "{:<26} {:>12.1} {:>12.0} {:>12.1} {:>12.0} {:>7.2}",
            case.name,
            a / 1e3,
            1e9 / a,
            b / 1e3,
            1e9 / b,
            a / b
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs this binary without `--bench`: check the fixtures only.
    if std::env::args().any(|a| a == "--bench") {
        in_process_report();
    } else {
        let _ = cases();
    }
}
