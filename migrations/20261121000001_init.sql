-- Travel-rule widget sessions: initial schema.
--
-- Every tenant table is keyed by application_id first, and no query crosses applications
-- (except the retention purge), so the schema can be distributed by application_id
-- (e.g. Citus: distribution column application_id; applications and upstream_tokens as
-- reference tables). Invariants hold by keys and single atomic statements; there are no
-- advisory locks.

create table applications (
    id              uuid        primary key,
    name            text        not null unique check (length(name) between 1 and 100),
    -- sha-256 of the API key: keys are looked up, never stored.
    api_key_digest  bytea       not null unique check (length(api_key_digest) = 32),
    -- the HMAC secret, sealed with the at-rest key named by secret_key_id (AEAD: nonce || ciphertext || tag)
    secret_key_id   text        not null,
    secret_sealed   bytea       not null,
    status          text        not null check (status in ('active', 'disabled')),
    created_at      timestamptz not null,
    rotated_at      timestamptz not null
);

create table sessions (
    application_id          uuid        not null,
    id                      uuid        not null,
    -- sha-256 of the reuse key encoding (domain::ReuseKey, version 1)
    reuse_key               bytea       not null check (length(reuse_key) = 32),
    subject_kind            text        not null check (subject_kind in ('user', 'business')),
    subject_id              uuid        not null,
    currency                text        not null,
    network                 text        not null,
    counterparty_kind       text        not null check (counterparty_kind in ('address', 'lightning')),
    -- normalised address, or payment hash as 64 lowercase hex digits
    counterparty            text        not null,
    invoice_created_at      timestamptz,
    invoice_expires_at      timestamptz,
    invoice_amount_msat     bigint,
    tx_hash                 text,
    force_verify_ownership  boolean     not null,
    -- the upstream widget URL (carries the upstream's single-use sessionId)
    widget_url              text        not null,
    created_at              timestamptz not null,
    expires_at              timestamptz not null,
    consumed_at             timestamptz,
    cancelled_at            timestamptz,
    primary key (application_id, id),
    check (expires_at > created_at and expires_at <= created_at + interval '300 seconds'),
    check (consumed_at is null or cancelled_at is null),
    check ((invoice_created_at is null) = (invoice_expires_at is null)),
    check (counterparty_kind = 'address' or tx_hash is null)
);

-- Listing one subject's sessions, newest first.
create index sessions_by_subject on sessions (application_id, subject_kind, subject_id, id desc);
-- Retention: sessions by the instant they ended (consumed, cancelled, or expired).
create index sessions_by_end on sessions ((coalesce(consumed_at, cancelled_at, expires_at)), application_id);

-- One slot per (application, reuse key): bound to the session serving the key, and/or
-- claimed by the request minting its successor (claim + lease). See docs/architecture.md.
create table reuse_slots (
    application_id    uuid        not null,
    reuse_key         bytea       not null check (length(reuse_key) = 32),
    session_id        uuid,
    claim             uuid,
    claim_expires_at  timestamptz,
    primary key (application_id, reuse_key),
    check ((claim is null) = (claim_expires_at is null))
);

-- Launch tokens: only their sha-256 is stored. Every create-or-reuse hands out a new one.
create table launch_tokens (
    application_id  uuid        not null,
    token_digest    bytea       not null check (length(token_digest) = 32),
    session_id      uuid        not null,
    created_at      timestamptz not null,
    primary key (application_id, token_digest),
    foreign key (application_id, session_id) references sessions (application_id, id) on delete cascade
);
create index launch_tokens_by_session on launch_tokens (application_id, session_id);

-- The upstream partner access token, shared by every instance, with a refresh lease.
create table upstream_tokens (
    account        text        primary key,
    token          text,
    expires_at     timestamptz,
    version        bigint      not null default 0,
    lease_holder   uuid,
    lease_until    timestamptz,
    check ((lease_holder is null) = (lease_until is null)),
    check ((token is null) = (expires_at is null))
);
