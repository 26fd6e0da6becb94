//! The hosted travel-rule step (contract §11): the page a launch link shows while its
//! session's travel-rule record is not complete, its two form posts
//! (`POST /w/{token}/travel-rule`, `POST /w/{token}/continue`), and their answers.
//!
//! The page is rendered here (maud: compiled, escaped by construction), needs no external
//! resource, and works without JavaScript; its one inline script (allowed by a per-response
//! nonce) adds the browser-wallet buttons. Its forms go through the same use cases as the
//! API's travel-rule endpoints (source `HOSTED`).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{
    Custody, Declaration, DeclarationSource, ErrorCode, FieldError, Network, Owner, ThirdParty,
    TravelRuleStatus,
};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use ports::{LaunchOutcome, LinkState, SessionView};

use crate::http::declaration_body::{self, FORM_NAMES};
use crate::http::launch;
use crate::state::AppState;

/// The `Referrer-Policy` of the page: no referrer to any other origin, ever (the token is in
/// the URL). Not `no-referrer`: under it browsers send `Origin: null` with the page's own
/// form posts (Fetch, "append a request `Origin` header"), which the origin rule refuses;
/// `same-origin` keeps the real origin on those posts and sends nothing anywhere else.
pub const PAGE_REFERRER_POLICY: &str = "same-origin";

/// The declaration fields of the form, in the order they are shown.
const DECLARATION_FIELDS: [&str; 12] = [
    "custody",
    "owner",
    "vaspName",
    "vaspLei",
    "vaspCountry",
    "thirdPartyKind",
    "firstName",
    "lastName",
    "countryOfResidence",
    "legalName",
    "lei",
    "countryOfRegistration",
];

/// What the page shows besides the record's state.
#[derive(Debug, Default)]
struct PageInput {
    /// Problems, each with the form field it is about and words for the customer.
    errors: Vec<(String, String)>,
    /// A message at the top of the page (announced).
    banner: Option<String>,
    /// The declaration form prefilled with these values (the customer's last input, or the
    /// answer to change).
    form: Option<Vec<(String, String)>>,
    /// A declaration shown back for confirmation, as form values.
    review: Option<Declaration>,
    /// The signature the customer pasted (kept when it was refused).
    signature: Option<String>,
}

impl PageInput {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

/// The page of an `ACTIVE` session whose record is not complete (`GET`/`HEAD` of its link):
/// `200`, nothing consumed.
pub async fn step_page(
    state: &AppState,
    token: &str,
    query: Option<&str>,
    view: &SessionView,
) -> Response {
    render(
        state,
        token,
        query,
        view,
        PageInput::default(),
        StatusCode::OK,
    )
    .await
}

/// Whether a post comes from the page's own origin: its `Origin` (or, without one, its
/// `Referer`) is the origin of the service's public base. Without either, or with another
/// origin (`null` included), it does not.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(own) = origin_of(&state.0.public_base) else {
        return false;
    };
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    match (header(header::ORIGIN), header(header::REFERER)) {
        (Some(origin), _) => origin.trim() == own,
        (None, Some(referer)) => origin_of(referer).is_some_and(|o| o == own),
        (None, None) => false,
    }
}

fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

fn forbidden() -> Response {
    launch::page(
        StatusCode::FORBIDDEN,
        "This form cannot be sent from here",
        "Open the link you were given and answer the questions on its page.",
    )
}

/// `POST /w/{token}/travel-rule`: the declaration, the pasted signature, or both.
#[utoipa::path(
    post,
    path = "/w/{token}/travel-rule",
    tag = "launch",
    params(("token" = String, Path, description = "The launch token from `widgetUrl`")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "custody, owner, vaspName, vaspLei, vaspCountry, thirdPartyKind, firstName, lastName, countryOfResidence, legalName, lei, countryOfRegistration, signature (empty fields are absent); review=1 shows the declaration back without recording it"),
    responses(
        (status = 200, description = "The travel-rule page, updated", content_type = "text/html"),
        (status = 400, description = "The page with every refused field's error next to it", content_type = "text/html"),
        (status = 403, description = "Not posted from the page's own origin (HTML page)", content_type = "text/html"),
        (status = 404, description = "Unknown link, or its application does not run the hosted step (HTML page)", content_type = "text/html"),
        (status = 410, description = "The session is no longer active (HTML page)", content_type = "text/html"),
    )
)]
pub async fn post_travel_rule(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Path(token)) = token else {
        return launch::not_found();
    };
    if !same_origin(&state, &headers) {
        return forbidden();
    }
    let view = match state.0.sessions.open_link(&token).await {
        Ok(LinkState::Active(view)) => *view,
        Ok(LinkState::Gone(status)) => return launch::gone(status),
        Ok(LinkState::Withheld) => return launch::withheld(),
        Ok(LinkState::Unknown) => return launch::not_found(),
        Err(ports::LaunchError::Store(e)) => return launch::unavailable(e),
    };
    if !view.session.hosted_step().enabled {
        return launch::not_found();
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let given = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let declaration_values: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, v)| DECLARATION_FIELDS.contains(&k.as_str()) && !v.is_empty())
        .cloned()
        .collect();
    let mut input = PageInput::default();
    if given("edit").is_some() {
        input.form = Some(declaration_values);
        return render(
            &state,
            &token,
            query.as_deref(),
            &view,
            input,
            StatusCode::OK,
        )
        .await;
    }
    let application = view.session.application_id();
    let id = view.session.id();
    let rule = &state.0.travel_rule;
    let mut view = view;
    match declaration_body::form_fields(pairs.iter().cloned()) {
        Some(fields) => match fields.validate(&FORM_NAMES) {
            Err(errors) => {
                input.errors.extend(
                    errors
                        .iter()
                        .map(|e| (e.field.clone(), customer_message(e))),
                );
                input.form = Some(declaration_values.clone());
            }
            Ok(declaration) if given("review").is_some() => {
                input.review = Some(declaration);
                return render(
                    &state,
                    &token,
                    query.as_deref(),
                    &view,
                    input,
                    StatusCode::OK,
                )
                .await;
            }
            Ok(declaration) => {
                match rule
                    .declare(application, id, declaration, DeclarationSource::Hosted)
                    .await
                {
                    Ok(updated) => view = updated,
                    Err(app::TravelRuleError::DeclarationAlreadyRecorded) => {
                        input.errors.push((
                            "custody".into(),
                            "Your answer was already recorded and can no longer be changed.".into(),
                        ));
                    }
                    Err(e) => return travel_rule_failure(e),
                }
            }
        },
        None if given("signature").is_none() => {
            input.errors.push((
                "custody".into(),
                "Choose where the crypto will be sent.".into(),
            ));
        }
        None => {}
    }
    if let Some(signature) = given("signature") {
        match rule.prove(application, id, signature).await {
            Ok(updated) => view = updated,
            Err(app::TravelRuleError::SignatureMalformed(_)) => {
                input.signature = Some(signature.to_string());
                input.errors.push((
                    "signature".into(),
                    "This is not a signature we can read. Paste the whole signature your wallet showed, without changing it.".into(),
                ));
            }
            Err(app::TravelRuleError::SignatureMismatch(_)) => {
                input.signature = Some(signature.to_string());
                input.errors.push((
                    "signature".into(),
                    "This signature does not match: it must be made by the wallet at the address shown, over exactly the message shown.".into(),
                ));
            }
            Err(app::TravelRuleError::ProofUnavailable(_)) => {
                input.errors.push((
                    "signature".into(),
                    "This kind of address cannot sign a message, so it cannot be verified here. Ask the service that sent you the link what to do.".into(),
                ));
            }
            Err(e) => return travel_rule_failure(e),
        }
    }
    let status = if input.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    render(&state, &token, query.as_deref(), &view, input, status).await
}

/// `POST /w/{token}/continue`: consumes the session (once) and goes on to the widget, once
/// the record is complete.
#[utoipa::path(
    post,
    path = "/w/{token}/continue",
    tag = "launch",
    params(("token" = String, Path, description = "The launch token from `widgetUrl`")),
    responses(
        (status = 303, description = "The record is complete: the session is now CONSUMED; follow Location to the Transak widget",
            headers(("Location" = String, description = "The Transak widget URL (with sdkName and sdkVersion forwarded)"))),
        (status = 403, description = "Not posted from the page's own origin (HTML page)", content_type = "text/html"),
        (status = 404, description = "Unknown link, or its application does not run the hosted step (HTML page)", content_type = "text/html"),
        (status = 409, description = "The record is not complete: the page again, nothing consumed", content_type = "text/html"),
        (status = 410, description = "The session is no longer active (HTML page)", content_type = "text/html"),
    )
)]
pub async fn post_continue(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(token)) = token else {
        return launch::not_found();
    };
    if !same_origin(&state, &headers) {
        return forbidden();
    }
    // Continue belongs to the step: a session whose application did not run it (the setting
    // is fixed on the session when it is created) opens only through its link, as §3 says.
    match state.0.sessions.open_link(&token).await {
        Ok(LinkState::Active(view)) if !view.session.hosted_step().enabled => {
            return launch::not_found();
        }
        Ok(_) => {}
        Err(ports::LaunchError::Store(e)) => return launch::unavailable(e),
    }
    match state.0.sessions.launch(&token, true).await {
        Ok(LaunchOutcome::Redirect(url)) => launch::redirect(url.expose(), query.as_deref()),
        Ok(LaunchOutcome::TravelRuleStep(view)) => {
            let banner = if view.session.travel_rule_status() == TravelRuleStatus::AwaitingProof {
                "Please sign the message below before you continue."
            } else {
                "Please answer the questions below before you continue."
            };
            let input = PageInput {
                banner: Some(banner.into()),
                ..PageInput::default()
            };
            render(
                &state,
                &token,
                query.as_deref(),
                &view,
                input,
                StatusCode::CONFLICT,
            )
            .await
        }
        Ok(LaunchOutcome::Gone(status)) => launch::gone(status),
        Ok(LaunchOutcome::Withheld) => launch::withheld(),
        Ok(LaunchOutcome::Unknown) => launch::not_found(),
        Err(ports::LaunchError::Store(e)) => launch::unavailable(e),
    }
}

fn travel_rule_failure(e: app::TravelRuleError) -> Response {
    match e {
        app::TravelRuleError::NotFound => launch::not_found(),
        app::TravelRuleError::SessionCancelled => launch::gone(domain::SessionStatus::Cancelled),
        app::TravelRuleError::WindowClosed => launch::gone(domain::SessionStatus::Expired),
        app::TravelRuleError::Store(e) => launch::unavailable(e),
        other => {
            tracing::error!(error = %other, "unexpected travel-rule answer on the hosted page");
            launch::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Please try again",
                "Something went wrong on our side. Please try again in a moment.",
            )
        }
    }
}

/// Words a customer understands for a declaration problem.
fn customer_message(e: &FieldError) -> String {
    let text = match (e.field.as_str(), e.code) {
        ("custody", ErrorCode::Required | ErrorCode::InvalidCustody) => {
            "Choose where the crypto will be sent."
        }
        ("owner", ErrorCode::Required | ErrorCode::InvalidOwner) => {
            "Choose whose wallet or account it is."
        }
        (_, ErrorCode::VaspRequired) | ("vaspName", ErrorCode::Required) => {
            "Enter the name of the exchange or provider."
        }
        (_, ErrorCode::VaspNotAllowed) => {
            "Leave the exchange details empty: you said the crypto goes to a self-hosted wallet."
        }
        (_, ErrorCode::ThirdPartyRequired) => {
            "Tell us who the wallet or account belongs to: a person or an organisation."
        }
        (_, ErrorCode::ThirdPartyNotAllowed) => {
            "Leave the other person's details empty: you said the wallet or account is yours."
        }
        (_, ErrorCode::ExactlyOneThirdPartyKind) => {
            "Choose whether it belongs to a person or to an organisation."
        }
        ("firstName", ErrorCode::Required) => "Enter the person's first name.",
        ("lastName", ErrorCode::Required) => "Enter the person's last name.",
        ("legalName", ErrorCode::Required) => "Enter the organisation's name.",
        (_, ErrorCode::InvalidName) => {
            "Enter a name of 1 to 140 characters, without invisible or control characters."
        }
        (_, ErrorCode::InvalidCountry) => {
            "Enter the country as its two-letter code in capitals, such as DE or FR, or leave it empty."
        }
        (_, ErrorCode::InvalidLei) => {
            "Enter a valid 20-character LEI (Legal Entity Identifier), or leave it empty."
        }
        _ => return e.message.clone(),
    };
    text.to_string()
}

/// The form values of a declaration (to prefill the form, or to carry it through the
/// confirmation).
fn declaration_values(d: &Declaration) -> Vec<(String, String)> {
    let mut out = vec![
        ("custody".to_string(), d.custody().as_str().to_string()),
        ("owner".to_string(), d.owner().as_str().to_string()),
    ];
    let mut push = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            out.push((k.to_string(), v.to_string()));
        }
    };
    if let Some(v) = d.vasp() {
        push("vaspName", Some(v.name.as_str()));
        push("vaspLei", v.lei.as_ref().map(|l| l.as_str()));
        push("vaspCountry", v.country.as_ref().map(|c| c.as_str()));
    }
    match d.third_party() {
        Some(ThirdParty::NaturalPerson {
            first_name,
            last_name,
            country_of_residence,
        }) => {
            push("thirdPartyKind", Some("NATURAL"));
            push("firstName", Some(first_name.as_str()));
            push("lastName", Some(last_name.as_str()));
            push(
                "countryOfResidence",
                country_of_residence.as_ref().map(|c| c.as_str()),
            );
        }
        Some(ThirdParty::LegalPerson {
            name,
            lei,
            country_of_registration,
        }) => {
            push("thirdPartyKind", Some("LEGAL"));
            push("legalName", Some(name.as_str()));
            push("lei", lei.as_ref().map(|l| l.as_str()));
            push(
                "countryOfRegistration",
                country_of_registration.as_ref().map(|c| c.as_str()),
            );
        }
        None => {}
    }
    out
}

/// A declaration in plain words, line by line.
fn describe(d: &Declaration) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            "Where the crypto goes",
            match d.custody() {
                Custody::SelfHosted => "A self-hosted wallet (its keys are held by its owner)",
                Custody::Vasp => "An account at an exchange or other crypto service provider",
            }
            .to_string(),
        ),
        (
            "Whose it is",
            match d.owner() {
                Owner::Customer => "Mine",
                Owner::ThirdParty => "Someone else's",
            }
            .to_string(),
        ),
    ];
    let extras = |lei: Option<&str>, country: Option<&str>| {
        let mut s = String::new();
        if let Some(l) = lei {
            s.push_str(&format!(", LEI {l}"));
        }
        if let Some(c) = country {
            s.push_str(&format!(", {c}"));
        }
        s
    };
    if let Some(v) = d.vasp() {
        out.push((
            "Exchange or provider",
            format!(
                "{}{}",
                v.name.as_str(),
                extras(
                    v.lei.as_ref().map(|l| l.as_str()),
                    v.country.as_ref().map(|c| c.as_str())
                )
            ),
        ));
    }
    match d.third_party() {
        Some(ThirdParty::NaturalPerson {
            first_name,
            last_name,
            country_of_residence,
        }) => out.push((
            "Person",
            format!(
                "{} {}{}",
                first_name.as_str(),
                last_name.as_str(),
                extras(None, country_of_residence.as_ref().map(|c| c.as_str()))
            ),
        )),
        Some(ThirdParty::LegalPerson {
            name,
            lei,
            country_of_registration,
        }) => out.push((
            "Organisation",
            format!(
                "{}{}",
                name.as_str(),
                extras(
                    lei.as_ref().map(|l| l.as_str()),
                    country_of_registration.as_ref().map(|c| c.as_str())
                )
            ),
        )),
        None => {}
    }
    out
}

/// A fresh CSP nonce: 122 random bits from the operating system (a v4 UUID), hex.
fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn render(
    state: &AppState,
    token: &str,
    query: Option<&str>,
    view: &SessionView,
    input: PageInput,
    status: StatusCode,
) -> Response {
    let session = &view.session;
    let record = session.travel_rule_status();
    // The challenge only when a proof is awaited; a counterparty that cannot sign has none.
    let challenge = if record == TravelRuleStatus::AwaitingProof {
        match state
            .0
            .travel_rule
            .challenge(session.application_id(), session.id())
            .await
        {
            Ok(c) => Some(c),
            // Only "this counterparty cannot sign" means there is no challenge to show; any
            // other failure is the service's, not the customer's address's.
            Err(app::TravelRuleError::ProofUnavailable(_)) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the travel-rule page could not read the challenge");
                return launch::page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Please try again in a moment",
                    "This page could not be prepared just now. Nothing was lost: reload it in a moment.",
                );
            }
        }
    } else {
        None
    };
    let forward = launch::with_sdk_parameters("", query);
    // Under the public URL's own path, so the forms work behind a proxy that serves the
    // service under a prefix (`https://host/prefix/w/…`).
    let base = format!("{}/w/{token}", path_prefix(&state.0.public_base));
    let nonce = nonce();
    let markup = page_markup(&PageParts {
        nonce: &nonce,
        page: format!("{base}{forward}"),
        post_to: format!("{base}/travel-rule{forward}"),
        continue_to: format!("{base}/continue{forward}"),
        view,
        record,
        challenge: challenge.as_ref(),
        input: &input,
    });
    let mut r = (status, markup.into_string()).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; base-uri 'none'; frame-ancestors {}",
        session.hosted_step().frame_ancestors.csp_sources()
    );
    // Never without a policy: should the header not be valid, the page goes out with no
    // script, no style and no framing at all (its forms still work).
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).unwrap_or_else(|_| {
            HeaderValue::from_static("default-src 'none'; base-uri 'none'; frame-ancestors 'none'")
        }),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(PAGE_REFERRER_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The path of the public base URL, without its trailing slash (empty at the root).
fn path_prefix(public_base: &str) -> String {
    url::Url::parse(public_base)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

struct PageParts<'a> {
    nonce: &'a str,
    /// The link itself (GET), for "open in a new tab": the page's own URL may be a form's.
    page: String,
    post_to: String,
    continue_to: String,
    view: &'a SessionView,
    record: TravelRuleStatus,
    challenge: Option<&'a app::ChallengeView>,
    input: &'a PageInput,
}

const STYLE: &str = r#"
[hidden]{display:none!important}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330;line-height:1.5}
main{max-width:36rem;margin:1.5rem auto;padding:1.5rem 2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:1.35rem;margin:0 0 .5rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
fieldset{border:1px solid #c9ced8;border-radius:8px;margin:0 0 1rem;padding:.75rem 1rem}
legend{font-weight:600;padding:0 .25rem}
label{display:block;margin:.35rem 0}
input[type=text],textarea{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #6b7385;border-radius:6px;font:inherit}
textarea{min-height:5rem;font-family:ui-monospace,monospace;font-size:.9rem}
button,.button{display:inline-block;font:inherit;font-weight:600;padding:.6rem 1.1rem;border-radius:8px;border:0;background:#1849a9;color:#fff;cursor:pointer;text-decoration:none;margin:.25rem .5rem .25rem 0}
button.secondary{background:#e8ebf1;color:#1d2330}
button:focus,a:focus,input:focus,textarea:focus{outline:3px solid #f5a524;outline-offset:2px}
.error{color:#b3261e;font-weight:600;margin:.25rem 0}
.alert{border-left:4px solid #b3261e;background:#fdecea;padding:.75rem 1rem;margin:0 0 1rem}
.note{color:#4a5263;font-size:.95rem}
dl{margin:0 0 1rem}dt{font-weight:600}dd{margin:0 0 .5rem}
pre{white-space:pre-wrap;word-break:break-all;background:#f1f3f7;padding:.75rem;border-radius:6px}
"#;

/// The page's script: the browser-wallet buttons (EIP-1193 `personal_sign`, a Solana
/// wallet's `signMessage` through the wallet standard or an injected provider, TronLink's
/// `signMessageV2`) and, framed without a wallet, the offer to open the page in a new tab.
/// Hand-written: a wallet SDK would bring megabytes and external requests into a page that
/// must load nothing from elsewhere.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  var doc = document;
  var wallet = doc.getElementById("wallet");
  var framed;
  try { framed = window.top !== window.self; } catch (e) { framed = true; }
  var standard = [];
  function register() {
    for (var i = 0; i < arguments.length; i++) { standard.push(arguments[i]); }
    refresh();
    return function () {};
  }
  var api = { register: register };
  window.addEventListener("wallet-standard:register-wallet", function (ev) {
    try { ev.detail(api); } catch (e) { /* a wallet that fails to register is skipped */ }
  });
  try { window.dispatchEvent(new CustomEvent("wallet-standard:app-ready", { detail: api })); } catch (e) { /* old browser */ }

  function network() { return wallet ? wallet.getAttribute("data-network") : null; }
  function evm() { return ["ETH", "POLYGON", "BSC"].indexOf(network()) >= 0 && window.ethereum ? window.ethereum : null; }
  function standardSolana() {
    for (var i = 0; i < standard.length; i++) {
      var f = standard[i].features || {};
      if (f["solana:signMessage"] && f["standard:connect"]) { return standard[i]; }
    }
    return null;
  }
  function injectedSolana() {
    var p = (window.phantom && window.phantom.solana) || window.solana || null;
    return p && typeof p.signMessage === "function" ? p : null;
  }
  function tron() {
    var t = window.tronWeb;
    return t && t.trx && typeof t.trx.signMessageV2 === "function" ? t : null;
  }
  function provider() {
    switch (network()) {
      case "ETH": case "POLYGON": case "BSC": return evm() ? "evm" : null;
      case "SOL": return standardSolana() ? "standard" : (injectedSolana() ? "solana" : null);
      case "TRON": return tron() ? "tron" : null;
      default: return null;
    }
  }
  function say(text) {
    var s = doc.getElementById("wallet-status");
    if (s) { s.textContent = text; }
  }
  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }
  function base64(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s);
  }
  async function sign() {
    var message = wallet.getAttribute("data-message");
    var address = wallet.getAttribute("data-address");
    var bytes = new TextEncoder().encode(message);
    var kind = provider();
    var signature;
    if (kind === "evm") {
      await window.ethereum.request({ method: "eth_requestAccounts" });
      signature = await window.ethereum.request({ method: "personal_sign", params: ["0x" + hex(bytes), address] });
    } else if (kind === "standard") {
      var w = standardSolana();
      var connected = await w.features["standard:connect"].connect();
      var accounts = (connected && connected.accounts) || w.accounts || [];
      var account = accounts.filter(function (a) { return a.address === address; })[0] || accounts[0];
      var out = await w.features["solana:signMessage"].signMessage({ account: account, message: bytes });
      signature = base64(out[0].signature);
    } else if (kind === "solana") {
      var p = injectedSolana();
      if (typeof p.connect === "function") { await p.connect(); }
      var signed = await p.signMessage(bytes, "utf8");
      signature = base64(signed.signature || signed);
    } else if (kind === "tron") {
      signature = await tron().trx.signMessageV2(message);
    } else {
      throw new Error("no wallet");
    }
    var field = doc.getElementById("signature");
    field.value = typeof signature === "string" ? signature : String(signature);
    say("Signed. Checking the signature…");
    doc.getElementById("proof-form").submit();
  }
  function refresh() {
    if (!wallet) { return; }
    var button = doc.getElementById("sign");
    var none = doc.getElementById("no-wallet");
    var kind = provider();
    if (kind) {
      wallet.hidden = false;
      button.hidden = false;
      if (none) { none.hidden = true; }
    } else if (framed && none) {
      wallet.hidden = false;
      none.hidden = false;
    }
  }
  var button = doc.getElementById("sign");
  if (button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      say("Follow the steps in your wallet…");
      sign().catch(function () {
        button.disabled = false;
        say("The wallet did not sign the message. Try again, or paste a signature below.");
      });
    });
  }
  refresh();
  window.addEventListener("load", refresh);
  var summary = doc.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
"#;

fn field_label(name: &str) -> &'static str {
    match name {
        "vaspName" => "Name of the exchange or provider",
        "vaspLei" => "Its LEI, if you know it (optional)",
        "vaspCountry" => "Its country, as a two-letter code such as DE (optional)",
        "firstName" => "First name(s)",
        "lastName" => "Last name(s)",
        "countryOfResidence" => "Country of residence, as a two-letter code (optional)",
        "legalName" => "Name of the organisation",
        "lei" => "Its LEI, if you know it (optional)",
        "countryOfRegistration" => "Country of registration, as a two-letter code (optional)",
        "custody" => "Where the crypto will be sent",
        "owner" => "Whose wallet or account it is",
        "thirdPartyKind" => "A person or an organisation",
        "signature" => "Signature",
        _ => "This field",
    }
}

fn page_markup(p: &PageParts<'_>) -> Markup {
    let session = &p.view.session;
    let input = p.input;
    let recorded = session.travel_rule().declaration.as_ref();
    let show_form = input.review.is_none()
        && (input.form.is_some() || p.record == TravelRuleStatus::AwaitingDeclaration);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { "Before you continue: a few questions about the recipient" }
                style nonce=(p.nonce) { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { "Before you continue" }
                    p { "The rules on crypto transfers (the \u{201c}travel rule\u{201d}) ask us who receives this transfer. It takes a minute." }
                    @if let Some(banner) = &input.banner {
                        div.alert role="alert" { p { (banner) } }
                    }
                    @if !input.errors.is_empty() {
                        div.alert #error-summary role="alert" tabindex="-1" aria-labelledby="error-summary-title" {
                            h2 #error-summary-title { "Please correct the following" }
                            ul {
                                @for (field, message) in &input.errors {
                                    li { a href={ "#" (field) } { (field_label(field)) ": " (message) } }
                                }
                            }
                        }
                    }
                    @if let Some(d) = &input.review {
                        (review(p, d))
                    } @else if show_form {
                        (declaration_form(p))
                    } @else {
                        @if let Some(d) = recorded {
                            h2 { "Your answer" }
                            (summary(&d.declaration))
                            @if let Some(message) = input.error_for("custody") {
                                p.error #custody-error { (message) }
                            }
                            @if p.record != TravelRuleStatus::Complete {
                                form method="post" action=(p.post_to) {
                                    @for (k, v) in declaration_values(&d.declaration) {
                                        input type="hidden" name=(k) value=(v);
                                    }
                                    input type="hidden" name="edit" value="1";
                                    button.secondary type="submit" { "Change my answer" }
                                }
                            }
                        }
                        @if p.record == TravelRuleStatus::AwaitingProof {
                            (proof_section(p))
                        }
                        @if p.record == TravelRuleStatus::Complete {
                            h2 { "Thank you" }
                            p { "Your answer is recorded. You can now go on to the transfer." }
                            form method="post" action=(p.continue_to) {
                                button #continue type="submit" { "Continue" }
                            }
                        }
                    }
                }
                script nonce=(p.nonce) { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

fn summary(d: &Declaration) -> Markup {
    html! {
        dl {
            @for (term, text) in describe(d) {
                dt { (term) }
                dd { (text) }
            }
        }
    }
}

fn review(p: &PageParts<'_>, d: &Declaration) -> Markup {
    let values = declaration_values(d);
    html! {
        h2 #review-title tabindex="-1" { "Please check your answer" }
        (summary(d))
        form method="post" action=(p.post_to) {
            @for (k, v) in &values {
                input type="hidden" name=(k) value=(v);
            }
            button #confirm type="submit" { "Confirm" }
        }
        form method="post" action=(p.post_to) {
            @for (k, v) in &values {
                input type="hidden" name=(k) value=(v);
            }
            input type="hidden" name="edit" value="1";
            button.secondary type="submit" { "Change my answer" }
        }
    }
}

/// The declaration form: every question visible (it works without JavaScript), the errors
/// next to their fields.
fn declaration_form(p: &PageParts<'_>) -> Markup {
    let input = p.input;
    let prefill: Vec<(String, String)> = match &input.form {
        Some(values) => values.clone(),
        None => Vec::new(),
    };
    let value = |name: &str| {
        prefill
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let radio = |name: &'static str, options: &[(&'static str, &'static str)]| {
        let chosen = value(name);
        let error = input.error_for(name);
        let described = error.map(|_| format!("{name}-error"));
        html! {
            @for (i, (v, text)) in options.iter().enumerate() {
                @let id = if i == 0 { name.to_string() } else { format!("{name}-{v}") };
                label for=(id) {
                    input type="radio" id=(id) name=(name) value=(v) checked[chosen == *v]
                        aria-describedby=[described.as_deref()] aria-invalid=[error.map(|_| "true")];
                    " " (text)
                }
            }
            @if let Some(message) = error {
                p.error id={ (name) "-error" } { (message) }
            }
        }
    };
    let text = |name: &'static str, autocomplete: &'static str| {
        let error = input.error_for(name);
        html! {
            label for=(name) { (field_label(name)) }
            input type="text" id=(name) name=(name) value=(value(name)) autocomplete=(autocomplete)
                aria-describedby=[error.map(|_| format!("{name}-error"))] aria-invalid=[error.map(|_| "true")];
            @if let Some(message) = error {
                p.error id={ (name) "-error" } { (message) }
            }
        }
    };
    html! {
        form method="post" action=(p.post_to) novalidate {
            input type="hidden" name="review" value="1";
            fieldset {
                legend { "Where will the crypto be sent?" }
                (radio("custody", &[
                    ("SELF_HOSTED", "To a self-hosted wallet (a wallet app or device whose keys its owner holds)"),
                    ("VASP", "To an account at an exchange or other crypto service provider"),
                ]))
            }
            fieldset {
                legend { "Whose wallet or account is it?" }
                (radio("owner", &[
                    ("CUSTOMER", "Mine"),
                    ("THIRD_PARTY", "Someone else's"),
                ]))
            }
            fieldset {
                legend { "Only for an account at an exchange or provider" }
                (text("vaspName", "organization"))
                (text("vaspLei", "off"))
                (text("vaspCountry", "off"))
            }
            fieldset {
                legend { "Only if it is someone else's" }
                (radio("thirdPartyKind", &[
                    ("NATURAL", "A person"),
                    ("LEGAL", "An organisation (a company, a foundation…)"),
                ]))
                (text("firstName", "off"))
                (text("lastName", "off"))
                (text("countryOfResidence", "off"))
                (text("legalName", "off"))
                (text("lei", "off"))
                (text("countryOfRegistration", "off"))
            }
            button #review type="submit" { "Review my answer" }
        }
    }
}

fn network_name(n: Network) -> &'static str {
    match n {
        Network::Btc => "Bitcoin",
        Network::Eth => "Ethereum",
        Network::Polygon => "Polygon",
        Network::Sol => "Solana",
        Network::Bsc => "BNB Smart Chain",
        Network::Tron => "Tron",
    }
}

fn proof_section(p: &PageParts<'_>) -> Markup {
    let input = p.input;
    let error = input.error_for("signature");
    html! {
        h2 { "Show that the wallet is yours" }
        @match p.challenge {
            None => {
                p { "This kind of address cannot sign a message, so it cannot be verified here. Ask the service that sent you the link what to do." }
            }
            Some(c) => {
                p { "Sign the message below with the " (network_name(c.network)) " wallet at this address. Signing a message costs nothing and moves no funds." }
                p { "Address: " code { (c.address) } }
                p #challenge-label { "Message to sign (exactly as shown):" }
                pre #challenge aria-labelledby="challenge-label" { (c.message) }
                div #wallet hidden data-network=(c.network.as_str()) data-address=(c.address) data-message=(c.message) {
                    button #sign type="button" hidden { "Sign with my browser wallet" }
                    p #no-wallet hidden {
                        "No browser wallet is available in this frame. "
                        a #new-tab target="_blank" rel="noopener" href=(p.page) { "Open this page in a new tab" }
                        " to sign with your wallet there, or paste a signature below."
                    }
                    p #wallet-status role="status" aria-live="polite" {}
                }
                form #proof-form method="post" action=(p.post_to) {
                    label for="signature" { "Or paste the signature your wallet made" }
                    p.note #signature-hint { "In your wallet, choose \u{201c}Sign message\u{201d}, paste the message above, and copy the signature it shows." }
                    textarea #signature name="signature" aria-describedby={ "signature-hint" @if error.is_some() { " signature-error" } } aria-invalid=[error.map(|_| "true")] {
                        (input.signature.as_deref().unwrap_or_default())
                    }
                    @if let Some(message) = error {
                        p.error #signature-error { (message) }
                    }
                    button #verify type="submit" { "Verify signature" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_prefix;

    #[test]
    fn the_forms_keep_the_public_urls_path() {
        assert_eq!(path_prefix("https://sessions.example.com"), "");
        assert_eq!(path_prefix("https://sessions.example.com/"), "");
        assert_eq!(
            path_prefix("https://example.com/widget-sessions"),
            "/widget-sessions"
        );
        assert_eq!(path_prefix("https://example.com/a/b/"), "/a/b");
    }
}
