-- The upstream widget URL carries Transak's `sessionId`, a bearer: it is kept only while
-- the session can still be launched. Consuming, cancelling or recording the expiry of a
-- session clears it (to the empty string: the column stays not null, so the previous
-- version, which reads it as text, keeps reading these rows during a rollout or after a
-- rollback), and no event's copy of a session holds it (the same empty string).

create or replace function emit_session_event(p_application uuid, p_event uuid, p_type text,
                                              p_at timestamptz, p_session jsonb)
returns integer
language plpgsql volatile
as $$
declare
    written integer;
begin
    insert into session_events (application_id, id, session_id, type, created_at, session)
    values (p_application, p_event, (p_session ->> 'id')::uuid, p_type, p_at,
            p_session || jsonb_build_object('widget_url', ''));
    insert into webhook_deliveries (application_id, event_id, endpoint_id, next_attempt_at)
    select p_application, p_event, e.id, p_at
    from webhook_endpoints e
    where e.application_id = p_application
      and (cardinality(e.event_types) = 0 or p_type = any (e.event_types));
    get diagnostics written = row_count;
    if written > 0 then
        perform pg_notify('widget_sessions_deliveries', '');
    end if;
    return written;
end
$$;
