//! Benchmarks of request parsing, the CPU-bound part of the create path.
//!
//! - `parse_json`: reading and validating a full, valid create-session body (the edge's
//!   parser over the domain crate's value rules), once per counterparty kind
//!   (BTC bech32 address, ETH EIP-55 address with a txHash, BTC payment hash, BTC bolt11
//!   invoice).
//! - Invoice decoding: [`domain::Invoice::decode`] against a bare
//!   `str::parse::<lightning_invoice::Bolt11Invoice>()` over the same set of mainnet invoices
//!   (every `valid` entry with currency `bc` in the domain crate's `tests/vectors/bolt11.json`), to see what the
//!   crate's own checks add on top of the library.
//!
//! Criterion runs its groups first. Then, when run as a benchmark (`cargo bench`), `main`
//! times the same work itself in the same process: 31 rounds of N iterations per subject,
//! decoders interleaved round by round, and prints the median ns/op of each together with the
//! domain/bare ratio. Those medians are the figures quoted in `docs/benchmarks.md`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use api::http::create_body::parse_json;
use criterion::{Criterion, Throughput, criterion_group};
use domain::{BitcoinNetwork, Invoice, Rules};
use lightning_invoice::Bolt11Invoice;

const USER: &str = "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44";
const BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const EVM: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const PAYMENT_HASH: &str = "0001020304050607080900010203040506070809000102030405060708090102";

/// Rounds of the in-process timing; the median of these is reported.
const ROUNDS: usize = 31;
/// Target wall time of one in-process round.
const ROUND_TARGET: Duration = Duration::from_millis(40);

/// The mainnet (`bc`) invoices of the published BOLT 11 examples.
fn mainnet_invoices() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../domain/tests/vectors/bolt11.json"
    );
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => panic!("cannot read {path}: {e}"),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("{path} is not JSON: {e}"),
    };
    let Some(valid) = json["valid"].as_array() else {
        panic!("{path} has no `valid` array");
    };
    let invoices: Vec<String> = valid
        .iter()
        .filter(|case| case["currency"].as_str() == Some("bc"))
        .filter_map(|case| case["invoice"].as_str().map(str::to_owned))
        .collect();
    assert!(!invoices.is_empty(), "{path} has no mainnet invoice");
    for s in &invoices {
        if let Err(e) = Invoice::decode(s, BitcoinNetwork::Mainnet) {
            panic!("domain refuses a vector invoice ({e}): {s}");
        }
        if let Err(e) = s.parse::<Bolt11Invoice>() {
            panic!("lightning-invoice refuses a vector invoice ({e}): {s}");
        }
    }
    invoices
}

/// One full, valid request body per counterparty kind: `(kind, body)`.
fn bodies(invoice: &str) -> Vec<(&'static str, Vec<u8>)> {
    let tx_hash = format!("0x{}", "ab".repeat(32));
    let bodies = vec![
        (
            "btc_address",
            serde_json::json!({
                "userId": USER, "currency": "BTC", "network": "BTC",
                "counterpartyAddress": BECH32, "forceVerifyOwnership": true,
            }),
        ),
        (
            "eth_address_txhash",
            serde_json::json!({
                "userId": USER, "currency": "ETH", "network": "ETH",
                "counterpartyAddress": EVM, "txHash": tx_hash, "forceVerifyOwnership": true,
            }),
        ),
        (
            "btc_payment_hash",
            serde_json::json!({
                "userId": USER, "currency": "BTC", "network": "BTC",
                "paymentHash": PAYMENT_HASH, "forceVerifyOwnership": true,
            }),
        ),
        (
            "btc_invoice",
            serde_json::json!({
                "userId": USER, "currency": "BTC", "network": "BTC",
                "invoice": invoice, "forceVerifyOwnership": true,
            }),
        ),
    ];
    let rules = Rules::default();
    bodies
        .into_iter()
        .map(|(kind, value)| {
            let body = value.to_string().into_bytes();
            match parse_json(&body, &rules) {
                Ok(valid) => assert!(valid.force_verify_ownership(), "{kind}: flag lost"),
                Err(e) => panic!("{kind}: the benchmark body does not parse: {e:?}"),
            }
            (kind, body)
        })
        .collect()
}

fn first_invoice(invoices: &[String]) -> &str {
    match invoices.first() {
        Some(s) => s,
        None => panic!("no mainnet invoice"),
    }
}

fn decode_all_domain(invoices: &[String]) {
    for s in invoices {
        let _ = black_box(Invoice::decode(black_box(s), BitcoinNetwork::Mainnet));
    }
}

fn decode_all_bare(invoices: &[String]) {
    for s in invoices {
        let _ = black_box(black_box(s.as_str()).parse::<Bolt11Invoice>());
    }
}

fn bench_parse_json(c: &mut Criterion) {
    let invoices = mainnet_invoices();
    let rules = Rules::default();
    let mut group = c.benchmark_group("parse_json");
    for (kind, body) in bodies(first_invoice(&invoices)) {
        group.bench_function(kind, |b| {
            b.iter(|| parse_json(black_box(&body), black_box(&rules)));
        });
    }
    group.finish();
}

fn bench_invoice_decode(c: &mut Criterion) {
    let invoices = mainnet_invoices();
    let mut group = c.benchmark_group("invoice_decode");
    // One element = one invoice: criterion's throughput line is per invoice.
    group.throughput(Throughput::Elements(invoices.len() as u64));
    group.bench_function("domain", |b| b.iter(|| decode_all_domain(&invoices)));
    group.bench_function("bare", |b| b.iter(|| decode_all_bare(&invoices)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_parse_json, bench_invoice_decode
}

/// Iterations of `f` that take about [`ROUND_TARGET`].
fn calibrate(f: &mut dyn FnMut()) -> u32 {
    let start = Instant::now();
    let mut n: u32 = 0;
    while start.elapsed() < ROUND_TARGET / 4 {
        f();
        n += 1;
    }
    let per = start.elapsed() / n.max(1);
    let target = ROUND_TARGET.as_nanos() / per.as_nanos().max(1);
    u32::try_from(target).unwrap_or(u32::MAX).max(1)
}

/// Nanoseconds per call of `f` over `n` calls.
fn round(f: &mut dyn FnMut(), n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.get(xs.len() / 2) {
        Some(m) => *m,
        None => f64::NAN,
    }
}

/// Medians (ns per call) of [`ROUNDS`] interleaved rounds of each subject.
fn interleaved_medians(subjects: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let ns: Vec<u32> = subjects.iter_mut().map(|f| calibrate(*f)).collect();
    let mut samples = vec![Vec::with_capacity(ROUNDS); subjects.len()];
    for _ in 0..ROUNDS {
        for ((f, n), s) in subjects.iter_mut().zip(&ns).zip(&mut samples) {
            s.push(round(*f, *n));
        }
    }
    samples.into_iter().map(median).collect()
}

fn in_process_report() {
    let invoices = mainnet_invoices();
    let count = invoices.len() as f64;
    let rules = Rules::default();
    let bodies = bodies(first_invoice(&invoices));

    println!();
    println!("== in-process timing: median of {ROUNDS} rounds, ~{ROUND_TARGET:?} per round ==");

    let mut domain = || decode_all_domain(&invoices);
    let mut bare = || decode_all_bare(&invoices);
    let m = interleaved_medians(&mut [&mut domain, &mut bare]);
    let (d, b) = (m[0] / count, m[1] / count);
    println!(
        "invoice decode ({} mainnet invoices): domain {:.1} µs/op, bare {:.1} µs/op, ratio {:.3}",
        invoices.len(),
        d / 1e3,
        b / 1e3,
        d / b
    );

    for (kind, body) in &bodies {
        let mut f = || {
            let _ = black_box(parse_json(black_box(body), black_box(&rules)));
        };
        let m = interleaved_medians(&mut [&mut f]);
        println!(
            "parse_json {kind}: {:.2} µs/op (median of {ROUNDS} rounds)",
            m[0] / 1e3
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs this binary without `--bench`: criterion then only checks
    // that each benchmark runs once, and the in-process timing is skipped as well.
    if std::env::args().any(|a| a == "--bench") {
        in_process_report();
    }
}
