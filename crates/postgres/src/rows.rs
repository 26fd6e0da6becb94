//! Rows ↔ domain values.

use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, Asset, Counterparty, CounterpartyAddress, Currency, InvoiceDetails,
    LightningPayment, Network, OrderStatus, PaymentHash, SessionEnd, SessionId, SessionParts,
    SessionScope, Subject, TxHash,
};
use ports::{SessionOrder, StoreError, StoredSession, WidgetUrl};
use uuid::Uuid;

/// A session as the adapter reads it: the SQL type `session_row_v1`, built from a
/// `sessions` row by the SQL function of the same name (`select session_row_v1(s) as
/// "session!: SessionRow" from sessions s …`), field for field in that type's order. Also
/// read from an event's JSON copy of the `sessions` row (columns it does not know are
/// ignored, newer ones may be missing).
///
/// The one list of a session's columns: the type and function are defined once (a
/// migration), and no statement spells the columns out.
#[derive(Debug, Clone, sqlx::Type, serde::Deserialize)]
#[sqlx(type_name = "session_row_v1")]
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
        Ok(StoredSession {
            session: domain::Session::restore(SessionParts {
                id: SessionId::from_uuid(id),
                application_id: ApplicationId::from_uuid(self.application_id),
                scope,
                force_verify_ownership: self.force_verify_ownership,
                created_at: self.created_at,
                expires_at: self.expires_at,
                end,
            }),
            widget_url: WidgetUrl::new(self.widget_url),
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
            tx_hash: scope.tx_hash().map(|t| t.as_str().to_string()),
        }
    }
}
