//! `reuse_slots`: the create path's claim protocol (see [`ports::SessionStore`]): the hot
//! statements that reuse a key's session or claim the key, and the release of a claim.

use domain::{ApplicationId, EventType, ReuseKeyDigest, upgrade_flag};
use ports::{ClaimToken, ReuseOutcome, ReuseQuery, StoreError};
use tracing::instrument;

use crate::error::store_error;
use crate::rows::SessionRow;
use crate::store::PgStore;

/// A statement of the create path: it first records the request's signature in the request
/// log (`$1` the application, `$5` the signature or null, `$6` the end of its window; an
/// unlogged table, so nothing waits for a WAL flush; and only when the log remembers since
/// before the request was signed: see [`PgStore::request_refused`]), then goes on with
/// `$rest`. Both
/// statements of the create path share this one insert (a macro: sqlx checks each
/// statement's whole text at compile time, so the shared part must be a literal).
macro_rules! recording_the_request {
    ($rest:literal, $($arg:expr),* $(,)?) => {
        sqlx::query!(
            "with nonce as (
                 insert into request_nonces (application_id, signature, expires_at)
                 select $1, n.signature, $6 from (select $5::bytea as signature) n
                 where n.signature is not null
                   and $6 > (select remembers_after from request_log_epoch)
                 on conflict do nothing
                 returning 1
             )" + $rest,
            $($arg),*
        )
    };
}

impl PgStore {
    /// [`ports::SessionStore::reuse_or_claim`].
    #[instrument(skip_all, fields(application = %q.application))]
    pub(crate) async fn reuse_or_claim(&self, q: &ReuseQuery) -> Result<ReuseOutcome, StoreError> {
        // Most creates are reuses, so they get a light statement of their own: record the
        // request's signature (replay check) and read the reusable session, in one round
        // trip. Executing the full statement below costs Postgres about 1.6 times as much
        // (pgbench, 16 connections: 11 000 against 18 000 statements per second), because
        // every one of its CTEs is set up on each execution. Only when there is no reusable
        // session, or its flag must be raised, does the full statement decide, atomically,
        // with the signature already recorded.
        // Both statements run on one connection: sqlx pings a connection each time it goes
        // back to the pool, so a create that falls through pays that round trip once.
        let mut conn = self.pool().acquire().await.map_err(store_error)?;
        let mut q = std::borrow::Cow::Borrowed(q);
        if let Some(nonce) = &q.nonce {
            let row = recording_the_request!(
                r#"
                   select exists(select 1 from nonce) as "fresh!",
                          (select session_row_v3(s) from sessions s
                           where s.application_id = $1
                             and s.id = (select session_id from reuse_slots
                                         where application_id = $1 and reuse_key = $2
                                           and claim is null)
                             and session_reusable(s.consumed_at, s.cancelled_at,
                                                  s.expired_event_at, s.expires_at, $3, $4))
                              as "session?: SessionRow""#,
                q.application.as_uuid(),
                q.key.as_bytes().as_slice(),
                q.now,
                q.policy.must_live_until(q.now),
                Some(nonce.signature.as_slice()),
                nonce.expires_at,
            )
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
            if !row.fresh {
                drop(conn); // back to the pool before the marker check takes one
                self.request_refused().await;
                return Ok(ReuseOutcome::Replayed);
            }
            if let Some(session) = row.session
                && upgrade_flag(session.force_verify_ownership, q.force_verify_ownership)
                    == session.force_verify_ownership
            {
                return Ok(ReuseOutcome::Reused(Box::new(session.into_stored()?)));
            }
            q.to_mut().nonce = None;
        }
        let q = q.as_ref();

        // One statement, one round trip. It records the request's signature (unless the
        // light statement above did) and goes on only if it was not recorded before. It
        // reads the slot; if the slot is bound to a reusable session, it raises the flag if
        // asked (the UPDATE runs only when it changes something, so the common reuse writes
        // nothing durable and takes no row lock). Otherwise, if the slot is free, it claims
        // it.
        //
        // The session is looked up by its full primary key, with the id as a scalar subquery
        // (an InitPlan parameter), never as a join: a join lets the plan depend on
        // statistics, and a generic plan made while the tables were small then scans every
        // session of the application (a generic plan trap the plan test guards against).
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
        let row = recording_the_request!(
            r#", fresh as (
                   select ($5::bytea is null or exists(select 1 from nonce)) as ok
               ), slot as (
                   select session_id, claim, claim_expires_at
                   from reuse_slots
                   where application_id = $1 and reuse_key = $2
               ), cand as (
                   select s
                   from sessions s
                   where (select ok from fresh)
                     and s.application_id = $1
                     and s.id = (select session_id from slot where claim is null)
                     and session_reusable(s.consumed_at, s.cancelled_at, s.expired_event_at,
                                          s.expires_at, $3, $4)
               ), upgraded as (
                   update sessions s
                   set force_verify_ownership = upgrade_flag(s.force_verify_ownership, $7)
                   where s.application_id = $1
                     and s.id = (select (c.s).id from cand c
                                 where upgrade_flag((c.s).force_verify_ownership, $7)
                                       <> (c.s).force_verify_ownership)
                     -- Checked again on the row as it is after a concurrent upgrade: only
                     -- the call that raises the flag writes (and announces a reopening).
                     and upgrade_flag(s.force_verify_ownership, $7) <> s.force_verify_ownership
                   returning s
               ), reopened as (
                   -- The raised flag moved a complete travel-rule record back to awaiting a
                   -- proof (`TravelRuleRecord::reopened_by`).
                   select emit_session_event($1, $10, $11, $3, to_jsonb(u.s)) as n
                   from upgraded u
                   where travel_rule_status((u.s).declaration, (u.s).proof_verified_at is not null,
                                            false, (u.s).proof_policy) = 'COMPLETE'
                     and travel_rule_status((u.s).declaration, (u.s).proof_verified_at is not null,
                                            true, (u.s).proof_policy) = 'AWAITING_PROOF'
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
                      (select count(*) from upgraded) + (select count(*) from reopened)
                          as "upgraded!",
                      slot.claim_expires_at as "claim_expires_at?",
                      (select session_row_v3(c.s) from cand c) as "session?: SessionRow"
               from (values (1)) as one (n)
                    left join slot on true left join cand on true"#,
            q.application.as_uuid(),
            q.key.as_bytes().as_slice(),
            q.now,
            q.policy.must_live_until(q.now),
            nonce.map(|n| n.signature.as_slice()),
            nonce.map(|n| n.expires_at),
            q.force_verify_ownership,
            q.claim.0,
            q.lease_until,
            q.reopened_event.as_uuid(),
            EventType::SessionTravelRuleReopened.as_str()
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(store_error)?;
        drop(conn);

        if row.replayed {
            self.request_refused().await;
            return Ok(ReuseOutcome::Replayed);
        }
        if row.claimed {
            return Ok(ReuseOutcome::Claimed);
        }
        let Some(session) = row.session else {
            return Ok(match row.claim_expires_at {
                Some(lease_until) if lease_until > q.now => ReuseOutcome::Pending { lease_until },
                _ => ReuseOutcome::Changed,
            });
        };
        // The row as the statement read it, before its own upgrade: apply the same rule.
        let mut stored = session.into_stored()?;
        stored
            .session
            .request_force_verify_ownership(q.force_verify_ownership);
        Ok(ReuseOutcome::Reused(Box::new(stored)))
    }

    /// [`ports::SessionStore::release`].
    #[instrument(skip_all, fields(application = %application))]
    pub(crate) async fn release(
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
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
