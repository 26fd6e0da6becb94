-- no-transaction
-- Order webhooks carry our session id (`partnerOrderId`), not the application's: the
-- session is found by its id alone (ids are UUID v7, unique). Built concurrently, outside a
-- transaction, so that sessions stay writable while it builds on a large table.
create index concurrently if not exists sessions_by_id on sessions (id);
