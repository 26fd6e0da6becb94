-- The session lifecycle rules, defined once for every statement that needs them.
--
-- They mirror the domain crate (`Session::status_at`, `ReusePolicy::decide`); the conformance
-- suite's property test checks that the Postgres store and the domain agree on random
-- sessions, instants and policies. Plain SQL functions: the planner inlines them, so
-- statements plan exactly as if the expressions were written out.

-- ACTIVE at `at`: neither consumed nor cancelled, and not yet expired (expiry is inclusive).
create function session_active(consumed_at timestamptz, cancelled_at timestamptz,
                               expires_at timestamptz, at timestamptz)
returns boolean language sql immutable parallel safe
as $$ select consumed_at is null and cancelled_at is null and expires_at > at $$;

-- The status at `at`: an action-ended status wins, then the clock.
create function session_status(consumed_at timestamptz, cancelled_at timestamptz,
                               expires_at timestamptz, at timestamptz)
returns text language sql immutable parallel safe
as $$ select case when consumed_at is not null then 'CONSUMED'
                  when cancelled_at is not null then 'CANCELLED'
                  when expires_at <= at then 'EXPIRED'
                  else 'ACTIVE' end $$;

-- Reusable at `at`: ACTIVE and living until at least `must_live_until`
-- (`ReusePolicy::must_live_until`: `at` plus the least remaining life for reuse).
create function session_reusable(consumed_at timestamptz, cancelled_at timestamptz,
                                 expires_at timestamptz, at timestamptz,
                                 must_live_until timestamptz)
returns boolean language sql immutable parallel safe
as $$ select session_active(consumed_at, cancelled_at, expires_at, at)
             and expires_at >= must_live_until $$;
