-- The shared Transak access token is sealed with the at-rest key, like application secrets,
-- and the previous token is kept (sealed) for a while after a refresh: order webhooks signed
-- with it may still be in flight.
--
-- `token` (plaintext) is no longer written by this version, which nulls it when it saves a
-- token and reads it only when an instance of an earlier version wrote it (then it is the
-- newest); a later migration drops it (additive first, drop later: docs/operations.md).
alter table upstream_tokens
    add column token_key_id         text,
    add column token_sealed         bytea,
    add column previous_key_id      text,
    add column previous_sealed      bytea,
    add column previous_replaced_at timestamptz,
    drop constraint upstream_tokens_check1,
    add constraint upstream_tokens_token_has_expiry
        check ((token is null and token_sealed is null) = (expires_at is null)),
    add constraint upstream_tokens_sealed_pair
        check ((token_key_id is null) = (token_sealed is null)),
    add constraint upstream_tokens_previous_complete
        check ((previous_sealed is null) = (previous_key_id is null)
               and (previous_sealed is null) = (previous_replaced_at is null));
