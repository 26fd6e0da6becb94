//! `docs/openapi.json` is the document the server serves, byte for byte.
//! After changing the API: `UPDATE_OPENAPI=1 cargo test -p widget-sessions-api --test openapi`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_document_is_what_the_server_serves() {
    let served = api::http::openapi::document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(committed(), &served).unwrap();
    }
    let on_disk = std::fs::read_to_string(committed()).unwrap_or_default();
    assert!(
        on_disk == served,
        "docs/openapi.json is out of date; run `UPDATE_OPENAPI=1 cargo test -p widget-sessions-api --test openapi` and commit it"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_describes_every_route() {
    let doc: serde_json::Value = serde_json::from_str(&api::http::openapi::document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/travel-rule/widget-sessions",
        "/api/v1/travel-rule/widget-sessions/{id}",
        "/api/v1/travel-rule/widget-sessions/{id}/cancel",
        "/w/{token}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    // The documented request body names exactly the members the parser accepts.
    let mut documented: Vec<String> =
        doc["components"]["schemas"]["CreateSessionBody"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
    let mut accepted: Vec<String> = api::http::create_body::CreateSessionBody::MEMBERS
        .iter()
        .map(|m| m.to_string())
        .collect();
    accepted.sort();
    documented.sort();
    assert_eq!(documented, accepted);
    let required = doc["components"]["schemas"]["CreateSessionBody"]["required"].clone();
    assert_eq!(required, serde_json::json!(["currency", "network"]));
}
