-- Retention: the cleaner (package retention) deletes old records in small
-- batches, oldest first, each batch one walk of one of these indexes from
-- its start. Every index holds only records the cleaner may delete (final
-- ones), so it never walks past live work, and a row enters it when it
-- becomes final, not on every claim.
--
-- The erasure of a person (DELETE /api/v1/customers/{id}) finds their
-- conversations and deliveries by person id.
--
-- cleaner_leases lets one node at a time run the cleaner on a shared
-- database: the node holding the row until `until` runs it.

-- +goose Up
CREATE INDEX jobs_failed ON jobs (run_at) WHERE status = 'failed';
CREATE INDEX deliveries_final ON deliveries (updated_at) WHERE pending = 0;
CREATE INDEX messages_created ON messages (created_at);
CREATE INDEX conversations_closed ON conversations (closed_at) WHERE status = 'closed';
CREATE INDEX triggers_done ON triggers (processed_at) WHERE state IN ('processed', 'failed');
CREATE INDEX flow_triggers_done ON flow_triggers (created_at) WHERE status <> 'queued';
CREATE INDEX conversations_person ON conversations (workspace_id, person_id);
CREATE INDEX deliveries_person ON deliveries (workspace_id, person_id) WHERE person_id <> '';

CREATE TABLE cleaner_leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE cleaner_leases;
DROP INDEX deliveries_person;
DROP INDEX conversations_person;
DROP INDEX flow_triggers_done;
DROP INDEX triggers_done;
DROP INDEX conversations_closed;
DROP INDEX messages_created;
DROP INDEX deliveries_final;
DROP INDEX jobs_failed;
