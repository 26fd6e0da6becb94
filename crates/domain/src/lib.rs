//! # Travel-rule widget sessions — the rules
//!
//! Pure, synchronous rules for the travel-rule widget session service, usable on their own by
//! any team: no I/O, no async runtime, no reads of the system clock (every time-dependent
//! rule takes `now` as an argument; `chrono` is built without its `clock` feature).
//!
//! - **Request validation** ([`parse_json`], [`RawCreateSessionRequest::parse`]): every
//!   problem of a request at once, each a [`FieldError`] with a stable [`ErrorCode`].
//! - **Values that carry their rules**: [`Asset`] (currency on its ledger network),
//!   [`CounterpartyAddress`] (per-network address checks with checksums), [`TxHash`],
//!   [`PaymentHash`], [`Invoice`] (bolt11, signature-checked), [`Subject`].
//! - **The reuse key** ([`ReuseKey`]): a canonical, versioned encoding of a session's scope.
//! - **The session lifecycle** ([`Session`], [`SessionStatus`], [`ReusePolicy`]).
//!
//! ```
//! use domain::{parse_json, ErrorCode, Rules};
//!
//! let rules = Rules::default(); // SPEC ledger table, bitcoin mainnet
//! let ok = parse_json(br#"{
//!     "businessId": "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44",
//!     "currency": "btc", "network": "btc",
//!     "counterpartyAddress": "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"
//! }"#, &rules).unwrap();
//! assert_eq!(ok.scope().counterparty().identifier(), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
//!
//! let bad = parse_json(br#"{"userId": "nope", "currency": "USDC", "network": "POLYGON",
//!     "counterpartyAddress": "0xFb6916095ca1df60bB79Ce92cE3Ea74c37c5d359"}"#, &rules).unwrap_err();
//! assert_eq!(bad.codes(), vec![
//!     ErrorCode::InvalidUuid,
//!     ErrorCode::CurrencyNetworkMismatch,
//!     ErrorCode::InvalidAddressChecksum,
//! ]);
//! ```

mod address;
mod error;
mod ids;
mod ledger;
mod lightning;
mod request;
mod reuse_key;
mod session;
mod txhash;

pub use address::{AddressError, CounterpartyAddress};
pub use error::{ErrorCode, FieldError, Problem, ValidationErrors};
pub use ids::{ApplicationId, SessionId, Subject};
pub use ledger::{
    Asset, AssetError, BitcoinNetwork, Currency, LedgerError, LedgerTable, MalformedCurrency,
    Network, NetworkFamily, Rules, UnknownBitcoinNetwork, UnsupportedNetwork,
};
pub use lightning::{InvalidPaymentHash, Invoice, InvoiceDetails, InvoiceError, PaymentHash};
pub use request::{
    Counterparty, LightningPayment, RawCreateSessionRequest, ScopeError, SessionScope,
    ValidRequest, fields, parse_json,
};
pub use reuse_key::{ReuseKey, ReuseKeyDigest};
pub use session::{
    CancelOutcome, MintReason, NotActive, PolicyError, ReuseDecision, ReusePolicy, Session,
    SessionEnd, SessionParts, SessionStatus, upgrade_flag,
};
pub use txhash::{InvalidTxHash, TxHash};

/// Re-exported so users of the crate name the same `uuid` and `chrono` versions.
pub use chrono;
/// Re-exported so users of the crate name the same `uuid` version.
pub use uuid;
