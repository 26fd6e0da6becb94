//! Rows ↔ domain values.

use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, Asset, Challenge, Counterparty, CounterpartyAddress, Country, Currency, Custody,
    Declaration, DeclarationSource, FrameAncestors, HostedStep, InvoiceDetails, Lei,
    LightningPayment, Network, NodeId, OrderStatus, Owner, PaymentHash, PersonName, ProofMethod,
    ProofPolicy, RecordedDeclaration, SessionEnd, SessionId, SessionParts, SessionScope, Subject,
    ThirdParty, TravelRuleRecord, TxHash, Vasp, VerifiedProof,
};
use ports::{SessionOrder, StoreError, StoredSession, WidgetUrl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A session as the adapter reads it: the SQL type `session_row_v3`, built from a
/// `sessions` row by the SQL function of the same name (`select session_row_v3(s) as
/// "session!: SessionRow" from sessions s …`), field for field in that type's order. Also
/// read from an event's JSON copy of the `sessions` row (columns it does not know are
/// ignored, newer ones may be missing).
///
/// The one list of a session's columns: the type and function are defined once (a
/// migration), and no statement spells the columns out.
#[derive(Debug, Clone, sqlx::Type, serde::Deserialize)]
#[sqlx(type_name = "session_row_v3")]
pub(crate) struct SessionRow {
    pub application_id: Uuid,
    pub id: Uuid,
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub currency: String,
    pub network: String,
    pub counterparty_kind: String,
    pub counterparty: String,
    pub invoice_created_at: Option<DateTime<Utc>>,
    pub invoice_expires_at: Option<DateTime<Utc>>,
    pub invoice_amount_msat: Option<i64>,
    pub tx_hash: Option<String>,
    pub force_verify_ownership: bool,
    /// Empty once cleared (the session ended) and in events' copies.
    #[serde(default)]
    pub widget_url: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expired_event_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub order_status: Option<String>,
    #[serde(default)]
    pub order_event_id: Option<String>,
    #[serde(default)]
    pub order_updated_at: Option<DateTime<Utc>>,
    #[serde(default = "when_forced")]
    pub proof_policy: String,
    #[serde(default)]
    pub challenge: Option<String>,
    #[serde(default)]
    pub invoice_payee: Option<String>,
    #[serde(default)]
    pub declaration: Option<serde_json::Value>,
    #[serde(default)]
    pub declared_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub declaration_source: Option<String>,
    #[serde(default)]
    pub proof_method: Option<String>,
    #[serde(default)]
    pub proof_verified_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub hosted_travel_rule: bool,
    #[serde(default)]
    pub frame_ancestors: String,
}

/// The policy of a session stored before policies were.
fn when_forced() -> String {
    ProofPolicy::WhenForced.as_str().to_string()
}

fn corrupt(what: &str, id: Uuid) -> StoreError {
    StoreError::unexpected(format!("session {id}: stored {what} is invalid"))
}

impl SessionRow {
    /// Rebuilds the stored session. Values were validated when stored; they are restored
    /// without consulting today's configuration (ledger table, bitcoin network).
    pub(crate) fn into_stored(self) -> Result<StoredSession, StoreError> {
        let id = self.id;
        let subject = Subject::from_parts(&self.subject_kind, self.subject_id)
            .ok_or_else(|| corrupt("subject", id))?;
        let network: Network = self.network.parse().map_err(|_| corrupt("network", id))?;
        let currency = Currency::parse(&self.currency).map_err(|_| corrupt("currency", id))?;
        let asset = Asset::from_stored(currency, network);
        let counterparty = match self.counterparty_kind.as_str() {
            "address" => {
                Counterparty::Address(CounterpartyAddress::from_stored(network, self.counterparty))
            }
            "lightning" => {
                let payment_hash = PaymentHash::parse(&self.counterparty)
                    .map_err(|_| corrupt("payment hash", id))?;
                let invoice = match (self.invoice_created_at, self.invoice_expires_at) {
                    (Some(created_at), Some(expires_at)) => Some(InvoiceDetails {
                        created_at,
                        expires_at,
                        amount_msat: self.invoice_amount_msat.and_then(|a| u64::try_from(a).ok()),
                        payee: self
                            .invoice_payee
                            .as_deref()
                            .map(NodeId::parse)
                            .transpose()
                            .map_err(|_| corrupt("invoice payee", id))?,
                    }),
                    _ => None,
                };
                Counterparty::Lightning(LightningPayment {
                    payment_hash,
                    invoice,
                })
            }
            _ => return Err(corrupt("counterparty kind", id)),
        };
        let tx_hash = self.tx_hash.map(|t| TxHash::from_stored(network, t));
        let scope = SessionScope::new(subject, asset, counterparty, tx_hash)
            .map_err(|_| corrupt("scope", id))?;
        let end = match (self.consumed_at, self.cancelled_at, self.expired_event_at) {
            (Some(at), _, _) => Some(SessionEnd::Consumed { at }),
            (None, Some(at), _) => Some(SessionEnd::Cancelled { at }),
            (None, None, Some(at)) => Some(SessionEnd::Expired { at }),
            (None, None, None) => None,
        };
        let travel_rule = TravelRuleRecord {
            policy: ProofPolicy::parse(&self.proof_policy)
                .map_err(|_| corrupt("proof policy", id))?,
            declaration: match (self.declaration, self.declared_at, self.declaration_source) {
                (Some(json), Some(declared_at), Some(source)) => Some(RecordedDeclaration {
                    declaration: declaration_from_json(json)
                        .ok_or_else(|| corrupt("declaration", id))?,
                    declared_at,
                    source: DeclarationSource::parse(&source)
                        .ok_or_else(|| corrupt("declaration source", id))?,
                }),
                _ => None,
            },
            proof: match (self.proof_method, self.proof_verified_at) {
                (Some(method), Some(verified_at)) => Some(VerifiedProof {
                    method: ProofMethod::parse(&method)
                        .ok_or_else(|| corrupt("proof method", id))?,
                    verified_at,
                }),
                _ => None,
            },
        };
        let challenge = self.challenge.map(Challenge::from_stored);
        let hosted = HostedStep {
            enabled: self.hosted_travel_rule,
            frame_ancestors: FrameAncestors::parse(&self.frame_ancestors)
                .map_err(|_| corrupt("frame ancestors", id))?,
        };
        Ok(StoredSession {
            session: domain::Session::restore(SessionParts {
                id: SessionId::from_uuid(id),
                application_id: ApplicationId::from_uuid(self.application_id),
                scope,
                force_verify_ownership: self.force_verify_ownership,
                created_at: self.created_at,
                expires_at: self.expires_at,
                end,
                travel_rule,
                challenge,
                hosted,
            }),
            widget_url: Some(self.widget_url)
                .filter(|url| !url.is_empty())
                .map(WidgetUrl::new),
            order: match (
                self.order_id,
                self.order_status,
                self.order_event_id,
                self.order_updated_at,
            ) {
                (Some(id), Some(status), Some(event_id), Some(updated_at)) => Some(SessionOrder {
                    id,
                    status: OrderStatus::parse(&status),
                    event_id,
                    updated_at,
                }),
                _ => None,
            },
        })
    }
}

/// The columns of a session to insert.
pub(crate) struct SessionColumns {
    pub subject_kind: &'static str,
    pub subject_id: Uuid,
    pub currency: String,
    pub network: &'static str,
    pub counterparty_kind: &'static str,
    pub counterparty: String,
    pub invoice_created_at: Option<DateTime<Utc>>,
    pub invoice_expires_at: Option<DateTime<Utc>>,
    pub invoice_amount_msat: Option<i64>,
    pub invoice_payee: Option<String>,
    pub tx_hash: Option<String>,
}

impl SessionColumns {
    pub(crate) fn of(scope: &SessionScope) -> Self {
        let (kind, counterparty, invoice) = match scope.counterparty() {
            Counterparty::Address(a) => ("address", a.as_str().to_string(), None),
            Counterparty::Lightning(l) => ("lightning", l.payment_hash.to_string(), l.invoice),
        };
        Self {
            subject_kind: scope.subject().kind(),
            subject_id: scope.subject().id(),
            currency: scope.asset().currency().as_str().to_string(),
            network: scope.asset().network().as_str(),
            counterparty_kind: kind,
            counterparty,
            invoice_created_at: invoice.map(|i| i.created_at),
            invoice_expires_at: invoice.map(|i| i.expires_at),
            invoice_amount_msat: invoice
                .and_then(|i| i.amount_msat)
                .map(|a| i64::try_from(a).unwrap_or(i64::MAX)),
            invoice_payee: invoice.and_then(|i| i.payee).map(|p| p.to_string()),
            tx_hash: scope.tx_hash().map(|t| t.as_str().to_string()),
        }
    }
}

/// A declaration as the adapter stores it (`sessions.declaration`,
/// `travel_rule_declarations.declaration`): `custody` and `owner` as named in the API, which
/// the SQL function `travel_rule_status` reads, and the parties as given.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredDeclaration {
    custody: String,
    owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vasp: Option<StoredVasp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    third_party: Option<StoredThirdParty>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredVasp {
    name: String,
    lei: Option<String>,
    country: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum StoredThirdParty {
    #[serde(rename_all = "camelCase")]
    NaturalPerson {
        first_name: String,
        last_name: String,
        country_of_residence: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    LegalPerson {
        name: String,
        lei: Option<String>,
        country_of_registration: Option<String>,
    },
}

/// A declaration as stored.
pub(crate) fn declaration_json(d: &Declaration) -> Value {
    let text = |x: &PersonName| x.as_str().to_string();
    let stored = StoredDeclaration {
        custody: d.custody().as_str().to_string(),
        owner: d.owner().as_str().to_string(),
        vasp: d.vasp().map(|v| StoredVasp {
            name: text(&v.name),
            lei: v.lei.as_ref().map(|l| l.as_str().to_string()),
            country: v.country.as_ref().map(|c| c.as_str().to_string()),
        }),
        third_party: d.third_party().map(|t| match t {
            ThirdParty::NaturalPerson {
                first_name,
                last_name,
                country_of_residence,
            } => StoredThirdParty::NaturalPerson {
                first_name: text(first_name),
                last_name: text(last_name),
                country_of_residence: country_of_residence
                    .as_ref()
                    .map(|c| c.as_str().to_string()),
            },
            ThirdParty::LegalPerson {
                name,
                lei,
                country_of_registration,
            } => StoredThirdParty::LegalPerson {
                name: text(name),
                lei: lei.as_ref().map(|l| l.as_str().to_string()),
                country_of_registration: country_of_registration
                    .as_ref()
                    .map(|c| c.as_str().to_string()),
            },
        }),
    };
    serde_json::to_value(stored).unwrap_or(Value::Null)
}

/// A stored declaration, checked again by the domain's parsers; `None` if it does not read
/// back.
pub(crate) fn declaration_from_json(json: Value) -> Option<Declaration> {
    let s: StoredDeclaration = serde_json::from_value(json).ok()?;
    let name = |x: &str| PersonName::parse(x).ok();
    // Absent is fine (`Some(None)`); present but not valid is a corrupt record (`None`).
    let lei = |x: Option<String>| match x {
        None => Some(None),
        Some(l) => Lei::parse(&l).ok().map(Some),
    };
    let country = |x: Option<String>| match x {
        None => Some(None),
        Some(c) => Country::parse(&c).ok().map(Some),
    };
    let vasp = match s.vasp {
        Some(v) => Some(Vasp {
            name: name(&v.name)?,
            lei: lei(v.lei)?,
            country: country(v.country)?,
        }),
        None => None,
    };
    let third_party = match s.third_party {
        Some(StoredThirdParty::NaturalPerson {
            first_name,
            last_name,
            country_of_residence,
        }) => Some(ThirdParty::NaturalPerson {
            first_name: name(&first_name)?,
            last_name: name(&last_name)?,
            country_of_residence: country(country_of_residence)?,
        }),
        Some(StoredThirdParty::LegalPerson {
            name: n,
            lei: l,
            country_of_registration,
        }) => Some(ThirdParty::LegalPerson {
            name: name(&n)?,
            lei: lei(l)?,
            country_of_registration: country(country_of_registration)?,
        }),
        None => None,
    };
    Declaration::new(
        Custody::parse(&s.custody).ok()?,
        Owner::parse(&s.owner).ok()?,
        vasp,
        third_party,
    )
    .ok()
}
