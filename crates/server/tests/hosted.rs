//! The hosted travel-rule step of the launch link, over HTTP on both stores where storage is
//! involved (`memory::name`, `postgres::name`): the page of a pending record (nothing
//! consumed), its headers, every form error next to its field, the confirmation, the
//! challenge and the signature check, Continue (303 to the widget, once), Continue before
//! the record is complete (409), ended sessions (410), the origin rule (403), the setting
//! off and a complete record (the plain launch), `frameAncestors`; and the whole flow
//! without JavaScript with a BIP-322 signature made by an independent signer (bip322-js).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::*;

fn user() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn eth(address: &str, force: bool) -> Value {
    json!({"userId": user(), "currency": "ETH", "network": "ETH",
           "counterpartyAddress": address, "forceVerifyOwnership": force})
}

/// The page's own origin (the instance's public base).
fn own(app: &TestApp) -> [(&'static str, &str); 1] {
    [("origin", app.base.as_str())]
}

/// A session of `who` for a fresh EVM key; its id, launch path and key.
async fn session(app: &TestApp, who: &Creds, force: bool) -> (String, String, EvmKey) {
    let key = EvmKey::new();
    let s = app.create_ok(who, &eth(&key.address(), force), 201).await;
    let link = format!("/w/{}", token_of(s["widgetUrl"].as_str().unwrap()));
    (s["id"].as_str().unwrap().to_string(), link, key)
}

async fn travel_rule(app: &TestApp, who: &Creds, id: &str) -> Value {
    let r = app.get_session(who, id).await;
    r.expect(200);
    r.json()
}

async fn event_types(app: &TestApp, who: &Creds, id: &str) -> Vec<String> {
    let r = app
        .signed(who, "GET", &format!("{SESSIONS}/{id}/events"), "")
        .await;
    r.expect(200);
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// The page's headers: HTML, not stored, no referrer to other origins, a CSP whose script
/// and style nonce is the one the page's `<script>` and `<style>` carry, framing by `framing`.
#[track_caller]
fn assert_page(r: &Resp, status: u16, framing: &str) {
    r.expect(status);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").unwrap();
    let nonce = csp
        .split("script-src 'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no script nonce in {csp}"));
    assert!(nonce.len() >= 32, "{csp}");
    assert_eq!(
        csp,
        format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; base-uri 'none'; frame-ancestors {framing}"
        )
    );
    assert!(
        r.text.contains(&format!("<script nonce=\"{nonce}\">"))
            && r.text.contains(&format!("<style nonce=\"{nonce}\">")),
        "{}",
        r.text
    );
    // Nothing from elsewhere.
    assert!(!r.text.contains("src=\"http"), "{}", r.text);
}

/// The error shown next to `field`: the field points at it and says it is invalid.
#[track_caller]
fn assert_field_error(r: &Resp, field: &str, words: &str) {
    let error = format!("id=\"{field}-error\"");
    assert!(r.text.contains(&error), "no error for {field}: {}", r.text);
    let after = r.text.split(&error).nth(1).unwrap();
    let message = after.split("</p>").next().unwrap();
    assert!(message.contains(words), "{field}: {message}");
    assert!(
        r.text
            .contains(&format!("aria-describedby=\"{field}-error\""))
            || r.text.contains(&format!("{field}-hint {field}-error")),
        "{field} does not point at its error: {}",
        r.text
    );
    assert!(r.text.contains("aria-invalid=\"true\""), "{}", r.text);
    assert!(
        r.text.contains("id=\"error-summary\" role=\"alert\""),
        "{}",
        r.text
    );
}

/// The challenge message as the page shows it.
fn challenge_on(page: &str) -> String {
    let after = page
        .split("<pre id=\"challenge\" aria-labelledby=\"challenge-label\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no challenge on the page: {page}"));
    after.split("</pre>").next().unwrap().to_string()
}

/// The link of a session whose record is not complete shows the page, `GET` and `HEAD`
/// alike, and consumes nothing.
async fn a_pending_record_shows_the_page_and_consumes_nothing(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let (id, link, _) = session(&app, &h, false).await;

    let r = app
        .get(&format!("{link}?sdkName=transak-sdk&sdkVersion=4.0.2"))
        .await;
    assert_page(&r, 200, "*");
    assert!(
        r.text.contains("<h1>Before you continue</h1>"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(&format!(
            "action=\"{link}/travel-rule?sdkName=transak-sdk&amp;sdkVersion=4.0.2\""
        )),
        "the forms keep the SDK's parameters: {}",
        r.text
    );
    for field in ["custody", "owner", "vaspName", "firstName", "legalName"] {
        assert!(
            r.text.contains(&format!("name=\"{field}\"")),
            "{field}: {}",
            r.text
        );
    }
    let head = app.head(&link).await;
    head.expect(200);
    assert_eq!(head.header("cache-control"), Some("no-store"));
    assert!(head.text.is_empty());
    app.get(&link).await.expect(200);

    let s = travel_rule(&app, &h, &id).await;
    assert_eq!(s["status"], "ACTIVE");
    assert_eq!(s["travelRule"]["status"], "AWAITING_DECLARATION");
    assert_eq!(event_types(&app, &h, &id).await, ["session.created"]);
}

/// Every declaration problem is shown next to its field, in words, and nothing is recorded.
async fn declaration_errors_are_shown_next_to_their_fields(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let (id, link, _) = session(&app, &h, false).await;
    let post = format!("{link}/travel-rule");
    type Fields<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Fields, Fields)] = &[
        (&[], &[("custody", "Choose where the crypto will be sent")]),
        (
            &[("custody", "VASP")],
            &[("owner", "Choose whose wallet or account it is")],
        ),
        (
            &[("custody", "SOMEWHERE"), ("owner", "NOBODY")],
            &[
                ("custody", "Choose where the crypto will be sent"),
                ("owner", "Choose whose wallet or account it is"),
            ],
        ),
        (
            &[("custody", "VASP"), ("owner", "CUSTOMER")],
            &[("vaspName", "Enter the name of the exchange or provider")],
        ),
        (
            &[
                ("custody", "VASP"),
                ("owner", "CUSTOMER"),
                ("vaspName", "Example"),
                ("vaspLei", "5493001KJTIIGC8Y1R13"),
                ("vaspCountry", "de"),
            ],
            &[
                ("vaspLei", "valid 20-character LEI"),
                ("vaspCountry", "two-letter code in capitals"),
            ],
        ),
        (
            &[
                ("custody", "SELF_HOSTED"),
                ("owner", "CUSTOMER"),
                ("vaspName", "Example"),
            ],
            &[("vaspName", "Leave the exchange details empty")],
        ),
        (
            &[("custody", "SELF_HOSTED"), ("owner", "THIRD_PARTY")],
            &[(
                "thirdPartyKind",
                "Tell us who the wallet or account belongs to",
            )],
        ),
        (
            &[
                ("custody", "SELF_HOSTED"),
                ("owner", "THIRD_PARTY"),
                ("thirdPartyKind", "NATURAL"),
            ],
            &[
                ("firstName", "Enter the person's first name"),
                ("lastName", "Enter the person's last name"),
            ],
        ),
        (
            &[
                ("custody", "SELF_HOSTED"),
                ("owner", "THIRD_PARTY"),
                ("firstName", "Ada"),
                ("legalName", "Acme"),
            ],
            &[(
                "thirdPartyKind",
                "Choose whether it belongs to a person or to an organisation",
            )],
        ),
        (
            &[
                ("custody", "SELF_HOSTED"),
                ("owner", "THIRD_PARTY"),
                ("thirdPartyKind", "LEGAL"),
                ("legalName", "Acme\u{200b}"),
                ("lei", "123"),
                ("countryOfRegistration", "ZZ"),
            ],
            &[
                ("legalName", "without invisible or control characters"),
                ("lei", "valid 20-character LEI"),
                ("countryOfRegistration", "two-letter code"),
            ],
        ),
        (
            &[
                ("custody", "SELF_HOSTED"),
                ("owner", "THIRD_PARTY"),
                ("thirdPartyKind", "NATURAL"),
                ("firstName", "Ada"),
                ("lastName", "Lovelace"),
                ("countryOfResidence", "GBR"),
            ],
            &[("countryOfResidence", "two-letter code")],
        ),
        (
            &[
                ("custody", "SELF_HOSTED"),
                ("owner", "CUSTOMER"),
                ("thirdPartyKind", "NATURAL"),
                ("firstName", "Ada"),
                ("lastName", "Lovelace"),
            ],
            &[("thirdPartyKind", "Leave the other person's details empty")],
        ),
    ];
    for (fields, errors) in cases {
        let r = app.post_form(&post, fields, &own(&app)).await;
        assert_page(&r, 400, "*");
        for (field, words) in *errors {
            assert_field_error(&r, field, words);
        }
        // What was typed is shown again.
        for (field, value) in *fields {
            if !["custody", "owner", "thirdPartyKind"].contains(field) {
                assert!(
                    r.text.contains(&format!("value=\"{value}\"")),
                    "{field}: {}",
                    r.text
                );
            }
        }
    }
    let s = travel_rule(&app, &h, &id).await;
    assert_eq!(s["travelRule"]["status"], "AWAITING_DECLARATION");
    assert_eq!(event_types(&app, &h, &id).await, ["session.created"]);
}

/// The answer is shown back for confirmation (nothing recorded), then recorded as `HOSTED`;
/// Continue consumes the session once and goes on to the widget with the SDK's parameters.
async fn the_declaration_is_confirmed_then_continue_opens_the_widget(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let (id, link, _) = session(&app, &h, false).await;
    let query = "?sdkName=transak-sdk&sdkVersion=4.0.2&utm_source=x";
    let post = format!("{link}/travel-rule{query}");
    let answer = [
        ("custody", "VASP"),
        ("owner", "THIRD_PARTY"),
        ("vaspName", "  Example Exchange "),
        ("vaspLei", "5493001KJTIIGC8Y1R12"),
        ("vaspCountry", "DE"),
        ("thirdPartyKind", "LEGAL"),
        ("legalName", "Acme GmbH"),
        ("countryOfRegistration", "AT"),
    ];
    let mut review = answer.to_vec();
    review.push(("review", "1"));
    let r = app.post_form(&post, &review, &own(&app)).await;
    assert_page(&r, 200, "*");
    assert!(r.text.contains("Please check your answer"), "{}", r.text);
    assert!(
        r.text
            .contains("Example Exchange, LEI 5493001KJTIIGC8Y1R12, DE"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Acme GmbH, AT"), "{}", r.text);
    assert!(
        r.text
            .contains("<input type=\"hidden\" name=\"vaspName\" value=\"Example Exchange\">"),
        "{}",
        r.text
    );
    assert_eq!(
        travel_rule(&app, &h, &id).await["travelRule"]["status"],
        "AWAITING_DECLARATION",
        "the confirmation records nothing"
    );
    // "Change my answer" brings the form back, filled in.
    let mut edit = answer.to_vec();
    edit.push(("edit", "1"));
    let r = app.post_form(&post, &edit, &own(&app)).await;
    assert_page(&r, 200, "*");
    assert!(r.text.contains("value=\"Acme GmbH\""), "{}", r.text);
    assert!(r.text.contains("value=\"VASP\" checked"), "{}", r.text);

    let r = app.post_form(&post, &answer, &own(&app)).await;
    assert_page(&r, 200, "*");
    assert!(r.text.contains("Your answer is recorded"), "{}", r.text);
    assert!(
        r.text.contains(&format!(
            "action=\"{link}/continue?sdkName=transak-sdk&amp;sdkVersion=4.0.2\""
        )),
        "{}",
        r.text
    );
    let s = travel_rule(&app, &h, &id).await;
    assert_eq!(s["status"], "ACTIVE");
    let tr = &s["travelRule"];
    assert_eq!(tr["status"], "COMPLETE");
    assert_eq!(tr["declaration"]["source"], "HOSTED");
    assert_eq!(tr["declaration"]["vasp"]["name"], "Example Exchange");
    assert_eq!(
        tr["declaration"]["thirdParty"]["legalPerson"]["name"],
        "Acme GmbH"
    );
    // The same answer again changes nothing; a different one is refused next to its field.
    app.post_form(&post, &answer, &own(&app)).await.expect(200);
    let other = [("custody", "SELF_HOSTED"), ("owner", "CUSTOMER")];
    let r = app.post_form(&post, &other, &own(&app)).await;
    assert_page(&r, 400, "*");
    assert!(
        r.text.contains(
            "<p class=\"error\" id=\"custody-error\">Your answer was already recorded and can no longer be changed.</p>"
        ) && r.text.contains("id=\"error-summary\" role=\"alert\""),
        "{}",
        r.text
    );

    let r = app
        .post_form(&format!("{link}/continue{query}"), &[], &own(&app))
        .await;
    r.expect(303);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    let location = r.header("location").unwrap();
    assert!(location.starts_with(&app.emulator.base_url()), "{location}");
    assert!(
        location.ends_with("&sdkName=transak-sdk&sdkVersion=4.0.2"),
        "{location}"
    );
    assert_eq!(travel_rule(&app, &h, &id).await["status"], "CONSUMED");
    assert_eq!(
        event_types(&app, &h, &id).await,
        [
            "session.created",
            "session.declaration_recorded",
            "session.travel_rule_completed",
            "session.consumed"
        ]
    );
    // Once.
    let again = app
        .post_form(&format!("{link}/continue"), &[], &own(&app))
        .await;
    again.expect(410);
    assert!(
        again
            .text
            .contains("Ask the service that sent it for a new one")
    );
    app.get(&link).await.expect(410);
}

/// A required proof: the page shows the challenge; Continue before the proof is `409` and
/// consumes nothing; refused signatures are explained next to the field (and kept for the
/// audit); a valid one completes the record.
async fn a_required_proof_shows_the_challenge_and_checks_the_signature(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let (id, link, key) = session(&app, &h, true).await;
    let post = format!("{link}/travel-rule");
    let r = app
        .post_form(
            &post,
            &[("custody", "SELF_HOSTED"), ("owner", "CUSTOMER")],
            &own(&app),
        )
        .await;
    assert_page(&r, 200, "*");
    let message = challenge_on(&r.text);
    let api = app
        .signed(
            &h,
            "GET",
            &format!("{SESSIONS}/{id}/ownership-challenge"),
            "",
        )
        .await;
    assert_eq!(api.json()["message"], message);
    assert!(r.text.to_lowercase().contains(&key.address()), "{}", r.text);
    assert!(r.text.contains("data-network=\"ETH\""), "{}", r.text);
    assert!(r.text.contains("name=\"signature\""), "{}", r.text);
    // "Open this page in a new tab" opens the link (a GET), not the form's URL it was
    // answered on, which takes posts only.
    assert!(
        r.text.contains(&format!(
            "id=\"new-tab\" target=\"_blank\" rel=\"noopener\" href=\"{link}\""
        )),
        "{}",
        r.text
    );
    // The page again (a reload) shows the same challenge.
    let page = app.get(&link).await;
    assert_page(&page, 200, "*");
    assert_eq!(challenge_on(&page.text), message);

    let early = app
        .post_form(&format!("{link}/continue"), &[], &own(&app))
        .await;
    assert_page(&early, 409, "*");
    assert!(
        early
            .text
            .contains("Please sign the message below before you continue."),
        "{}",
        early.text
    );
    assert_eq!(travel_rule(&app, &h, &id).await["status"], "ACTIVE");

    let other = EvmKey::new().personal_sign(&message);
    let r = app
        .post_form(&post, &[("signature", &other)], &own(&app))
        .await;
    assert_page(&r, 400, "*");
    assert_field_error(&r, "signature", "This signature does not match");
    assert!(r.text.contains(&other), "the pasted signature is kept");
    let r = app
        .post_form(&post, &[("signature", "not a signature")], &own(&app))
        .await;
    assert_page(&r, 400, "*");
    assert_field_error(&r, "signature", "not a signature we can read");

    let r = app
        .post_form(
            &post,
            &[("signature", &key.personal_sign(&message))],
            &own(&app),
        )
        .await;
    assert_page(&r, 200, "*");
    assert!(r.text.contains("Your answer is recorded"), "{}", r.text);
    let tr = &travel_rule(&app, &h, &id).await["travelRule"];
    assert_eq!(tr["status"], "COMPLETE");
    assert_eq!(tr["ownershipProof"]["method"], "EIP191");
    let record = app
        .state
        .0
        .travel_rule
        .compliance_record(
            app.state.0.applications.named("app-h").await.unwrap().id,
            id.parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(record.rejected.len(), 2, "{record:?}");

    let r = app
        .post_form(&format!("{link}/continue"), &[], &own(&app))
        .await;
    r.expect(303);
    assert_eq!(
        event_types(&app, &h, &id).await,
        [
            "session.created",
            "session.declaration_recorded",
            "session.ownership_verified",
            "session.travel_rule_completed",
            "session.consumed"
        ]
    );
}

/// In one post, a valid declaration is kept when the signature is refused.
async fn one_post_keeps_the_declaration_when_the_signature_is_refused(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let (id, link, _) = session(&app, &h, true).await;
    let r = app
        .post_form(
            &format!("{link}/travel-rule"),
            &[
                ("custody", "SELF_HOSTED"),
                ("owner", "CUSTOMER"),
                ("signature", "0x1234"),
            ],
            &own(&app),
        )
        .await;
    assert_page(&r, 400, "*");
    assert_field_error(&r, "signature", "not a signature we can read");
    let tr = &travel_rule(&app, &h, &id).await["travelRule"];
    assert_eq!(tr["status"], "AWAITING_PROOF");
    assert_eq!(tr["declaration"]["source"], "HOSTED");
}

/// Posts come only from the page's own origin: none, another or `null` is `403`, and
/// nothing changes; a `Referer` of the own origin stands in for a missing `Origin`.
async fn posts_from_another_origin_are_refused(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let (id, link, _) = session(&app, &h, false).await;
    let vasp = [
        ("custody", "VASP"),
        ("owner", "CUSTOMER"),
        ("vaspName", "Example"),
    ];
    let page_url = format!("{}{link}", app.base);
    for headers in [
        vec![],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("referer", "https://evil.example/page")],
        vec![("origin", "null"), ("referer", page_url.as_str())],
    ] {
        for path in ["travel-rule", "continue"] {
            let r = app
                .post_form(&format!("{link}/{path}"), &vasp, &headers)
                .await;
            r.expect(403);
            assert!(r.text.contains("<html"), "{}", r.text);
        }
    }
    let s = travel_rule(&app, &h, &id).await;
    assert_eq!(s["status"], "ACTIVE");
    assert_eq!(s["travelRule"]["status"], "AWAITING_DECLARATION");

    let r = app
        .post_form(
            &format!("{link}/travel-rule"),
            &vasp,
            &[("referer", page_url.as_str())],
        )
        .await;
    assert_page(&r, 200, "*");
    assert_eq!(
        travel_rule(&app, &h, &id).await["travelRule"]["status"],
        "COMPLETE"
    );
}

/// A session no longer ACTIVE answers the `410` page to the link and to both posts.
async fn ended_sessions_answer_gone(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let vasp = [
        ("custody", "VASP"),
        ("owner", "CUSTOMER"),
        ("vaspName", "Example"),
    ];
    let check = |link: String, title: &'static str| {
        let app = &app;
        async move {
            for r in [
                app.get(&link).await,
                app.post_form(&format!("{link}/travel-rule"), &vasp, &own(app))
                    .await,
                app.post_form(&format!("{link}/continue"), &[], &own(app))
                    .await,
            ] {
                r.expect(410);
                assert!(r.text.contains(&format!("<h1>{title}</h1>")), "{}", r.text);
                assert!(r.text.contains("for a new one"), "{}", r.text);
            }
        }
    };
    // Cancelled.
    let (id, link, _) = session(&app, &h, false).await;
    app.cancel(&h, &id).await.expect(200);
    check(link, "This link was cancelled").await;
    // Consumed (through the page).
    let (_, link, _) = session(&app, &h, false).await;
    app.post_form(&format!("{link}/travel-rule"), &vasp, &own(&app))
        .await
        .expect(200);
    app.post_form(&format!("{link}/continue"), &[], &own(&app))
        .await
        .expect(303);
    check(link, "This link has already been used").await;
    // Expired while the page was open.
    let (_, link, _) = session(&app, &h, false).await;
    app.get(&link).await.expect(200);
    app.clock.advance(std::time::Duration::from_secs(301));
    check(link, "This link has expired").await;
}

/// A record already complete (here through the API) opens the link exactly as without the
/// step: `303`, consumed.
async fn a_complete_record_opens_the_widget_at_once(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let (id, link, _) = session(&app, &h, false).await;
    app.signed(
        &h,
        "PUT",
        &format!("{SESSIONS}/{id}/declaration"),
        &json!({"custody": "VASP", "owner": "CUSTOMER", "vasp": {"name": "Example"}}).to_string(),
    )
    .await
    .expect(200);
    let head = app.head(&link).await;
    head.expect(200);
    assert!(head.header("content-security-policy").is_none());
    let r = app.get(&link).await;
    r.expect(303);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with(&app.emulator.base_url())
    );
    assert_eq!(travel_rule(&app, &h, &id).await["status"], "CONSUMED");
}

/// With the setting off, the link opens at once and the page's posts do not exist.
async fn with_the_setting_off_the_link_is_unchanged(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let a = app.a.clone();
    let (id, link, _) = session(&app, &a, true).await;
    let r = app
        .post_form(
            &format!("{link}/travel-rule"),
            &[("custody", "SELF_HOSTED"), ("owner", "CUSTOMER")],
            &own(&app),
        )
        .await;
    r.expect(404);
    assert_eq!(
        travel_rule(&app, &a, &id).await["travelRule"]["status"],
        "AWAITING_DECLARATION"
    );
    // Continue is the step's: without it, it consumes nothing.
    app.post_form(&format!("{link}/continue"), &[], &own(&app))
        .await
        .expect(404);
    assert_eq!(travel_rule(&app, &a, &id).await["status"], "ACTIVE");
    app.get(&link).await.expect(303);
    assert_eq!(travel_rule(&app, &a, &id).await["status"], "CONSUMED");
}

/// `frameAncestors` restricts who may frame the page.
async fn frame_ancestors_restrict_framing(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let (_, link, _) = session(&app, &app_f(), false).await;
    assert_page(&app.get(&link).await, 200, "https://partner.example");
    // Each response has its own nonce.
    let nonce = |r: &Resp| r.header("content-security-policy").unwrap().to_string();
    assert_ne!(nonce(&app.get(&link).await), nonce(&app.get(&link).await));
}

/// The page's posts share the client's budget with the link itself (the per-client limit):
/// past it, `429` with an HTML page, and the session is untouched.
async fn the_posts_are_rate_limited_per_client(store: Store) {
    let app = TestApp::spawn(
        store,
        &[
            ("WIDGET_SESSIONS_CLIENT_RATE_LIMIT", "2"),
            ("WIDGET_SESSIONS_CLIENT_IP_HEADER", "x-forwarded-for"),
        ],
    )
    .await;
    let h = app_h();
    let (id, link, _) = session(&app, &h, false).await;
    let origin = app.base.clone();
    let mut codes = Vec::new();
    for path in ["travel-rule", "continue"].iter().cycle().take(8) {
        let r = app
            .post_form(
                &format!("{link}/{path}"),
                &[("custody", "SELF_HOSTED")],
                &[("origin", &origin), ("x-forwarded-for", "203.0.113.9")],
            )
            .await;
        if r.code() == 429 {
            assert!(
                r.header("content-type").unwrap().starts_with("text/html"),
                "{}",
                r.text
            );
            assert!(r.header("retry-after").is_some());
        }
        codes.push(r.code());
    }
    assert_eq!(&codes[..4], [400, 409, 400, 409], "{codes:?}");
    assert!(codes[4..].iter().all(|c| *c == 429), "{codes:?}");
    let s = travel_rule(&app, &h, &id).await;
    assert_eq!(s["status"], "ACTIVE");
}

/// The whole step without JavaScript: the customer reads the page, declares a wallet of
/// their own, pastes a BIP-322 signature made by another implementation (bip322-js) over the
/// message the page shows, and continues to the widget.
async fn the_whole_step_without_javascript(store: Store) {
    let app = TestApp::spawn(store, &[]).await;
    let h = app_h();
    let keys = bitcoin_signer("keys", &json!(null));
    let key = &keys["p2wpkh"][0];
    let address = key["address"].as_str().unwrap();
    let s = app
        .create_ok(
            &h,
            &json!({"userId": user(), "currency": "BTC", "network": "BTC",
                    "counterpartyAddress": address, "forceVerifyOwnership": true}),
            201,
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let link = format!("/w/{}", token_of(s["widgetUrl"].as_str().unwrap()));
    let post = format!("{link}/travel-rule");

    assert_page(&app.get(&link).await, 200, "*");
    let own_wallet = [("custody", "SELF_HOSTED"), ("owner", "CUSTOMER")];
    let mut review = own_wallet.to_vec();
    review.push(("review", "1"));
    let r = app.post_form(&post, &review, &own(&app)).await;
    assert!(r.text.contains("Please check your answer"), "{}", r.text);
    let r = app.post_form(&post, &own_wallet, &own(&app)).await;
    assert_page(&r, 200, "*");
    let message = challenge_on(&r.text);
    assert!(message.contains(address), "{message}");
    let signed = bitcoin_signer(
        "sign",
        &json!([{"kind": "p2wpkh", "secret": key["secret"], "address": address, "message": message}]),
    );
    let signature = signed[0]["bip322_simple"].as_str().unwrap();
    let r = app
        .post_form(&post, &[("signature", signature)], &own(&app))
        .await;
    assert_page(&r, 200, "*");
    assert!(r.text.contains("Your answer is recorded"), "{}", r.text);
    assert_eq!(
        travel_rule(&app, &h, id).await["travelRule"]["ownershipProof"]["method"],
        "BIP322"
    );
    let r = app
        .post_form(&format!("{link}/continue"), &[], &own(&app))
        .await;
    r.expect(303);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with(&app.emulator.base_url())
    );
}

/// `both: [...]` run once per store; `once: [...]` are about the page and the HTTP edge, not
/// storage, and run on the in-memory store only.
macro_rules! hosted {
    (both: [$($name:ident),* $(,)?], once: [$($single:ident),* $(,)?] $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Memory).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $single() {
                    super::$single(super::Store::Memory).await;
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

hosted! {
    both: [
        a_pending_record_shows_the_page_and_consumes_nothing,
        the_declaration_is_confirmed_then_continue_opens_the_widget,
        a_required_proof_shows_the_challenge_and_checks_the_signature,
        ended_sessions_answer_gone,
        a_complete_record_opens_the_widget_at_once,
        with_the_setting_off_the_link_is_unchanged,
        frame_ancestors_restrict_framing,
    ],
    once: [
        declaration_errors_are_shown_next_to_their_fields,
        one_post_keeps_the_declaration_when_the_signature_is_refused,
        posts_from_another_origin_are_refused,
        the_posts_are_rate_limited_per_client,
        the_whole_step_without_javascript,
    ],
}
