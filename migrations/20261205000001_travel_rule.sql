-- The travel-rule record of a session: the customer's declaration about the counterparty and
-- the proof that the customer controls a self-hosted wallet, with the compliance records
-- kept for them. Additive: instances of the previous version neither read nor write these
-- columns and tables.

-- An application's ownership-proof policy (`ALWAYS` or `WHEN_FORCED`).
alter table applications
    add column ownership_proof_policy text not null default 'WHEN_FORCED'
        check (ownership_proof_policy in ('ALWAYS', 'WHEN_FORCED'));

-- The record's facts on the session row, so that every read of a session (the reuse
-- statement's too) has them without another query. The status is never stored: the domain
-- derives it (`Session::travel_rule_status`), and the SQL function `travel_rule_status`
-- below where a statement must.
alter table sessions
    -- The application's policy when the session was created.
    add column proof_policy text not null default 'WHEN_FORCED'
        check (proof_policy in ('ALWAYS', 'WHEN_FORCED')),
    -- The ownership challenge, rendered when the session was created; null when the
    -- counterparty cannot sign (a bare payment hash, a script address).
    add column challenge text check (length(challenge) between 1 and 240),
    -- The payee node of an invoice counterparty (66 lower-case hex), whose signmessage
    -- proves control of the invoice.
    add column invoice_payee text check (invoice_payee ~ '^0[23][0-9a-f]{64}$'),
    -- The current declaration (every version is in travel_rule_declarations).
    add column declaration jsonb,
    add column declared_at timestamptz,
    add column declaration_source text check (declaration_source in ('API', 'HOSTED')),
    -- The verified proof (its message and signature are in ownership_proofs).
    add column proof_method text,
    add column proof_verified_at timestamptz,
    -- Compliance records exist for this session: retention keeps it (and them) for the
    -- travel-rule retention, whatever the sessions' retention says.
    add column travel_rule_kept boolean not null default false;

-- Not validated: the columns were just added, all null, so every existing row satisfies it
-- (validating would scan the table under this statement's exclusive lock).
alter table sessions
    add constraint sessions_declaration_complete check (
        (declaration is null) = (declared_at is null)
        and (declaration is null) = (declaration_source is null)) not valid,
    add constraint sessions_proof_complete check (
        (proof_method is null) = (proof_verified_at is null)) not valid;

-- Every version of every declaration, as recorded (`API` or `HOSTED`). A declaration carried
-- over from an earlier session of the same reuse key names that session.
create table travel_rule_declarations (
    application_id  uuid        not null,
    session_id      uuid        not null,
    version         integer     not null check (version >= 1),
    declaration     jsonb       not null,
    source          text        not null check (source in ('API', 'HOSTED')),
    declared_at     timestamptz not null,
    carried_from    uuid,
    primary key (application_id, session_id, version)
);

-- The verified ownership proof of a session: what was signed, by which address, how, and
-- the signature, so that it can be verified again from the record alone.
create table ownership_proofs (
    application_id  uuid        not null,
    session_id      uuid        not null,
    method          text        not null,
    address         text        not null,
    message         text        not null check (length(message) between 1 and 240),
    signature       text        not null check (length(signature) between 1 and 4096),
    verified_at     timestamptz not null,
    carried_from    uuid,
    primary key (application_id, session_id)
);

-- Proofs that were refused: when, and why (`signature_malformed`, `signature_mismatch`).
create table ownership_proof_attempts (
    application_id  uuid        not null,
    session_id      uuid        not null,
    id              uuid        not null,
    attempted_at    timestamptz not null,
    code            text        not null,
    primary key (application_id, session_id, id)
);

-- The event types (the one place SQL names them; statements pass a type as a parameter).
alter table session_events drop constraint session_events_type_check;
alter table session_events
    add constraint session_events_type_check check (type in ('session.created',
        'session.consumed', 'session.cancelled', 'session.expired', 'session.order_updated',
        'session.declaration_recorded', 'session.ownership_verified',
        'session.travel_rule_completed', 'session.travel_rule_reopened')) not valid;

-- The record's status (`TravelRuleRecord::status` in the domain, checked against it by a
-- conformance property test): no declaration → AWAITING_DECLARATION; the customer's own
-- self-hosted wallet with a proof required (the flag set, or the policy ALWAYS) and none
-- verified → AWAITING_PROOF; otherwise COMPLETE.
create function travel_rule_status(declaration jsonb, proof_verified boolean,
                                   force_verify_ownership boolean, policy text)
returns text language sql immutable parallel safe
as $$ select case
           when declaration is null then 'AWAITING_DECLARATION'
           when declaration ->> 'custody' = 'SELF_HOSTED'
                and declaration ->> 'owner' = 'CUSTOMER'
                and (force_verify_ownership or policy = 'ALWAYS')
                and not proof_verified then 'AWAITING_PROOF'
           else 'COMPLETE' end $$;

-- The session row as the adapter reads it from this version on: `session_row_v1` and the
-- travel-rule record (see `session_row_v1` for why the type is versioned).
create type session_row_v2 as (
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
    proof_verified_at       timestamptz
);

create function session_row_v2(s sessions)
returns session_row_v2 language sql immutable parallel safe
as $$ select row(s.application_id, s.id, s.subject_kind, s.subject_id, s.currency, s.network,
                 s.counterparty_kind, s.counterparty, s.invoice_created_at,
                 s.invoice_expires_at, s.invoice_amount_msat, s.tx_hash,
                 s.force_verify_ownership, s.widget_url, s.created_at, s.expires_at,
                 s.consumed_at, s.cancelled_at, s.expired_event_at, s.order_id,
                 s.order_status, s.order_event_id, s.order_updated_at, s.proof_policy,
                 s.challenge, s.invoice_payee, s.declaration, s.declared_at,
                 s.declaration_source, s.proof_method, s.proof_verified_at)::session_row_v2 $$;

-- Retention. A session without compliance records goes, with its events and deliveries,
-- once the sessions' retention has passed since it ended. A session with them is only
-- thinned then (its events and deliveries go, `events_purged` is set) and goes, with its
-- records, once the travel-rule retention has passed too. The indexes that find each kind
-- of work are built concurrently, each in a migration of its own.
alter table sessions
    add column events_purged boolean not null default false;
