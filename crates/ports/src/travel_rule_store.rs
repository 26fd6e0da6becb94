//! A session's travel-rule record: declarations and ownership proofs, recorded with their
//! events, and the compliance records kept for them.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, DeclareRefused, EventId, ProofMethod, RecordedDeclaration, SessionId,
    TravelRuleClosed,
};
use uuid::Uuid;

use crate::session_store::StoredSession;
use crate::store_error::StoreError;

/// How many refused proofs a session's compliance record keeps; later ones are refused
/// alike, and not kept.
pub const MAX_REFUSED_PROOFS_KEPT: usize = 100;

/// A verified ownership proof as the compliance record keeps it: enough to verify it again
/// from the record alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRecord {
    /// How the counterparty signed.
    pub method: ProofMethod,
    /// The address (or the invoice's payee node id) that signed.
    pub address: String,
    /// The exact message signed (the session's challenge).
    pub message: String,
    /// The signature, as submitted.
    pub signature: String,
    /// When it was verified.
    pub verified_at: DateTime<Utc>,
}

/// Why a submitted proof was refused, as the compliance record keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProofRejection {
    /// Not decodable as any accepted form (`signature_malformed`).
    Malformed,
    /// Well-formed, but not by this counterparty over this challenge (`signature_mismatch`).
    Mismatch,
}

impl ProofRejection {
    /// The code recorded: `signature_malformed` or `signature_mismatch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProofRejection::Malformed => "signature_malformed",
            ProofRejection::Mismatch => "signature_mismatch",
        }
    }

    /// The rejection recorded as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Malformed, Self::Mismatch]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A refused proof: when, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectedProof {
    /// An id of its own (a UUID v7).
    pub id: Uuid,
    /// When it was submitted.
    pub at: DateTime<Utc>,
    /// Why it was refused.
    pub rejection: ProofRejection,
}

/// The ids of the events a change may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TravelRuleEvents {
    /// `session.declaration_recorded` or `session.ownership_verified`.
    pub recorded: EventId,
    /// `session.travel_rule_completed`, written when the record becomes complete.
    pub completed: EventId,
}

/// What [`TravelRuleStore::declare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclareOutcome {
    /// A new version was recorded with its events; the session as it is now.
    Recorded(Box<StoredSession>),
    /// The same declaration as the current one: nothing recorded.
    Unchanged(Box<StoredSession>),
    /// Refused: cancelled, outside the window, or the record is complete and the
    /// declaration differs. Nothing recorded.
    Refused(DeclareRefused, Box<StoredSession>),
    /// No such session for this application.
    NotFound,
}

/// What [`TravelRuleStore::record_proof`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProveOutcome {
    /// The proof was recorded with its events; the session as it is now.
    Verified(Box<StoredSession>),
    /// A proof was verified before: nothing changed.
    AlreadyVerified(Box<StoredSession>),
    /// Cancelled, or outside the window: nothing recorded.
    Closed(TravelRuleClosed, Box<StoredSession>),
    /// No such session for this application.
    NotFound,
}

/// One version of a declaration in the compliance record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationVersion {
    /// 1, 2, …
    pub version: u32,
    /// What was declared, when and where.
    pub declaration: RecordedDeclaration,
    /// The earlier session of the same reuse key it was first recorded on, if it was
    /// carried over.
    pub carried_from: Option<SessionId>,
}

/// A session's compliance record: every declaration, the verified proof, the refused ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComplianceRecord {
    /// Every version, oldest first.
    pub declarations: Vec<DeclarationVersion>,
    /// The verified proof, with the session it was first verified on if carried over.
    pub proof: Option<(ProofRecord, Option<SessionId>)>,
    /// Refused proofs, oldest first.
    pub rejected: Vec<RejectedProof>,
}

/// Declarations and ownership proofs, each recorded atomically with its events and its
/// compliance record.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait TravelRuleStore: Send + Sync {
    /// Records `declaration` (made at its `declared_at`) on the session, as
    /// [`domain::Session::declare`] decides with the session as stored: a new version is kept
    /// in the compliance record and `session.declaration_recorded` is written, then
    /// `session.travel_rule_completed` if the record became complete — in one transaction.
    ///
    /// # Concurrency
    ///
    /// Atomic with every other change of the session (a flag upgrade, a proof, a cancel).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn declare(
        &self,
        application: ApplicationId,
        session: SessionId,
        declaration: RecordedDeclaration,
        window: Duration,
        events: TravelRuleEvents,
    ) -> Result<DeclareOutcome, StoreError>;

    /// Records a verified proof (verified at its `verified_at`) on the session, as
    /// [`domain::Session::record_proof`] decides: the proof is kept in the compliance record
    /// and `session.ownership_verified` is written, then `session.travel_rule_completed` if
    /// the record became complete — in one transaction. A second proof changes nothing.
    ///
    /// # Concurrency
    ///
    /// Atomic with every other change of the session.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn record_proof(
        &self,
        application: ApplicationId,
        session: SessionId,
        proof: ProofRecord,
        window: Duration,
        events: TravelRuleEvents,
    ) -> Result<ProveOutcome, StoreError>;

    /// Keeps a refused proof in the session's compliance record (nothing else changes);
    /// nothing when there is no such session, or when it keeps
    /// [`MAX_REFUSED_PROOFS_KEPT`] already (a caller retrying without end cannot grow the
    /// five-year record without bound).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn reject_proof(
        &self,
        application: ApplicationId,
        session: SessionId,
        rejected: RejectedProof,
    ) -> Result<(), StoreError>;

    /// The session's compliance record; `None` when there is no such session.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn compliance_record(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Option<ComplianceRecord>, StoreError>;
}
