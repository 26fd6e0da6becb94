-- Launch links are derived, not stored: the token is the session id and a MAC under a key
-- derived from the at-rest key. `launch_tokens` is no longer written or read; it stays until
-- no instance of an earlier version runs, and a later migration drops it (additive first,
-- drop later: docs/operations.md).
comment on table launch_tokens is 'no longer used: launch links are derived from the session id';

-- The signatures of accepted requests, until their timestamp leaves the 5-minute window, so
-- that a captured request is accepted once. Unlogged: written without waiting for a WAL
-- flush (the create path's lookup records its request in the same statement). A database
-- crash empties it, which reopens a replay window of at most 5 minutes: an accepted risk.
create unlogged table request_nonces (
    application_id  uuid        not null,
    signature       bytea       not null check (length(signature) = 32),
    expires_at      timestamptz not null,
    primary key (application_id, signature)
);
create index request_nonces_by_expiry on request_nonces (expires_at);
