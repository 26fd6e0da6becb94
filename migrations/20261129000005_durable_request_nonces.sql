-- The signatures of accepted requests that change something other than a session
-- (registering a webhook endpoint, rotating its secret, cancelling): logged, so that a
-- database crash does not reopen their replay window (replayed, a rotation would hand out a
-- new secret). Creates and reads stay in the unlogged `request_nonces`.
create table request_nonces_durable (
    application_id  uuid        not null,
    signature       bytea       not null check (length(signature) = 32),
    expires_at      timestamptz not null,
    primary key (application_id, signature)
);
create index request_nonces_durable_by_expiry on request_nonces_durable (expires_at);
