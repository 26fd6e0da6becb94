-- The hosted travel-rule step (contract §11): an application's setting, snapshotted on each
-- session when it is created, like the proof policy. `frame_ancestors` holds the origins
-- allowed to frame the page, separated by one space; empty for any origin.
alter table applications
    add column hosted_travel_rule boolean not null default false,
    add column frame_ancestors text not null default '';

alter table sessions
    add column hosted_travel_rule boolean not null default false,
    add column frame_ancestors text not null default '';

-- Whether a launch link shows the travel-rule page instead of opening the widget
-- (`Session::hosted_step_pending` in the domain, checked against it by a conformance
-- test): the step is on and the record is not COMPLETE. A consuming launch does not consume
-- such a session.
create function hosted_step_pending(hosted boolean, declaration jsonb, proof_verified boolean,
                                    force_verify_ownership boolean, policy text)
returns boolean language sql immutable parallel safe
as $$ select hosted and travel_rule_status(declaration, proof_verified, force_verify_ownership,
                                           policy) <> 'COMPLETE' $$;

-- The session row as the adapter reads it from this version on: `session_row_v2` and the
-- hosted step (see `session_row_v1` for why the type is versioned).
create type session_row_v3 as (
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
    order_updated_at        timestamptz,
    proof_policy            text,
    challenge               text,
    invoice_payee           text,
    declaration             jsonb,
    declared_at             timestamptz,
    declaration_source      text,
    proof_method            text,
    proof_verified_at       timestamptz,
    hosted_travel_rule      boolean,
    frame_ancestors         text
);

create function session_row_v3(s sessions)
returns session_row_v3 language sql immutable parallel safe
as $$ select row(s.application_id, s.id, s.subject_kind, s.subject_id, s.currency, s.network,
                 s.counterparty_kind, s.counterparty, s.invoice_created_at,
                 s.invoice_expires_at, s.invoice_amount_msat, s.tx_hash,
                 s.force_verify_ownership, s.widget_url, s.created_at, s.expires_at,
                 s.consumed_at, s.cancelled_at, s.expired_event_at, s.order_id,
                 s.order_status, s.order_event_id, s.order_updated_at, s.proof_policy,
                 s.challenge, s.invoice_payee, s.declaration, s.declared_at,
                 s.declaration_source, s.proof_method, s.proof_verified_at,
                 s.hosted_travel_rule, s.frame_ancestors)::session_row_v3 $$;
