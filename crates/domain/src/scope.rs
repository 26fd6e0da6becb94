//! What a session is scoped to, and a request that passed every rule.
//!
//! The wire format (JSON member names, "exactly one of" rules over members, every problem
//! of a body at once) belongs to the HTTP edge; here are the parts it assembles from the
//! value parsers, and the rules between them ([`SessionScope::new`]).

use crate::address::CounterpartyAddress;
use crate::ids::Subject;
use crate::ledger::{Asset, Network};
use crate::lightning::{InvoiceDetails, PaymentHash};
use crate::reuse_key::ReuseKey;
use crate::txhash::TxHash;

/// Who the counterparty of a session is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Counterparty {
    /// An on-chain address.
    Address(CounterpartyAddress),
    /// A Lightning payment.
    Lightning(LightningPayment),
}

/// A Lightning payment, identified by its hash. When the request carried the invoice, what
/// the invoice said (timestamp, expiry, amount) is kept alongside; it is never part of the
/// identity, so an invoice and its bare payment hash are the same counterparty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LightningPayment {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// What the invoice said, if one was given.
    pub invoice: Option<InvoiceDetails>,
}

impl Counterparty {
    /// `"ADDRESS"` or `"LIGHTNING"`, as shown in responses.
    pub const fn kind(&self) -> &'static str {
        match self {
            Counterparty::Address(_) => "ADDRESS",
            Counterparty::Lightning(_) => "LIGHTNING",
        }
    }

    /// The normalised identifier: the address in normal form, or the payment hash in hex.
    pub fn identifier(&self) -> String {
        match self {
            Counterparty::Address(a) => a.as_str().to_string(),
            Counterparty::Lightning(l) => l.payment_hash.to_string(),
        }
    }

    /// Whether two counterparties are the same party (invoice details ignored).
    pub fn same_party(&self, other: &Counterparty) -> bool {
        match (self, other) {
            (Counterparty::Address(a), Counterparty::Address(b)) => a == b,
            (Counterparty::Lightning(a), Counterparty::Lightning(b)) => {
                a.payment_hash == b.payment_hash
            }
            _ => false,
        }
    }
}

/// What a session is scoped to: subject, asset, counterparty and optional txHash, checked to
/// be consistent with each other. This is what the reuse key is made of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionScope {
    subject: Subject,
    asset: Asset,
    counterparty: Counterparty,
    tx_hash: Option<TxHash>,
}

/// Parts that do not fit together in a [`SessionScope`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The address was validated for another network than the asset's.
    #[error("the address is for {address} but the asset is on {asset}")]
    AddressNetwork {
        /// The address's network.
        address: Network,
        /// The asset's network.
        asset: Network,
    },
    /// A Lightning counterparty for an asset other than BTC on BTC.
    #[error("a Lightning counterparty needs BTC on the BTC network")]
    LightningRequiresBtc,
    /// A txHash together with a Lightning counterparty.
    #[error("txHash cannot be combined with a Lightning counterparty")]
    TxHashWithLightning,
    /// The txHash was validated for another network than the asset's.
    #[error("the txHash is for {tx} but the asset is on {asset}")]
    TxHashNetwork {
        /// The hash's network.
        tx: Network,
        /// The asset's network.
        asset: Network,
    },
}

impl SessionScope {
    /// Assembles a scope from already-valid parts, checking that they fit together.
    pub fn new(
        subject: Subject,
        asset: Asset,
        counterparty: Counterparty,
        tx_hash: Option<TxHash>,
    ) -> Result<Self, ScopeError> {
        match &counterparty {
            Counterparty::Address(a) if a.network() != asset.network() => {
                return Err(ScopeError::AddressNetwork {
                    address: a.network(),
                    asset: asset.network(),
                });
            }
            Counterparty::Lightning(_) if !asset.is_btc_on_btc() => {
                return Err(ScopeError::LightningRequiresBtc);
            }
            Counterparty::Lightning(_) if tx_hash.is_some() => {
                return Err(ScopeError::TxHashWithLightning);
            }
            _ => {}
        }
        if let Some(tx) = &tx_hash
            && tx.network() != asset.network()
        {
            return Err(ScopeError::TxHashNetwork {
                tx: tx.network(),
                asset: asset.network(),
            });
        }
        Ok(Self {
            subject,
            asset,
            counterparty,
            tx_hash,
        })
    }

    /// The customer.
    pub fn subject(&self) -> Subject {
        self.subject
    }

    /// Currency and network.
    pub fn asset(&self) -> &Asset {
        &self.asset
    }

    /// The counterparty.
    pub fn counterparty(&self) -> &Counterparty {
        &self.counterparty
    }

    /// The held deposit's transaction hash, if the session resolves one.
    pub fn tx_hash(&self) -> Option<&TxHash> {
        self.tx_hash.as_ref()
    }

    /// The reuse key of this scope (see [`ReuseKey`]).
    pub fn reuse_key(&self) -> ReuseKey {
        ReuseKey::of(self)
    }
}

/// A request that passed every rule: what the use case works with.
///
/// ```
/// use domain::*;
/// let rules = Rules::default();
/// let asset = Asset::new("usdc", "eth", rules.ledger()).unwrap();
/// let address = CounterpartyAddress::parse(
///     asset.network(), "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", rules.bitcoin_network()).unwrap();
/// let subject = Subject::User("7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44".parse().unwrap());
/// let scope = SessionScope::new(subject, asset, Counterparty::Address(address), None).unwrap();
/// let valid = ValidRequest::new(scope, false);
/// assert_eq!(valid.scope().asset().to_string(), "USDC/ETH");
/// assert!(!valid.force_verify_ownership());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRequest {
    scope: SessionScope,
    force_verify_ownership: bool,
}

impl ValidRequest {
    /// A valid request from its parts.
    pub fn new(scope: SessionScope, force_verify_ownership: bool) -> Self {
        Self {
            scope,
            force_verify_ownership,
        }
    }

    /// What the session is scoped to.
    pub fn scope(&self) -> &SessionScope {
        &self.scope
    }

    /// Whether the caller asked for ownership verification.
    pub fn force_verify_ownership(&self) -> bool {
        self.force_verify_ownership
    }

    /// The reuse key of the request's scope.
    pub fn reuse_key(&self) -> ReuseKey {
        self.scope.reuse_key()
    }

    /// Splits into scope and flag.
    pub fn into_parts(self) -> (SessionScope, bool) {
        (self.scope, self.force_verify_ownership)
    }
}
