//! `travel_rule_declarations`, `ownership_proofs`, `ownership_proof_attempts` (and the
//! record's columns of `sessions`): [`TravelRuleStore`] on Postgres.
//!
//! A declaration or a proof is not on the hot path: each is a transaction that locks the
//! session row, lets the domain decide (`Session::declare`, `Session::record_proof`: the one
//! owner of those rules), then writes the change, its compliance record and its events in
//! one statement.

use std::time::Duration;

use async_trait::async_trait;
use domain::{
    ApplicationId, DeclarationChange, EventType, ProofChange, ProofMethod, RecordedDeclaration,
    SessionId, VerifiedProof,
};
use ports::{
    ComplianceRecord, DeclarationVersion, DeclareOutcome, ProofRecord, ProofRejection,
    ProveOutcome, RejectedProof, StoreError, StoredSession, TravelRuleEvents, TravelRuleStore,
};
use sqlx::{Postgres, Transaction};
use tracing::instrument;

use crate::error::store_error;
use crate::rows::{SessionRow, declaration_from_json, declaration_json};
use crate::store::PgStore;

impl PgStore {
    /// Begins a transaction and reads the session locked for update.
    async fn locked(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<(Transaction<'static, Postgres>, Option<StoredSession>), StoreError> {
        let mut tx = self.pool().begin().await.map_err(store_error)?;
        let row = sqlx::query_scalar!(
            r#"select session_row_v3(s) as "session!: SessionRow"
               from sessions s where s.application_id = $1 and s.id = $2
               for update"#,
            application.as_uuid(),
            session.as_uuid()
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let stored = row.map(SessionRow::into_stored).transpose()?;
        Ok((tx, stored))
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::unexpected(format!("stored {what} is invalid"))
}

#[async_trait]
impl TravelRuleStore for PgStore {
    #[instrument(skip_all, fields(application = %application, session_id = %session))]
    async fn declare(
        &self,
        application: ApplicationId,
        session: SessionId,
        declaration: RecordedDeclaration,
        window: Duration,
        events: TravelRuleEvents,
    ) -> Result<DeclareOutcome, StoreError> {
        let (mut tx, stored) = self.locked(application, session).await?;
        let Some(mut stored) = stored else {
            return Ok(DeclareOutcome::NotFound);
        };
        let at = declaration.declared_at;
        let change = match stored.session.declare(declaration.clone(), at, window) {
            Ok(change) => change,
            Err(refused) => return Ok(DeclareOutcome::Refused(refused, Box::new(stored))),
        };
        let DeclarationChange::Recorded { completed } = change else {
            return Ok(DeclareOutcome::Unchanged(Box::new(stored)));
        };
        sqlx::query!(
            r#"with upd as (
                   update sessions s
                   set declaration = $3, declared_at = $4, declaration_source = $5,
                       travel_rule_kept = true
                   where s.application_id = $1 and s.id = $2
                   returning s
               ), version as (
                   insert into travel_rule_declarations (application_id, session_id, version,
                       declaration, source, declared_at)
                   select $1, $2,
                          coalesce((select max(version) from travel_rule_declarations
                                    where application_id = $1 and session_id = $2), 0) + 1,
                          $3, $5, $4
                   returning 1
               ), recorded as (
                   select emit_session_event($1, $6, $7, $4, to_jsonb(upd.s)) as n from upd
               ), completed as (
                   select emit_session_event($1, $8, $9, $4, to_jsonb(upd.s)) as n from upd
                   where $10
               )
               select (select count(*) from version) + (select count(*) from recorded)
                          + (select count(*) from completed) as "written!""#,
            application.as_uuid(),
            session.as_uuid(),
            declaration_json(&declaration.declaration),
            at,
            declaration.source.as_str(),
            events.recorded.as_uuid(),
            EventType::SessionDeclarationRecorded.as_str(),
            events.completed.as_uuid(),
            EventType::SessionTravelRuleCompleted.as_str(),
            completed
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(DeclareOutcome::Recorded(Box::new(stored)))
    }

    #[instrument(skip_all, fields(application = %application, session_id = %session))]
    async fn record_proof(
        &self,
        application: ApplicationId,
        session: SessionId,
        proof: ProofRecord,
        window: Duration,
        events: TravelRuleEvents,
    ) -> Result<ProveOutcome, StoreError> {
        let (mut tx, stored) = self.locked(application, session).await?;
        let Some(mut stored) = stored else {
            return Ok(ProveOutcome::NotFound);
        };
        let at = proof.verified_at;
        let verified = VerifiedProof {
            method: proof.method,
            verified_at: at,
        };
        let change = match stored.session.record_proof(verified, at, window) {
            Ok(change) => change,
            Err(closed) => return Ok(ProveOutcome::Closed(closed, Box::new(stored))),
        };
        let ProofChange::Verified { completed } = change else {
            return Ok(ProveOutcome::AlreadyVerified(Box::new(stored)));
        };
        sqlx::query!(
            r#"with upd as (
                   update sessions s
                   set proof_method = $3, proof_verified_at = $4, travel_rule_kept = true
                   where s.application_id = $1 and s.id = $2
                   returning s
               ), kept as (
                   insert into ownership_proofs (application_id, session_id, method, address,
                       message, signature, verified_at)
                   values ($1, $2, $3, $5, $6, $7, $4)
                   returning 1
               ), verified as (
                   select emit_session_event($1, $8, $9, $4, to_jsonb(upd.s)) as n from upd
               ), completed as (
                   select emit_session_event($1, $10, $11, $4, to_jsonb(upd.s)) as n from upd
                   where $12
               )
               select (select count(*) from kept) + (select count(*) from verified)
                          + (select count(*) from completed) as "written!""#,
            application.as_uuid(),
            session.as_uuid(),
            proof.method.as_str(),
            at,
            proof.address,
            proof.message,
            proof.signature,
            events.recorded.as_uuid(),
            EventType::SessionOwnershipVerified.as_str(),
            events.completed.as_uuid(),
            EventType::SessionTravelRuleCompleted.as_str(),
            completed
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(ProveOutcome::Verified(Box::new(stored)))
    }

    #[instrument(skip_all, fields(application = %application, session_id = %session))]
    async fn reject_proof(
        &self,
        application: ApplicationId,
        session: SessionId,
        rejected: RejectedProof,
    ) -> Result<(), StoreError> {
        // No more than the cap of attempts is kept (two concurrent ones may both pass it by
        // one), and the session row is marked only when one is. The row is found by its key
        // alone (a condition on `travel_rule_kept` would let a generic plan pick a partial
        // index by end and walk the application's sessions).
        sqlx::query!(
            r#"with attempt as (
                   insert into ownership_proof_attempts (application_id, session_id, id,
                       attempted_at, code)
                   select $1, $2, $3, $4, $5
                   where exists (select 1 from sessions where application_id = $1 and id = $2)
                     and (select count(*) from ownership_proof_attempts
                          where application_id = $1 and session_id = $2) < $6
                   returning 1
               )
               update sessions set travel_rule_kept = true
               where application_id = $1 and id = $2 and exists (select 1 from attempt)"#,
            application.as_uuid(),
            session.as_uuid(),
            rejected.id,
            rejected.at,
            rejected.rejection.as_str(),
            i64::try_from(ports::MAX_REFUSED_PROOFS_KEPT).unwrap_or(i64::MAX)
        )
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn compliance_record(
        &self,
        application: ApplicationId,
        session: SessionId,
    ) -> Result<Option<ComplianceRecord>, StoreError> {
        let exists = sqlx::query_scalar!(
            r#"select 1 as "one!" from sessions where application_id = $1 and id = $2"#,
            application.as_uuid(),
            session.as_uuid()
        )
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?;
        if exists.is_none() {
            return Ok(None);
        }
        let declarations = sqlx::query!(
            r#"select version, declaration, source, declared_at, carried_from
               from travel_rule_declarations
               where application_id = $1 and session_id = $2
               order by version"#,
            application.as_uuid(),
            session.as_uuid()
        )
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|r| {
            Ok(DeclarationVersion {
                version: u32::try_from(r.version).map_err(|_| corrupt("declaration version"))?,
                declaration: RecordedDeclaration {
                    declaration: declaration_from_json(r.declaration)
                        .ok_or_else(|| corrupt("declaration"))?,
                    declared_at: r.declared_at,
                    source: domain::DeclarationSource::parse(&r.source)
                        .ok_or_else(|| corrupt("declaration source"))?,
                },
                carried_from: r.carried_from.map(SessionId::from_uuid),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let proof = sqlx::query!(
            r#"select method, address, message, signature, verified_at, carried_from
               from ownership_proofs where application_id = $1 and session_id = $2"#,
            application.as_uuid(),
            session.as_uuid()
        )
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?
        .map(|r| {
            Ok::<_, StoreError>((
                ProofRecord {
                    method: ProofMethod::parse(&r.method).ok_or_else(|| corrupt("proof method"))?,
                    address: r.address,
                    message: r.message,
                    signature: r.signature,
                    verified_at: r.verified_at,
                },
                r.carried_from.map(SessionId::from_uuid),
            ))
        })
        .transpose()?;
        let rejected = sqlx::query!(
            r#"select id, attempted_at, code from ownership_proof_attempts
               where application_id = $1 and session_id = $2
               order by attempted_at, id"#,
            application.as_uuid(),
            session.as_uuid()
        )
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|r| {
            Ok(RejectedProof {
                id: r.id,
                at: r.attempted_at,
                rejection: ProofRejection::parse(&r.code).ok_or_else(|| corrupt("rejection"))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(ComplianceRecord {
            declarations,
            proof,
            rejected,
        }))
    }
}
