//! [`SessionStore`] in memory: the claim protocol and the session lifecycle, each operation
//! one critical section over [`State`](crate::state::State), with its event.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, EventId, EventType, FlagChange, ProofTarget, ReuseDecision, ReuseKeyDigest,
    SessionEnd, SessionId, TravelRuleStatus,
};
use ports::{
    CancelResult, ClaimToken, DeclarationVersion, FulfilError, LaunchResult, ListQuery, NewSession,
    Page, ReuseOutcome, ReuseQuery, SessionStore, StoreError, StoredSession,
};

use crate::state::{Compliance, MemoryStore, Slot};

#[async_trait]
impl SessionStore for MemoryStore {
    async fn reuse_or_claim(&self, q: &ReuseQuery) -> Result<ReuseOutcome, StoreError> {
        let mut guard = self.state();
        let inner = &mut *guard;
        if let Some(nonce) = &q.nonce
            && !inner.remember(nonce)
        {
            return Ok(ReuseOutcome::Replayed);
        }
        let slot = inner.slots.entry((q.application, q.key)).or_default();
        if let Some((_, lease_until)) = slot.claim
            && lease_until > q.now
        {
            return Ok(ReuseOutcome::Pending { lease_until });
        }
        if slot.claim.is_none()
            && let Some(id) = slot.session
            && let Some(row) = inner.rows.get_mut(&(q.application, id))
            && let ReuseDecision::Reuse { upgrade_flag } =
                q.policy
                    .decide(Some(&row.session), q.force_verify_ownership, q.now)
        {
            let mut reopened = false;
            if upgrade_flag {
                reopened = matches!(
                    row.session.request_force_verify_ownership(true),
                    FlagChange::Raised { reopened: true }
                );
            }
            let stored = row.clone();
            if reopened
                && inner.emit(
                    q.reopened_event,
                    EventType::SessionTravelRuleReopened,
                    q.now,
                    &stored,
                )
            {
                drop(guard);
                self.wake_workers();
            }
            return Ok(ReuseOutcome::Reused(Box::new(stored)));
        }
        // Vacant, bound to a session that is not reusable, or pending under a lapsed lease:
        // the slot is the caller's (it keeps its binding until fulfilled).
        slot.claim = Some((q.claim, q.lease_until));
        Ok(ReuseOutcome::Claimed)
    }

    async fn fulfil(
        &self,
        application: ApplicationId,
        claim: ClaimToken,
        new: NewSession,
    ) -> Result<StoredSession, FulfilError> {
        let mut inner = self.state();
        let slot_key = (application, new.key);
        let ours = inner
            .slots
            .get(&slot_key)
            .and_then(|s| s.claim)
            .is_some_and(|(c, _)| c == claim);
        if !ours {
            return Err(FulfilError::ClaimLost);
        }
        let id = new.session.id();
        if new.session.application_id() != application {
            return Err(FulfilError::Store(StoreError::unexpected(
                "session belongs to another application",
            )));
        }
        if inner.rows.contains_key(&(application, id)) {
            return Err(FulfilError::Store(StoreError::conflict(format!(
                "session {id} already exists"
            ))));
        }
        let created_at = new.session.created_at();
        // The record follows the counterparty: the key's previous session, unless cancelled.
        let previous = inner
            .slots
            .get(&slot_key)
            .and_then(|slot| slot.session)
            .and_then(|prev| inner.rows.get(&(application, prev)))
            .filter(|prev| !matches!(prev.session.end(), Some(SessionEnd::Cancelled { .. })))
            .map(|prev| (prev.session.id(), prev.session.travel_rule().clone()));
        let mut session = new.session;
        if let Some((from, record)) = previous {
            // The proof is carried only to the signer it was made by.
            let signer = ProofTarget::for_counterparty(session.scope().counterparty())
                .ok()
                .map(|t| t.address_text().to_string());
            let same_signer = inner
                .compliance
                .get(&(application, from))
                .and_then(|c| c.proof.as_ref())
                .is_some_and(|(proof, _)| Some(&proof.address) == signer.as_ref());
            let carried = record.carried_over(
                session.travel_rule().policy,
                created_at,
                new.travel_rule_window,
                same_signer,
            );
            let challenge = session.challenge().cloned();
            session = session.with_travel_rule(carried, challenge);
            let copied = inner
                .compliance
                .get(&(application, from))
                .map(|c| Compliance {
                    declarations: c
                        .declarations
                        .last()
                        .filter(|_| session.travel_rule().declaration.is_some())
                        .map(|last| DeclarationVersion {
                            version: 1,
                            declaration: last.declaration.clone(),
                            carried_from: last.carried_from.or(Some(from)),
                        })
                        .into_iter()
                        .collect(),
                    proof: c
                        .proof
                        .clone()
                        .filter(|_| session.travel_rule().proof.is_some())
                        .map(|(proof, origin)| (proof, origin.or(Some(from)))),
                    rejected: Vec::new(),
                    events_purged: false,
                });
            if let Some(copied) = copied
                && (!copied.declarations.is_empty() || copied.proof.is_some())
            {
                inner.compliance.insert((application, id), copied);
            }
        }
        let stored = StoredSession {
            session,
            widget_url: Some(new.widget_url),
            order: None,
        };
        let mut notify = inner.emit(new.event, EventType::SessionCreated, created_at, &stored);
        if stored.session.travel_rule().declaration.is_some()
            && stored.session.travel_rule_status() == TravelRuleStatus::Complete
        {
            notify |= inner.emit(
                new.completed_event,
                EventType::SessionTravelRuleCompleted,
                created_at,
                &stored,
            );
        }
        inner.rows.insert((application, id), stored.clone());
        inner.slots.insert(
            slot_key,
            Slot {
                session: Some(id),
                claim: None,
            },
        );
        drop(inner);
        if notify {
            self.wake_workers();
        }
        Ok(stored)
    }

    async fn release(
        &self,
        application: ApplicationId,
        key: &ReuseKeyDigest,
        claim: ClaimToken,
    ) -> Result<(), StoreError> {
        let mut inner = self.state();
        let slot_key = (application, *key);
        if let Some(slot) = inner.slots.get_mut(&slot_key)
            && slot.claim.is_some_and(|(c, _)| c == claim)
        {
            slot.claim = None;
            if slot.session.is_none() {
                inner.slots.remove(&slot_key);
            }
        }
        Ok(())
    }

    async fn get(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.state().rows.get(&(application, id)).cloned())
    }

    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let inner = self.state();
        let mut items: Vec<StoredSession> = inner
            .rows
            .iter()
            .filter(|((app, id), s)| {
                *app == q.application
                    && q.before.is_none_or(|b| *id < b)
                    && q.subject
                        .is_none_or(|sub| s.session.scope().subject() == sub)
                    && q.status.is_none_or(|f| s.session.status_at(q.now) == f.0)
            })
            .map(|(_, s)| s.clone())
            .collect();
        items.sort_by_key(|s| std::cmp::Reverse(s.session.id()));
        let limit = q.limit as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|s| s.session.id())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn cancel(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        event: EventId,
    ) -> Result<CancelResult, StoreError> {
        let mut guard = self.state();
        let inner = &mut *guard;
        let Some(row) = inner.rows.get_mut(&(application, id)) else {
            return Ok(CancelResult::NotFound);
        };
        let outcome = match row.session.cancel(now) {
            Ok(domain::CancelEffect::Cancelled) => {
                row.widget_url = None;
                CancelResult::Cancelled(row.clone())
            }
            Ok(domain::CancelEffect::AlreadyCancelled) => {
                CancelResult::AlreadyCancelled(row.clone())
            }
            Err(_) => CancelResult::NotActive(row.clone()),
        };
        if let CancelResult::Cancelled(session) = &outcome
            && inner.emit(event, EventType::SessionCancelled, now, session)
        {
            drop(guard);
            self.wake_workers();
        }
        Ok(outcome)
    }

    async fn launch(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        consume: bool,
        event: EventId,
    ) -> Result<LaunchResult, StoreError> {
        let enabled = self.enabled(application);
        let mut guard = self.state();
        let inner = &mut *guard;
        let Some(row) = inner.rows.get_mut(&(application, id)) else {
            return Ok(LaunchResult::Unknown);
        };
        if row.session.status_at(now) != domain::SessionStatus::Active {
            return Ok(LaunchResult::Ended(row.clone()));
        }
        if !enabled {
            return Ok(LaunchResult::Withheld);
        }
        if row.session.hosted_step_pending() {
            return Ok(LaunchResult::Held(row.clone()));
        }
        if !consume {
            return Ok(LaunchResult::Opened(row.clone()));
        }
        if row.session.consume(now).is_err() {
            return Ok(LaunchResult::Ended(row.clone()));
        }
        // The session as it was opened: with the URL, which the row no longer keeps.
        let opened = row.clone();
        row.widget_url = None;
        let event_copy = row.clone();
        if inner.emit(event, EventType::SessionConsumed, now, &event_copy) {
            drop(guard);
            self.wake_workers();
        }
        Ok(LaunchResult::Opened(opened))
    }

    async fn sweep_expired(
        &self,
        now: DateTime<Utc>,
        events: &[EventId],
    ) -> Result<u64, StoreError> {
        let mut guard = self.state();
        let inner = &mut *guard;
        let mut swept = Vec::new();
        for row in inner.rows.values_mut() {
            if swept.len() == events.len() {
                break;
            }
            if row.session.record_expiry(now) {
                row.widget_url = None;
                swept.push(row.clone());
            }
        }
        let mut notify = false;
        for (session, event) in swept.iter().zip(events) {
            notify |= inner.emit(*event, EventType::SessionExpired, now, session);
        }
        drop(guard);
        if notify {
            self.wake_workers();
        }
        Ok(swept.len() as u64)
    }
}
