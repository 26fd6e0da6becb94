//! The OpenAPI 3.1 document, generated from the code (`utoipa`). A test keeps the committed
//! copy at `docs/openapi.json` identical to what the server serves.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::create_body::CreateSessionBody;
use crate::http::declaration_body::{
    DeclarationBody, LegalPersonBody, NaturalPersonBody, ThirdPartyBody, VaspBody,
};
use crate::http::error::{FieldProblem, Problem};
use crate::http::health::{Checks, Health, Readiness};
use crate::http::sessions::{
    CounterpartyBody, InvoiceInfo, OrderBody, OwnershipProofBody, SessionBody, SessionList, Status,
    TravelRuleBody,
};
use crate::http::travel_rule::{ChallengeBody, ProofBody};
use crate::http::webhooks::{
    CreateEndpointBody, DeliveryBody, EndpointBody, EndpointList, EventBody, EventList,
    RotateSecretBody,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Travel-rule widget sessions",
        description = "Short-lived, single-use links to the Transak widget for one customer, one asset and one counterparty. \
Requests under /api/v1 are signed: header `api-key`, and `Authorization: HMAC <unix-ms>:<hex HMAC-SHA256(secret, unix-ms + METHOD + path below /api/v1 with query + md5hex(body or \"{}\"))>`. \
Errors are application/problem+json documents with a stable `code`.",
        version = "1.0.0"
    ),
    paths(
        crate::http::sessions::create,
        crate::http::sessions::list,
        crate::http::sessions::get,
        crate::http::sessions::cancel,
        crate::http::travel_rule::declare,
        crate::http::travel_rule::challenge,
        crate::http::travel_rule::prove,
        crate::http::webhooks::session_events,
        crate::http::webhooks::create_endpoint,
        crate::http::webhooks::list_endpoints,
        crate::http::webhooks::delete_endpoint,
        crate::http::webhooks::rotate_secret,
        crate::http::transak_orders::transak_order,
        crate::http::launch::launch,
        crate::http::hosted::post_travel_rule,
        crate::http::hosted::post_continue,
        crate::http::health::healthz,
        crate::http::health::readyz,
        crate::http::health::metrics,
        openapi_json,
    ),
    components(schemas(
        CreateSessionBody, SessionBody, SessionList, Status, CounterpartyBody, InvoiceInfo,
        Problem, FieldProblem, Health, Readiness, Checks, CreateEndpointBody, EndpointBody,
        EndpointList, EventBody, EventList, DeliveryBody, OrderBody, TravelRuleBody,
        OwnershipProofBody, DeclarationBody, VaspBody, ThirdPartyBody, NaturalPersonBody,
        LegalPersonBody, ChallengeBody, ProofBody, RotateSecretBody
    )),
    modifiers(&Security, &ClosedBodies, &OptionalBodies),
    tags(
        (name = "sessions", description = "Create, reuse, read, list and cancel widget sessions (signed)"),
        (name = "travel rule", description = "A session's travel-rule record: the customer's declaration and the ownership proof (signed)"),
        (name = "webhooks", description = "Webhook endpoints: where session events are delivered (signed)"),
        (name = "launch", description = "The public single-use launch link"),
        (name = "upstream", description = "Webhooks from Transak (signed with the partner access token)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "api-key",
                "The application's API key",
            ))),
        );
        components.add_security_scheme(
            "hmac",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "HMAC <unix-ms>:<hex HMAC-SHA256(secret, unix-ms + METHOD + path below /api/v1 with query + md5hex(body or \"{}\"))>",
            ))),
        );
    }
}

/// Request bodies refuse members they do not name (`additionalProperties: false`); the
/// reader in [`crate::http::create_body`] reports them as `unknown_field`.
struct ClosedBodies;

/// The request bodies that refuse unknown members.
const CLOSED_BODIES: &[&str] = &[
    "CreateSessionBody",
    "CreateEndpointBody",
    "RotateSecretBody",
];

impl Modify for ClosedBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{AdditionalProperties, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in CLOSED_BODIES {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name) {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}

/// Operations whose request body may be left out (utoipa marks a typed body required).
struct OptionalBodies;

/// The paths (all `POST`) whose body is optional.
const OPTIONAL_BODIES: &[&str] = &["/api/v1/webhook-endpoints/{id}/rotate-secret"];

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Required;
        for path in OPTIONAL_BODIES {
            if let Some(body) = openapi
                .paths
                .paths
                .get_mut(*path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.request_body.as_mut())
            {
                body.required = Some(Required::False);
            }
        }
    }
}

/// The document as pretty JSON (what `/api/v1/openapi.json` serves and `docs/openapi.json`
/// holds).
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
        .into_response()
}
