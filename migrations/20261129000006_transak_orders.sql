-- The customer's order in the Transak widget, as Transak's order webhooks report it
-- (`POST /webhooks/transak`). Additive.

-- The session's order: null until Transak reports one.
alter table sessions
    add column order_id         text,
    add column order_status     text,
    add column order_event_id   text,
    add column order_updated_at timestamptz;
-- Not validated: the columns were just added, all null, so every existing row satisfies it
-- (validating would scan the table under this statement's exclusive lock); new and updated
-- rows are checked.
alter table sessions
    add constraint sessions_order_complete check (
        (order_id is null) = (order_status is null)
        and (order_id is null) = (order_event_id is null)
        and (order_id is null) = (order_updated_at is null)) not valid;

-- Every order event received, once per (order, event type): a repeat is acknowledged and
-- changes nothing. Unmatched ones (no such session) stay visible to operators; retention
-- deletes them with the rest.
create table transak_order_events (
    order_id        text        not null check (length(order_id) between 1 and 200),
    event_id        text        not null check (length(event_id) between 1 and 100),
    status          text        not null check (length(status) between 1 and 100),
    partner_order_id text       check (length(partner_order_id) <= 200),
    application_id  uuid,
    session_id      uuid,
    received_at     timestamptz not null,
    primary key (order_id, event_id)
);
create index transak_order_events_by_time on transak_order_events (received_at);
