-- no-transaction
-- What the sessions' retention still has to purge, by when the session ended: every session
-- but those kept for their travel-rule records whose events are already gone. The purge
-- reads through it, so it never walks over years of kept sessions. Built concurrently (no
-- lock that blocks sessions); `sessions_by_end`, which the previous version's purge reads,
-- is dropped in a later release.
create index concurrently sessions_to_purge_by_end on sessions
    ((coalesce(consumed_at, cancelled_at, expires_at)), application_id)
    where not (travel_rule_kept and events_purged);
