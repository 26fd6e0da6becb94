//! The travel-rule record of a session: the customer's declaration about the counterparty,
//! the ownership challenge, and the proof that the customer controls a self-hosted wallet,
//! verified in-process (contract §10).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, Declaration, DeclarationSource, DeclareRefused, Network, ProofError,
    ProofMethod, ProofTarget, RecordedDeclaration, SessionId, TravelRuleClosed,
};
use ports::{
    Clock, ComplianceRecord, DeclareOutcome, ProofRecord, ProofRejection, ProveOutcome, Randomness,
    RejectedProof, SessionStore, SessionView, StoreError, StoredSession, TravelRuleEvents,
    TravelRuleStore,
};
use tracing::{info, instrument};
use uuid::Uuid;

/// The travel-rule settings of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TravelRuleSettings {
    /// How long after its creation a session serves declarations, challenges and proofs; a
    /// new session of the same reuse key carries over what was recorded within it.
    pub window: Duration,
    /// How long compliance records are kept after their session ended.
    pub retention: Duration,
}

impl TravelRuleSettings {
    /// The default window: a day.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(86_400);
    /// The default retention of compliance records: five years (1825 days).
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(1825 * 86_400);
}

impl Default for TravelRuleSettings {
    fn default() -> Self {
        Self {
            window: Self::DEFAULT_WINDOW,
            retention: Self::DEFAULT_RETENTION,
        }
    }
}

/// What a counterparty signs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeView {
    /// The exact message to sign.
    pub message: String,
    /// The address (or the invoice's payee node id) that must sign it.
    pub address: String,
    /// The session's network.
    pub network: Network,
    /// The methods the counterparty can sign with.
    pub methods: Vec<ProofMethod>,
    /// The end of the travel-rule window.
    pub expires_at: DateTime<Utc>,
}

/// Why a travel-rule request was not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TravelRuleError {
    /// No such session for this application (`404`).
    #[error("no such session")]
    NotFound,
    /// The session was cancelled (`409 session_cancelled`).
    #[error("the session was cancelled")]
    SessionCancelled,
    /// The travel-rule window ended (`410 travel_rule_window_closed`).
    #[error("the travel-rule window of this session has closed")]
    WindowClosed,
    /// The record is complete and the declaration differs (`409
    /// declaration_already_recorded`).
    #[error("the travel-rule record is complete; its declaration cannot be changed")]
    DeclarationAlreadyRecorded,
    /// The counterparty cannot sign (`409 ownership_proof_unavailable`).
    #[error("{0}")]
    ProofUnavailable(String),
    /// The signature is not decodable as any accepted form (`422 signature_malformed`).
    #[error("{0}")]
    SignatureMalformed(String),
    /// Well-formed, but not by this counterparty over this challenge (`422
    /// signature_mismatch`).
    #[error("{0}")]
    SignatureMismatch(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TravelRuleClosed> for TravelRuleError {
    fn from(closed: TravelRuleClosed) -> Self {
        match closed {
            TravelRuleClosed::SessionCancelled => TravelRuleError::SessionCancelled,
            TravelRuleClosed::WindowClosed => TravelRuleError::WindowClosed,
        }
    }
}

/// The travel-rule use cases.
#[derive(Clone)]
pub struct TravelRule {
    sessions: Arc<dyn SessionStore>,
    store: Arc<dyn TravelRuleStore>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Randomness>,
    settings: TravelRuleSettings,
}

impl TravelRule {
    /// The use cases over these ports.
    pub fn new(
        sessions: Arc<dyn SessionStore>,
        store: Arc<dyn TravelRuleStore>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Randomness>,
        settings: TravelRuleSettings,
    ) -> Self {
        Self {
            sessions,
            store,
            clock,
            random,
            settings,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> TravelRuleSettings {
        self.settings
    }

    fn view(&self, stored: StoredSession, now: DateTime<Utc>) -> SessionView {
        SessionView {
            status: stored.session.status_at(now),
            session: stored.session,
            order: stored.order,
        }
    }

    /// The session if it serves travel-rule requests now: the checks that come before a
    /// request's body is read (another application's session, a cancelled one, a closed
    /// window).
    ///
    /// # Errors
    ///
    /// [`TravelRuleError::NotFound`], [`TravelRuleError::SessionCancelled`],
    /// [`TravelRuleError::WindowClosed`], or the store's.
    pub async fn open(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<StoredSession, TravelRuleError> {
        let stored = self
            .sessions
            .get(application, id)
            .await?
            .ok_or(TravelRuleError::NotFound)?;
        stored
            .session
            .travel_rule_open(self.clock.now(), self.settings.window)?;
        Ok(stored)
    }

    /// The session's compliance record (every declaration version, the verified proof with
    /// its message and signature, refused proofs), for the compliance team; kept for the
    /// travel-rule retention after the session ended.
    ///
    /// # Errors
    ///
    /// [`TravelRuleError::NotFound`] for no such session of `application`, or the store's.
    pub async fn compliance_record(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<ComplianceRecord, TravelRuleError> {
        self.store
            .compliance_record(application, id)
            .await?
            .ok_or(TravelRuleError::NotFound)
    }

    /// Records the customer's declaration (contract §10): a new version replaces the current
    /// one while the record is not complete; once it is, the same declaration changes
    /// nothing and a different one is refused.
    ///
    /// # Errors
    ///
    /// See [`TravelRuleError`].
    #[instrument(skip_all, fields(application = %application, session_id = %id))]
    pub async fn declare(
        &self,
        application: ApplicationId,
        id: SessionId,
        declaration: Declaration,
        source: DeclarationSource,
    ) -> Result<SessionView, TravelRuleError> {
        let now = self.clock.now();
        let recorded = RecordedDeclaration {
            declaration,
            declared_at: now,
            source,
        };
        let outcome = self
            .store
            .declare(
                application,
                id,
                recorded,
                self.settings.window,
                self.events(),
            )
            .await?;
        match outcome {
            DeclareOutcome::Recorded(stored) => {
                info!(status = %stored.session.travel_rule_status(), "declaration recorded");
                Ok(self.view(*stored, now))
            }
            DeclareOutcome::Unchanged(stored) => Ok(self.view(*stored, now)),
            DeclareOutcome::Refused(DeclareRefused::Closed(closed), _) => Err(closed.into()),
            DeclareOutcome::Refused(DeclareRefused::Final, _) => {
                Err(TravelRuleError::DeclarationAlreadyRecorded)
            }
            DeclareOutcome::NotFound => Err(TravelRuleError::NotFound),
        }
    }

    /// The ownership challenge of the session: the exact message, who signs it and how.
    ///
    /// # Errors
    ///
    /// [`TravelRuleError::ProofUnavailable`] when the counterparty cannot sign; see
    /// [`TravelRule::open`] for the rest.
    pub async fn challenge(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<ChallengeView, TravelRuleError> {
        let stored = self.open(application, id).await?;
        let session = &stored.session;
        let target = ProofTarget::for_counterparty(session.scope().counterparty())
            .map_err(|e| TravelRuleError::ProofUnavailable(e.to_string()))?;
        let challenge = session.challenge().ok_or_else(|| {
            TravelRuleError::ProofUnavailable("this session has no ownership challenge".into())
        })?;
        Ok(ChallengeView {
            message: challenge.as_str().to_string(),
            address: target.address_text().to_string(),
            network: session.scope().asset().network(),
            methods: target.methods().to_vec(),
            expires_at: session.travel_rule_window_ends(self.settings.window),
        })
    }

    /// Verifies a signature over the session's challenge against its counterparty and
    /// records the proof; a refused one is kept in the compliance record (time and code).
    ///
    /// # Errors
    ///
    /// [`TravelRuleError::ProofUnavailable`], [`TravelRuleError::SignatureMalformed`],
    /// [`TravelRuleError::SignatureMismatch`]; see [`TravelRule::open`] for the rest.
    #[instrument(skip_all, fields(application = %application, session_id = %id))]
    pub async fn prove(
        &self,
        application: ApplicationId,
        id: SessionId,
        signature: &str,
    ) -> Result<SessionView, TravelRuleError> {
        let stored = self.open(application, id).await?;
        let session = &stored.session;
        let target = ProofTarget::for_counterparty(session.scope().counterparty())
            .map_err(|e| TravelRuleError::ProofUnavailable(e.to_string()))?;
        let challenge = session.challenge().ok_or_else(|| {
            TravelRuleError::ProofUnavailable("this session has no ownership challenge".into())
        })?;
        let now = self.clock.now();
        let method = match domain::verify(&target, challenge.as_str(), signature) {
            Ok(method) => method,
            Err(refused) => {
                let rejection = match refused {
                    ProofError::Malformed(_) => ProofRejection::Malformed,
                    ProofError::Mismatch => ProofRejection::Mismatch,
                };
                self.store
                    .reject_proof(
                        application,
                        id,
                        RejectedProof {
                            id: Uuid::from_bytes(random_uuid_bytes(self.random.as_ref())),
                            at: now,
                            rejection,
                        },
                    )
                    .await?;
                info!(code = rejection.as_str(), "ownership proof refused");
                return Err(match rejection {
                    ProofRejection::Malformed => {
                        TravelRuleError::SignatureMalformed(refused.to_string())
                    }
                    ProofRejection::Mismatch => {
                        TravelRuleError::SignatureMismatch(refused.to_string())
                    }
                });
            }
        };
        let proof = ProofRecord {
            method,
            address: target.address_text().to_string(),
            message: challenge.as_str().to_string(),
            signature: signature.trim().to_string(),
            verified_at: now,
        };
        let outcome = self
            .store
            .record_proof(application, id, proof, self.settings.window, self.events())
            .await?;
        match outcome {
            ProveOutcome::Verified(stored) => {
                info!(method = method.as_str(), "ownership proof verified");
                Ok(self.view(*stored, now))
            }
            ProveOutcome::AlreadyVerified(stored) => Ok(self.view(*stored, now)),
            ProveOutcome::Closed(closed, _) => Err(closed.into()),
            ProveOutcome::NotFound => Err(TravelRuleError::NotFound),
        }
    }

    fn events(&self) -> TravelRuleEvents {
        TravelRuleEvents {
            recorded: self.random.event_id(),
            completed: self.random.event_id(),
        }
    }
}

/// The bytes of a UUID v7 made from an event id (ids of refused proofs sort by time too).
fn random_uuid_bytes(random: &dyn Randomness) -> [u8; 16] {
    *random.event_id().as_uuid().as_bytes()
}
