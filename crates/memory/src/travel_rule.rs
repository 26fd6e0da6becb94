//! [`TravelRuleStore`] in memory: each change one critical section over the state, decided
//! by the domain's session, with its events and compliance record.

use std::time::Duration;

use async_trait::async_trait;
use domain::{
    ApplicationId, DeclarationChange, EventType, ProofChange, RecordedDeclaration, SessionId,
    VerifiedProof,
};
use ports::{
    ComplianceRecord, DeclarationVersion, DeclareOutcome, ProofRecord, ProveOutcome, RejectedProof,
    StoreError, TravelRuleEvents, TravelRuleStore,
};

use crate::state::MemoryStore;

#[async_trait]
impl TravelRuleStore for MemoryStore {
    async fn declare(
        &self,
        application: ApplicationId,
        session: SessionId,
        declaration: RecordedDeclaration,
        window: Duration,
        events: TravelRuleEvents,
    ) -> Result<DeclareOutcome, StoreError> {
        let mut guard = self.state();
        let inner = &mut *guard;
        let Some(row) = inner.rows.get_mut(&(application, session)) else {
            return Ok(DeclareOutcome::NotFound);
        };
        let at = declaration.declared_at;
        let change = match row.session.declare(declaration.clone(), at, window) {
            Ok(change) => change,
            Err(refused) => return Ok(DeclareOutcome::Refused(refused, Box::new(row.clone()))),
        };
        let DeclarationChange::Recorded { completed } = change else {
            return Ok(DeclareOutcome::Unchanged(Box::new(row.clone())));
        };
        let stored = row.clone();
        let compliance = inner.compliance.entry((application, session)).or_default();
        let version = compliance.declarations.len() as u32 + 1;
        compliance.declarations.push(DeclarationVersion {
            version,
            declaration,
            carried_from: None,
        });
        let mut notify = inner.emit(
            events.recorded,
            EventType::SessionDeclarationRecorded,
            at,
            &stored,
        );
        if completed {
            notify |= inner.emit(
                events.completed,
                EventType::SessionTravelRuleCompleted,
                at,
                &stored,
            );
        }
        drop(guard);
        if notify {
            self.wake_workers();
        }
        Ok(DeclareOutcome::Recorded(Box::new(stored)))
    }

    async fn record_proof(
        &self,
        application: ApplicationId,
        session: SessionId,
        proof: ProofRecord,
        window: Duration,
        events: TravelRuleEvents,
    ) -> Result<ProveOutcome, StoreError> {
        let mut guard = self.state();
        let inner = &mut *guard;
        let Some(row) = inner.rows.get_mut(&(application, session)) else {
            return Ok(ProveOutcome::NotFound);
        };
        let at = proof.verified_at;
        let verified = VerifiedProof {
            method: proof.method,
            verified_at: at,
        };
        let change = match row.session.record_proof(verified, at, window) {
            Ok(change) => change,
            Err(closed) => return Ok(ProveOutcome::Closed(closed, Box::new(row.clone()))),
        };
        let ProofChange::Verified { completed } = change else {
            return Ok(ProveOutcome::AlreadyVerified(Box::new(row.clone())));
        };
        let stored = row.clone();
        inner
            .compliance
            .entry((application, session))
            .or_default()
            .proof = Some((proof, None));
        let mut notify = inner.emit(
            events.recorded,
            EventType::SessionOwnershipVerified,
            at,
            &stored,
        );
        if completed {
            notify |= inner.emit(
                events.completed,
                EventType::SessionTravelRuleCompleted,
                at,
                &stored,
            );
        }
        drop(guard);
        if notify {
            self.wake_workers();
        }
        Ok(ProveOutcome::Verified(Box::new(stored)))
    }

    async fn reject_proof(
        &self,
        application: ApplicationId,
        session: SessionId,
        rejected: RejectedProof,
    ) -> Result<(), StoreError> {
        let mut inner = self.state();
        if inner.rows.contains_key(&(application, session)) {
            let kept = &mut inner
                .compliance
                .entry((application, session))
                .or_default()
                .rejected;
            if kept.len() < ports::MAX_REFUSED_PROOFS_KEPT {
                kept.push(rejected);
            }
        }
        Ok(())
    }

    async fn compliance_record(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Option<ComplianceRecord>, StoreError> {
        let inner = self.state();
        if !inner.rows.contains_key(&(application, session)) {
            return Ok(None);
        }
        let c = inner
            .compliance
            .get(&(application, session))
            .cloned()
            .unwrap_or_default();
        Ok(Some(ComplianceRecord {
            declarations: c.declarations,
            proof: c.proof,
            rejected: c.rejected,
        }))
    }
}
