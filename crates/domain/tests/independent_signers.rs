//! Signatures made by implementations that are not ours verify with `domain::verify`.
//!
//! Fresh keys are made by the signers themselves; each signs a challenge rendered by our
//! [`Challenge`] for its address, another session's challenge for the same address, and
//! (with a second key) the same challenge. Every method must verify its own signature and
//! refuse, with the right code, another key, an altered message, another session's challenge,
//! a truncated signature, garbage and oversize input; an address that cannot sign (P2WSH) has
//! no proof target.
//!
//! - bitcoin: `bip322-js` (BIP-322 simple; full built from its own `to_spend`/`to_sign`
//!   construction with `bitcoinjs-lib` 6.1.7) and `bitcoinjs-message` (BIP-137 in the Bitcoin
//!   Core, Trezor and Electrum header styles), from npm: `tests/signers/sign.js`, installed
//!   with `npm ci` from the committed lockfile into `target/ownership-signers-npm`;
//! - EVM `eth-account`, TRON `tronpy`, Solana `PyNaCl` (both off-chain envelopes built in
//!   Python from their published layouts), Lightning `coincurve` (z-base-32 written in Python
//!   from its specification), from PyPI: `tests/signers/sign.py`, installed from the pinned
//!   `tests/signers/requirements.txt` into the venv `target/ownership-signers-venv`.
//!
//! Needs `python3` (with `venv`) and `node` with `npm`; the packages come from the package
//! registries once, later runs reuse them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use chrono::DateTime;
use domain::{
    BitcoinNetwork, Challenge, ChallengeNonce, CounterpartyAddress, ErrorCode, MAX_SIGNATURE_LEN,
    Network, NodeId, ProofError, ProofMethod, ProofTarget, ProofUnavailable, RuleViolation,
    SessionId, verify,
};
use serde_json::{Value, json};

fn signers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/signers")
}

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// Runs a command to completion, or fails the test saying what to install.
fn status(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(status.success(), "{what} failed: {cmd:?}");
}

fn require(program: &str, hint: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "`{program}` is needed for this test: {hint}");
}

/// The venv's python with the pinned signers installed.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = target_dir().join("ownership-signers-venv");
        let python = venv.join("bin/python");
        let requirements = signers_dir().join("requirements.txt");
        let stamp = venv.join("installed-requirements.txt");
        let wanted = std::fs::read_to_string(&requirements).unwrap();
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            require(
                "python3",
                "install Python 3 with venv (Debian: apt-get install python3 python3-venv)",
            );
            status(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv (Debian: apt-get install python3-venv)",
            );
            status(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "-r",
                    ])
                    .arg(&requirements),
                "pip install -r tests/signers/requirements.txt",
            );
            std::fs::write(&stamp, wanted).unwrap();
        }
        python
    })
}

/// `node_modules` of the committed lockfile, installed with `npm ci`.
fn node_modules() -> &'static Path {
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    MODULES.get_or_init(|| {
        require(
            "node",
            "install Node.js 18 or later with npm (Debian: apt-get install nodejs npm)",
        );
        let dir = target_dir().join("ownership-signers-npm");
        let lock = std::fs::read_to_string(signers_dir().join("package-lock.json")).unwrap();
        let stamp = dir.join("installed-package-lock.json");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
            require("npm", "install npm (Debian: apt-get install npm)");
            std::fs::create_dir_all(&dir).unwrap();
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(signers_dir().join(file), dir.join(file)).unwrap();
            }
            // No install scripts: the packages' native builds are optional, their pure
            // JavaScript paths are what runs.
            status(
                Command::new("npm")
                    .args([
                        "ci",
                        "--ignore-scripts",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                    ])
                    .current_dir(&dir),
                "npm ci in target/ownership-signers-npm",
            );
            std::fs::write(&stamp, lock).unwrap();
        }
        dir.join("node_modules")
    })
}

/// Runs a signer script with `input` on stdin and parses what it prints.
fn run(mut cmd: Command, input: &Value) -> Value {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd:?} printed no JSON: {e}"))
}

fn node(command: &str, input: &Value) -> Value {
    let mut cmd = Command::new("node");
    cmd.arg(signers_dir().join("sign.js"))
        .arg(command)
        .env("NODE_PATH", node_modules());
    run(cmd, input)
}

fn py(command: &str, input: &Value) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(signers_dir().join("sign.py")).arg(command);
    run(cmd, input)
}

/// One key's address, the target it gives, and the signatures made for it.
struct Case {
    kind: String,
    target: ProofTarget,
    /// Our challenge for this address.
    challenge: String,
    /// The signatures of our challenge by the address's key, by name.
    own: Vec<(String, String)>,
    /// The same key over another session's challenge for the same address.
    other_session: Vec<(String, String)>,
    /// A second key of the same kind over our challenge.
    other_key: Vec<(String, String)>,
}

/// The cases of one signer run, and the kinds whose address has no proof target (with why).
type Signed = (Vec<Case>, Vec<(String, String)>);

fn challenge(target: &ProofTarget, session: u128, nonce: u8) -> String {
    Challenge::new(
        "Acme Pay ✓",
        target,
        SessionId::from_uuid(uuid::Uuid::from_u128(session)),
        ChallengeNonce::from_bytes([nonce; 7]),
        DateTime::from_timestamp(1_796_464_800, 0).unwrap(),
    )
    .unwrap()
    .into_string()
}

fn network_of(kind: &str) -> Network {
    match kind {
        "eth" => Network::Eth,
        "tron" => Network::Tron,
        "sol" => Network::Sol,
        _ => Network::Btc,
    }
}

fn target_of(kind: &str, address: &str) -> Result<ProofTarget, ProofUnavailable> {
    if kind == "ln" {
        return Ok(ProofTarget::for_node(NodeId::parse(address).unwrap()));
    }
    let a = CounterpartyAddress::parse(network_of(kind), address, BitcoinNetwork::Mainnet)
        .unwrap_or_else(|e| panic!("{kind} {address}: {e}"));
    ProofTarget::for_address(&a)
}

fn named(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| (k.clone(), s.as_str().unwrap().to_string()))
        .collect()
}

/// Asks a signer for keys, renders our challenges for them and has it sign.
fn sign_all(signer: fn(&str, &Value) -> Value) -> Signed {
    let keys = signer("keys", &Value::Null);
    let mut jobs = Vec::new();
    let mut pending = Vec::new();
    let mut unavailable = Vec::new();
    for (kind, pair) in keys.as_object().unwrap() {
        let (a, b) = (&pair[0], &pair[1]);
        let address = a["address"].as_str().unwrap();
        let target = match target_of(kind, address) {
            Ok(t) => t,
            Err(e) => {
                unavailable.push((kind.clone(), e.to_string()));
                assert_eq!(e.code(), ErrorCode::OwnershipProofUnavailable);
                continue;
            }
        };
        let ours = challenge(&target, 1, 0x11);
        let theirs = challenge(&target, 2, 0x22);
        for (key, message) in [(a, &ours), (a, &theirs), (b, &ours)] {
            jobs.push(json!({
                "kind": kind, "secret": key["secret"], "address": key["address"], "message": message,
            }));
        }
        pending.push((kind.clone(), target, ours));
    }
    let signed = signer("sign", &Value::Array(jobs));
    let signed = signed.as_array().unwrap();
    let cases = pending
        .into_iter()
        .enumerate()
        .map(|(i, (kind, target, challenge))| Case {
            kind,
            target,
            challenge,
            own: named(&signed[3 * i]),
            other_session: named(&signed[3 * i + 1]),
            other_key: named(&signed[3 * i + 2]),
        })
        .collect();
    (cases, unavailable)
}

/// The method a named signature must verify as; `None` for one that must not verify.
fn expected(name: &str) -> Option<ProofMethod> {
    let method = match name.split('_').next().unwrap_or_default() {
        "bip322" => ProofMethod::Bip322,
        "bip137" => ProofMethod::Bip137,
        "eip191" => ProofMethod::Eip191,
        "tron" => ProofMethod::TronSignMessageV2,
        "raw" => ProofMethod::Ed25519,
        // An Anza envelope under an application domain the proof does not carry.
        "anza" if name.starts_with("anza_other_domain") => return None,
        "earlier" | "anza" => ProofMethod::SolanaOffchainMessage,
        "zbase" => ProofMethod::LightningSignmessage,
        _ => panic!("unknown signature {name}"),
    };
    Some(method)
}

fn malformed(r: &Result<ProofMethod, ProofError>) -> bool {
    matches!(r, Err(ProofError::Malformed(_)))
}

/// Every check of one case; returns how many signatures verified.
fn check(case: &Case) -> usize {
    let (t, m) = (&case.target, case.challenge.as_str());
    assert!(m.len() <= 240 && m.is_ascii(), "{m}");
    let mut verified = 0;
    for (name, sig) in &case.own {
        let what = format!("{} {name}", case.kind);
        let result = verify(t, m, sig);
        match expected(name) {
            Some(method) => {
                assert_eq!(result, Ok(method), "{what}: {sig}");
                verified += 1;
                // With surrounding white space, as pasted.
                assert_eq!(verify(t, m, &format!("  {sig}\n")), Ok(method), "{what}");
                // The method is one the challenge lists.
                assert!(t.methods().contains(&method), "{what}: {:?}", t.methods());
            }
            None => assert_eq!(result, Err(ProofError::Mismatch), "{what}"),
        }
        // An altered message: one character of the nonce changed.
        let altered = m.replacen("nonce c", "nonce d", 1);
        assert_ne!(altered, m);
        assert_eq!(
            verify(t, &altered, sig),
            Err(ProofError::Mismatch),
            "{what} altered"
        );
        // Truncated.
        let cut = &sig[..sig.len() - 8];
        let r = verify(t, m, cut);
        assert!(malformed(&r), "{what} truncated: {r:?}");
        // BIP-322 prefixes: the right one is accepted, the wrong one is not.
        if name.starts_with("bip322_simple") {
            assert_eq!(
                verify(t, m, &format!("smp{sig}")),
                Ok(ProofMethod::Bip322),
                "{what}"
            );
            assert!(malformed(&verify(t, m, &format!("ful{sig}"))), "{what} ful");
        }
        if name == "bip322_full" {
            assert_eq!(
                verify(t, m, &format!("ful{sig}")),
                Ok(ProofMethod::Bip322),
                "{what}"
            );
            assert!(verify(t, m, &format!("smp{sig}")).is_err(), "{what} smp");
        }
    }
    for (name, sig) in &case.other_session {
        let what = format!("{} {name} over another session's challenge", case.kind);
        assert_eq!(verify(t, m, sig), Err(ProofError::Mismatch), "{what}");
    }
    for (name, sig) in &case.other_key {
        let what = format!("{} {name} by another key", case.kind);
        assert_eq!(verify(t, m, sig), Err(ProofError::Mismatch), "{what}");
    }
    for garbage in [
        "this is not a signature",
        "0x",
        "=",
        "smp",
        "ful",
        "pofAAAA",
        "ÿ",
        "\u{0}",
    ] {
        let r = verify(t, m, garbage);
        assert!(malformed(&r), "{} garbage {garbage:?}: {r:?}", case.kind);
        assert_eq!(r.unwrap_err().code(), ErrorCode::SignatureMalformed);
    }
    let oversize = "A".repeat(MAX_SIGNATURE_LEN + 1);
    assert!(
        malformed(&verify(t, m, &oversize)),
        "{} oversize",
        case.kind
    );
    verified
}

/// Both signer runs, made once and shared by the tests of this file.
fn bitcoin_cases() -> &'static Signed {
    static CASES: OnceLock<Signed> = OnceLock::new();
    CASES.get_or_init(|| sign_all(node))
}

fn other_cases() -> &'static Signed {
    static CASES: OnceLock<Signed> = OnceLock::new();
    CASES.get_or_init(|| sign_all(py))
}

#[test]
fn bip322_js_and_bitcoinjs_message_signatures_verify() {
    let (cases, unavailable) = bitcoin_cases();
    let mut kinds: Vec<&str> = cases.iter().map(|c| c.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "p2pkh",
            "p2pkh_uncompressed",
            "p2sh_p2wpkh",
            "p2tr",
            "p2wpkh"
        ],
        "{unavailable:?}"
    );
    // The P2WSH address the signer made has no proof target at all.
    assert_eq!(
        unavailable
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["p2wsh"]
    );
    let mut verified = 0;
    for case in cases {
        verified += check(case);
    }
    // p2pkh 1 + uncompressed 1 + (simple, full, trezor, electrum) x 2 + taproot 3.
    assert_eq!(verified, 1 + 1 + 4 + 4 + 3);

    // A Taproot address does not take a BIP-137 signature, even by its own key's scheme.
    let p2wpkh = cases.iter().find(|c| c.kind == "p2wpkh").unwrap();
    let p2tr = cases.iter().find(|c| c.kind == "p2tr").unwrap();
    let (_, bip137) = p2wpkh
        .own
        .iter()
        .find(|(n, _)| n == "bip137_electrum")
        .unwrap();
    assert!(malformed(&verify(&p2tr.target, &p2tr.challenge, bip137)));
    // A P2PKH address proves with BIP-137 only: a BIP-322 signature is no form it takes.
    let p2pkh = cases.iter().find(|c| c.kind == "p2pkh").unwrap();
    let (_, simple) = p2wpkh
        .own
        .iter()
        .find(|(n, _)| n == "bip322_simple")
        .unwrap();
    assert!(malformed(&verify(&p2pkh.target, &p2pkh.challenge, simple)));
    // The methods a challenge lists per address type.
    let methods = |kind: &str| {
        cases
            .iter()
            .find(|c| c.kind == kind)
            .unwrap()
            .target
            .methods()
    };
    assert_eq!(methods("p2pkh"), [ProofMethod::Bip137]);
    assert_eq!(
        methods("p2wpkh"),
        [ProofMethod::Bip322, ProofMethod::Bip137]
    );
    assert_eq!(
        methods("p2sh_p2wpkh"),
        [ProofMethod::Bip322, ProofMethod::Bip137]
    );
    assert_eq!(methods("p2tr"), [ProofMethod::Bip322]);
}

#[test]
fn eth_account_tronpy_pynacl_and_coincurve_signatures_verify() {
    let (cases, unavailable) = other_cases();
    assert!(unavailable.is_empty(), "{unavailable:?}");
    let mut kinds: Vec<&str> = cases.iter().map(|c| c.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["eth", "ln", "sol", "tron"]);
    let mut verified = 0;
    for case in cases {
        verified += check(case);
    }
    // eth 2 + ln 2 + sol (raw x2, earlier x2, anza) + tron 2.
    assert_eq!(verified, 2 + 2 + 5 + 2);

    // The same EVM signature proves the address on every EVM network.
    let eth = cases.iter().find(|c| c.kind == "eth").unwrap();
    let (_, sig) = &eth.own[0];
    for network in [Network::Polygon, Network::Bsc] {
        let a =
            CounterpartyAddress::parse(network, eth.target.address_text(), BitcoinNetwork::Mainnet)
                .unwrap();
        let t = ProofTarget::for_address(&a).unwrap();
        assert_eq!(verify(&t, &eth.challenge, sig), Ok(ProofMethod::Eip191));
    }
    // An EIP-191 signature is no TRON signature of the same key, and the reverse.
    let tron = cases.iter().find(|c| c.kind == "tron").unwrap();
    let (_, tron_sig) = &tron.own[0];
    assert_eq!(
        verify(&eth.target, &eth.challenge, tron_sig),
        Err(ProofError::Mismatch)
    );
}

#[test]
fn an_address_that_cannot_sign_has_no_proof_target() {
    // A P2WSH address made by bitcoinjs-lib (1-of-1 multisig script), as above, and the
    // contract's other cases.
    let (_, unavailable) = bitcoin_cases();
    assert_eq!(unavailable.len(), 1);
    let p2wsh = CounterpartyAddress::parse(
        Network::Btc,
        "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
        BitcoinNetwork::Mainnet,
    )
    .unwrap();
    let e = ProofTarget::for_address(&p2wsh).unwrap_err();
    assert_eq!(e, ProofUnavailable::Script);
    assert_eq!(e.code().as_str(), "ownership_proof_unavailable");
    let hash_only = domain::Counterparty::Lightning(domain::LightningPayment {
        payment_hash: domain::PaymentHash::from_bytes([1; 32]),
        invoice: None,
    });
    assert_eq!(
        ProofTarget::for_counterparty(&hash_only),
        Err(ProofUnavailable::PaymentHashOnly)
    );
}
