//! Property tests: the flag never goes from true to false; normalisation is idempotent;
//! equivalent inputs share a reuse key; no input makes a parser panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use api::http::create_body::parse_json;
use domain::chrono::{DateTime, TimeDelta, Utc};
use domain::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn rules() -> Rules {
    Rules::default()
}

fn flip_case(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().cycle())
        .map(|(c, up)| {
            if *up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn evm_address() -> impl Strategy<Value = String> {
    prop::array::uniform20(any::<u8>()).prop_map(|b| format!("0x{}", hex::encode(b)))
}

fn segwit_address() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::array::uniform20(any::<u8>()).prop_map(|p| (0u8, p.to_vec())),
        prop::array::uniform32(any::<u8>()).prop_map(|p| (0u8, p.to_vec())),
        prop::array::uniform32(any::<u8>()).prop_map(|p| (1u8, p.to_vec())),
    ]
    .prop_map(|(version, program)| {
        let v = bech32::Fe32::try_from(version).unwrap();
        bech32::segwit::encode(bech32::hrp::BC, v, &program).unwrap()
    })
}

fn base58check(version: u8) -> impl Strategy<Value = String> {
    prop::array::uniform20(any::<u8>()).prop_map(move |b| {
        let mut payload = vec![version];
        payload.extend_from_slice(&b);
        bs58::encode(payload).with_check().into_string()
    })
}

fn address_for(network: Network) -> BoxedStrategy<String> {
    match network {
        Network::Btc => prop_oneof![segwit_address(), base58check(0x00), base58check(0x05)].boxed(),
        Network::Eth | Network::Polygon | Network::Bsc => evm_address().boxed(),
        Network::Sol => prop::array::uniform32(any::<u8>())
            .prop_map(|b| bs58::encode(b).into_string())
            .boxed(),
        Network::Tron => base58check(0x41).boxed(),
    }
}

fn network() -> impl Strategy<Value = Network> {
    prop::sample::select(Network::ALL.to_vec())
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// Arbitrary JSON, biased towards the request's own member names.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,80}".prop_map(Value::String),
        Just(json!("BTC")),
        Just(json!("7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44")),
    ];
    let names = prop::sample::select(vec![
        "userId",
        "businessId",
        "currency",
        "network",
        "counterpartyAddress",
        "paymentHash",
        "invoice",
        "forceVerifyOwnership",
        "txHash",
        "other",
    ]);
    leaf.prop_recursive(3, 32, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..9).prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Whatever sequence of requests reuses a session, its flag never goes from true to false.
    #[test]
    fn force_verify_ownership_never_goes_from_true_to_false(initial: bool, requests in prop::collection::vec(any::<bool>(), 0..20)) {
        let req = parse_json(
            format!(r#"{{"userId":"7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44","currency":"BTC","network":"BTC","paymentHash":"{}","forceVerifyOwnership":{initial}}}"#, "00".repeat(32)).as_bytes(),
            &rules(),
        ).unwrap();
        let policy = ReusePolicy::default();
        let mut s = Session::new(SessionId::from_uuid(uuid::Uuid::nil()), ApplicationId::from_uuid(uuid::Uuid::nil()), req, at(0), &policy);
        let mut seen_true = initial;
        for requested in requests {
            let before = s.force_verify_ownership();
            if let ReuseDecision::Reuse { upgrade_flag } = policy.decide(Some(&s), requested, at(1)) {
                prop_assert_eq!(upgrade_flag, requested && !before);
            }
            let changed = s.request_force_verify_ownership(requested);
            prop_assert_eq!(changed != domain::FlagChange::Unchanged, !before && requested);
            seen_true |= requested;
            prop_assert!(!before || s.force_verify_ownership(), "true went back to false");
            prop_assert_eq!(s.force_verify_ownership(), seen_true);
        }
    }

    /// Normal forms are fixed points, and the same address in any letter case (where the
    /// encoding is case-insensitive) normalises to the same form.
    #[test]
    fn address_normalisation_is_idempotent((network, address) in network().prop_flat_map(|n| (Just(n), address_for(n))), mask in prop::collection::vec(any::<bool>(), 1..50)) {
        let btc = BitcoinNetwork::Mainnet;
        let once = CounterpartyAddress::parse(network, &address, btc).unwrap();
        let twice = CounterpartyAddress::parse(network, once.as_str(), btc).unwrap();
        prop_assert_eq!(&once, &twice);
        let case_insensitive = network.family() == NetworkFamily::Evm || address.starts_with("bc1");
        if case_insensitive {
            let recased = if network.family() == NetworkFamily::Evm {
                format!("0x{}", flip_case(&address[2..], &mask))
            } else if mask[0] { address.to_uppercase() } else { address.clone() };
            let lower_or_upper = recased[2..] == recased[2..].to_lowercase() || recased[2..] == recased[2..].to_uppercase();
            match CounterpartyAddress::parse(network, &recased, btc) {
                Ok(p) => prop_assert_eq!(p, once),
                // Mixed case that is not the EIP-55 form is refused, never silently normalised.
                Err(e) => prop_assert!(!lower_or_upper && e.code() == ErrorCode::InvalidAddressChecksum, "{}: {}", recased, e),
            }
        }
    }

    #[test]
    fn hash_normalisation_is_idempotent(bytes in prop::array::uniform32(any::<u8>()), mask in prop::collection::vec(any::<bool>(), 1..64)) {
        let hex = flip_case(&hex::encode(bytes), &mask);
        let h = PaymentHash::parse(&hex).unwrap();
        prop_assert_eq!(PaymentHash::parse(&h.to_string()).unwrap(), h);
        prop_assert_eq!(h.as_bytes(), &bytes);
        for network in Network::ALL {
            let input = match network.family() {
                NetworkFamily::Evm => format!("0x{hex}"),
                NetworkFamily::Solana => bs58::encode([bytes, bytes].concat()).into_string(),
                _ => hex.clone(),
            };
            let t = TxHash::parse(network, &input).unwrap();
            prop_assert_eq!(TxHash::parse(network, t.as_str()).unwrap(), t);
        }
    }

    /// Equivalent requests share a reuse key: letter case of EVM/bech32 addresses, hex hashes,
    /// currency, network and UUIDs; member order; explicit nulls; the flag.
    #[test]
    fn equivalent_requests_share_a_reuse_key(
        user in any::<u128>(),
        (network, address) in network().prop_flat_map(|n| (Just(n), address_for(n))),
        tx in prop::array::uniform32(any::<u8>()),
        with_tx: bool, flag: bool, upper: bool,
    ) {
        let currency = LedgerTable::default().iter().find(|(_, n)| *n == network).unwrap().0.to_string();
        let uuid = uuid::Uuid::from_u128(user);
        let tx_hex = hex::encode(tx);
        let tx_text = match network.family() {
            NetworkFamily::Evm => format!("0x{tx_hex}"),
            NetworkFamily::Solana => bs58::encode([tx, tx].concat()).into_string(),
            _ => tx_hex.clone(),
        };
        let mut a = json!({"userId": uuid.to_string(), "currency": currency, "network": network.as_str(), "counterpartyAddress": address});
        let recase = |s: &str| if upper { s.to_uppercase() } else { s.to_lowercase() };
        let other_address = match network.family() {
            NetworkFamily::Evm => format!("0x{}", recase(&address[2..])),
            NetworkFamily::Bitcoin if address.starts_with("bc1") => recase(&address),
            _ => address.clone(),
        };
        let other_tx = match network.family() {
            NetworkFamily::Evm => format!("0x{}", recase(&tx_hex)),
            NetworkFamily::Solana => tx_text.clone(),
            _ => recase(&tx_hex),
        };
        let mut b = json!({"forceVerifyOwnership": flag, "counterpartyAddress": other_address, "network": recase(network.as_str()),
            "currency": recase(&currency), "businessId": null, "userId": uuid.to_string().to_uppercase()});
        if with_tx {
            a["txHash"] = json!(tx_text);
            b["txHash"] = json!(other_tx);
        }
        let ka = parse_json(a.to_string().as_bytes(), &rules()).unwrap().reuse_key();
        let kb = parse_json(b.to_string().as_bytes(), &rules()).unwrap().reuse_key();
        prop_assert_eq!(ka.digest(), kb.digest());
        // …and a txHash never shares a key with no txHash.
        let mut c = a.clone();
        if with_tx { c.as_object_mut().unwrap().remove("txHash"); } else { c["txHash"] = json!(tx_text); }
        let kc = parse_json(c.to_string().as_bytes(), &rules()).unwrap().reuse_key();
        prop_assert_ne!(ka.digest(), kc.digest());
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for input in [s.as_str(), lossy.as_str()] {
            for network in Network::ALL {
                for btc in [BitcoinNetwork::Mainnet, BitcoinNetwork::Regtest] {
                    let _ = CounterpartyAddress::parse(network, input, btc);
                }
                let _ = TxHash::parse(network, input);
            }
            let _ = PaymentHash::parse(input);
            let _ = Invoice::decode(input, BitcoinNetwork::Mainnet);
            let _ = Invoice::decode(&format!("lnbc1{input}"), BitcoinNetwork::Mainnet);
            let _ = Currency::parse(input);
            let _ = input.parse::<Network>();
            let _ = input.parse::<LedgerTable>();
            let _ = SessionStatus::parse(input);
        }
        let _ = parse_json(&bytes, &rules());
    }

    #[test]
    fn arbitrary_json_never_panics_and_errors_are_well_formed(v in arbitrary_json()) {
        match parse_json(v.to_string().as_bytes(), &rules()) {
            Ok(valid) => { let _ = valid.reuse_key().digest(); }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors.errors() {
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }

    /// Status follows the clock: ACTIVE strictly before expiry, EXPIRED from it on, unless
    /// an action ended the session first.
    #[test]
    fn status_is_a_function_of_the_clock(ttl in 1u64..=300, offset in -1000i64..1000) {
        let policy = ReusePolicy::new(std::time::Duration::from_secs(ttl), std::time::Duration::ZERO).unwrap();
        let req = parse_json(format!(r#"{{"userId":"7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44","currency":"BTC","network":"BTC","paymentHash":"{}"}}"#, "00".repeat(32)).as_bytes(), &rules()).unwrap();
        let s = Session::new(SessionId::from_uuid(uuid::Uuid::nil()), ApplicationId::from_uuid(uuid::Uuid::nil()), req, at(10_000), &policy);
        let now = at(10_000) + TimeDelta::seconds(offset);
        let expected = if now >= s.expires_at() { SessionStatus::Expired } else { SessionStatus::Active };
        prop_assert_eq!(s.status_at(now), expected);
    }
}
