//! The create-or-reuse request body (contract §2): one type that the service parses and the
//! OpenAPI document describes, and its conversion into the domain's [`ValidRequest`],
//! reporting **every** problem of a body at once (malformed JSON aside), each with its
//! member name and a stable code.

use domain::{
    AddressError, Asset, Counterparty, CounterpartyAddress, Currency, ErrorCode, FieldError,
    Invoice, LightningPayment, Network, PaymentHash, RuleViolation as _, Rules, ScopeError,
    SessionScope, Subject, TxHash, ValidRequest, ValidationErrors, quote_for_message,
};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Group names used as `field` for rules that span several members.
pub mod fields {
    /// `userId` / `businessId`.
    pub const SUBJECT: &str = "userId|businessId";
    /// `counterpartyAddress` / `paymentHash` / `invoice`.
    pub const COUNTERPARTY: &str = "counterpartyAddress|paymentHash|invoice";
}

/// The body of `POST /api/v1/travel-rule/widget-sessions`: camelCase members, unknown
/// members refused. Every problem of a body is reported at once, each with its member.
#[derive(Debug, Clone, Default, PartialEq, Eq, ToSchema)]
#[schema(
    rename_all = "camelCase",
    example = json!({"userId": "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44", "currency": "BTC", "network": "BTC", "counterpartyAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"})
)]
pub struct CreateSessionBody {
    /// The user the session is for. Exactly one of `userId` / `businessId`.
    #[schema(value_type = Option<Uuid>)]
    pub user_id: Option<String>,
    /// The business the session is for. Exactly one of `userId` / `businessId`.
    #[schema(value_type = Option<Uuid>)]
    pub business_id: Option<String>,
    /// Ledger currency, any case (BTC, ETH, POL, SOL, BNB, TRX, USDC, USDT by default).
    #[schema(required = true, schema_with = currency_schema)]
    pub currency: Option<String>,
    /// The currency's network, any case (BTC, ETH, POLYGON, SOL, BSC, TRON).
    #[schema(required = true, schema_with = network_schema)]
    pub network: Option<String>,
    /// On-chain counterparty address, valid for the network. Exactly one of
    /// `counterpartyAddress` / `paymentHash` / `invoice`.
    pub counterparty_address: Option<String>,
    /// Lightning payment hash, 64 hex characters (BTC/BTC only).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub payment_hash: Option<String>,
    /// bolt11 invoice, optionally prefixed `lightning:` (BTC/BTC only).
    pub invoice: Option<String>,
    /// Whether ownership of the counterparty must be verified. Stored with the session and
    /// upgrade-only: `true` raises it on reuse, `false` never lowers it. Default false.
    /// (Kept by this service; Transak is sent no such parameter.)
    pub force_verify_ownership: Option<bool>,
    /// On-chain hash of the held deposit this session resolves (not with Lightning).
    pub tx_hash: Option<String>,
}

/// `currency` is a required string (held as an `Option` so that its absence is reported with
/// every other problem).
fn currency_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some(
            "Ledger currency, any case (BTC, ETH, POL, SOL, BNB, TRX, USDC, USDT by default).",
        ))
        .min_length(Some(1))
        .max_length(Some(16))
        .pattern(Some("^[A-Za-z0-9]+$"))
        .build()
}

/// `network` is a required string (see [`currency_schema`]).
fn network_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some(
            "The currency's network, any case (BTC, ETH, POLYGON, SOL, BSC, TRON).",
        ))
        .min_length(Some(1))
        .build()
}

impl CreateSessionBody {
    /// The JSON members, as the reader accepts them and the schema names them.
    pub const MEMBERS: [&str; 9] = [
        "userId",
        "businessId",
        "currency",
        "network",
        "counterpartyAddress",
        "paymentHash",
        "invoice",
        "forceVerifyOwnership",
        "txHash",
    ];
}

impl CreateSessionBody {
    /// Reads a JSON body, reporting malformed JSON, duplicate and unknown members
    /// and wrong JSON types as [`ValidationErrors`] (`invalid_json`, `unknown_field`,
    /// `invalid_type`), all at once. [`parse_json`] goes further and reports these together
    /// with every rule problem.
    ///
    /// ```
    /// use api::http::create_body::CreateSessionBody;
    /// use domain::ErrorCode;
    /// let e = CreateSessionBody::from_json(br#"{"forceVerifyOwnership": "true", "walletAddress": "x"}"#).unwrap_err();
    /// assert!(e.has("forceVerifyOwnership", ErrorCode::InvalidType));
    /// assert!(e.has("walletAddress", ErrorCode::UnknownField));
    /// ```
    pub fn from_json(body: &[u8]) -> Result<Self, ValidationErrors> {
        let (raw, shape) = read_members(body)?;
        match ValidationErrors::from_vec(shape) {
            Some(errors) => Err(errors),
            None => Ok(raw),
        }
    }

    /// Applies every rule of contract §2/§4, reporting **every** problem at once.
    pub fn validate(&self, rules: &Rules) -> Result<ValidRequest, ValidationErrors> {
        let mut errors = Vec::new();

        let subject = parse_subject(self, &mut errors);

        let currency = match self.currency.as_deref() {
            None | Some("") => {
                errors.push(required("currency"));
                None
            }
            Some(c) => Currency::parse(c)
                .map_err(|e| errors.push(e.at("currency")))
                .ok(),
        };
        let network = match self.network.as_deref() {
            None | Some("") => {
                errors.push(required("network"));
                None
            }
            Some(n) => n
                .parse::<Network>()
                .map_err(|e| errors.push(e.at("network")))
                .ok(),
        };
        let asset = match (&currency, network) {
            (Some(c), Some(n)) => match Asset::from_parts(c.clone(), n, rules.ledger()) {
                Ok(a) => Some(a),
                Err(e) => {
                    let field = if e.code() == ErrorCode::CurrencyNetworkMismatch {
                        "network"
                    } else {
                        "currency"
                    };
                    errors.push(e.at(field));
                    None
                }
            },
            _ => None,
        };
        // Lightning serves BTC on BTC only; judged on the parsed parts so the problem is
        // reported even when the ledger table itself rejected the pair.
        let btc_on_btc = match (&currency, network) {
            (Some(c), Some(n)) => Some(domain::lightning_serves(c, n)),
            _ => None,
        };

        let counterparty = parse_counterparty(self, rules, network, btc_on_btc, &mut errors);

        let lightning_given = self.payment_hash.is_some() || self.invoice.is_some();
        let tx_hash = match self.tx_hash.as_deref() {
            None => None,
            Some(_) if lightning_given => {
                errors.push(FieldError::new(
                    "txHash",
                    ErrorCode::TxHashWithLightning,
                    "txHash identifies an on-chain deposit and cannot be combined with paymentHash or invoice",
                ));
                None
            }
            Some(t) => match network {
                Some(n) => TxHash::parse(n, t)
                    .map_err(|e| errors.push(e.at("txHash")))
                    .ok(),
                // Without a network there is nothing to check the hash against; the
                // network problem is already reported.
                None => None,
            },
        };

        if let Some(errors) = ValidationErrors::from_vec(errors) {
            return Err(errors);
        }
        match (subject, asset, counterparty) {
            (Some(subject), Some(asset), Some(counterparty)) => {
                let tx_hash = if self.tx_hash.is_some() {
                    tx_hash
                } else {
                    None
                };
                let scope = SessionScope::new(subject, asset, counterparty, tx_hash)
                    .map_err(|e| ValidationErrors::single(scope_problem(&e)))?;
                Ok(ValidRequest::new(
                    scope,
                    self.force_verify_ownership.unwrap_or(false),
                ))
            }
            // Every path that leaves a part unset pushes an error above.
            _ => Err(ValidationErrors::single(FieldError::new(
                "",
                ErrorCode::InvalidJson,
                "the request is incomplete",
            ))),
        }
    }
}

/// Parses a JSON body and applies every rule: [`CreateSessionBody::from_json`] then
/// [`CreateSessionBody::validate`].
///
/// ```
/// use api::http::create_body::parse_json;
/// use domain::{ErrorCode, Rules};
/// let errors = parse_json(br#"{"currency": "BTC", "network": "ETH"}"#, &Rules::default()).unwrap_err();
/// assert_eq!(errors.codes(), vec![
///     ErrorCode::ExactlyOneSubject,
///     ErrorCode::CurrencyNetworkMismatch,
///     ErrorCode::ExactlyOneCounterparty,
/// ]);
/// ```
pub fn parse_json(body: &[u8], rules: &Rules) -> Result<ValidRequest, ValidationErrors> {
    let (raw, mut problems) = read_members(body)?;
    match raw.validate(rules) {
        Ok(valid) => match ValidationErrors::from_vec(problems) {
            None => Ok(valid),
            Some(errors) => Err(errors),
        },
        Err(rule_errors) => {
            // A member with the wrong JSON type was read as present-but-empty, so group rules
            // (exactly one of …) still see it; its own rule problems would only repeat the
            // type problem, so they are dropped.
            let shape_fields: Vec<String> = problems.iter().map(|p| p.field.clone()).collect();
            problems.extend(
                rule_errors
                    .into_iter()
                    .filter(|e| !shape_fields.contains(&e.field)),
            );
            Err(ValidationErrors::from_vec(problems).unwrap_or_else(|| {
                ValidationErrors::single(FieldError::new(
                    "",
                    ErrorCode::InvalidJson,
                    "the request is invalid",
                ))
            }))
        }
    }
}

/// The body's members, in order, duplicates kept (serde_json's own maps keep the last).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Reads the body member by member. `Err` only when the body is not a JSON object at all;
/// member problems come back alongside the members that could be read. A member of the
/// wrong type is read as an empty string, so "exactly one of" rules still count it.
fn read_members(body: &[u8]) -> Result<(CreateSessionBody, Vec<FieldError>), ValidationErrors> {
    let not_json = |message: String| {
        ValidationErrors::single(FieldError::new("", ErrorCode::InvalidJson, message))
    };
    // serde would let a struct deserialise from a JSON array too (positionally); the API
    // accepts objects only.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(not_json(match first {
            None => "the body is empty; send a JSON object".to_string(),
            Some(_) => "the body must be a JSON object".to_string(),
        }));
    }
    // serde_json's syntax messages name a position, never the input itself.
    let members: Members = serde_json::from_slice(body)
        .map_err(|e| not_json(format!("the body is not valid JSON: {e}")))?;

    let mut raw = CreateSessionBody::default();
    let mut problems = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &members.0 {
        let shown = quote_for_message(name);
        if seen.contains(&name.as_str()) {
            problems.push(FieldError::new(
                shown.clone(),
                ErrorCode::InvalidJson,
                format!("{shown} appears more than once"),
            ));
            continue;
        }
        seen.push(name);
        let slot = match name.as_str() {
            "userId" => &mut raw.user_id,
            "businessId" => &mut raw.business_id,
            "currency" => &mut raw.currency,
            "network" => &mut raw.network,
            "counterpartyAddress" => &mut raw.counterparty_address,
            "paymentHash" => &mut raw.payment_hash,
            "invoice" => &mut raw.invoice,
            "txHash" => &mut raw.tx_hash,
            "forceVerifyOwnership" => {
                match value {
                    serde_json::Value::Null => {}
                    serde_json::Value::Bool(b) => raw.force_verify_ownership = Some(*b),
                    other => problems.push(FieldError::new(
                        name.clone(),
                        ErrorCode::InvalidType,
                        format!("{name} must be true or false, not {}", json_kind(other)),
                    )),
                }
                continue;
            }
            _ => {
                problems.push(FieldError::new(
                    shown.clone(),
                    ErrorCode::UnknownField,
                    format!("{shown} is not a member of this request"),
                ));
                continue;
            }
        };
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => *slot = Some(s.clone()),
            other => {
                problems.push(FieldError::new(
                    name.clone(),
                    ErrorCode::InvalidType,
                    format!("{name} must be a string, not {}", json_kind(other)),
                ));
                *slot = Some(String::new());
            }
        }
    }
    Ok((raw, problems))
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, ErrorCode::Required, format!("{field} is required"))
}

fn parse_subject(raw: &CreateSessionBody, errors: &mut Vec<FieldError>) -> Option<Subject> {
    // Only the hyphenated form (any case): no braces, no `urn:uuid:`, no bare 32 hex.
    let uuid = |field: &str, s: &str, errors: &mut Vec<FieldError>| match Uuid::try_parse(s) {
        Ok(id) if s.len() == 36 => Some(id),
        _ => {
            errors.push(FieldError::new(
                field,
                ErrorCode::InvalidUuid,
                format!("{field} must be a UUID such as 7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44"),
            ));
            None
        }
    };
    match (raw.user_id.as_deref(), raw.business_id.as_deref()) {
        (Some(u), None) => uuid("userId", u, errors).map(Subject::User),
        (None, Some(b)) => uuid("businessId", b, errors).map(Subject::Business),
        (u, b) => {
            errors.push(FieldError::new(
                fields::SUBJECT,
                ErrorCode::ExactlyOneSubject,
                if u.is_some() && b.is_some() {
                    "give either userId or businessId, not both"
                } else {
                    "give exactly one of userId and businessId"
                },
            ));
            // Still report malformed ids, so the caller fixes everything at once.
            if let Some(u) = u {
                uuid("userId", u, errors);
            }
            if let Some(b) = b {
                uuid("businessId", b, errors);
            }
            None
        }
    }
}

fn parse_counterparty(
    raw: &CreateSessionBody,
    rules: &Rules,
    network: Option<Network>,
    btc_on_btc: Option<bool>,
    errors: &mut Vec<FieldError>,
) -> Option<Counterparty> {
    let given = [
        raw.counterparty_address.is_some(),
        raw.payment_hash.is_some(),
        raw.invoice.is_some(),
    ]
    .into_iter()
    .filter(|g| *g)
    .count();
    if given != 1 {
        errors.push(FieldError::new(
            fields::COUNTERPARTY,
            ErrorCode::ExactlyOneCounterparty,
            if given == 0 {
                "give exactly one of counterpartyAddress, paymentHash and invoice"
            } else {
                "give only one of counterpartyAddress, paymentHash and invoice"
            },
        ));
    }

    let address = raw.counterparty_address.as_deref().and_then(|a| {
        let network = network?;
        CounterpartyAddress::parse(network, a, rules.bitcoin_network())
            .map_err(|e: AddressError| errors.push(e.at("counterpartyAddress")))
            .ok()
    });

    let lightning_problem = |field: &str, errors: &mut Vec<FieldError>| {
        if btc_on_btc == Some(false) {
            errors.push(FieldError::new(
                field,
                ErrorCode::LightningRequiresBtc,
                format!(
                    "{field} is a Lightning counterparty, which needs currency BTC on network BTC"
                ),
            ));
        }
    };
    let from_hash = raw.payment_hash.as_deref().and_then(|h| {
        lightning_problem("paymentHash", errors);
        PaymentHash::parse(h)
            .map_err(|e| errors.push(e.at("paymentHash")))
            .ok()
            .map(|payment_hash| LightningPayment {
                payment_hash,
                invoice: None,
            })
    });
    let from_invoice = raw.invoice.as_deref().and_then(|i| {
        lightning_problem("invoice", errors);
        Invoice::decode(i, rules.bitcoin_network())
            .map_err(|e| errors.push(e.at("invoice")))
            .ok()
            .map(|inv| LightningPayment {
                payment_hash: inv.payment_hash(),
                invoice: Some(inv.details()),
            })
    });

    if given != 1 {
        return None;
    }
    address
        .map(Counterparty::Address)
        .or(from_hash.map(Counterparty::Lightning))
        .or(from_invoice.map(Counterparty::Lightning))
}

fn scope_problem(e: &ScopeError) -> FieldError {
    match e {
        ScopeError::AddressNetwork { .. } => FieldError::new(
            "counterpartyAddress",
            ErrorCode::InvalidAddress,
            e.to_string(),
        ),
        ScopeError::LightningRequiresBtc => FieldError::new(
            fields::COUNTERPARTY,
            ErrorCode::LightningRequiresBtc,
            e.to_string(),
        ),
        ScopeError::TxHashWithLightning => {
            FieldError::new("txHash", ErrorCode::TxHashWithLightning, e.to_string())
        }
        ScopeError::TxHashNetwork { .. } => {
            FieldError::new("txHash", ErrorCode::InvalidTxHash, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_member_is_read_and_no_other() {
        for member in CreateSessionBody::MEMBERS {
            let body = format!(r#"{{"{member}": null}}"#);
            let (_, problems) = read_members(body.as_bytes()).unwrap();
            assert!(problems.is_empty(), "{member}: {problems:?}");
        }
        let (_, problems) = read_members(br#"{"walletAddress": "x"}"#).unwrap();
        assert_eq!(problems[0].code, ErrorCode::UnknownField);
    }
}
