//! [`SessionStore`] on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, EventId, ReuseKeyDigest, SessionId, SessionStatus};
use ports::{
    ClaimToken, FulfilError, LaunchResult, ListQuery, NewSession, OrderOutcome, OrderUpdate, Page,
    RequestNonce, ReuseOutcome, ReuseQuery, SessionStore, StoreCancel, StoreError, StoredSession,
    UnmatchedOrder,
};
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tracing::instrument;

use crate::error::store_error;
use crate::rows::{LaunchRow, SessionColumns, SessionRow};

/// Sessions, reuse-key slots, accepted requests' signatures, and the webhook side
/// (endpoints, session events, deliveries: [`ports::WebhookStore`]) in Postgres.
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    /// The `LISTEN` connection of the delivery worker, opened on first wait.
    listener: Arc<tokio::sync::Mutex<Option<PgListener>>>,
}

impl PgSessionStore {
    /// A store over `pool` (migrated with [`crate::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            listener: Arc::default(),
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn listener(&self) -> &tokio::sync::Mutex<Option<PgListener>> {
        &self.listener
    }

    async fn fetch(
        &self,
        app: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, StoreError> {
        let row = sqlx::query_as!(
            SessionRow,
            r#"select application_id, id, subject_kind, subject_id, currency, network,
                      counterparty_kind, counterparty, invoice_created_at, invoice_expires_at,
                      invoice_amount_msat, tx_hash, force_verify_ownership, widget_url,
                      created_at, expires_at, consumed_at, cancelled_at,
                      order_id, order_status, order_event_id, order_updated_at
               from sessions where application_id = $1 and id = $2"#,
            app.as_uuid(),
            id.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.map(SessionRow::into_stored).transpose()
    }
}

/// The [`SessionRow`] of a reusable session read with every column optional (an outer join):
/// `$row`'s columns, for session `$id` of application `$app`; ACTIVE, so never consumed or
/// cancelled. (A macro: each query's row is its own anonymous type.)
macro_rules! session_row {
    ($app:expr, $id:expr, $row:expr) => {{
        let id = $id;
        let row = $row;
        let incomplete = || StoreError::Unexpected(format!("session {id}: incomplete row"));
        SessionRow {
            application_id: $app.as_uuid(),
            id,
            subject_kind: row.subject_kind.ok_or_else(incomplete)?,
            subject_id: row.subject_id.ok_or_else(incomplete)?,
            currency: row.currency.ok_or_else(incomplete)?,
            network: row.network.ok_or_else(incomplete)?,
            counterparty_kind: row.counterparty_kind.ok_or_else(incomplete)?,
            counterparty: row.counterparty.ok_or_else(incomplete)?,
            invoice_created_at: row.invoice_created_at,
            invoice_expires_at: row.invoice_expires_at,
            invoice_amount_msat: row.invoice_amount_msat,
            tx_hash: row.tx_hash,
            force_verify_ownership: row.force_verify_ownership.ok_or_else(incomplete)?,
            widget_url: row.widget_url.ok_or_else(incomplete)?,
            created_at: row.created_at.ok_or_else(incomplete)?,
            expires_at: row.expires_at.ok_or_else(incomplete)?,
            consumed_at: None,
            cancelled_at: None,
            // A reusable session was never opened, so no order was made in its widget.
            order_id: None,
            order_status: None,
            order_event_id: None,
            order_updated_at: None,
        }
    }};
}

#[async_trait]
impl SessionStore for PgSessionStore {
    #[instrument(skip_all, fields(application = %q.application))]
    async fn reuse_or_claim(&self, q: &ReuseQuery) -> Result<ReuseOutcome, StoreError> {
        // Most creates are reuses, so they get a light statement of their own: record the
        // request's signature (replay check; an unlogged table, nothing waits for a WAL
        // flush) and read the reusable session, in one round trip. Executing the full
        // statement below costs Postgres about 1.6 times as much (pgbench, 16 connections:
        // 11 000 against 18 000 statements per second), because every one of its CTEs is set
        // up on each execution. Only when there is no reusable session, or its flag must be
        // raised, does the full statement decide, atomically, with the signature already
        // recorded.
        let mut q = std::borrow::Cow::Borrowed(q);
        if let Some(nonce) = &q.nonce {
            let row = sqlx::query!(
                r#"with nonce as (
                       insert into request_nonces (application_id, signature, expires_at)
                       values ($1, $5, $6)
                       on conflict do nothing
                       returning 1
                   )
                   select exists(select 1 from nonce) as "fresh!",
                          s.id as "id?", s.subject_kind as "subject_kind?",
                          s.subject_id as "subject_id?", s.currency as "currency?",
                          s.network as "network?", s.counterparty_kind as "counterparty_kind?",
                          s.counterparty as "counterparty?",
                          s.invoice_created_at as "invoice_created_at?",
                          s.invoice_expires_at as "invoice_expires_at?",
                          s.invoice_amount_msat as "invoice_amount_msat?",
                          s.tx_hash as "tx_hash?",
                          s.force_verify_ownership as "force_verify_ownership?",
                          s.widget_url as "widget_url?", s.created_at as "created_at?",
                          s.expires_at as "expires_at?"
                   from (values (1)) as one (n)
                   left join sessions s
                     on s.application_id = $1
                    and s.id = (select session_id from reuse_slots
                                where application_id = $1 and reuse_key = $2 and claim is null)
                    and session_reusable(s.consumed_at, s.cancelled_at, s.expires_at, $3, $4)"#,
                q.application.as_uuid(),
                q.key.as_bytes().as_slice(),
                q.now,
                q.policy.must_live_until(q.now),
                nonce.signature.as_slice(),
                nonce.expires_at,
            )
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
            if !row.fresh {
                return Ok(ReuseOutcome::Replayed);
            }
            if let Some(id) = row.id
                && (row.force_verify_ownership == Some(true) || !q.force_verify_ownership)
            {
                let stored = session_row!(q.application, id, row);
                return Ok(ReuseOutcome::Reused(Box::new(stored.into_stored()?)));
            }
            q.to_mut().nonce = None;
        }
        let q = q.as_ref();

        // One statement, one round trip. It records the request's signature (replay check;
        // an unlogged table, so nothing waits for a WAL flush) and goes on only if it was not
        // recorded before. It reads the slot; if the slot is bound to a reusable session, it
        // raises the flag if asked (the UPDATE runs only when it changes something, so the
        // common reuse writes nothing durable and takes no row lock). Otherwise, if the slot
        // is free, it claims it.
        //
        // The session is looked up by its full primary key, with the id as a scalar subquery
        // (an InitPlan parameter), never as a join: a join lets the plan depend on statistics,
        // and a generic plan made while the tables were small then scans every session of the
        // application (a generic plan trap the plan test guards against). The plan test checks the generic plan
        // made on empty tables.
        //
        // The claim is a compare-and-swap against the slot as this statement saw it: the
        // ON CONFLICT branch sees the latest committed row, and changes it only if it is still
        // that row (same binding, same claim) and free. Otherwise nothing is written and the
        // caller asks again.
        //
        // Durability: a reuse writes nothing durable unless it upgrades the flag (then it
        // commits synchronously). A claim does not wait for the WAL flush
        // (`synchronous_commit` off for this transaction only): a claim lost in a crash makes
        // `fulfil` report ClaimLost and the key is claimed again, which is the lease
        // protocol's normal path.
        let nonce = q.nonce.as_ref();
        let row = sqlx::query!(
            r#"with nonce as (
                   insert into request_nonces (application_id, signature, expires_at)
                   select $1, $6, $7 where $6::bytea is not null
                   on conflict do nothing
                   returning 1
               ), fresh as (
                   select ($6::bytea is null or exists(select 1 from nonce)) as ok
               ), slot as (
                   select session_id, claim, claim_expires_at
                   from reuse_slots
                   where application_id = $1 and reuse_key = $2
               ), cand as (
                   select s.*
                   from sessions s
                   where (select ok from fresh)
                     and s.application_id = $1
                     and s.id = (select session_id from slot where claim is null)
                     and session_reusable(s.consumed_at, s.cancelled_at, s.expires_at, $3, $4)
               ), upgraded as (
                   update sessions s set force_verify_ownership = true
                   where $5 and s.application_id = $1
                     and s.id = (select id from cand where not force_verify_ownership)
                   returning s.id
               ), claimed as (
                   insert into reuse_slots as r (application_id, reuse_key, session_id, claim, claim_expires_at)
                   select $1, $2, null, $8, $9
                   where (select ok from fresh)
                     and not exists (select 1 from cand)
                     and not exists (select 1 from slot where claim_expires_at > $3)
                   on conflict (application_id, reuse_key) do update
                       set claim = excluded.claim, claim_expires_at = excluded.claim_expires_at
                       where r.session_id is not distinct from (select session_id from slot)
                         and r.claim is not distinct from (select claim from slot)
                         and (r.claim is null or r.claim_expires_at <= $3)
                   returning r.claim
               ), no_flush as (
                   select set_config('synchronous_commit', 'off', true) from claimed
               )
               select not (select ok from fresh) as "replayed!",
                      exists(select 1 from claimed) as "claimed!",
                      (select count(*) from no_flush) as "no_flush!",
                      (select count(*) from upgraded) as "upgraded!",
                      slot.claim_expires_at as "claim_expires_at?",
                      cand.id as "id?", cand.subject_kind as "subject_kind?",
                      cand.subject_id as "subject_id?", cand.currency as "currency?",
                      cand.network as "network?", cand.counterparty_kind as "counterparty_kind?",
                      cand.counterparty as "counterparty?",
                      cand.invoice_created_at as "invoice_created_at?",
                      cand.invoice_expires_at as "invoice_expires_at?",
                      cand.invoice_amount_msat as "invoice_amount_msat?",
                      cand.tx_hash as "tx_hash?",
                      (cand.force_verify_ownership or $5) as "force_verify_ownership?",
                      cand.widget_url as "widget_url?", cand.created_at as "created_at?",
                      cand.expires_at as "expires_at?"
               from (values (1)) as one (n)
                    left join slot on true left join cand on true"#,
            q.application.as_uuid(),
            q.key.as_bytes().as_slice(),
            q.now,
            q.policy.must_live_until(q.now),
            q.force_verify_ownership,
            nonce.map(|n| n.signature.to_vec()),
            nonce.map(|n| n.expires_at),
            q.claim.0,
            q.lease_until
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;

        if row.replayed {
            return Ok(ReuseOutcome::Replayed);
        }
        if row.claimed {
            return Ok(ReuseOutcome::Claimed);
        }
        let Some(id) = row.id else {
            return Ok(match row.claim_expires_at {
                Some(lease_until) if lease_until > q.now => ReuseOutcome::Pending { lease_until },
                _ => ReuseOutcome::Changed,
            });
        };
        let stored = session_row!(q.application, id, row);
        Ok(ReuseOutcome::Reused(Box::new(stored.into_stored()?)))
    }

    #[instrument(skip_all, fields(application = %application, session_id = %new.session.id()))]
    async fn fulfil(
        &self,
        application: ApplicationId,
        claim: ClaimToken,
        new: NewSession,
    ) -> Result<StoredSession, FulfilError> {
        if new.session.application_id() != application {
            return Err(FulfilError::Store(StoreError::Unexpected(
                "session belongs to another application".into(),
            )));
        }
        let s = &new.session;
        let c = SessionColumns::of(s.scope());
        // All or nothing, and only while the claim is ours: the slot update gates the inserts.
        let inserted = sqlx::query!(
            r#"with slot as (
                   update reuse_slots set session_id = $2, claim = null, claim_expires_at = null
                   where application_id = $1 and reuse_key = $3 and claim = $4
                   returning session_id
               ), ins as (
                   insert into sessions (application_id, id, reuse_key, subject_kind, subject_id,
                       currency, network, counterparty_kind, counterparty, invoice_created_at,
                       invoice_expires_at, invoice_amount_msat, tx_hash, force_verify_ownership,
                       widget_url, created_at, expires_at)
                   select $1, $2, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18
                   from slot
                   returning *
               ), event as (
                   select emit_session_event($1, $19, 'session.created', $17, to_jsonb(ins)) as n
                   from ins
               )
               select count(*) as "n!", (select count(*) from event) as "events!" from ins"#,
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
            new.event.as_uuid()
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| FulfilError::Store(store_error(e)))?;
        if inserted.n == 0 {
            return Err(FulfilError::ClaimLost);
        }
        Ok(StoredSession {
            session: new.session,
            widget_url: new.widget_url,
            order: None,
        })
    }

    #[instrument(skip_all, fields(application = %application))]
    async fn release(
        &self,
        application: ApplicationId,
        key: &ReuseKeyDigest,
        claim: ClaimToken,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"with gone as (
                   delete from reuse_slots
                   where application_id = $1 and reuse_key = $2 and claim = $3 and session_id is null
                   returning 1
               )
               update reuse_slots set claim = null, claim_expires_at = null
               where application_id = $1 and reuse_key = $2 and claim = $3 and session_id is not null"#,
            application.as_uuid(),
            key.as_bytes().as_slice(),
            claim.0
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
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
                sqlx::query_as!(
                    SessionRow,
                    r#"select application_id, id, subject_kind, subject_id, currency, network,
                          counterparty_kind, counterparty, invoice_created_at, invoice_expires_at,
                          invoice_amount_msat, tx_hash, force_verify_ownership, widget_url,
                          created_at, expires_at, consumed_at, cancelled_at,
                          order_id, order_status, order_event_id, order_updated_at
                   from sessions
                   where application_id = $1 and subject_kind = $2 and subject_id = $3
                     and id < coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
                     and ($5::text is null
                          or session_status(consumed_at, cancelled_at, expires_at, $6) = $5)
                   order by id desc
                   limit $7"#,
                    q.application.as_uuid(),
                    subject.kind(),
                    subject.id(),
                    before,
                    status,
                    q.now,
                    limit
                )
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query_as!(
                    SessionRow,
                    r#"select application_id, id, subject_kind, subject_id, currency, network,
                          counterparty_kind, counterparty, invoice_created_at, invoice_expires_at,
                          invoice_amount_msat, tx_hash, force_verify_ownership, widget_url,
                          created_at, expires_at, consumed_at, cancelled_at,
                          order_id, order_status, order_event_id, order_updated_at
                   from sessions
                   where application_id = $1
                     and id < coalesce($2::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
                     and ($3::text is null
                          or session_status(consumed_at, cancelled_at, expires_at, $4) = $3)
                   order by id desc
                   limit $5"#,
                    q.application.as_uuid(),
                    before,
                    status,
                    q.now,
                    limit
                )
                .fetch_all(&self.pool)
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
    ) -> Result<StoreCancel, StoreError> {
        // The cancel and its event in one statement. A session whose expiry was already
        // emitted stays expired (an instance whose clock runs behind may still see it ACTIVE);
        // `(… is null) is true` keeps the sweeper's partial index out of this point lookup
        // (see `launch`).
        let cancelled = sqlx::query_scalar!(
            r#"with upd as (
                   update sessions set cancelled_at = $3
                   where application_id = $1 and id = $2
                     and session_active(consumed_at, cancelled_at, expires_at, $3)
                     and (expired_event_at is null) is true
                   returning *
               ), event as (
                   select emit_session_event($1, $4, 'session.cancelled', $3, to_jsonb(upd)) as n
                   from upd
               )
               select upd.id as "id!" from upd, event"#,
            application.as_uuid(),
            id.as_uuid(),
            now,
            event.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .is_some();
        // Read back the row as it is now (a second round trip; cancel is not a hot path).
        let Some(stored) = self.fetch(application, id).await? else {
            return Ok(StoreCancel::NotFound);
        };
        Ok(if cancelled {
            StoreCancel::Cancelled(stored)
        } else if stored.session.status_at(now) == SessionStatus::Cancelled {
            StoreCancel::AlreadyCancelled(stored)
        } else {
            StoreCancel::NotActive(stored)
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
            return Ok(match self.fetch(application, id).await? {
                None => LaunchResult::Unknown,
                Some(s) if s.session.status_at(now) == SessionStatus::Active => {
                    LaunchResult::Opened(s)
                }
                Some(s) => LaunchResult::Ended(s),
            });
        }
        // One statement: consume if ACTIVE (and its expiry not emitted: an instance whose
        // clock runs behind may still see it ACTIVE) and write the `session.consumed` event
        // with it, else read the row as it is. The expiry check is written `(… is null) is
        // true` on purpose: as a plain `is null` it matches the predicate of the sweeper's
        // partial index, and a generic plan made on empty tables then reads the session
        // through that index by expiry instead of by its key (the plan test checks this). The read locks it (FOR SHARE) so that a launch
        // that lost a race sees the winner's committed change, not the row as it was when the
        // statement began.
        let row = sqlx::query_as!(
            LaunchRow,
            r#"with upd as (
                   update sessions s set consumed_at = $3
                   where s.application_id = $1 and s.id = $2
                     and session_active(s.consumed_at, s.cancelled_at, s.expires_at, $3)
                     and (s.expired_event_at is null) is true
                   returning s.*
               ), event as (
                   select emit_session_event($1, $4, 'session.consumed', $3, to_jsonb(upd)) as n
                   from upd
               ), cur as (
                   select * from sessions
                   where application_id = $1 and id = $2 and not exists (select 1 from upd)
                   for share
               )
               select true as "consumed!", application_id as "application_id!", id as "id!",
                      subject_kind as "subject_kind!", subject_id as "subject_id!",
                      currency as "currency!", network as "network!",
                      counterparty_kind as "counterparty_kind!", counterparty as "counterparty!",
                      invoice_created_at, invoice_expires_at, invoice_amount_msat, tx_hash,
                      force_verify_ownership as "force_verify_ownership!",
                      widget_url as "widget_url!", created_at as "created_at!",
                      expires_at as "expires_at!", consumed_at, cancelled_at
               from upd
               where (select count(*) from event) >= 0
               union all
               select false, application_id, id, subject_kind, subject_id, currency, network,
                      counterparty_kind, counterparty, invoice_created_at, invoice_expires_at,
                      invoice_amount_msat, tx_hash, force_verify_ownership, widget_url,
                      created_at, expires_at, consumed_at, cancelled_at
               from cur"#,
            application.as_uuid(),
            id.as_uuid(),
            now,
            event.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(LaunchResult::Unknown);
        };
        let consumed = row.consumed;
        let stored = row.into_session_row().into_stored()?;
        Ok(if consumed {
            LaunchResult::Opened(stored)
        } else {
            LaunchResult::Ended(stored)
        })
    }

    #[instrument(skip_all, fields(order_event = %update.event_id))]
    async fn record_order(&self, update: &OrderUpdate) -> Result<OrderOutcome, StoreError> {
        // One statement: record the (order, event) once; the first time, if it names one of
        // our sessions whose link was opened, set the session's order — unless a final status would be
        // replaced by a late non-final one (domain::order_update_applies) — and write its
        // event.
        // The webhook names the session without its application: the session is looked up
        // by its primary key under each application (a probe per application, rare and
        // cheap), so no index on the id alone slows every session write.
        let finals: Vec<String> = domain::FINAL_ORDER_STATUSES
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let row = sqlx::query!(
            r#"with seen as (
                   insert into transak_order_events (order_id, event_id, status, partner_order_id,
                       application_id, session_id, received_at)
                   select $1, $2, $3, $4, s.application_id, s.id, $6
                   from (values (1)) as one (n)
                   left join (
                       select s.application_id, s.id
                       from applications a
                       cross join lateral (
                           -- `offset 0` keeps this a probe per application by the primary
                           -- key (a subquery the planner cannot flatten into a join that
                           -- might scan the key's index for the id alone).
                           select s.application_id, s.id from sessions s
                           where s.application_id = a.id and s.id = $5::uuid
                             and s.consumed_at is not null
                           offset 0
                       ) s
                   ) s on true
                   on conflict do nothing
                   returning application_id, session_id
               ), upd as (
                   update sessions s
                   set order_id = $1, order_status = $3, order_event_id = $2, order_updated_at = $6
                   -- `seen` has one row at most: its key, as parameters of a key lookup.
                   where s.application_id = (select application_id from seen)
                     and s.id = (select session_id from seen)
                     and not (coalesce(s.order_status = any($8::text[]), false)
                              and not ($3 = any($8::text[])))
                   returning s.*
               ), event as (
                   select emit_session_event(upd.application_id, $7, 'session.order_updated', $6,
                                             to_jsonb(upd)) as n
                   from upd
               )
               select exists(select 1 from seen) as "recorded!",
                      exists(select 1 from seen where session_id is not null) as "matched!",
                      (select to_jsonb(upd)::text from upd) as "session?",
                      (select count(*) from event) as "events!""#,
            update.order_id,
            update.event_id,
            update.status,
            update.partner_order_id,
            update.session.map(|s| s.as_uuid()),
            update.received_at,
            update.event.as_uuid(),
            &finals
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        if !row.recorded {
            return Ok(OrderOutcome::Duplicate);
        }
        match (row.matched, row.session) {
            (true, Some(json)) => {
                let session: SessionRow = serde_json::from_str(&json).map_err(|_| {
                    StoreError::Unexpected("the updated session could not be read".into())
                })?;
                Ok(OrderOutcome::Updated(Box::new(session.into_stored()?)))
            }
            (true, None) => Ok(OrderOutcome::Stale),
            (false, _) => Ok(OrderOutcome::Unmatched),
        }
    }

    async fn unmatched_orders(&self, limit: u32) -> Result<Vec<UnmatchedOrder>, StoreError> {
        let rows = sqlx::query!(
            r#"select order_id, event_id, status, partner_order_id, received_at
               from transak_order_events
               where session_id is null
               order by received_at desc
               limit $1"#,
            i64::from(limit)
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|r| UnmatchedOrder {
                order_id: r.order_id,
                event_id: r.event_id,
                status: r.status,
                partner_order_id: r.partner_order_id,
                received_at: r.received_at,
            })
            .collect())
    }

    #[instrument(skip_all, fields(application = %nonce.application))]
    async fn remember_request(&self, nonce: &RequestNonce) -> Result<bool, StoreError> {
        // Unlogged table (the commit does not wait for a WAL flush), unless the request must
        // be remembered across a crash. A signature covers the method, so one signature is
        // always recorded in the same table.
        let inserted = if nonce.durable {
            sqlx::query_scalar!(
                r#"insert into request_nonces_durable (application_id, signature, expires_at)
                   values ($1, $2, $3)
                   on conflict do nothing
                   returning 1 as "one!""#,
                nonce.application.as_uuid(),
                nonce.signature.as_slice(),
                nonce.expires_at
            )
            .fetch_optional(&self.pool)
            .await
        } else {
            sqlx::query_scalar!(
                r#"insert into request_nonces (application_id, signature, expires_at)
                   values ($1, $2, $3)
                   on conflict do nothing
                   returning 1 as "one!""#,
                nonce.application.as_uuid(),
                nonce.signature.as_slice(),
                nonce.expires_at
            )
            .fetch_optional(&self.pool)
            .await
        }
        .map_err(store_error)?;
        Ok(inserted.is_some())
    }

    #[instrument(skip_all)]
    async fn forget_requests(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = sqlx::query_scalar!(
            r#"with a as (delete from request_nonces where expires_at < $1 returning 1),
                    b as (delete from request_nonces_durable where expires_at < $1 returning 1)
               select (select count(*) from a) + (select count(*) from b) as "n!""#,
            before
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    #[instrument(skip_all)]
    #[instrument(skip_all, fields(batch = events.len()))]
    async fn sweep_expired(
        &self,
        now: DateTime<Utc>,
        events: &[EventId],
    ) -> Result<u64, StoreError> {
        // Marks and emits in one statement; rows another sweeper holds are skipped (it emits
        // them), and a row marked since this statement began no longer qualifies when
        // re-checked after its lock: one `session.expired` per session, however many
        // sweepers run.
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
                   update sessions s set expired_event_at = $1
                   from due
                   where s.application_id = due.application_id and s.id = due.id
                   returning s.*
               ), numbered as (
                   select upd.application_id as app, row_number() over () as n, to_jsonb(upd) as row
                   from upd
               )
               select count(emit_session_event(app, ($2::uuid[])[n], 'session.expired', $1, row)) as "n!"
               from numbered"#,
            now,
            &ids
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge(&self, ended_before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        // A batch job, not a point lookup: its joins are left to the planner, but planned for
        // the tables as they are now, never from a generic plan cached on this pooled
        // connection while they were small (a generic plan trap the plan test guards against). Hence its own
        // transaction with custom plans (two more round trips per batch, off the hot path).
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query_scalar!(
            r#"select set_config('plan_cache_mode', 'force_custom_plan', true) as "setting!""#
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let n = sqlx::query!(
            r#"with doomed as (
                   select application_id, id, reuse_key from sessions
                   where coalesce(consumed_at, cancelled_at, expires_at) < $1
                   order by coalesce(consumed_at, cancelled_at, expires_at)
                   limit $2
                   for update skip locked
               ), vacated as (
                   delete from reuse_slots r using doomed d
                   where r.application_id = d.application_id and r.reuse_key = d.reuse_key
                     and r.session_id = d.id and r.claim is null
                   returning 1
               ), unbound as (
                   update reuse_slots r set session_id = null
                   from doomed d
                   where r.application_id = d.application_id and r.reuse_key = d.reuse_key
                     and r.session_id = d.id and r.claim is not null
                   returning 1
               ), deleted as (
                   delete from sessions s using doomed d
                   where s.application_id = d.application_id and s.id = d.id
                   returning 1
               ), events as (
                   delete from session_events e using doomed d
                   where e.session_id = d.id and e.application_id = d.application_id
                   returning e.application_id, e.id
               ), deliveries as (
                   delete from webhook_deliveries w using events e
                   where w.application_id = e.application_id and w.event_id = e.id
                   returning 1
               ), orders as (
                   -- Order events by age (matched or not: a matched one is never younger
                   -- than its session's end), a batch at a time, by received_at's index.
                   delete from transak_order_events o
                   where (o.order_id, o.event_id) in (
                       select order_id, event_id from transak_order_events
                       where received_at < $1
                       order by received_at
                       limit $2)
                   returning 1
               )
               select count(*) as "n!",
                      (select count(*) from events) + (select count(*) from deliveries)
                          + (select count(*) from orders) as "events!"
               from deleted"#,
            ended_before,
            i64::from(limit)
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(u64::try_from(n.n).unwrap_or(0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar!("select 1 as \"one!\"")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
