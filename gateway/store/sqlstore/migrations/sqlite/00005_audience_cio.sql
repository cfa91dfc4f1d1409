-- Customer.io-compatible APIs: every person gets a stable cio id, so that
-- the Track API can address them as cio_<id> (and change their id or
-- email); failed trigger deliveries are listed, in the order they failed,
-- by a trigger's errors endpoint.

-- +goose Up
-- 16 hex digits, random: the gateway generates it for new people (SQLite
-- refuses a non-constant default on ADD COLUMN). NULL only inside the
-- transaction that renames a person.
ALTER TABLE people ADD COLUMN cio_id TEXT;
UPDATE people SET cio_id = lower(hex(randomblob(8)));
CREATE UNIQUE INDEX people_cio ON people (workspace_id, cio_id);

-- Only failed rows enter it, so the claim and completion of the other rows
-- never write to it (their status is tested, and found not failed).
CREATE INDEX deliveries_failed_source ON deliveries (source_kind, source_id, updated_at, id) WHERE status = 'failed';

-- +goose Down
DROP INDEX deliveries_failed_source;
DROP INDEX people_cio;
ALTER TABLE people DROP COLUMN cio_id;
