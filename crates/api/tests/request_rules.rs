//! Every rule of contract §2 and §4 of a create request, through the request parser, one test (or
//! more) per rule.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use std::time::Duration;

use api::http::create_body::{fields, parse_json};
use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use domain::chrono::{DateTime, Utc};
use domain::*;
use lightning_invoice::{Currency as LnCurrency, InvoiceBuilder, PaymentSecret};
use serde_json::{Value, json};

const USER: &str = "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44";
const HASH: &str = "0707070707070707070707070707070707070707070707070707070707070707";
const BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const EVM: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";

fn parse(v: Value) -> Result<ValidRequest, ValidationErrors> {
    parse_json(v.to_string().as_bytes(), &Rules::default())
}

fn parse_with(v: Value, rules: &Rules) -> Result<ValidRequest, ValidationErrors> {
    parse_json(v.to_string().as_bytes(), rules)
}

fn codes(v: Value) -> Vec<(String, ErrorCode)> {
    parse(v)
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

fn key(v: Value) -> ReuseKeyDigest {
    parse(v).unwrap().reuse_key().digest()
}

fn secret(n: u8) -> SecretKey {
    SecretKey::from_slice(&[n; 32]).unwrap()
}

/// A freshly signed invoice. `claimed_payee` puts an `n` field naming a key that may differ
/// from the signer, which makes the signature invalid for that invoice.
fn invoice(
    currency: LnCurrency,
    created: u64,
    expiry: u64,
    claimed_payee: Option<PublicKey>,
    signer: &SecretKey,
) -> String {
    let secp = Secp256k1::new();
    let mut builder = InvoiceBuilder::new(currency)
        .description("travel rule test".into())
        .payment_hash(sha256::Hash::from_byte_array([7; 32]))
        .payment_secret(PaymentSecret([42; 32]))
        .duration_since_epoch(Duration::from_secs(created))
        .min_final_cltv_expiry_delta(144)
        .expiry_time(Duration::from_secs(expiry))
        .amount_milli_satoshis(250_000);
    if let Some(payee) = claimed_payee {
        builder = builder.payee_pub_key(payee);
    }
    let raw = builder.build_raw().unwrap();
    raw.sign::<_, ()>(|msg| Ok(secp.sign_ecdsa_recoverable(msg, signer)))
        .unwrap()
        .to_string()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

// ---- §2: subject -------------------------------------------------------------------------

#[test]
fn exactly_one_of_user_id_and_business_id() {
    let base = json!({"currency": "BTC", "network": "BTC", "paymentHash": HASH});
    let mut neither = base.clone();
    assert_eq!(
        codes(neither.take()),
        vec![(fields::SUBJECT.into(), ErrorCode::ExactlyOneSubject)]
    );
    let mut both = base.clone();
    both["userId"] = json!(USER);
    both["businessId"] = json!(USER);
    assert_eq!(
        codes(both),
        vec![(fields::SUBJECT.into(), ErrorCode::ExactlyOneSubject)]
    );
    let mut business = base.clone();
    business["businessId"] = json!(USER);
    assert_eq!(
        parse(business).unwrap().scope().subject(),
        Subject::Business(USER.parse().unwrap())
    );
}

#[test]
fn subject_ids_are_uuids_and_user_differs_from_business() {
    let e =
        codes(json!({"userId": "42", "currency": "BTC", "network": "BTC", "paymentHash": HASH}));
    assert_eq!(e, vec![("userId".into(), ErrorCode::InvalidUuid)]);
    let user =
        key(json!({"userId": USER, "currency": "BTC", "network": "BTC", "paymentHash": HASH}));
    let business =
        key(json!({"businessId": USER, "currency": "BTC", "network": "BTC", "paymentHash": HASH}));
    assert_ne!(user, business);
}

// ---- §2/§4: currency and network -----------------------------------------------------------

#[test]
fn currency_and_network_are_required() {
    let e = codes(json!({"userId": USER, "paymentHash": HASH}));
    assert_eq!(
        e,
        vec![
            ("currency".into(), ErrorCode::Required),
            ("network".into(), ErrorCode::Required)
        ]
    );
    let e = codes(json!({"userId": USER, "currency": "", "network": "", "paymentHash": HASH}));
    assert_eq!(
        e,
        vec![
            ("currency".into(), ErrorCode::Required),
            ("network".into(), ErrorCode::Required)
        ]
    );
}

#[test]
fn currency_must_be_in_the_ledger_and_network_must_match() {
    let e = codes(
        json!({"userId": USER, "currency": "DOGE", "network": "BTC", "counterpartyAddress": BECH32}),
    );
    assert_eq!(e, vec![("currency".into(), ErrorCode::UnsupportedCurrency)]);
    let e = codes(
        json!({"userId": USER, "currency": "BTC", "network": "LIGHTNING", "paymentHash": HASH}),
    );
    assert_eq!(e, vec![("network".into(), ErrorCode::UnsupportedNetwork)]);
    let e = codes(
        json!({"userId": USER, "currency": "USDT", "network": "TRON", "counterpartyAddress": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"}),
    );
    assert_eq!(
        e,
        vec![("network".into(), ErrorCode::CurrencyNetworkMismatch)]
    );
}

#[test]
fn every_default_ledger_pair_is_accepted_case_insensitively_and_stored_uppercase() {
    let addresses = [
        ("BTC", BECH32),
        ("ETH", EVM),
        ("POLYGON", EVM),
        ("BSC", EVM),
        ("SOL", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
        ("TRON", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
    ];
    for (currency, network) in LedgerTable::SPEC_DEFAULT {
        let address = addresses
            .iter()
            .find(|(n, _)| *n == network.as_str())
            .unwrap()
            .1;
        let v = parse(json!({"userId": USER, "currency": currency.to_lowercase(), "network": network.as_str().to_lowercase(), "counterpartyAddress": address})).unwrap();
        assert_eq!(v.scope().asset().currency().as_str(), currency);
        assert_eq!(v.scope().asset().network(), network);
    }
}

#[test]
fn the_ledger_table_is_data_a_deployment_can_override() {
    let rules = Rules::default().with_ledger("USDC:POLYGON,BTC:BTC".parse().unwrap());
    assert!(parse_with(json!({"userId": USER, "currency": "USDC", "network": "POLYGON", "counterpartyAddress": EVM}), &rules).is_ok());
    let e = parse_with(
        json!({"userId": USER, "currency": "USDC", "network": "ETH", "counterpartyAddress": EVM}),
        &rules,
    )
    .unwrap_err();
    assert!(e.has("network", ErrorCode::CurrencyNetworkMismatch));
    let e = parse_with(
        json!({"userId": USER, "currency": "ETH", "network": "ETH", "counterpartyAddress": EVM}),
        &rules,
    )
    .unwrap_err();
    assert!(e.has("currency", ErrorCode::UnsupportedCurrency));
}

// ---- §2: counterparty ------------------------------------------------------------------------

#[test]
fn exactly_one_counterparty() {
    let e = codes(json!({"userId": USER, "currency": "BTC", "network": "BTC"}));
    assert_eq!(
        e,
        vec![(
            fields::COUNTERPARTY.into(),
            ErrorCode::ExactlyOneCounterparty
        )]
    );
    let e = codes(
        json!({"userId": USER, "currency": "BTC", "network": "BTC", "counterpartyAddress": BECH32, "paymentHash": HASH}),
    );
    assert_eq!(
        e,
        vec![(
            fields::COUNTERPARTY.into(),
            ErrorCode::ExactlyOneCounterparty
        )]
    );
    // Each given member is still checked, so the caller sees everything at once.
    let e = codes(
        json!({"userId": USER, "currency": "BTC", "network": "BTC", "paymentHash": "xyz", "invoice": "lnbc1"}),
    );
    assert_eq!(
        e,
        vec![
            (
                fields::COUNTERPARTY.into(),
                ErrorCode::ExactlyOneCounterparty
            ),
            ("paymentHash".into(), ErrorCode::InvalidPaymentHash),
            ("invoice".into(), ErrorCode::InvalidInvoice),
        ]
    );
}

#[test]
fn address_must_be_valid_for_the_network() {
    // A valid EVM address is not a bitcoin address, and vice versa.
    let e = codes(
        json!({"userId": USER, "currency": "BTC", "network": "BTC", "counterpartyAddress": EVM}),
    );
    assert_eq!(
        e,
        vec![("counterpartyAddress".into(), ErrorCode::InvalidAddress)]
    );
    let e = codes(
        json!({"userId": USER, "currency": "ETH", "network": "ETH", "counterpartyAddress": BECH32}),
    );
    assert_eq!(
        e,
        vec![("counterpartyAddress".into(), ErrorCode::InvalidAddress)]
    );
    // Wrong checksums are errors.
    let e = codes(
        json!({"userId": USER, "currency": "ETH", "network": "ETH", "counterpartyAddress": "0xFB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"}),
    );
    assert_eq!(
        e,
        vec![(
            "counterpartyAddress".into(),
            ErrorCode::InvalidAddressChecksum
        )]
    );
    // The configured bitcoin network decides.
    let testnet = Rules::default().with_bitcoin_network(BitcoinNetwork::Testnet);
    let e = parse_with(
        json!({"userId": USER, "currency": "BTC", "network": "BTC", "counterpartyAddress": BECH32}),
        &testnet,
    )
    .unwrap_err();
    assert!(e.has("counterpartyAddress", ErrorCode::AddressNetworkMismatch));
}

#[test]
fn payment_hash_is_64_hex_and_normalised_lowercase() {
    let e = codes(
        json!({"userId": USER, "currency": "BTC", "network": "BTC", "paymentHash": &HASH[1..]}),
    );
    assert_eq!(
        e,
        vec![("paymentHash".into(), ErrorCode::InvalidPaymentHash)]
    );
    let upper = HASH.replace('7', "A");
    let v =
        parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "paymentHash": upper}))
            .unwrap();
    assert_eq!(v.scope().counterparty().identifier(), upper.to_lowercase());
}

#[test]
fn lightning_requires_btc_on_btc() {
    for field in ["paymentHash", "invoice"] {
        let value = if field == "paymentHash" {
            HASH.to_string()
        } else {
            invoice(LnCurrency::Bitcoin, 1_700_000_000, 3600, None, &secret(1))
        };
        let e = codes(json!({"userId": USER, "currency": "USDT", "network": "ETH", field: value}));
        assert_eq!(
            e,
            vec![(field.into(), ErrorCode::LightningRequiresBtc)],
            "{field}"
        );
    }
}

#[test]
fn invoice_is_decoded_to_its_payment_hash_and_equals_that_hash() {
    let inv = invoice(LnCurrency::Bitcoin, 1_700_000_000, 3600, None, &secret(1));
    let from_invoice =
        parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": inv}))
            .unwrap();
    let from_hash =
        parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "paymentHash": HASH}))
            .unwrap();
    assert_eq!(from_invoice.reuse_key(), from_hash.reuse_key());
    assert!(
        from_invoice
            .scope()
            .counterparty()
            .same_party(from_hash.scope().counterparty())
    );
    match from_invoice.scope().counterparty() {
        Counterparty::Lightning(l) => {
            assert_eq!(l.payment_hash.to_string(), HASH);
            let details = l.invoice.unwrap();
            assert_eq!(details.created_at, at(1_700_000_000));
            assert_eq!(details.expires_at, at(1_700_003_600));
            assert_eq!(details.amount_msat, Some(250_000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invoice_prefix_and_case_are_accepted_but_mixed_case_is_not() {
    let inv = invoice(LnCurrency::Bitcoin, 1_700_000_000, 3600, None, &secret(1));
    for form in [
        format!("lightning:{inv}"),
        format!("Lightning:{inv}"),
        format!("LIGHTNING:{}", inv.to_uppercase()),
        inv.to_uppercase(),
    ] {
        assert!(
            parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": form}))
                .is_ok(),
            "{form}"
        );
    }
    let mut mixed = inv.clone();
    mixed.replace_range(0..2, "LN");
    let e = codes(json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": mixed}));
    assert_eq!(e, vec![("invoice".into(), ErrorCode::InvalidInvoice)]);
}

#[test]
fn invoice_signature_is_verified() {
    let claimed = PublicKey::from_secret_key(&Secp256k1::new(), &secret(2));
    let forged = invoice(
        LnCurrency::Bitcoin,
        1_700_000_000,
        3600,
        Some(claimed),
        &secret(1),
    );
    let e = codes(json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": forged}));
    assert_eq!(
        e,
        vec![("invoice".into(), ErrorCode::InvalidInvoiceSignature)]
    );
    // Signed by the key it names: fine.
    let honest = invoice(
        LnCurrency::Bitcoin,
        1_700_000_000,
        3600,
        Some(claimed),
        &secret(2),
    );
    assert!(
        parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": honest}))
            .is_ok()
    );
}

#[test]
fn invoice_currency_must_match_the_configured_bitcoin_network() {
    let cases = [
        (LnCurrency::Bitcoin, BitcoinNetwork::Mainnet),
        (LnCurrency::BitcoinTestnet, BitcoinNetwork::Testnet),
        (LnCurrency::Signet, BitcoinNetwork::Signet),
        (LnCurrency::Regtest, BitcoinNetwork::Regtest),
    ];
    for (currency, network) in cases.clone() {
        let inv = invoice(currency, 1_700_000_000, 3600, None, &secret(1));
        for (_, configured) in cases.clone() {
            let rules = Rules::default().with_bitcoin_network(configured);
            let result = parse_with(
                json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": inv}),
                &rules,
            );
            if configured == network {
                assert!(result.is_ok(), "{network} invoice on {configured}");
            } else {
                assert!(
                    result
                        .unwrap_err()
                        .has("invoice", ErrorCode::InvoiceNetworkMismatch),
                    "{network} invoice on {configured}"
                );
            }
        }
    }
}

#[test]
fn expired_invoice_is_accepted_and_its_expiry_reported() {
    let inv = invoice(LnCurrency::Bitcoin, 1_600_000_000, 60, None, &secret(1));
    let v = parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": inv}))
        .unwrap();
    let Counterparty::Lightning(l) = v.scope().counterparty() else {
        panic!()
    };
    let details = l.invoice.unwrap();
    assert!(details.is_expired_at(at(1_600_000_060)));
    assert!(!details.is_expired_at(at(1_600_000_059)));
}

// ---- §2: txHash -----------------------------------------------------------------------------

#[test]
fn tx_hash_format_per_network() {
    let hex = "ab".repeat(32);
    assert!(parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "counterpartyAddress": BECH32, "txHash": hex})).is_ok());
    let e = codes(
        json!({"userId": USER, "currency": "ETH", "network": "ETH", "counterpartyAddress": EVM, "txHash": hex}),
    );
    assert_eq!(e, vec![("txHash".into(), ErrorCode::InvalidTxHash)]);
    assert!(parse(json!({"userId": USER, "currency": "ETH", "network": "ETH", "counterpartyAddress": EVM, "txHash": format!("0x{hex}")})).is_ok());
}

#[test]
fn tx_hash_is_not_allowed_with_lightning() {
    let e = codes(
        json!({"userId": USER, "currency": "BTC", "network": "BTC", "paymentHash": HASH, "txHash": "ab".repeat(32)}),
    );
    assert_eq!(e, vec![("txHash".into(), ErrorCode::TxHashWithLightning)]);
}

// ---- §2: the reuse key ----------------------------------------------------------------------

#[test]
fn reuse_key_equivalences() {
    let base = |cp: Value| {
        let mut v = json!({"userId": USER, "currency": "ETH", "network": "ETH"});
        v.as_object_mut()
            .unwrap()
            .extend(cp.as_object().unwrap().clone());
        v
    };
    // EVM addresses compare case-insensitively.
    assert_eq!(
        key(base(json!({"counterpartyAddress": EVM.to_lowercase()}))),
        key(base(json!({"counterpartyAddress": EVM})))
    );
    // bech32 addresses compare lowercased.
    let btc = |a: &str| json!({"userId": USER, "currency": "BTC", "network": "BTC", "counterpartyAddress": a});
    assert_eq!(key(btc(BECH32)), key(btc(&BECH32.to_uppercase())));
    // txHash case does not matter; its presence does.
    let with_tx = |t: &str| json!({"userId": USER, "currency": "BTC", "network": "BTC", "counterpartyAddress": BECH32, "txHash": t});
    assert_eq!(
        key(with_tx(&"ab".repeat(32))),
        key(with_tx(&"AB".repeat(32)))
    );
    assert_ne!(key(with_tx(&"ab".repeat(32))), key(btc(BECH32)));
    assert_ne!(
        key(with_tx(&"ab".repeat(32))),
        key(with_tx(&"cd".repeat(32)))
    );
    // Different subject, asset or counterparty: different key.
    assert_ne!(
        key(base(json!({"counterpartyAddress": EVM}))),
        key(
            json!({"userId": USER, "currency": "USDT", "network": "ETH", "counterpartyAddress": EVM})
        )
    );
    assert_ne!(
        key(base(json!({"counterpartyAddress": EVM}))),
        key(
            json!({"userId": USER, "currency": "POL", "network": "POLYGON", "counterpartyAddress": EVM})
        )
    );
    assert_ne!(
        key(base(json!({"counterpartyAddress": EVM}))),
        key(
            json!({"userId": "00000000-0000-0000-0000-000000000001", "currency": "ETH", "network": "ETH", "counterpartyAddress": EVM})
        )
    );
}

// ---- validation reports every problem at once, as JSON ---------------------------------

#[test]
fn every_problem_is_reported_at_once() {
    let e = parse(json!({
        "userId": "x", "businessId": "y",
        "currency": "BTC", "network": "ETH",
        "counterpartyAddress": "0xnothex", "paymentHash": "short",
        "txHash": "nope"
    }))
    .unwrap_err();
    assert_eq!(
        e.codes(),
        vec![
            ErrorCode::ExactlyOneSubject,
            ErrorCode::InvalidUuid,
            ErrorCode::InvalidUuid,
            ErrorCode::CurrencyNetworkMismatch,
            ErrorCode::ExactlyOneCounterparty,
            ErrorCode::InvalidAddress,
            ErrorCode::LightningRequiresBtc,
            ErrorCode::InvalidPaymentHash,
            ErrorCode::TxHashWithLightning,
        ]
    );
    for problem in e.errors() {
        assert!(!problem.message.is_empty());
        assert!(!problem.field.is_empty());
    }
    let json = serde_json::to_value(problems(&e)).unwrap();
    assert_eq!(
        json[0],
        json!({"field": "userId|businessId", "code": "exactly_one_subject", "message": "give either userId or businessId, not both"})
    );
}

#[test]
fn json_shape_problems() {
    let rules = Rules::default();
    let one = |body: &str| parse_json(body.as_bytes(), &rules).unwrap_err().into_vec();
    let e = one("{");
    assert_eq!(
        (e[0].field.as_str(), e[0].code),
        ("", ErrorCode::InvalidJson)
    );
    let e = one("[]");
    assert_eq!(e[0].code, ErrorCode::InvalidJson);
    let e = one(r#"{"userId": 5}"#);
    assert_eq!(
        (e[0].field.as_str(), e[0].code),
        ("userId", ErrorCode::InvalidType)
    );
    let e = one(r#"{"forceVerifyOwnership": "true"}"#);
    assert_eq!(
        (e[0].field.as_str(), e[0].code),
        ("forceVerifyOwnership", ErrorCode::InvalidType)
    );
    let e = one(r#"{"walletAddress": "x"}"#);
    assert_eq!(
        (e[0].field.as_str(), e[0].code),
        ("walletAddress", ErrorCode::UnknownField)
    );
    let e = one(r#"{} {}"#);
    assert_eq!(e[0].code, ErrorCode::InvalidJson);
    // null means absent.
    let ok = parse(
        json!({"userId": USER, "businessId": null, "currency": "BTC", "network": "BTC", "paymentHash": HASH, "txHash": null, "forceVerifyOwnership": null}),
    );
    assert!(!ok.unwrap().force_verify_ownership());
}

// ---- §4: session lifecycle and reuse --------------------------------------------------------

fn session(flag: bool, created: DateTime<Utc>, policy: &ReusePolicy) -> Session {
    let req = parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "paymentHash": HASH, "forceVerifyOwnership": flag})).unwrap();
    Session::new(
        SessionId::from_uuid(uuid::Uuid::from_u128(1)),
        ApplicationId::from_uuid(uuid::Uuid::from_u128(2)),
        req,
        created,
        policy,
    )
}

#[test]
fn ttl_defaults_to_five_minutes_and_never_exceeds_it() {
    let p = ReusePolicy::default();
    assert_eq!(
        (p.ttl(), p.min_remaining()),
        (Duration::from_secs(300), Duration::from_secs(60))
    );
    assert!(ReusePolicy::new(Duration::from_secs(300), Duration::from_secs(60)).is_ok());
    assert_eq!(
        ReusePolicy::new(Duration::from_secs(301), Duration::ZERO),
        Err(PolicyError::Ttl(Duration::from_secs(301)))
    );
    assert_eq!(
        ReusePolicy::new(Duration::ZERO, Duration::ZERO),
        Err(PolicyError::Ttl(Duration::ZERO))
    );
    let s = session(
        false,
        at(1000),
        &ReusePolicy::new(Duration::from_secs(30), Duration::from_secs(5)).unwrap(),
    );
    assert_eq!(s.expires_at(), at(1030));
}

#[test]
fn status_is_derived_from_the_clock() {
    let s = session(false, at(1000), &ReusePolicy::default());
    assert_eq!(s.status_at(at(1000)), SessionStatus::Active);
    assert_eq!(s.status_at(at(1299)), SessionStatus::Active);
    assert_eq!(s.status_at(at(1300)), SessionStatus::Expired);
    assert_eq!(s.remaining_at(at(1240)), Duration::from_secs(60));
    assert_eq!(s.remaining_at(at(2000)), Duration::ZERO);
}

#[test]
fn consume_once_and_never_after_end() {
    let mut s = session(false, at(1000), &ReusePolicy::default());
    s.consume(at(1010)).unwrap();
    assert_eq!(s.end(), Some(SessionEnd::Consumed { at: at(1010) }));
    assert_eq!(s.consume(at(1011)), Err(NotActive(SessionStatus::Consumed)));
    // Consumed stays consumed even after the expiry instant.
    assert_eq!(s.status_at(at(5000)), SessionStatus::Consumed);
    let mut expired = session(false, at(1000), &ReusePolicy::default());
    assert_eq!(
        expired.consume(at(1300)),
        Err(NotActive(SessionStatus::Expired))
    );
    let mut cancelled = session(false, at(1000), &ReusePolicy::default());
    cancelled.cancel(at(1001)).unwrap();
    assert_eq!(
        cancelled.consume(at(1002)),
        Err(NotActive(SessionStatus::Cancelled))
    );
}

#[test]
fn cancel_is_idempotent_and_only_from_active() {
    let mut s = session(false, at(1000), &ReusePolicy::default());
    assert_eq!(s.cancel(at(1001)), Ok(CancelEffect::Cancelled));
    assert_eq!(s.cancel(at(1002)), Ok(CancelEffect::AlreadyCancelled));
    assert_eq!(s.end(), Some(SessionEnd::Cancelled { at: at(1001) }));
    let mut consumed = session(false, at(1000), &ReusePolicy::default());
    consumed.consume(at(1001)).unwrap();
    assert_eq!(
        consumed.cancel(at(1002)),
        Err(NotActive(SessionStatus::Consumed))
    );
    let mut expired = session(false, at(1000), &ReusePolicy::default());
    assert_eq!(
        expired.cancel(at(1300)),
        Err(NotActive(SessionStatus::Expired))
    );
}

#[test]
fn reuse_needs_an_active_session_with_enough_life_left() {
    let p = ReusePolicy::default();
    let s = session(false, at(1000), &p);
    assert_eq!(
        p.decide(None, false, at(1000)),
        ReuseDecision::MintNew(MintReason::NoCandidate)
    );
    assert_eq!(
        p.decide(Some(&s), false, at(1000)),
        ReuseDecision::Reuse {
            upgrade_flag: false
        }
    );
    // Exactly min_remaining left: reused; one second less: minted anew.
    assert_eq!(
        p.decide(Some(&s), false, at(1240)),
        ReuseDecision::Reuse {
            upgrade_flag: false
        }
    );
    assert_eq!(
        p.decide(Some(&s), false, at(1241)),
        ReuseDecision::MintNew(MintReason::TooLittleLifeLeft)
    );
    assert_eq!(
        p.decide(Some(&s), false, at(1300)),
        ReuseDecision::MintNew(MintReason::Expired)
    );
    let mut consumed = s.clone();
    consumed.consume(at(1001)).unwrap();
    assert_eq!(
        p.decide(Some(&consumed), false, at(1002)),
        ReuseDecision::MintNew(MintReason::Consumed)
    );
    let mut cancelled = s.clone();
    cancelled.cancel(at(1001)).unwrap();
    assert_eq!(
        p.decide(Some(&cancelled), false, at(1002)),
        ReuseDecision::MintNew(MintReason::Cancelled)
    );
}

#[test]
fn force_verify_ownership_is_upgrade_only() {
    let p = ReusePolicy::default();
    let mut s = session(false, at(1000), &p);
    assert_eq!(
        p.decide(Some(&s), true, at(1001)),
        ReuseDecision::Reuse { upgrade_flag: true }
    );
    assert_eq!(
        s.request_force_verify_ownership(true),
        domain::FlagChange::Raised { reopened: false }
    );
    assert!(s.force_verify_ownership());
    assert_eq!(
        p.decide(Some(&s), false, at(1002)),
        ReuseDecision::Reuse {
            upgrade_flag: false
        }
    );
    assert_eq!(
        s.request_force_verify_ownership(false),
        domain::FlagChange::Unchanged
    );
    assert!(s.force_verify_ownership());
    let stored_true = session(true, at(1000), &p);
    assert!(stored_true.force_verify_ownership());
}

#[test]
fn restore_round_trips_parts() {
    let mut s = session(true, at(1000), &ReusePolicy::default());
    s.cancel(at(1005)).unwrap();
    let back = Session::restore(s.clone().into_parts());
    assert_eq!(back, s);
    assert_eq!(back.status_at(at(1006)), SessionStatus::Cancelled);
}

#[test]
fn scope_parts_must_fit_together() {
    let asset = Asset::new("ETH", "ETH", &LedgerTable::default()).unwrap();
    let btc_addr =
        CounterpartyAddress::parse(Network::Btc, BECH32, BitcoinNetwork::Mainnet).unwrap();
    let subject = Subject::User(USER.parse().unwrap());
    assert!(matches!(
        SessionScope::new(
            subject,
            asset.clone(),
            Counterparty::Address(btc_addr),
            None
        ),
        Err(ScopeError::AddressNetwork { .. })
    ));
    let lightning = Counterparty::Lightning(LightningPayment {
        payment_hash: PaymentHash::parse(HASH).unwrap(),
        invoice: None,
    });
    assert_eq!(
        SessionScope::new(subject, asset, lightning.clone(), None),
        Err(ScopeError::LightningRequiresBtc)
    );
    let btc = Asset::new("BTC", "BTC", &LedgerTable::default()).unwrap();
    let tx = TxHash::parse(Network::Btc, &"ab".repeat(32)).unwrap();
    assert_eq!(
        SessionScope::new(subject, btc, lightning, Some(tx)),
        Err(ScopeError::TxHashWithLightning)
    );
}

#[test]
fn only_json_objects_are_requests() {
    let rules = Rules::default();
    let positional = format!(r#"["{USER}", null, "BTC", "BTC", null, "{HASH}"]"#);
    for body in ["[]", positional.as_str(), "\"x\"", "5", "null", "", "   "] {
        let e = parse_json(body.as_bytes(), &rules).unwrap_err();
        assert_eq!(e.codes(), vec![ErrorCode::InvalidJson], "{body:?}");
    }
}

/// The example in docs/domain.md, verbatim.
#[test]
fn docs_example_is_what_the_crate_says() {
    let e = parse_json(
        br#"{"userId": "nope", "currency": "USDC", "network": "POLYGON",
 "counterpartyAddress": "0xFb6916095ca1df60bB79Ce92cE3Ea74c37c5d359"}"#,
        &Rules::default(),
    )
    .unwrap_err();
    assert_eq!(
        serde_json::to_value(problems(&e)).unwrap(),
        json!([
          {"field": "userId", "code": "invalid_uuid", "message": "userId must be a UUID such as 7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44"},
          {"field": "network", "code": "currency_network_mismatch", "message": "currency USDC is on network ETH, not POLYGON"},
          {"field": "counterpartyAddress", "code": "invalid_address_checksum", "message": "the EIP-55 checksum (letter case) of this address is wrong"}
        ])
    );
}

#[test]
fn configured_min_remaining_is_the_one_applied() {
    let p = ReusePolicy::new(Duration::from_secs(30), Duration::from_secs(5)).unwrap();
    let s = session(false, at(1000), &p);
    assert_eq!(
        p.decide(Some(&s), false, at(1025)),
        ReuseDecision::Reuse {
            upgrade_flag: false
        }
    );
    assert_eq!(
        p.decide(Some(&s), false, at(1026)),
        ReuseDecision::MintNew(MintReason::TooLittleLifeLeft)
    );
}

#[test]
fn tx_hash_must_be_for_the_assets_network() {
    let asset = Asset::new("ETH", "ETH", &LedgerTable::default()).unwrap();
    let address = CounterpartyAddress::parse(Network::Eth, EVM, BitcoinNetwork::Mainnet).unwrap();
    let btc_tx = TxHash::parse(Network::Btc, &"ab".repeat(32)).unwrap();
    assert!(matches!(
        SessionScope::new(
            Subject::User(USER.parse().unwrap()),
            asset,
            Counterparty::Address(address),
            Some(btc_tx)
        ),
        Err(ScopeError::TxHashNetwork {
            tx: Network::Btc,
            asset: Network::Eth
        })
    ));
}

#[test]
fn an_invoice_expiring_in_a_billion_years_is_accepted_and_reported() {
    let inv = invoice(
        LnCurrency::Bitcoin,
        1_700_000_000,
        1 << 50,
        None,
        &secret(1),
    );
    let v = parse(json!({"userId": USER, "currency": "BTC", "network": "BTC", "invoice": inv}))
        .unwrap();
    let Counterparty::Lightning(l) = v.scope().counterparty() else {
        panic!()
    };
    assert_eq!(l.invoice.unwrap().expires_at, InvoiceDetails::FAR_FUTURE);
}

#[test]
fn messages_never_echo_unbounded_input() {
    let huge = "A".repeat(100_000);
    let body = json!({huge.clone(): 1, "forceVerifyOwnership": huge, "currency": huge, "network": huge, "userId": huge, "counterpartyAddress": huge});
    let e = parse_json(body.to_string().as_bytes(), &Rules::default()).unwrap_err();
    for problem in e.errors() {
        assert!(problem.field.len() < 100, "{}", problem.field.len());
        assert!(
            problem.message.len() < 300,
            "{}: {}",
            problem.code,
            problem.message.len()
        );
    }
    assert!(e.codes().contains(&ErrorCode::UnknownField));
}

#[test]
fn duplicate_members_are_refused() {
    let body = format!(
        r#"{{"userId":"{USER}","userId":"{USER}","currency":"BTC","network":"BTC","paymentHash":"{HASH}"}}"#
    );
    let e = parse_json(body.as_bytes(), &Rules::default()).unwrap_err();
    assert_eq!(
        e.into_vec()
            .into_iter()
            .map(|p| (p.field, p.code))
            .collect::<Vec<_>>(),
        vec![("userId".to_string(), ErrorCode::InvalidJson)]
    );
}

#[test]
fn shape_and_rule_problems_are_reported_together() {
    // json! sorts members by name; shape problems come in body order, then rule problems.
    let e = parse(json!({"userId": 5, "currency": "DOGE", "network": "BTC", "paymentHash": HASH, "invoice": ["x"], "color": "red", "forceVerifyOwnership": "yes"})).unwrap_err();
    let got: Vec<(String, ErrorCode)> = e.into_iter().map(|p| (p.field, p.code)).collect();
    assert_eq!(
        got,
        vec![
            ("color".into(), ErrorCode::UnknownField),
            ("forceVerifyOwnership".into(), ErrorCode::InvalidType),
            ("invoice".into(), ErrorCode::InvalidType),
            ("userId".into(), ErrorCode::InvalidType),
            ("currency".into(), ErrorCode::UnsupportedCurrency),
            // The mistyped invoice still counts as given, so two counterparties were sent…
            (
                fields::COUNTERPARTY.into(),
                ErrorCode::ExactlyOneCounterparty
            ),
            // …and a Lightning one, for DOGE.
            ("paymentHash".into(), ErrorCode::LightningRequiresBtc),
        ]
    );
}

#[test]
fn only_hyphenated_uuids_are_accepted() {
    let simple = USER.replace('-', "");
    for id in [format!("{{{USER}}}"), format!("urn:uuid:{USER}"), simple] {
        let e =
            codes(json!({"userId": id, "currency": "BTC", "network": "BTC", "paymentHash": HASH}));
        assert_eq!(e, vec![("userId".into(), ErrorCode::InvalidUuid)], "{id}");
    }
    assert!(parse(json!({"userId": USER.to_uppercase(), "currency": "BTC", "network": "BTC", "paymentHash": HASH})).is_ok());
}

#[test]
fn stored_values_restore_without_todays_configuration() {
    // USDC moved to POLYGON after this session was stored on ETH.
    let asset = Asset::from_stored(Currency::parse("USDC").unwrap(), Network::Eth);
    let address = CounterpartyAddress::from_stored(Network::Eth, EVM.to_string());
    let scope = SessionScope::new(
        Subject::User(USER.parse().unwrap()),
        asset,
        Counterparty::Address(address),
        None,
    )
    .unwrap();
    let original = parse(
        json!({"userId": USER, "currency": "USDC", "network": "ETH", "counterpartyAddress": EVM}),
    )
    .unwrap();
    assert_eq!(&scope, original.scope());
    assert_eq!(scope.reuse_key(), original.reuse_key());
}

/// The problems as the API sends them (`errors` of a problem document).
fn problems(e: &ValidationErrors) -> Vec<api::http::error::FieldProblem> {
    e.clone().into_iter().map(Into::into).collect()
}
