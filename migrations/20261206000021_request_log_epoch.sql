-- Since when the request log remembers. `request_nonces` is unlogged (recording a request
-- waits for no WAL flush), so a crash of the server — or a failover to a standby, where
-- unlogged tables are empty — empties it, and it no longer knows which of the requests
-- signed in the last minutes it accepted. This row is unlogged too: the same crash removes
-- it. While it is missing no request is recorded as fresh; the first request refused for
-- that puts it back (`remembers_after`: the time then plus the signature window plus the
-- clock lead a signature may have), and every request signed before is refused from then
-- on — a request captured before the crash cannot be replayed after it.
create unlogged table request_log_epoch (
    one             boolean     primary key default true check (one),
    remembers_after timestamptz not null
);

-- Nothing was lost before this version: the log remembers everything still in its window.
insert into request_log_epoch (remembers_after) values ('-infinity');

-- The same rule for requests recorded outside the create statement.
create or replace function remember_request(p_application uuid, p_signature bytea,
                                            p_expires_at timestamptz, p_durable boolean)
returns boolean language plpgsql volatile
as $$
begin
    if p_durable then
        insert into request_nonces_durable (application_id, signature, expires_at)
        values (p_application, p_signature, p_expires_at)
        on conflict do nothing;
    else
        insert into request_nonces (application_id, signature, expires_at)
        select p_application, p_signature, p_expires_at
        where p_expires_at > (select remembers_after from request_log_epoch)
        on conflict do nothing;
    end if;
    return found;
end
$$;
