-- Leases held by nodes, not guessed per row. Each gateway process is a node
-- with a lease it renews by heartbeat; a claimed job or delivery names the
-- node that holds it (claimed_by). Work is taken back from a node when its
-- lease runs out (it died) or when it starts again (a restart), never
-- because a row has been running "too long". Claims no longer expire on
-- their own, so the due indexes hold only claimable rows.

-- +goose Up
CREATE TABLE nodes (
    id          TEXT PRIMARY KEY,
    lease_until BIGINT NOT NULL,
    started_at  BIGINT NOT NULL
);

ALTER TABLE jobs ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';

-- Rows claimed by a gateway of the previous version hold a per-row lease
-- that nothing reads any more: release them.
UPDATE jobs SET status = 'pending' WHERE status = 'running';
UPDATE deliveries SET status = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'queued' END WHERE status = 'sending';

DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status = 'pending';
CREATE INDEX jobs_claimed ON jobs (claimed_by) WHERE status = 'running';

DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status IN ('queued', 'retrying');
-- No index on a delivery's holder: releasing a node's claims is rare and
-- reads the pending rows (deliveries_pending_recipient), while an index
-- would cost every delivery two more writes, and would tempt the planner to
-- read every row a node sends to record one batch's outcomes.

-- +goose Down
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE pending = 1;
DROP INDEX jobs_claimed;
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status IN ('pending', 'running');
ALTER TABLE deliveries DROP COLUMN claimed_by;
ALTER TABLE jobs DROP COLUMN claimed_by;
DROP TABLE nodes;
