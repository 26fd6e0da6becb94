//! A session's travel-rule record: the facts stored (the application's proof policy when the
//! session was created, the customer's current declaration, the verified ownership proof),
//! the status derived from them, and what each change does to it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Declaration, ProofPolicy, TravelRuleStatus, proof_required, status};
use crate::ownership::ProofMethod;

/// Where a declaration was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclarationSource {
    /// Through the API, by the partner.
    Api,
    /// By the customer, on the hosted travel-rule step of the launch link.
    Hosted,
}

impl DeclarationSource {
    /// `API` or `HOSTED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeclarationSource::Api => "API",
            DeclarationSource::Hosted => "HOSTED",
        }
    }

    /// The source named `s` (exactly).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Api, Self::Hosted]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A declaration as recorded: what was declared, when and where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordedDeclaration {
    /// The declaration.
    pub declaration: Declaration,
    /// When it was recorded.
    pub declared_at: DateTime<Utc>,
    /// Where it was made.
    pub source: DeclarationSource,
}

/// A verified ownership proof, as the session shows it (the compliance record keeps the
/// signed message and the signature too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifiedProof {
    /// How the counterparty signed.
    pub method: ProofMethod,
    /// When the proof was verified.
    pub verified_at: DateTime<Utc>,
}

/// A session's travel-rule record. The status is never stored: [`TravelRuleRecord::status`]
/// derives it from the facts and the session's `forceVerifyOwnership`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TravelRuleRecord {
    /// The application's proof policy when the session was created.
    pub policy: ProofPolicy,
    /// The current declaration (earlier versions are in the compliance records).
    pub declaration: Option<RecordedDeclaration>,
    /// The verified proof, if any.
    pub proof: Option<VerifiedProof>,
}

/// What recording a declaration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclarationChange {
    /// The same declaration as the current one: nothing recorded, no event.
    Unchanged,
    /// A new version was recorded (`session.declaration_recorded`); `completed` when the
    /// status became `COMPLETE` with it (`session.travel_rule_completed`).
    Recorded {
        /// Whether the record became `COMPLETE`.
        completed: bool,
    },
}

/// The record is `COMPLETE` and the declaration differs from the one recorded: a complete
/// record's declaration is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the travel-rule record is complete; its declaration cannot be changed")]
pub struct DeclarationFinal;

/// What recording a verified proof did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofChange {
    /// A proof was verified before: nothing changes.
    AlreadyVerified,
    /// The proof was recorded (`session.ownership_verified`); `completed` when the status
    /// became `COMPLETE` with it (`session.travel_rule_completed`).
    Verified {
        /// Whether the record became `COMPLETE`.
        completed: bool,
    },
}

impl TravelRuleRecord {
    /// An empty record under `policy`.
    pub fn new(policy: ProofPolicy) -> Self {
        Self {
            policy,
            declaration: None,
            proof: None,
        }
    }

    /// The status, for a session whose `forceVerifyOwnership` is `force`.
    pub fn status(&self, force: bool) -> TravelRuleStatus {
        status(
            self.declaration.as_ref().map(|d| &d.declaration),
            self.proof.is_some(),
            force,
            self.policy,
        )
    }

    /// Whether a proof is required: `None` before a declaration.
    pub fn proof_required(&self, force: bool) -> Option<bool> {
        proof_required(
            self.declaration.as_ref().map(|d| &d.declaration),
            force,
            self.policy,
        )
    }

    /// Records `new` as the current declaration. While the record is not `COMPLETE` a
    /// different declaration replaces the current one; once it is, the same declaration
    /// changes nothing and a different one is refused.
    ///
    /// # Errors
    ///
    /// [`DeclarationFinal`] when the record is `COMPLETE` and `new` differs.
    pub fn declare(
        &mut self,
        new: RecordedDeclaration,
        force: bool,
    ) -> Result<DeclarationChange, DeclarationFinal> {
        let before = self.status(force);
        let same = self
            .declaration
            .as_ref()
            .is_some_and(|d| d.declaration == new.declaration);
        if same {
            return Ok(DeclarationChange::Unchanged);
        }
        if before == TravelRuleStatus::Complete {
            return Err(DeclarationFinal);
        }
        self.declaration = Some(new);
        Ok(DeclarationChange::Recorded {
            completed: self.status(force) == TravelRuleStatus::Complete,
        })
    }

    /// Records a verified proof; a second one changes nothing.
    pub fn verify(&mut self, proof: VerifiedProof, force: bool) -> ProofChange {
        if self.proof.is_some() {
            return ProofChange::AlreadyVerified;
        }
        let before = self.status(force);
        self.proof = Some(proof);
        let after = self.status(force);
        ProofChange::Verified {
            completed: before != TravelRuleStatus::Complete && after == TravelRuleStatus::Complete,
        }
    }

    /// Whether raising `forceVerifyOwnership` from `before` to `after` moves the record from
    /// `COMPLETE` back to `AWAITING_PROOF` (`session.travel_rule_reopened`).
    pub fn reopened_by(&self, before: bool, after: bool) -> bool {
        self.status(before) == TravelRuleStatus::Complete
            && self.status(after) == TravelRuleStatus::AwaitingProof
    }

    /// The record a new session of the same reuse key starts with, under `policy`: this
    /// record's declaration and proof when they were made within `window` of `now` (their
    /// times and sources kept), so a customer whose link expired mid-way does not start
    /// over. The proof only when `same_signer`: it was made by the address (or invoice payee)
    /// that must sign for the new session too — a Lightning key is the payment hash, and
    /// another invoice with the same hash may name another payee. The caller passes the
    /// record of the key's previous session only when that session was not cancelled.
    pub fn carried_over(
        &self,
        policy: ProofPolicy,
        now: DateTime<Utc>,
        window: Duration,
        same_signer: bool,
    ) -> Self {
        let window = TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX);
        let recent = |at: DateTime<Utc>| at.checked_add_signed(window).is_some_and(|end| end > now);
        Self {
            policy,
            declaration: self.declaration.clone().filter(|d| recent(d.declared_at)),
            proof: self.proof.filter(|p| same_signer && recent(p.verified_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::travel_rule::{Custody, Owner, PersonName, Vasp};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn own(at_s: i64) -> RecordedDeclaration {
        RecordedDeclaration {
            declaration: Declaration::new(Custody::SelfHosted, Owner::Customer, None, None)
                .unwrap(),
            declared_at: at(at_s),
            source: DeclarationSource::Api,
        }
    }

    fn exchange(at_s: i64) -> RecordedDeclaration {
        let vasp = Vasp {
            name: PersonName::parse("Example Exchange").unwrap(),
            lei: None,
            country: None,
        };
        RecordedDeclaration {
            declaration: Declaration::new(Custody::Vasp, Owner::Customer, Some(vasp), None)
                .unwrap(),
            declared_at: at(at_s),
            source: DeclarationSource::Hosted,
        }
    }

    fn proof(at_s: i64) -> VerifiedProof {
        VerifiedProof {
            method: ProofMethod::Eip191,
            verified_at: at(at_s),
        }
    }

    #[test]
    fn a_declaration_is_replaceable_until_the_record_is_complete() {
        let mut r = TravelRuleRecord::new(ProofPolicy::WhenForced);
        // Forced: the customer's own wallet needs a proof.
        assert_eq!(
            r.declare(own(1), true),
            Ok(DeclarationChange::Recorded { completed: false })
        );
        assert_eq!(r.status(true), TravelRuleStatus::AwaitingProof);
        assert_eq!(r.declare(own(2), true), Ok(DeclarationChange::Unchanged));
        assert_eq!(r.declaration.as_ref().unwrap().declared_at, at(1));
        // Replaced by an exchange: complete at once.
        assert_eq!(
            r.declare(exchange(3), true),
            Ok(DeclarationChange::Recorded { completed: true })
        );
        assert_eq!(
            r.declare(exchange(4), true),
            Ok(DeclarationChange::Unchanged)
        );
        assert_eq!(r.declare(own(5), true), Err(DeclarationFinal));
    }

    #[test]
    fn a_proof_completes_an_own_wallet_once() {
        let mut r = TravelRuleRecord::new(ProofPolicy::Always);
        assert_eq!(
            r.verify(proof(1), false),
            ProofChange::Verified { completed: false },
            "a proof before the declaration is kept"
        );
        assert_eq!(
            r.declare(own(2), false),
            Ok(DeclarationChange::Recorded { completed: true })
        );
        assert_eq!(r.verify(proof(3), false), ProofChange::AlreadyVerified);
        assert_eq!(r.proof, Some(proof(1)));
    }

    #[test]
    fn a_raised_flag_reopens_only_a_complete_unproven_own_wallet() {
        let mut r = TravelRuleRecord::new(ProofPolicy::WhenForced);
        assert!(!r.reopened_by(false, true), "nothing declared");
        r.declare(own(1), false).unwrap();
        assert!(r.reopened_by(false, true));
        assert!(!r.reopened_by(true, true));
        r.verify(proof(2), true);
        assert!(!r.reopened_by(false, true), "proven");
        let mut vasp = TravelRuleRecord::new(ProofPolicy::WhenForced);
        vasp.declare(exchange(1), false).unwrap();
        assert!(!vasp.reopened_by(false, true));
    }

    #[test]
    fn a_new_session_carries_what_was_recorded_within_the_window() {
        let mut r = TravelRuleRecord::new(ProofPolicy::WhenForced);
        r.declare(own(0), true).unwrap();
        r.verify(proof(100), true);
        let day = Duration::from_secs(86_400);
        let carried = r.carried_over(ProofPolicy::Always, at(86_399), day, true);
        assert_eq!(
            carried.policy,
            ProofPolicy::Always,
            "the new session's own policy"
        );
        assert_eq!(carried.declaration, r.declaration);
        assert_eq!(carried.proof, r.proof);
        let later = r.carried_over(ProofPolicy::WhenForced, at(86_450), day, true);
        assert_eq!(later.declaration, None);
        assert_eq!(later.proof, r.proof);
        let other_payee = r.carried_over(ProofPolicy::WhenForced, at(86_399), day, false);
        assert_eq!(other_payee.declaration, r.declaration);
        assert_eq!(other_payee.proof, None, "a proof is by one signer");
        let none = r.carried_over(ProofPolicy::WhenForced, at(90_000), day, true);
        assert_eq!(none, TravelRuleRecord::new(ProofPolicy::WhenForced));
    }
}
