-- no-transaction
-- Sessions kept for their travel-rule records, by when they ended: the purge finds those
-- past the travel-rule retention through it. Built concurrently (no lock that blocks
-- sessions).
create index concurrently sessions_kept_by_end on sessions
    ((coalesce(consumed_at, cancelled_at, expires_at)), application_id)
    where travel_rule_kept;
