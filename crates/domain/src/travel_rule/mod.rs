//! The travel-rule declaration about a counterparty, and the record's derived status.
//!
//! A customer declares who holds the counterparty wallet ([`Custody`]) and whose it is
//! ([`Owner`]); for a VASP its name, for a third party who they are ([`Declaration::new`]
//! checks the rules between the parts and reports every problem at once). Whether an
//! ownership proof is required ([`proof_required`]) and where the record stands
//! ([`status`]) are derived from the stored facts, never stored.

mod hosted;
mod record;
mod values;

use std::fmt;

use crate::error::{ErrorCode, RuleViolation};

pub use hosted::{
    FrameAncestor, FrameAncestors, HostedStep, InvalidFrameAncestor, MAX_FRAME_ANCESTORS,
};
pub use record::{
    DeclarationChange, DeclarationFinal, DeclarationSource, ProofChange, RecordedDeclaration,
    TravelRuleRecord, VerifiedProof,
};
pub use values::{Country, InvalidCountry, InvalidLei, InvalidName, Lei, PersonName};

/// Who holds the counterparty wallet's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Custody {
    /// A wallet whose keys the owner holds.
    SelfHosted,
    /// An account at a virtual-asset service provider (an exchange, a custodian).
    Vasp,
}

/// Whose wallet or account the counterparty is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The session's customer.
    Customer,
    /// Someone else.
    ThirdParty,
}

/// A custody value that is not `SELF_HOSTED` or `VASP`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("custody must be SELF_HOSTED or VASP")]
pub struct InvalidCustody;

impl RuleViolation for InvalidCustody {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidCustody
    }
}

/// An owner value that is not `CUSTOMER` or `THIRD_PARTY`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("owner must be CUSTOMER or THIRD_PARTY")]
pub struct InvalidOwner;

impl RuleViolation for InvalidOwner {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidOwner
    }
}

macro_rules! wire_enum {
    ($ty:ident, $err:ident, $($variant:ident => $text:literal),+) => {
        impl $ty {
            /// The stable upper-case name used on the wire and in storage.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)+
                }
            }

            /// Parses the exact upper-case name.
            pub fn parse(s: &str) -> Result<Self, $err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err($err),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(Custody, InvalidCustody, SelfHosted => "SELF_HOSTED", Vasp => "VASP");
wire_enum!(Owner, InvalidOwner, Customer => "CUSTOMER", ThirdParty => "THIRD_PARTY");

/// The virtual-asset service provider that holds the counterparty account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vasp {
    /// Its name.
    pub name: PersonName,
    /// Its Legal Entity Identifier, if known.
    pub lei: Option<Lei>,
    /// Its country, if known.
    pub country: Option<Country>,
}

/// The person or entity a third-party wallet belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThirdParty {
    /// A natural person.
    NaturalPerson {
        /// First name(s).
        first_name: PersonName,
        /// Last name(s).
        last_name: PersonName,
        /// Country of residence, if known.
        country_of_residence: Option<Country>,
    },
    /// A legal person (a company, a foundation…).
    LegalPerson {
        /// Its registered name.
        name: PersonName,
        /// Its Legal Entity Identifier, if known.
        lei: Option<Lei>,
        /// Country of registration, if known.
        country_of_registration: Option<Country>,
    },
}

/// A customer's declaration about the counterparty. Two declarations are the same when they
/// are equal after normalisation (names trimmed, absent parts `None`), which is what `==`
/// compares.
///
/// ```
/// use domain::*;
/// let d = Declaration::new(Custody::SelfHosted, Owner::Customer, None, None).unwrap();
/// assert_eq!(d.custody(), Custody::SelfHosted);
///
/// let errors = Declaration::new(Custody::Vasp, Owner::ThirdParty, None, None).unwrap_err();
/// assert_eq!(
///     errors.iter().map(|e| e.code()).collect::<Vec<_>>(),
///     [ErrorCode::VaspRequired, ErrorCode::ThirdPartyRequired]
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Declaration {
    custody: Custody,
    owner: Owner,
    vasp: Option<Vasp>,
    third_party: Option<ThirdParty>,
}

/// A rule between the parts of a declaration that is broken.
///
/// The HTTP edge names the member each is about (`vasp`, `thirdParty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    /// Custody is `VASP` but no VASP is named.
    #[error("name the VASP that holds the account when custody is VASP")]
    VaspRequired,
    /// A VASP is named but custody is `SELF_HOSTED`.
    #[error("a self-hosted wallet has no VASP; leave vasp out")]
    VaspNotAllowed,
    /// Owner is `THIRD_PARTY` but no third party is named.
    #[error("name the person or entity the wallet belongs to when the owner is THIRD_PARTY")]
    ThirdPartyRequired,
    /// A third party is named but the owner is `CUSTOMER`.
    #[error("the customer's own wallet has no third party; leave thirdParty out")]
    ThirdPartyNotAllowed,
}

impl RuleViolation for DeclarationError {
    fn code(&self) -> ErrorCode {
        match self {
            DeclarationError::VaspRequired => ErrorCode::VaspRequired,
            DeclarationError::VaspNotAllowed => ErrorCode::VaspNotAllowed,
            DeclarationError::ThirdPartyRequired => ErrorCode::ThirdPartyRequired,
            DeclarationError::ThirdPartyNotAllowed => ErrorCode::ThirdPartyNotAllowed,
        }
    }
}

impl Declaration {
    /// Assembles a declaration from already-valid parts: a VASP is named exactly when
    /// custody is `VASP`, a third party exactly when the owner is `THIRD_PARTY`.
    ///
    /// # Errors
    /// Every broken rule, in the order custody then owner (never empty).
    pub fn new(
        custody: Custody,
        owner: Owner,
        vasp: Option<Vasp>,
        third_party: Option<ThirdParty>,
    ) -> Result<Self, Vec<DeclarationError>> {
        let mut errors = Vec::new();
        match (custody, &vasp) {
            (Custody::Vasp, None) => errors.push(DeclarationError::VaspRequired),
            (Custody::SelfHosted, Some(_)) => errors.push(DeclarationError::VaspNotAllowed),
            _ => {}
        }
        match (owner, &third_party) {
            (Owner::ThirdParty, None) => errors.push(DeclarationError::ThirdPartyRequired),
            (Owner::Customer, Some(_)) => errors.push(DeclarationError::ThirdPartyNotAllowed),
            _ => {}
        }
        if errors.is_empty() {
            Ok(Self {
                custody,
                owner,
                vasp,
                third_party,
            })
        } else {
            Err(errors)
        }
    }

    /// Who holds the keys.
    pub fn custody(&self) -> Custody {
        self.custody
    }

    /// Whose wallet it is.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// The VASP, when custody is `VASP`.
    pub fn vasp(&self) -> Option<&Vasp> {
        self.vasp.as_ref()
    }

    /// The third party, when the owner is `THIRD_PARTY`.
    pub fn third_party(&self) -> Option<&ThirdParty> {
        self.third_party.as_ref()
    }

    /// Whether this is the customer's own self-hosted wallet: the one case an ownership
    /// proof can be asked for.
    pub fn is_own_self_hosted(&self) -> bool {
        self.custody == Custody::SelfHosted && self.owner == Owner::Customer
    }
}

/// When an application asks for ownership proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProofPolicy {
    /// For every customer-owned self-hosted wallet.
    Always,
    /// Only when the session was created (or reused) with `forceVerifyOwnership`: the
    /// partner, which knows the amounts, decides when a threshold is crossed.
    #[default]
    WhenForced,
}

/// A proof policy that is not `ALWAYS` or `WHEN_FORCED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the ownership proof policy must be ALWAYS or WHEN_FORCED")]
pub struct InvalidProofPolicy;

wire_enum!(ProofPolicy, InvalidProofPolicy, Always => "ALWAYS", WhenForced => "WHEN_FORCED");

/// Where a session's travel-rule record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TravelRuleStatus {
    /// Nothing declared yet.
    AwaitingDeclaration,
    /// The customer's own self-hosted wallet, a proof required and none verified.
    AwaitingProof,
    /// Everything the partner needs is recorded.
    Complete,
}

/// A travel-rule status name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the travel-rule status must be AWAITING_DECLARATION, AWAITING_PROOF or COMPLETE")]
pub struct InvalidTravelRuleStatus;

wire_enum!(
    TravelRuleStatus,
    InvalidTravelRuleStatus,
    AwaitingDeclaration => "AWAITING_DECLARATION",
    AwaitingProof => "AWAITING_PROOF",
    Complete => "COMPLETE"
);

/// Whether an ownership proof is required: `None` before a declaration; then `true` exactly
/// for the customer's own self-hosted wallet when `force_verify_ownership` is set or the
/// policy is [`ProofPolicy::Always`].
///
/// ```
/// use domain::*;
/// let own = Declaration::new(Custody::SelfHosted, Owner::Customer, None, None).unwrap();
/// assert_eq!(proof_required(None, true, ProofPolicy::Always), None);
/// assert_eq!(proof_required(Some(&own), false, ProofPolicy::WhenForced), Some(false));
/// assert_eq!(proof_required(Some(&own), true, ProofPolicy::WhenForced), Some(true));
/// assert_eq!(proof_required(Some(&own), false, ProofPolicy::Always), Some(true));
/// ```
pub fn proof_required(
    declaration: Option<&Declaration>,
    force_verify_ownership: bool,
    policy: ProofPolicy,
) -> Option<bool> {
    declaration.map(|d| {
        d.is_own_self_hosted() && (force_verify_ownership || policy == ProofPolicy::Always)
    })
}

/// The record's status, derived from the stored facts: no declaration →
/// `AWAITING_DECLARATION`; a proof required and none verified → `AWAITING_PROOF`; otherwise
/// `COMPLETE`.
///
/// ```
/// use domain::*;
/// let own = Declaration::new(Custody::SelfHosted, Owner::Customer, None, None).unwrap();
/// assert_eq!(travel_rule_status(None, true, false, ProofPolicy::WhenForced), TravelRuleStatus::AwaitingDeclaration);
/// assert_eq!(travel_rule_status(Some(&own), false, true, ProofPolicy::WhenForced), TravelRuleStatus::AwaitingProof);
/// assert_eq!(travel_rule_status(Some(&own), true, true, ProofPolicy::WhenForced), TravelRuleStatus::Complete);
/// ```
pub fn status(
    declaration: Option<&Declaration>,
    proof_verified: bool,
    force_verify_ownership: bool,
    policy: ProofPolicy,
) -> TravelRuleStatus {
    match proof_required(declaration, force_verify_ownership, policy) {
        None => TravelRuleStatus::AwaitingDeclaration,
        Some(true) if !proof_verified => TravelRuleStatus::AwaitingProof,
        Some(_) => TravelRuleStatus::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> PersonName {
        PersonName::parse(s).unwrap()
    }

    fn vasp() -> Vasp {
        Vasp {
            name: name("Example Exchange"),
            lei: Some(Lei::parse("5493001KJTIIGC8Y1R12").unwrap()),
            country: Some(Country::parse("DE").unwrap()),
        }
    }

    fn person() -> ThirdParty {
        ThirdParty::NaturalPerson {
            first_name: name("Ada"),
            last_name: name("Lovelace"),
            country_of_residence: None,
        }
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let e = Declaration::new(
            Custody::SelfHosted,
            Owner::Customer,
            Some(vasp()),
            Some(person()),
        )
        .unwrap_err();
        assert_eq!(
            e,
            [
                DeclarationError::VaspNotAllowed,
                DeclarationError::ThirdPartyNotAllowed
            ]
        );
        let e = Declaration::new(Custody::Vasp, Owner::Customer, None, None).unwrap_err();
        assert_eq!(e, [DeclarationError::VaspRequired]);
        assert_eq!(e[0].code().as_str(), "vasp_required");
        assert!(e[0].to_string().contains("VASP"));
        let ok = Declaration::new(
            Custody::Vasp,
            Owner::ThirdParty,
            Some(vasp()),
            Some(person()),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn declarations_are_equal_after_normalisation() {
        let a = ThirdParty::LegalPerson {
            name: name("  Acme Ltd "),
            lei: None,
            country_of_registration: Some(Country::parse("GB").unwrap()),
        };
        let b = ThirdParty::LegalPerson {
            name: name("Acme Ltd"),
            lei: None,
            country_of_registration: Some(Country::parse("GB").unwrap()),
        };
        let da = Declaration::new(Custody::SelfHosted, Owner::ThirdParty, None, Some(a)).unwrap();
        let db = Declaration::new(Custody::SelfHosted, Owner::ThirdParty, None, Some(b)).unwrap();
        assert_eq!(da, db);
        let dc =
            Declaration::new(Custody::SelfHosted, Owner::ThirdParty, None, Some(person())).unwrap();
        assert_ne!(da, dc);
    }

    #[test]
    fn wire_names_round_trip() {
        for c in [Custody::SelfHosted, Custody::Vasp] {
            assert_eq!(Custody::parse(c.as_str()), Ok(c));
        }
        for o in [Owner::Customer, Owner::ThirdParty] {
            assert_eq!(Owner::parse(o.as_str()), Ok(o));
        }
        for p in [ProofPolicy::Always, ProofPolicy::WhenForced] {
            assert_eq!(ProofPolicy::parse(p.as_str()), Ok(p));
        }
        for s in [
            TravelRuleStatus::AwaitingDeclaration,
            TravelRuleStatus::AwaitingProof,
            TravelRuleStatus::Complete,
        ] {
            assert_eq!(TravelRuleStatus::parse(s.as_str()), Ok(s));
        }
        assert_eq!(ProofPolicy::default(), ProofPolicy::WhenForced);
        assert_eq!(Custody::parse("self_hosted"), Err(InvalidCustody));
        assert_eq!(InvalidOwner.code(), ErrorCode::InvalidOwner);
    }

    fn any_declaration() -> impl Strategy<Value = Option<Declaration>> {
        prop_oneof![
            Just(None),
            Just(Some(
                Declaration::new(Custody::SelfHosted, Owner::Customer, None, None).unwrap()
            )),
            Just(Some(
                Declaration::new(Custody::SelfHosted, Owner::ThirdParty, None, Some(person()))
                    .unwrap()
            )),
            Just(Some(
                Declaration::new(Custody::Vasp, Owner::Customer, Some(vasp()), None).unwrap()
            )),
            Just(Some(
                Declaration::new(
                    Custody::Vasp,
                    Owner::ThirdParty,
                    Some(vasp()),
                    Some(person())
                )
                .unwrap()
            )),
        ]
    }

    fn any_policy() -> impl Strategy<Value = ProofPolicy> {
        prop_oneof![Just(ProofPolicy::Always), Just(ProofPolicy::WhenForced)]
    }

    proptest! {
        #[test]
        fn complete_iff_declared_and_no_proof_outstanding(
            d in any_declaration(), verified: bool, force: bool, policy in any_policy()
        ) {
            let s = status(d.as_ref(), verified, force, policy);
            let own = d.as_ref().is_some_and(Declaration::is_own_self_hosted);
            let required = own && (force || policy == ProofPolicy::Always);
            prop_assert_eq!(s == TravelRuleStatus::Complete, d.is_some() && (!required || verified));
            prop_assert_eq!(s == TravelRuleStatus::AwaitingDeclaration, d.is_none());
            prop_assert_eq!(s == TravelRuleStatus::AwaitingProof, required && !verified);
            prop_assert_eq!(proof_required(d.as_ref(), force, policy).is_some(), d.is_some());
        }

        #[test]
        fn raising_the_flag_only_reopens_a_complete_record(
            d in any_declaration(), verified: bool, policy in any_policy()
        ) {
            let before = status(d.as_ref(), verified, false, policy);
            let after = status(d.as_ref(), verified, true, policy);
            if before != after {
                prop_assert_eq!((before, after), (TravelRuleStatus::Complete, TravelRuleStatus::AwaitingProof));
            }
        }

        #[test]
        fn a_verified_proof_never_leaves_the_record_awaiting_one(
            d in any_declaration(), force: bool, policy in any_policy()
        ) {
            prop_assert_ne!(status(d.as_ref(), true, force, policy), TravelRuleStatus::AwaitingProof);
            // And a proof made before the declaration completes the record as soon as it comes.
            if d.is_some() {
                prop_assert_eq!(status(d.as_ref(), true, force, policy), TravelRuleStatus::Complete);
            }
        }

        #[test]
        fn always_asks_at_least_as_often_as_when_forced(d in any_declaration(), force: bool) {
            let always = proof_required(d.as_ref(), force, ProofPolicy::Always);
            let forced = proof_required(d.as_ref(), force, ProofPolicy::WhenForced);
            prop_assert!(forced.unwrap_or(false) <= always.unwrap_or(false));
        }
    }
}
