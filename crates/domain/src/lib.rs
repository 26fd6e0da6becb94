//! # Travel-rule widget sessions — the rules
//!
//! Pure, synchronous rules for the travel-rule widget session service, usable on their own by
//! any team: no I/O, no async runtime, no reads of the system clock (every time-dependent
//! rule takes `now` as an argument; `chrono` is built without its `clock` feature).
//!
//! - **Values that carry their rules**: [`Asset`] (currency on its ledger network),
//!   [`CounterpartyAddress`] (per-network address checks with checksums), [`TxHash`],
//!   [`PaymentHash`], [`Invoice`] (bolt11, signature-checked), [`Subject`]. Each parser
//!   returns a typed error with a stable [`ErrorCode`] and a sentence; [`RuleViolation::at`] names
//!   the field it came from.
//! - **What a session is scoped to** ([`SessionScope::new`]: the rules between the parts —
//!   the address's network is the asset's, Lightning only for BTC on BTC, no txHash with
//!   Lightning) and a request that passed every rule ([`ValidRequest`]).
//! - **The reuse key** ([`ReuseKey`]): a canonical, versioned encoding of a session's scope.
//! - **The session lifecycle** ([`Session`], [`SessionStatus`]) and **the reuse rule**
//!   ([`ReusePolicy::decide`]), which the service's stores run.
//! - **Travel-rule records**: the customer's [`Declaration`] about the counterparty (with
//!   [`PersonName`], [`Country`], [`Lei`]), the derived [`status`] and [`proof_required`], the
//!   [`Challenge`] a counterparty signs and the verification of wallet ownership proofs
//!   ([`ProofTarget`], [`verify`]) for every network.
//!
//! The HTTP request format (JSON member names, "exactly one of" rules over members, every
//! problem of a body at once) is the service's edge, not part of this crate.
//!
//! ```
//! use domain::*;
//!
//! let rules = Rules::default(); // the contract's ledger table, bitcoin mainnet
//! let asset = Asset::new("btc", "btc", rules.ledger()).unwrap();
//! let address = CounterpartyAddress::parse(
//!     asset.network(), "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", rules.bitcoin_network()).unwrap();
//! assert_eq!(address.as_str(), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
//! let subject = Subject::Business("7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44".parse().unwrap());
//! let scope = SessionScope::new(subject, asset, Counterparty::Address(address), None).unwrap();
//! assert_eq!(scope.counterparty().identifier(), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
//!
//! let bad = CounterpartyAddress::parse(
//!     Network::Eth, "0xFb6916095ca1df60bB79Ce92cE3Ea74c37c5d359", rules.bitcoin_network()).unwrap_err();
//! assert_eq!(bad.code(), ErrorCode::InvalidAddressChecksum);
//! assert_eq!(bad.at("counterpartyAddress").field, "counterpartyAddress");
//! ```

mod address;
mod error;
mod events;
mod ids;
mod ledger;
mod lightning;
mod orders;
mod ownership;
mod reuse_key;
mod scope;
mod session;
mod travel_rule;
mod txhash;
mod webhook;

pub use address::{AddressError, CounterpartyAddress};
pub use error::{ErrorCode, FieldError, RuleViolation, ValidationErrors};
pub use events::{EventId, EventType, MalformedId, WebhookEndpointId};
pub use ids::{ApplicationId, SessionId, Subject};
pub use ledger::{
    Asset, AssetError, BitcoinNetwork, Currency, LedgerError, LedgerTable, MalformedCurrency,
    Network, NetworkFamily, Rules, UnknownBitcoinNetwork, UnsupportedNetwork, lightning_serves,
    quote_for_message,
};
pub use lightning::{
    InvalidNodeId, InvalidPaymentHash, Invoice, InvoiceDetails, InvoiceError, NodeId, PaymentHash,
};
pub use orders::{OrderStatus, order_update_applies};
pub use ownership::{
    Challenge, ChallengeError, ChallengeNonce, MAX_MESSAGE_LEN, MAX_SIGNATURE_LEN, ProofError,
    ProofMethod, ProofTarget, ProofUnavailable, verify,
};
pub use reuse_key::{ReuseKey, ReuseKeyDigest};
pub use scope::{Counterparty, LightningPayment, ScopeError, SessionScope, ValidRequest};
pub use session::{
    CancelEffect, DeclareRefused, FlagChange, MintReason, NotActive, PolicyError, ReuseDecision,
    ReusePolicy, Session, SessionEnd, SessionParts, SessionStatus, TravelRuleClosed, upgrade_flag,
};
pub use travel_rule::{
    Country, Custody, Declaration, DeclarationChange, DeclarationError, DeclarationFinal,
    DeclarationSource, FrameAncestor, FrameAncestors, HostedStep, InvalidCountry, InvalidCustody,
    InvalidFrameAncestor, InvalidLei, InvalidName, InvalidOwner, InvalidProofPolicy,
    InvalidTravelRuleStatus, Lei, MAX_FRAME_ANCESTORS, Owner, PersonName, ProofChange, ProofPolicy,
    RecordedDeclaration, ThirdParty, TravelRuleRecord, TravelRuleStatus, Vasp, VerifiedProof,
    proof_required, status as travel_rule_status,
};
pub use txhash::{InvalidTxHash, TxHash};
pub use webhook::{
    InvalidPreviousSecretLifetime, InvalidRetrySchedule, PreviousSecretLifetime, RetrySchedule,
    WebhookUrl, WebhookUrlError, is_public_address,
};

/// Re-exported so users of the crate name the same `uuid` and `chrono` versions.
pub use chrono;
/// Re-exported so users of the crate name the same `uuid` version.
pub use uuid;
