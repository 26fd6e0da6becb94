//! The API's JSON, as a partner's backend sends and reads it.
//!
//! Answers are read leniently: members this version does not know are ignored and unknown
//! enum values come back as an `Unknown` variant, so a newer service never breaks an older
//! client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A user (`userId`).
    User(Uuid),
    /// A business (`businessId`).
    Business(Uuid),
}

/// The counterparty of a create request: exactly one of an address, a payment hash or an
/// invoice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CounterpartyInput {
    /// An on-chain address (`counterpartyAddress`).
    Address(String),
    /// A Lightning payment hash, 64 hex digits (`paymentHash`).
    PaymentHash(String),
    /// A bolt11 invoice, optionally prefixed `lightning:` (`invoice`).
    Invoice(String),
}

/// `POST /api/v1/travel-rule/widget-sessions`: create a session, or reuse the
/// application's session for the same key.
///
/// ```
/// use widget_sessions_client::{CreateSession, CounterpartyInput, Subject};
/// let request = CreateSession::new(
///     Subject::User("7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44".parse().unwrap()),
///     "BTC", "BTC",
///     CounterpartyInput::Address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into()),
/// )
/// .force_verify_ownership(true);
/// let json = serde_json::to_value(&request).unwrap();
/// assert_eq!(json["userId"], "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44");
/// assert_eq!(json["counterpartyAddress"], "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
/// assert_eq!(json["forceVerifyOwnership"], true);
/// assert!(json.get("txHash").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSession {
    /// The customer.
    pub subject: Subject,
    /// Ledger currency, e.g. `BTC`, `USDC`.
    pub currency: String,
    /// The currency's network, e.g. `BTC`, `ETH`.
    pub network: String,
    /// The counterparty.
    pub counterparty: CounterpartyInput,
    /// Ask for ownership verification (upgrade-only once stored).
    pub force_verify_ownership: bool,
    /// The on-chain hash of the held deposit this session resolves.
    pub tx_hash: Option<String>,
}

impl CreateSession {
    /// A request with `forceVerifyOwnership` false and no `txHash`.
    pub fn new(
        subject: Subject,
        currency: impl Into<String>,
        network: impl Into<String>,
        counterparty: CounterpartyInput,
    ) -> Self {
        Self {
            subject,
            currency: currency.into(),
            network: network.into(),
            counterparty,
            force_verify_ownership: false,
            tx_hash: None,
        }
    }

    /// Sets `forceVerifyOwnership`.
    #[must_use]
    pub fn force_verify_ownership(mut self, yes: bool) -> Self {
        self.force_verify_ownership = yes;
        self
    }

    /// Sets `txHash`.
    #[must_use]
    pub fn tx_hash(mut self, hash: impl Into<String>) -> Self {
        self.tx_hash = Some(hash.into());
        self
    }
}

impl Serialize for CreateSession {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            user_id: Option<Uuid>,
            #[serde(skip_serializing_if = "Option::is_none")]
            business_id: Option<Uuid>,
            currency: &'a str,
            network: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            counterparty_address: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            payment_hash: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            invoice: Option<&'a str>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            force_verify_ownership: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            tx_hash: Option<&'a str>,
        }
        let (user_id, business_id) = match self.subject {
            Subject::User(u) => (Some(u), None),
            Subject::Business(b) => (None, Some(b)),
        };
        let (mut address, mut hash, mut invoice) = (None, None, None);
        match &self.counterparty {
            CounterpartyInput::Address(a) => address = Some(a.as_str()),
            CounterpartyInput::PaymentHash(h) => hash = Some(h.as_str()),
            CounterpartyInput::Invoice(i) => invoice = Some(i.as_str()),
        }
        Wire {
            user_id,
            business_id,
            currency: &self.currency,
            network: &self.network,
            counterparty_address: address,
            payment_hash: hash,
            invoice,
            force_verify_ownership: self.force_verify_ownership,
            tx_hash: self.tx_hash.as_deref(),
        }
        .serialize(s)
    }
}

/// A session's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// Usable.
    Active,
    /// Its launch link was opened.
    Consumed,
    /// Its lifetime ran out.
    Expired,
    /// The application cancelled it.
    Cancelled,
    /// A status this client version does not know.
    #[serde(other)]
    Unknown,
}

impl SessionStatus {
    /// The name the API uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "ACTIVE",
            SessionStatus::Consumed => "CONSUMED",
            SessionStatus::Expired => "EXPIRED",
            SessionStatus::Cancelled => "CANCELLED",
            SessionStatus::Unknown => "UNKNOWN",
        }
    }
}

/// What a bolt11 invoice said.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceInfo {
    /// The invoice's creation time.
    pub created_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Whether it had expired when the answer was made.
    pub expired: bool,
    /// The amount it asks for, if any.
    #[serde(default)]
    pub amount_msat: Option<u64>,
}

/// The counterparty of a stored session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Counterparty {
    /// An on-chain address, in normal form.
    Address {
        /// The address.
        address: String,
    },
    /// A Lightning payment.
    Lightning {
        /// 64 lowercase hex digits.
        #[serde(rename = "paymentHash")]
        payment_hash: String,
        /// Present when the session was made from an invoice.
        #[serde(default)]
        invoice: Option<InvoiceInfo>,
    },
    /// A kind this client version does not know.
    #[serde(other)]
    Unknown,
}

/// The customer's order in the widget, as Transak last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Transak's order id.
    pub id: String,
    /// The order's status, e.g. `PROCESSING`, `COMPLETED`, `FAILED`.
    pub status: String,
    /// The upstream event that reported it, e.g. `ORDER_COMPLETED`.
    pub event_id: String,
    /// When this service recorded it.
    pub updated_at: DateTime<Utc>,
}

/// A widget session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The session id (UUID v7).
    pub id: Uuid,
    /// Status when the answer was made.
    pub status: SessionStatus,
    /// The launch link; only in create-or-reuse answers.
    #[serde(default)]
    pub widget_url: Option<String>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Whether an existing session was returned; only in create-or-reuse answers.
    #[serde(default)]
    pub reused: Option<bool>,
    /// The stored (upgrade-only) flag.
    pub force_verify_ownership: bool,
    /// The user, for a user's session.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The business, for a business's session.
    #[serde(default)]
    pub business_id: Option<Uuid>,
    /// Currency, uppercase.
    pub currency: String,
    /// Network, uppercase.
    pub network: String,
    /// The counterparty.
    pub counterparty: Counterparty,
    /// The held deposit's hash, if any.
    #[serde(default)]
    pub tx_hash: Option<String>,
    /// When the launch link was opened.
    #[serde(default)]
    pub consumed_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The customer's order, once Transak reported one.
    #[serde(default)]
    pub order: Option<Order>,
    /// The travel-rule record (absent only in answers of services older than it).
    #[serde(default)]
    pub travel_rule: Option<TravelRule>,
}

/// A session's travel-rule record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TravelRule {
    /// `AWAITING_DECLARATION`, `AWAITING_PROOF` or `COMPLETE`.
    pub status: String,
    /// Whether an ownership proof is required; `None` before a declaration.
    pub proof_required: Option<bool>,
    /// The application's policy when the session was created: `ALWAYS` or `WHEN_FORCED`.
    pub proof_policy: String,
    /// The current declaration, with `declaredAt` and `source`.
    pub declaration: Option<RecordedDeclaration>,
    /// The verified ownership proof.
    pub ownership_proof: Option<OwnershipProof>,
}

impl TravelRule {
    /// Whether the record is complete: what a partner waits for (or the
    /// `session.travel_rule_completed` event).
    pub fn is_complete(&self) -> bool {
        self.status == "COMPLETE"
    }
}

/// A declaration as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedDeclaration {
    /// What was declared.
    #[serde(flatten)]
    pub declaration: Declaration,
    /// When.
    pub declared_at: DateTime<Utc>,
    /// `API` or `HOSTED`.
    pub source: String,
}

/// The customer's declaration about the counterparty: who holds the keys and whose wallet
/// or account it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Declaration {
    /// `SELF_HOSTED` or `VASP`.
    pub custody: String,
    /// `CUSTOMER` or `THIRD_PARTY`.
    pub owner: String,
    /// Required exactly when custody is `VASP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vasp: Option<VaspParty>,
    /// Required exactly when the owner is `THIRD_PARTY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party: Option<ThirdParty>,
}

impl Declaration {
    /// A self-hosted wallet of the customer's own.
    pub fn own_self_hosted() -> Self {
        Self {
            custody: "SELF_HOSTED".into(),
            owner: "CUSTOMER".into(),
            vasp: None,
            third_party: None,
        }
    }

    /// The customer's account at a VASP.
    pub fn at_vasp(vasp: VaspParty) -> Self {
        Self {
            custody: "VASP".into(),
            owner: "CUSTOMER".into(),
            vasp: Some(vasp),
            third_party: None,
        }
    }
}

/// The VASP that holds the account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaspParty {
    /// Its name.
    pub name: String,
    /// Its Legal Entity Identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lei: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The person or entity a third-party wallet belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ThirdParty {
    /// A natural person.
    #[serde(rename_all = "camelCase")]
    NaturalPerson {
        /// First name(s).
        first_name: String,
        /// Last name(s).
        last_name: String,
        /// ISO 3166-1 alpha-2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        country_of_residence: Option<String>,
    },
    /// A legal person.
    #[serde(rename_all = "camelCase")]
    LegalPerson {
        /// Its registered name.
        name: String,
        /// Its Legal Entity Identifier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lei: Option<String>,
        /// ISO 3166-1 alpha-2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        country_of_registration: Option<String>,
    },
}

/// A verified ownership proof.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnershipProof {
    /// How the counterparty signed, e.g. `BIP322`, `EIP191`.
    pub method: String,
    /// When it was verified.
    pub verified_at: DateTime<Utc>,
}

/// The ownership challenge: the exact message the counterparty signs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnershipChallenge {
    /// The message, byte for byte.
    pub message: String,
    /// The address (or the invoice's payee node id) that must sign it.
    pub address: String,
    /// The session's network.
    pub network: String,
    /// The methods the counterparty can sign with.
    pub methods: Vec<String>,
    /// The end of the travel-rule window.
    pub expires_at: DateTime<Utc>,
}

/// A page of sessions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionPage {
    /// Newest first.
    pub data: Vec<Session>,
    /// Pass to [`ListSessions::cursor`] for the next page; `None` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/travel-rule/widget-sessions`: which sessions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSessions {
    /// Only this customer's sessions.
    pub subject: Option<Subject>,
    /// Only sessions in this status.
    pub status: Option<SessionStatus>,
    /// Page size, 1 to 100 (the service's default is 20).
    pub limit: Option<u32>,
    /// The previous page's `nextCursor`.
    pub cursor: Option<String>,
}

impl ListSessions {
    /// The query string (without `?`), parameters in a fixed order.
    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        match self.subject {
            Some(Subject::User(u)) => {
                q.append_pair("userId", &u.to_string());
            }
            Some(Subject::Business(b)) => {
                q.append_pair("businessId", &b.to_string());
            }
            None => {}
        }
        if let Some(s) = self.status {
            q.append_pair("status", s.as_str());
        }
        if let Some(l) = self.limit {
            q.append_pair("limit", &l.to_string());
        }
        if let Some(c) = &self.cursor {
            q.append_pair("cursor", c);
        }
        q.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_read_leniently() {
        let json = serde_json::json!({
            "id": "0193a1b2-0000-7000-8000-000000000001", "status": "SOMETHING_NEW",
            "expiresAt": "2026-11-21T15:09:00Z", "createdAt": "2026-11-21T15:04:00Z",
            "forceVerifyOwnership": false, "userId": "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44",
            "currency": "BTC", "network": "BTC",
            "counterparty": {"type": "CARRIER_PIGEON"}, "txHash": null, "aNewMember": 1
        });
        let s: Session = serde_json::from_value(json).unwrap();
        assert_eq!(s.status, SessionStatus::Unknown);
        assert_eq!(s.counterparty, Counterparty::Unknown);
        assert_eq!(s.order, None);
    }

    #[test]
    fn list_queries_name_every_parameter() {
        let q = ListSessions {
            subject: Some(Subject::Business(Uuid::nil())),
            status: Some(SessionStatus::Active),
            limit: Some(5),
            cursor: Some("a+b".into()),
        };
        assert_eq!(
            q.query(),
            "businessId=00000000-0000-0000-0000-000000000000&status=ACTIVE&limit=5&cursor=a%2Bb"
        );
        assert_eq!(ListSessions::default().query(), "");
    }
}

/// `POST /api/v1/webhook-endpoints`: where to send which events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateEndpoint {
    /// `https://…` (`http` only where the service allows private networks).
    pub url: String,
    /// The event types to receive (`session.created`, …); all when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
}

/// A webhook endpoint.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// `we_…`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives; empty: all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`): only in the answer that created it (registration or
    /// rotation).
    #[serde(default)]
    pub secret: Option<String>,
}

/// Never the secret, nor the URL beyond its origin.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = url::Url::parse(&self.url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| "<invalid>".into());
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("origin", &origin)
            .field("event_types", &self.event_types)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The endpoint (`we_…`).
    pub endpoint_id: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got an answer.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    /// When the last attempt was made.
    #[serde(default)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (pending only).
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A session's event with its deliveries, as the events endpoint lists it; also the body of
/// a webhook delivery (`type`, `data`; no `id` or deliveries there: the id is the
/// `webhook-id` header).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `evt_…` (in a delivery: the `webhook-id` header).
    #[serde(default)]
    pub id: Option<String>,
    /// `session.created`, `session.consumed`, `session.cancelled`, `session.expired`,
    /// `session.order_updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (`createdAt` in the events list, `timestamp` in a delivery).
    #[serde(alias = "timestamp")]
    pub created_at: DateTime<Utc>,
    /// The session right after the change.
    pub data: Session,
    /// One per endpoint it was addressed to (events list only).
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

/// `{"data": [...]}`.
#[cfg(feature = "http")]
#[derive(Deserialize)]
pub(crate) struct DataList<T> {
    pub(crate) data: Vec<T>,
}
