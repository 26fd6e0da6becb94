//! `sessions`: [`SessionStore`] on Postgres — a session's mint, reads, cancel, launch and
//! recorded expiry, each one statement with its event (`emit_session_event`). The claim
//! protocol's statements are in [`crate::reuse_slots`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, EventType, ReuseKeyDigest, SessionId, SessionStatus};
use ports::{
    CancelResult, ClaimToken, FulfilError, LaunchResult, ListQuery, NewSession, Page, ReuseOutcome,
    ReuseQuery, SessionStore, StoreError, StoredSession, WidgetUrl,
};
use tracing::instrument;

use crate::error::store_error;
use crate::rows::{SessionColumns, SessionRow};
use crate::store::PgStore;

impl PgStore {
    async fn fetch(
        &self,
        app: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, StoreError> {
        sqlx::query_scalar!(
            r#"select session_row_v3(s) as "session!: SessionRow"
               from sessions s where s.application_id = $1 and s.id = $2"#,
            app.as_uuid(),
            id.as_uuid()
        )
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?
        .map(SessionRow::into_stored)
        .transpose()
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn reuse_or_claim(&self, q: &ReuseQuery) -> Result<ReuseOutcome, StoreError> {
        PgStore::reuse_or_claim(self, q).await
    }

    #[instrument(skip_all, fields(application = %application, session_id = %new.session.id()))]
    async fn fulfil(
        &self,
        application: ApplicationId,
        claim: ClaimToken,
        new: NewSession,
    ) -> Result<StoredSession, FulfilError> {
        if new.session.application_id() != application {
            return Err(FulfilError::Store(StoreError::unexpected(
                "session belongs to another application",
            )));
        }
        let s = &new.session;
        let c = SessionColumns::of(s.scope());
        let window =
            chrono::TimeDelta::from_std(new.travel_rule_window).unwrap_or(chrono::TimeDelta::MAX);
        let carry_after = s
            .created_at()
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        // All or nothing, and only while the claim is ours: the slot update gates the inserts.
        // The record follows the counterparty: the session the slot was bound to, unless
        // cancelled, gives the new one its current declaration and its proof made after
        // `carry_after` (`TravelRuleRecord::carried_over`: made within the window), the proof
        // only when it was made by the address (or invoice payee) the new session's proof
        // needs too, with their compliance records; a complete record is announced after
        // `session.created`. What is carried is read from the compliance records alone (one
        // snapshot), so the new session never shows a declaration or proof without its
        // record; one recorded on the previous session while this statement runs stays there.
        let row = sqlx::query!(
            r#"with prev as (
                   select p.id from sessions p
                   where p.application_id = $1
                     and p.id = (select session_id from reuse_slots
                                 where application_id = $1 and reuse_key = $3 and claim = $4)
                     and p.cancelled_at is null
               ), slot as (
                   update reuse_slots set session_id = $2, claim = null, claim_expires_at = null
                   where application_id = $1 and reuse_key = $3 and claim = $4
                   returning session_id
               ), declared as (
                   select d.* from (
                       select * from travel_rule_declarations
                       where application_id = $1 and session_id = (select id from prev)
                       order by version desc
                       limit 1) d
                   where d.declared_at > $23
               ), proven as (
                   select pr.* from ownership_proofs pr
                   where pr.application_id = $1 and pr.session_id = (select id from prev)
                     and pr.verified_at > $23
                     and pr.address = coalesce($24, $10)
               ), ins as (
                   insert into sessions as s (application_id, id, reuse_key, subject_kind,
                       subject_id, currency, network, counterparty_kind, counterparty,
                       invoice_created_at, invoice_expires_at, invoice_amount_msat, tx_hash,
                       force_verify_ownership, widget_url, created_at, expires_at, proof_policy,
                       challenge, invoice_payee, declaration, declared_at, declaration_source,
                       proof_method, proof_verified_at, travel_rule_kept, hosted_travel_rule,
                       frame_ancestors)
                   select $1, $2, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                          $18, $21, $22, $24,
                          (select declaration from declared), (select declared_at from declared),
                          (select source from declared), (select method from proven),
                          (select verified_at from proven),
                          exists (select 1 from declared) or exists (select 1 from proven),
                          $27, $28
                   from slot
                   returning s
               ), carried_declaration as (
                   insert into travel_rule_declarations (application_id, session_id, version,
                       declaration, source, declared_at, carried_from)
                   select $1, $2, 1, d.declaration, d.source, d.declared_at,
                          coalesce(d.carried_from, d.session_id)
                   from declared d
                   where exists (select 1 from ins)
                   returning 1
               ), carried_proof as (
                   insert into ownership_proofs (application_id, session_id, method, address,
                       message, signature, verified_at, carried_from)
                   select $1, $2, p.method, p.address, p.message, p.signature, p.verified_at,
                          coalesce(p.carried_from, p.session_id)
                   from proven p
                   where exists (select 1 from ins)
                   returning 1
               ), event as (
                   select emit_session_event($1, $19, $20, $17, to_jsonb(ins.s)) as n
                   from ins
               ), completed as (
                   select emit_session_event($1, $25, $26, $17, to_jsonb(ins.s)) as n
                   from ins
                   where travel_rule_status((ins.s).declaration,
                                            (ins.s).proof_verified_at is not null,
                                            (ins.s).force_verify_ownership,
                                            (ins.s).proof_policy) = 'COMPLETE'
               )
               select (select session_row_v3(i.s) from ins i) as "session?: SessionRow",
                      (select count(*) from event) + (select count(*) from completed)
                          + (select count(*) from carried_declaration)
                          + (select count(*) from carried_proof) as "written!""#,
            application.as_uuid(),
            s.id().as_uuid(),
            new.key.as_bytes().as_slice(),
            claim.0,
            c.subject_kind,
            c.subject_id,
            c.currency,
            c.network,
            c.counterparty_kind,
            c.counterparty,
            c.invoice_created_at,
            c.invoice_expires_at,
            c.invoice_amount_msat,
            c.tx_hash,
            s.force_verify_ownership(),
            new.widget_url.expose(),
            s.created_at(),
            s.expires_at(),
            new.event.as_uuid(),
            EventType::SessionCreated.as_str(),
            s.travel_rule().policy.as_str(),
            s.challenge().map(|c| c.as_str()),
            carry_after,
            c.invoice_payee,
            new.completed_event.as_uuid(),
            EventType::SessionTravelRuleCompleted.as_str(),
            s.hosted_step().enabled,
            s.hosted_step().frame_ancestors.to_stored()
        )
        .fetch_one(self.pool())
        .await
        .map_err(|e| FulfilError::Store(store_error(e)))?;
        let Some(session) = row.session else {
            return Err(FulfilError::ClaimLost);
        };
        let mut stored = session.into_stored().map_err(FulfilError::Store)?;
        // The URL as minted (the row holds the same).
        stored.widget_url = Some(new.widget_url);
        Ok(stored)
    }

    async fn release(
        &self,
        application: ApplicationId,
        key: &ReuseKeyDigest,
        claim: ClaimToken,
    ) -> Result<(), StoreError> {
        PgStore::release(self, application, key, claim).await
    }

    #[instrument(skip_all, fields(application = %application, session_id = %id))]
    async fn get(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, StoreError> {
        self.fetch(application, id).await
    }

    #[instrument(skip_all, fields(application = %q.application))]
    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let status = q.status.map(|s| s.0.as_str());
        let before = q.before.map(|b| b.as_uuid());
        let limit = i64::from(q.limit) + 1;
        // Two statements, not one with `($2 is null or subject_id = $2)`: a generic plan for
        // the optional form cannot use the subject index, and would walk all of the
        // application's sessions to find one subject's. The cursor is an index condition too
        // (the maximal uuid stands for "no cursor"; session ids are v7, never all ones), so a
        // page starts where the previous one ended instead of re-reading it.
        let rows = match q.subject {
            Some(subject) => {
                sqlx::query_scalar!(
                    r#"select session_row_v3(s) as "session!: SessionRow"
                       from sessions s
                       where s.application_id = $1 and s.subject_kind = $2 and s.subject_id = $3
                         and s.id < coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
                         and ($5::text is null
                              or session_status(s.consumed_at, s.cancelled_at,
                                                s.expired_event_at, s.expires_at, $6) = $5)
                       order by s.id desc
                       limit $7"#,
                    q.application.as_uuid(),
                    subject.kind(),
                    subject.id(),
                    before,
                    status,
                    q.now,
                    limit
                )
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query_scalar!(
                    r#"select session_row_v3(s) as "session!: SessionRow"
                       from sessions s
                       where s.application_id = $1
                         and s.id < coalesce($2::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
                         and ($3::text is null
                              or session_status(s.consumed_at, s.cancelled_at,
                                                s.expired_event_at, s.expires_at, $4) = $3)
                       order by s.id desc
                       limit $5"#,
                    q.application.as_uuid(),
                    before,
                    status,
                    q.now,
                    limit
                )
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(store_error)?;
        let mut items = rows
            .into_iter()
            .map(SessionRow::into_stored)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > q.limit as usize {
            items.truncate(q.limit as usize);
            items.last().map(|s| s.session.id())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    #[instrument(skip_all, fields(application = %application, session_id = %id))]
    async fn cancel(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        event: EventId,
    ) -> Result<CancelResult, StoreError> {
        // One statement: cancel if ACTIVE (a recorded expiry counts: see `session_active`) and
        // write the `session.cancelled` event with it, else read the row as it is. The read
        // locks it (FOR SHARE) so that a cancel that lost a race sees the winner's committed
        // change, not the row as it was when the statement began.
        let row = sqlx::query!(
            r#"with upd as (
                   update sessions s set cancelled_at = $3, widget_url = ''
                   where s.application_id = $1 and s.id = $2
                     and session_active(s.consumed_at, s.cancelled_at, s.expired_event_at,
                                        s.expires_at, $3)
                   returning s
               ), event as (
                   select emit_session_event($1, $4, $5, $3, to_jsonb(upd.s)) as n
                   from upd
               ), cur as (
                   select s from sessions s
                   where s.application_id = $1 and s.id = $2 and not exists (select 1 from upd)
                   for share
               )
               select true as "cancelled!", session_row_v3(upd.s) as "session!: SessionRow"
               from upd
               where (select count(*) from event) >= 0
               union all
               select false, session_row_v3(cur.s) from cur"#,
            application.as_uuid(),
            id.as_uuid(),
            now,
            event.as_uuid(),
            EventType::SessionCancelled.as_str()
        )
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(CancelResult::NotFound);
        };
        let stored = row.session.into_stored()?;
        Ok(if row.cancelled {
            CancelResult::Cancelled(stored)
        } else if stored.session.status_at(now) == SessionStatus::Cancelled {
            CancelResult::AlreadyCancelled(stored)
        } else {
            CancelResult::NotActive(stored)
        })
    }

    #[instrument(skip_all, fields(application = %application, session_id = %id, consume))]
    async fn launch(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        consume: bool,
        event: EventId,
    ) -> Result<LaunchResult, StoreError> {
        if !consume {
            let enabled = sqlx::query_scalar!(
                r#"select not exists (select 1 from applications
                                      where id = $1 and status = 'disabled') as "enabled!""#,
                application.as_uuid()
            )
            .fetch_one(self.pool())
            .await
            .map_err(store_error)?;
            return Ok(match self.fetch(application, id).await? {
                None => LaunchResult::Unknown,
                Some(s) if s.session.status_at(now) != SessionStatus::Active => {
                    LaunchResult::Ended(s)
                }
                Some(_) if !enabled => LaunchResult::Withheld,
                Some(s) if s.session.hosted_step_pending() => LaunchResult::Held(s),
                Some(s) => LaunchResult::Opened(s),
            });
        }
        // One statement: consume if ACTIVE (a recorded expiry counts: an instance whose clock
        // runs behind may still see it ACTIVE) and the application is enabled, clear the
        // upstream URL (a bearer, needed no more) and write the `session.consumed` event
        // with it, else read the row as it is. The read locks it (FOR SHARE) so that a launch
        // that lost a race sees the winner's committed change, not the row as it was when the
        // statement began.
        let row = sqlx::query!(
            r#"with upd as (
                   update sessions s set consumed_at = $3, widget_url = ''
                   from sessions old
                   where s.application_id = $1 and s.id = $2
                     and old.application_id = $1 and old.id = $2
                     and session_active(s.consumed_at, s.cancelled_at, s.expired_event_at,
                                        s.expires_at, $3)
                     and not exists (select 1 from applications a
                                     where a.id = $1 and a.status = 'disabled')
                     and not hosted_step_pending(s.hosted_travel_rule, s.declaration,
                                                 s.proof_verified_at is not null,
                                                 s.force_verify_ownership, s.proof_policy)
                   returning s, old.widget_url as url
               ), event as (
                   select emit_session_event($1, $4, $5, $3, to_jsonb(upd.s)) as n
                   from upd
               ), cur as (
                   select s from sessions s
                   where s.application_id = $1 and s.id = $2 and not exists (select 1 from upd)
                   for share
               )
               select true as "consumed!", session_row_v3(upd.s) as "session!: SessionRow",
                      upd.url as "url?", true as "enabled!"
               from upd
               where (select count(*) from event) >= 0
               union all
               select false, session_row_v3(cur.s), null::text,
                      not exists (select 1 from applications a
                                  where a.id = $1 and a.status = 'disabled')
               from cur"#,
            application.as_uuid(),
            id.as_uuid(),
            now,
            event.as_uuid(),
            EventType::SessionConsumed.as_str()
        )
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(LaunchResult::Unknown);
        };
        let mut stored = row.session.into_stored()?;
        Ok(if row.consumed {
            // The session as it was opened: with the URL the link redirects to.
            stored.widget_url = row.url.map(WidgetUrl::new);
            LaunchResult::Opened(stored)
        } else if !row.enabled && stored.session.status_at(now) == SessionStatus::Active {
            LaunchResult::Withheld
        } else if stored.session.status_at(now) == SessionStatus::Active
            && stored.session.hosted_step_pending()
        {
            // Not consumed because its hosted travel-rule step is pending (the statement's
            // `hosted_step_pending`, the same rule).
            LaunchResult::Held(stored)
        } else {
            LaunchResult::Ended(stored)
        })
    }

    #[instrument(skip_all, fields(batch = events.len()))]
    async fn sweep_expired(
        &self,
        now: DateTime<Utc>,
        events: &[EventId],
    ) -> Result<u64, StoreError> {
        // Records the expiry and emits it in one statement; rows another sweeper holds are
        // skipped (it emits them), and a row recorded since this statement began no longer
        // qualifies when re-checked after its lock: one `session.expired` per session,
        // however many sweepers run. The candidates are read through the partial index
        // `sessions_awaiting_expiry` (its predicate, written out).
        let ids: Vec<uuid::Uuid> = events.iter().map(EventId::as_uuid).collect();
        let n = sqlx::query_scalar!(
            r#"with due as (
                   select application_id, id from sessions
                   where consumed_at is null and cancelled_at is null
                     and expired_event_at is null and expires_at <= $1
                   order by expires_at
                   limit cardinality($2::uuid[])
                   for update skip locked
               ), upd as (
                   update sessions s set expired_event_at = $1, widget_url = ''
                   from due
                   where s.application_id = due.application_id and s.id = due.id
                   returning s
               ), numbered as (
                   select (upd.s).application_id as app, row_number() over () as n,
                          to_jsonb(upd.s) as row
                   from upd
               )
               select count(emit_session_event(app, ($2::uuid[])[n], $3, $1, row)) as "n!"
               from numbered"#,
            now,
            &ids,
            EventType::SessionExpired.as_str()
        )
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
