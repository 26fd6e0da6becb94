//! The travel-rule record over the API, end to end on both stores (`memory::name`,
//! `postgres::name`): declarations, the ownership challenge, proofs signed with a fresh key,
//! the order of answers, the record carried over to a new link, a raised flag reopening a
//! complete record, and the application's proof policy. (The proof methods themselves are
//! checked against independent signers in the domain crate's tests.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

fn user() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn eth(user: &str, address: &str, force: bool) -> Value {
    json!({"userId": user, "currency": "ETH", "network": "ETH",
           "counterpartyAddress": address, "forceVerifyOwnership": force})
}

fn path(id: &str, what: &str) -> String {
    format!("{SESSIONS}/{id}/{what}")
}

async fn put_declaration(app: &TestApp, who: &Creds, id: &str, body: &Value) -> Resp {
    app.signed(who, "PUT", &path(id, "declaration"), &body.to_string())
        .await
}

async fn challenge(app: &TestApp, who: &Creds, id: &str) -> Resp {
    app.signed(who, "GET", &path(id, "ownership-challenge"), "")
        .await
}

async fn prove(app: &TestApp, who: &Creds, id: &str, signature: &str) -> Resp {
    app.signed(
        who,
        "POST",
        &path(id, "ownership-proof"),
        &json!({ "signature": signature }).to_string(),
    )
    .await
}

async fn event_types(app: &TestApp, who: &Creds, id: &str) -> Vec<String> {
    let r = app.signed(who, "GET", &path(id, "events"), "").await;
    r.expect(200);
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

fn own() -> Value {
    json!({"custody": "SELF_HOSTED", "owner": "CUSTOMER"})
}

fn exchange() -> Value {
    json!({"custody": "VASP", "owner": "CUSTOMER",
           "vasp": {"name": "  Example Exchange  ", "lei": "5493001KJTIIGC8Y1R12", "country": "DE"}})
}

/// The whole record through the API: a forced session of a wallet of the customer's own
/// needs a declaration and a proof; refused proofs say why; the events follow each change.
async fn a_declaration_and_a_proof_complete_the_record(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let key = EvmKey::new();
    let s = app
        .create_ok(&app.a, &eth(&user(), &key.address(), true), 201)
        .await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(
        s["travelRule"],
        json!({"status": "AWAITING_DECLARATION", "proofRequired": null,
               "proofPolicy": "WHEN_FORCED", "declaration": null, "ownershipProof": null})
    );

    let r = put_declaration(&app, &app.a, id, &own()).await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let tr = &r.json()["travelRule"];
    assert_eq!(tr["status"], "AWAITING_PROOF");
    assert_eq!(tr["proofRequired"], true);
    assert_eq!(tr["declaration"]["custody"], "SELF_HOSTED");
    assert_eq!(tr["declaration"]["owner"], "CUSTOMER");
    assert_eq!(tr["declaration"]["source"], "API");
    assert!(tr["declaration"]["declaredAt"].is_string(), "{tr}");

    let c = challenge(&app, &app.a, id).await;
    c.expect(200);
    let c = c.json();
    let message = c["message"].as_str().unwrap();
    assert!(message.is_ascii() && message.len() <= 240 && !message.ends_with('\n'));
    assert!(
        message.contains(&format!("(session {id}, nonce ")),
        "{message}"
    );
    assert_eq!(c["address"], s["counterparty"]["address"]);
    assert_eq!(c["network"], "ETH");
    assert_eq!(c["methods"], json!(["EIP191"]));
    let created = chrono::DateTime::parse_from_rfc3339(s["createdAt"].as_str().unwrap()).unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(c["expiresAt"].as_str().unwrap()).unwrap();
    // The window's end, to the whole second below, exactly as the message says it.
    assert_eq!(
        until.timestamp(),
        (created + chrono::TimeDelta::days(1)).timestamp()
    );
    assert_eq!(until.timestamp_subsec_nanos(), 0);
    assert!(
        message.ends_with(&format!(
            "valid until {})",
            until.format("%Y-%m-%dT%H:%M:%SZ")
        )),
        "{message}"
    );
    // The challenge never changes.
    assert_eq!(challenge(&app, &app.a, id).await.json()["message"], message);

    // Refused proofs: another key, an altered message, garbage, no signature.
    let other = EvmKey::new();
    assert_problem(
        &prove(&app, &app.a, id, &other.personal_sign(message)).await,
        422,
        "signature_mismatch",
    );
    assert_problem(
        &prove(&app, &app.a, id, &key.personal_sign(&format!("{message}."))).await,
        422,
        "signature_mismatch",
    );
    let malformed = prove(&app, &app.a, id, "not a signature").await;
    assert_problem(&malformed, 422, "signature_malformed");
    let detail = malformed.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.starts_with("the signature cannot be read: ")
            && detail.matches("cannot be read").count() == 1,
        "{detail}"
    );
    let missing = app
        .signed(&app.a, "POST", &path(id, "ownership-proof"), "{}")
        .await;
    assert_eq!(validation_errors(&missing), [fe("signature", "required")]);
    let number = app
        .signed(
            &app.a,
            "POST",
            &path(id, "ownership-proof"),
            r#"{"signature": 7}"#,
        )
        .await;
    assert_eq!(
        validation_errors(&number),
        [fe("signature", "invalid_type")]
    );

    let r = prove(&app, &app.a, id, &key.personal_sign(message)).await;
    r.expect(200);
    let tr = &r.json()["travelRule"];
    assert_eq!(tr["status"], "COMPLETE");
    assert_eq!(tr["ownershipProof"]["method"], "EIP191");
    // A second valid proof changes nothing.
    let again = prove(&app, &app.a, id, &key.personal_sign(message)).await;
    again.expect(200);
    assert_eq!(again.json()["travelRule"], *tr);

    // A complete record's declaration is final: the same one is fine, another is refused.
    put_declaration(&app, &app.a, id, &own()).await.expect(200);
    assert_problem(
        &put_declaration(&app, &app.a, id, &exchange()).await,
        409,
        "declaration_already_recorded",
    );
    assert_eq!(
        event_types(&app, &app.a, id).await,
        [
            "session.created",
            "session.declaration_recorded",
            "session.ownership_verified",
            "session.travel_rule_completed",
        ]
    );
    // GET shows the same record.
    let got = app.get_session(&app.a, id).await.json();
    assert_eq!(got["travelRule"], *tr);
}

/// A declaration is replaceable until the record is complete: each version is an event;
/// an exchange's declaration completes the record at once, names trimmed.
async fn a_declaration_is_replaceable_until_complete(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let s = app
        .create_ok(&app.a, &eth(&user(), &EvmKey::new().address(), true), 201)
        .await;
    let id = s["id"].as_str().unwrap();
    put_declaration(&app, &app.a, id, &own()).await.expect(200);
    let r = put_declaration(&app, &app.a, id, &exchange()).await;
    r.expect(200);
    let tr = &r.json()["travelRule"];
    assert_eq!(tr["status"], "COMPLETE");
    assert_eq!(tr["proofRequired"], false);
    assert_eq!(
        tr["declaration"]["vasp"],
        json!({"name": "Example Exchange", "lei": "5493001KJTIIGC8Y1R12", "country": "DE"})
    );
    assert_eq!(
        event_types(&app, &app.a, id).await,
        [
            "session.created",
            "session.declaration_recorded",
            "session.declaration_recorded",
            "session.travel_rule_completed",
        ]
    );
}

/// Every problem of a declaration at once, each with its member and code.
async fn declarations_are_validated_at_once(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let s = app
        .create_ok(&app.a, &eth(&user(), &EvmKey::new().address(), false), 201)
        .await;
    let id = s["id"].as_str().unwrap();
    let body = json!({
        "custody": "COLD",
        "owner": "THIRD_PARTY",
        "vasp": {"name": "Bad\u{200b}Name", "lei": "5493001KJTIIGC8Y1R13", "country": "de", "x": 1},
        "thirdParty": {"naturalPerson": {"firstName": "", "lastName": "Doe", "countryOfResidence": "ZZ"}},
        "extra": true
    });
    let r = put_declaration(&app, &app.a, id, &body).await;
    let mut errors = validation_errors(&r);
    errors.sort();
    let mut expected = vec![
        fe("extra", "unknown_field"),
        fe("vasp.x", "unknown_field"),
        fe("custody", "invalid_custody"),
        fe("vasp.name", "invalid_name"),
        fe("vasp.lei", "invalid_lei"),
        fe("vasp.country", "invalid_country"),
        fe("thirdParty.naturalPerson.firstName", "required"),
        fe(
            "thirdParty.naturalPerson.countryOfResidence",
            "invalid_country",
        ),
    ];
    expected.sort();
    assert_eq!(errors, expected, "{}", r.text);
    // Rules between the parts.
    let r = put_declaration(
        &app,
        &app.a,
        id,
        &json!({"custody": "VASP", "owner": "THIRD_PARTY"}),
    )
    .await;
    assert_eq!(
        validation_errors(&r),
        [
            fe("vasp", "vasp_required"),
            fe("thirdParty", "third_party_required")
        ]
    );
    let r = put_declaration(
        &app,
        &app.a,
        id,
        &json!({"custody": "SELF_HOSTED", "owner": "THIRD_PARTY",
                "thirdParty": {"naturalPerson": {"firstName": "A", "lastName": "B"},
                               "legalPerson": {"name": "C"}}}),
    )
    .await;
    assert_eq!(
        validation_errors(&r),
        [fe("thirdParty", "exactly_one_third_party_kind")]
    );
    // Nothing was recorded.
    assert_eq!(
        event_types(&app, &app.a, id).await,
        ["session.created"],
        "no declaration was recorded"
    );
    // A third party of the customer's counterparty: a legal person, complete at once.
    let r = put_declaration(
        &app,
        &app.a,
        id,
        &json!({"custody": "SELF_HOSTED", "owner": "THIRD_PARTY",
                "thirdParty": {"legalPerson": {"name": "ACME GmbH", "countryOfRegistration": "XK"}}}),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json()["travelRule"]["status"], "COMPLETE");
}

/// The order of answers: another application's session 404; a cancelled one 409; a closed
/// window 410; only then a malformed body 400.
async fn answers_come_in_the_contracts_order(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let s = app
        .create_ok(&app.a, &eth(&user(), &EvmKey::new().address(), false), 201)
        .await;
    let id = s["id"].as_str().unwrap();
    let garbage = json!({"custody": 1});
    assert_problem(
        &put_declaration(&app, &app.b, id, &garbage).await,
        404,
        "session_not_found",
    );
    assert_problem(&challenge(&app, &app.b, id).await, 404, "session_not_found");
    assert_problem(
        &prove(&app, &app.b, id, "x").await,
        404,
        "session_not_found",
    );
    assert_problem(
        &put_declaration(&app, &app.a, "not-a-session", &own()).await,
        404,
        "session_not_found",
    );
    // Open and unopened: a malformed body is the problem.
    assert_problem(
        &put_declaration(&app, &app.a, id, &garbage).await,
        400,
        "validation_failed",
    );

    // The window closes a day after creation, whatever became of the link.
    app.clock.advance(Duration::from_secs(86_400));
    assert_problem(
        &put_declaration(&app, &app.a, id, &garbage).await,
        410,
        "travel_rule_window_closed",
    );
    assert_problem(
        &challenge(&app, &app.a, id).await,
        410,
        "travel_rule_window_closed",
    );
    assert_problem(
        &prove(&app, &app.a, id, "x").await,
        410,
        "travel_rule_window_closed",
    );

    let c = app
        .create_ok(&app.a, &eth(&user(), &EvmKey::new().address(), false), 201)
        .await;
    let cid = c["id"].as_str().unwrap();
    app.cancel(&app.a, cid).await.expect(200);
    assert_problem(
        &put_declaration(&app, &app.a, cid, &garbage).await,
        409,
        "session_cancelled",
    );
    assert_problem(
        &challenge(&app, &app.a, cid).await,
        409,
        "session_cancelled",
    );
    assert_problem(
        &prove(&app, &app.a, cid, "x").await,
        409,
        "session_cancelled",
    );
}

/// A bare payment hash names no key: no challenge, no proof; the record cannot complete
/// for a wallet of the customer's own when a proof is required.
async fn a_counterparty_that_cannot_sign_has_no_challenge(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let body = json!({"userId": user(), "currency": "BTC", "network": "BTC",
                      "paymentHash": "ab".repeat(32), "forceVerifyOwnership": true});
    let s = app.create_ok(&app.a, &body, 201).await;
    let id = s["id"].as_str().unwrap();
    assert_problem(
        &challenge(&app, &app.a, id).await,
        409,
        "ownership_proof_unavailable",
    );
    assert_problem(
        &prove(&app, &app.a, id, "x").await,
        409,
        "ownership_proof_unavailable",
    );
    let r = put_declaration(&app, &app.a, id, &own()).await;
    r.expect(200);
    assert_eq!(r.json()["travelRule"]["status"], "AWAITING_PROOF");
}

/// A customer whose link expired mid-way gets a new link that starts with the record; a
/// complete record is announced for the new session.
async fn a_new_link_carries_the_record_over(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let key = EvmKey::new();
    let body = eth(&user(), &key.address(), true);
    let first = app.create_ok(&app.a, &body, 201).await;
    let first_id = first["id"].as_str().unwrap();
    put_declaration(&app, &app.a, first_id, &own())
        .await
        .expect(200);
    let message = challenge(&app, &app.a, first_id).await.json()["message"]
        .as_str()
        .unwrap()
        .to_string();
    prove(&app, &app.a, first_id, &key.personal_sign(&message))
        .await
        .expect(200);
    app.clock.advance(Duration::from_secs(301));
    let second = app.create_ok(&app.a, &body, 201).await;
    let second_id = second["id"].as_str().unwrap();
    assert_ne!(first_id, second_id);
    let tr = &second["travelRule"];
    assert_eq!(tr["status"], "COMPLETE");
    assert_eq!(tr["declaration"]["source"], "API");
    assert_eq!(tr["ownershipProof"]["method"], "EIP191");
    let first_tr = app.get_session(&app.a, first_id).await.json()["travelRule"].clone();
    assert_eq!(
        tr["declaration"]["declaredAt"], first_tr["declaration"]["declaredAt"],
        "its time is kept"
    );
    assert_eq!(
        event_types(&app, &app.a, second_id).await,
        ["session.created", "session.travel_rule_completed"]
    );
    // The new session has a challenge of its own.
    let second_message = challenge(&app, &app.a, second_id).await.json()["message"].clone();
    assert_ne!(second_message, json!(message));
}

/// A reuse that raises forceVerifyOwnership moves a complete record of the customer's own
/// wallet back to awaiting a proof, and says so once.
async fn a_raised_flag_reopens_a_complete_record(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let address = EvmKey::new().address();
    let u = user();
    let s = app.create_ok(&app.a, &eth(&u, &address, false), 201).await;
    let id = s["id"].as_str().unwrap();
    let r = put_declaration(&app, &app.a, id, &own()).await;
    assert_eq!(r.json()["travelRule"]["status"], "COMPLETE");
    let reused = app.create_ok(&app.a, &eth(&u, &address, true), 200).await;
    assert_eq!(reused["id"], s["id"]);
    assert_eq!(reused["travelRule"]["status"], "AWAITING_PROOF");
    assert_eq!(reused["travelRule"]["proofRequired"], true);
    app.create_ok(&app.a, &eth(&u, &address, true), 200).await;
    assert_eq!(
        event_types(&app, &app.a, id).await,
        [
            "session.created",
            "session.declaration_recorded",
            "session.travel_rule_completed",
            "session.travel_rule_reopened",
        ]
    );
}

/// An application whose policy is ALWAYS needs a proof for every wallet of the customer's
/// own; its sessions keep the policy they were created under.
async fn the_applications_policy_is_snapshotted(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let c = app_c();
    let s = app
        .create_ok(&c, &eth(&user(), &EvmKey::new().address(), false), 201)
        .await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(s["travelRule"]["proofPolicy"], "ALWAYS");
    let r = put_declaration(&app, &c, id, &own()).await;
    assert_eq!(r.json()["travelRule"]["status"], "AWAITING_PROOF");
    assert_eq!(r.json()["travelRule"]["proofRequired"], true);
}

/// The partners' client crate: declare, fetch the challenge, prove, typed all the way.
async fn the_partners_client_declares_and_proves(store: Store) {
    use client::{Client, CounterpartyInput, CreateSession, Declaration, ProblemCode, Subject};
    let app = TestApp::spawn(store, &[]).await;
    let c = Client::new(&app.base, &app.a.key, &app.a.secret).unwrap();
    let key = EvmKey::new();
    let s = c
        .create_session(
            &CreateSession::new(
                Subject::User(uuid::Uuid::new_v4()),
                "ETH",
                "ETH",
                CounterpartyInput::Address(key.address()),
            )
            .force_verify_ownership(true),
        )
        .await
        .unwrap();
    assert_eq!(
        s.travel_rule.as_ref().unwrap().status,
        "AWAITING_DECLARATION"
    );
    let s = c
        .declare(s.id, &Declaration::own_self_hosted())
        .await
        .unwrap();
    let tr = s.travel_rule.clone().unwrap();
    assert_eq!(
        (tr.status.as_str(), tr.proof_required),
        ("AWAITING_PROOF", Some(true))
    );
    assert_eq!(
        tr.declaration.unwrap().declaration,
        Declaration::own_self_hosted()
    );
    let challenge = c.ownership_challenge(s.id).await.unwrap();
    assert_eq!(challenge.methods, ["EIP191"]);
    let wrong = c
        .prove_ownership(s.id, &EvmKey::new().personal_sign(&challenge.message))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(&ProblemCode::SignatureMismatch));
    let done = c
        .prove_ownership(s.id, &key.personal_sign(&challenge.message))
        .await
        .unwrap();
    let tr = done.travel_rule.unwrap();
    assert!(tr.is_complete());
    assert_eq!(tr.ownership_proof.unwrap().method, "EIP191");
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Memory).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Postgres).await;
                }
            )*
        }
    };
}

both! {
    a_declaration_and_a_proof_complete_the_record,
    a_declaration_is_replaceable_until_complete,
    declarations_are_validated_at_once,
    answers_come_in_the_contracts_order,
    a_counterparty_that_cannot_sign_has_no_challenge,
    a_new_link_carries_the_record_over,
    a_raised_flag_reopens_a_complete_record,
    the_applications_policy_is_snapshotted,
    the_partners_client_declares_and_proves,
}
