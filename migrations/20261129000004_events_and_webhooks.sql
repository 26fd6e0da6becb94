-- Session lifecycle events (a transactional outbox) and their delivery to partners'
-- webhook endpoints. Additive: earlier versions neither read nor write these tables (events
-- start with the version that writes them).

create table webhook_endpoints (
    application_id          uuid        not null references applications (id),
    id                      uuid        not null,
    url                     text        not null check (length(url) between 1 and 2048),
    -- Empty: every event type.
    event_types             text[]      not null default '{}',
    secret_key_id           text        not null,
    secret_sealed           bytea       not null,
    -- The secret a rotation replaced: deliveries are signed with it too until
    -- previous_secret_until.
    previous_secret_key_id  text,
    previous_secret_sealed  bytea,
    previous_secret_until   timestamptz,
    created_at              timestamptz not null,
    primary key (application_id, id),
    check ((previous_secret_sealed is null) = (previous_secret_until is null))
);

-- One row per event; `session` is the session's row as it was right after the change.
create table session_events (
    application_id  uuid        not null,
    id              uuid        not null,
    session_id      uuid        not null,
    type            text        not null check (type in ('session.created', 'session.consumed',
                        'session.cancelled', 'session.expired', 'session.order_updated')),
    created_at      timestamptz not null,
    session         jsonb       not null,
    primary key (application_id, id)
);
create index session_events_by_session on session_events (session_id, application_id, id);

-- One row per (event, endpoint it was addressed to).
create table webhook_deliveries (
    application_id   uuid        not null,
    event_id         uuid        not null,
    endpoint_id      uuid        not null,
    status           text        not null default 'PENDING'
                         check (status in ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         integer     not null default 0 check (attempts >= 0),
    last_status_code integer,
    last_attempt_at  timestamptz,
    last_error       text,
    next_attempt_at  timestamptz,
    lease_owner      uuid,
    lease_until      timestamptz,
    primary key (application_id, event_id, endpoint_id),
    check ((status = 'PENDING') = (next_attempt_at is not null))
);
-- The delivery workers' queue: pending deliveries by when they are due.
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at)
    where status = 'PENDING';

-- When a session's `session.expired` was emitted (once per session). Sessions that had
-- already expired before this version emit none.
alter table sessions add column expired_event_at timestamptz;
update sessions set expired_event_at = expires_at
    where consumed_at is null and cancelled_at is null and expires_at <= now();
-- The expiry sweeper's queue: ACTIVE-or-expired sessions without their event yet.
create index sessions_awaiting_expiry on sessions (expires_at)
    where consumed_at is null and cancelled_at is null and expired_event_at is null;

-- Writes an event and one delivery per endpoint of the application that receives its type,
-- and wakes the delivery workers (LISTEN widget_sessions_deliveries) when it wrote any; the
-- number of deliveries. Called from the statement that makes the change, so that the event
-- commits (or not) with it.
create function emit_session_event(p_application uuid, p_event uuid, p_type text,
                                   p_at timestamptz, p_session jsonb)
returns integer
language plpgsql volatile
as $$
declare
    written integer;
begin
    insert into session_events (application_id, id, session_id, type, created_at, session)
    values (p_application, p_event, (p_session ->> 'id')::uuid, p_type, p_at, p_session);
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
