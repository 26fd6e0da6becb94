-- The session lifecycle rules with the recorded expiry, the forceVerifyOwnership upgrade and
-- the order-status precedence, each defined once for every statement that needs it, and the
-- session row as the adapter reads it.
--
-- Each function mirrors one function of the domain crate, and a conformance property test
-- checks that the Postgres store agrees with the domain for random inputs:
--   session_active / session_status / session_reusable   Session::status_at, ReusePolicy::decide
--   upgrade_flag                                          domain::upgrade_flag
--   order_update_applies                                  domain::order_update_applies
-- Plain SQL functions: the planner inlines them, so statements plan as if the expressions
-- were written out. Additive: the four-argument versions of the first three stay for
-- instances of the previous version during a rolling upgrade.

-- ACTIVE at `at`: neither consumed nor cancelled, its expiry not recorded, and not yet
-- expired by the clock (expiry is inclusive). A recorded expiry wins over a clock that runs
-- behind. The recorded-expiry test is written `(… is null) is true` on purpose: as a plain
-- `is null` the three null tests match the predicate of the sweeper's partial index
-- `sessions_awaiting_expiry`, and a generic plan made on empty tables would then read a
-- session through that index by expiry instead of by its key.
create function session_active(consumed_at timestamptz, cancelled_at timestamptz,
                               expired_event_at timestamptz, expires_at timestamptz,
                               at timestamptz)
returns boolean language sql immutable parallel safe
as $$ select consumed_at is null and cancelled_at is null
             and (expired_event_at is null) is true and expires_at > at $$;

-- The status at `at`: a recorded end wins (consumed, cancelled, expiry recorded), then the
-- clock.
create function session_status(consumed_at timestamptz, cancelled_at timestamptz,
                               expired_event_at timestamptz, expires_at timestamptz,
                               at timestamptz)
returns text language sql immutable parallel safe
as $$ select case when consumed_at is not null then 'CONSUMED'
                  when cancelled_at is not null then 'CANCELLED'
                  when expired_event_at is not null or expires_at <= at then 'EXPIRED'
                  else 'ACTIVE' end $$;

-- Reusable at `at`: ACTIVE and living until at least `must_live_until`
-- (`ReusePolicy::must_live_until`: `at` plus the least remaining life for reuse).
create function session_reusable(consumed_at timestamptz, cancelled_at timestamptz,
                                 expired_event_at timestamptz, expires_at timestamptz,
                                 at timestamptz, must_live_until timestamptz)
returns boolean language sql immutable parallel safe
as $$ select session_active(consumed_at, cancelled_at, expired_event_at, expires_at, at)
             and expires_at >= must_live_until $$;

-- forceVerifyOwnership is upgrade-only: a requested `true` raises the stored flag, a `false`
-- never lowers it.
create function upgrade_flag(stored boolean, requested boolean)
returns boolean language sql immutable parallel safe
as $$ select stored or requested $$;

-- Whether an order event's status may replace the order's current one: the last received
-- wins, except that a final status is never replaced by one that is not final. The final
-- statuses are the domain's (`OrderStatus::is_final`), passed by the caller.
create function order_update_applies(current_status text, incoming text,
                                     final_statuses text[])
returns boolean language sql immutable parallel safe
as $$ select not (coalesce(current_status = any (final_statuses), false)
                  and not (incoming = any (final_statuses))) $$;

-- The session row as the adapter reads it (its `SessionRow`, field for field): one
-- definition of the columns, so that no statement spells them out. Not strict (so that the
-- planner inlines it): given no row, it makes a row of nulls, so a statement that may have
-- no session reads it through a scalar subquery, which gives null. Versioned: a migration
-- that adds a column the adapter reads adds `session_row_v2` (type and function) beside
-- this one, which instances of the previous version keep using during a rolling upgrade.
create type session_row_v1 as (
    application_id          uuid,
    id                      uuid,
    subject_kind            text,
    subject_id              uuid,
    currency                text,
    network                 text,
    counterparty_kind       text,
    counterparty            text,
    invoice_created_at      timestamptz,
    invoice_expires_at      timestamptz,
    invoice_amount_msat     bigint,
    tx_hash                 text,
    force_verify_ownership  boolean,
    widget_url              text,
    created_at              timestamptz,
    expires_at              timestamptz,
    consumed_at             timestamptz,
    cancelled_at            timestamptz,
    expired_event_at        timestamptz,
    order_id                text,
    order_status            text,
    order_event_id          text,
    order_updated_at        timestamptz
);

create function session_row_v1(s sessions)
returns session_row_v1 language sql immutable parallel safe
as $$ select row(s.application_id, s.id, s.subject_kind, s.subject_id, s.currency, s.network,
                 s.counterparty_kind, s.counterparty, s.invoice_created_at,
                 s.invoice_expires_at, s.invoice_amount_msat, s.tx_hash,
                 s.force_verify_ownership, s.widget_url, s.created_at, s.expires_at,
                 s.consumed_at, s.cancelled_at, s.expired_event_at, s.order_id,
                 s.order_status, s.order_event_id, s.order_updated_at)::session_row_v1 $$;

-- Records an accepted request's signature in the request log (the unlogged table, or the
-- logged one for requests that must be refused after a crash too); false when it was there
-- already (a replay). The create path records its request inside its own statement instead.
create function remember_request(p_application uuid, p_signature bytea,
                                 p_expires_at timestamptz, p_durable boolean)
returns boolean language plpgsql volatile
as $$
begin
    if p_durable then
        insert into request_nonces_durable (application_id, signature, expires_at)
        values (p_application, p_signature, p_expires_at)
        on conflict do nothing;
    else
        insert into request_nonces (application_id, signature, expires_at)
        values (p_application, p_signature, p_expires_at)
        on conflict do nothing;
    end if;
    return found;
end
$$;
