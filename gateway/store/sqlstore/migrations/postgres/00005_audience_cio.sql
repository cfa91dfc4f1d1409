-- Customer.io-compatible APIs: every person gets a stable cio id, so that
-- the Track API can address them as cio_<id> (and change their id or
-- email); failed trigger deliveries are listed, in the order they failed,
-- by a trigger's errors endpoint.

-- +goose Up
-- 16 hex digits, random. The volatile default fills existing rows (one
-- value per row) and rows inserted by a node still running the previous
-- version; the gateway generates it otherwise. NULL only inside the
-- transaction that renames a person.
ALTER TABLE people ADD COLUMN cio_id TEXT DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 16);
CREATE UNIQUE INDEX people_cio ON people (workspace_id, cio_id);

-- Only failed rows enter it.
CREATE INDEX deliveries_failed_source ON deliveries (source_kind, source_id, updated_at, id) WHERE status = 'failed';

-- +goose Down
DROP INDEX deliveries_failed_source;
DROP INDEX people_cio;
ALTER TABLE people DROP COLUMN cio_id;
