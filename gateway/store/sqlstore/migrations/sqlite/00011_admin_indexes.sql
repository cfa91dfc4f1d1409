-- The admin API lists a workspace's deliveries and triggers newest first
-- (deliveries filtered by status, channel, person or time, paged by id);
-- without these indexes each page scans every workspace's rows.

-- +goose Up
CREATE INDEX deliveries_workspace ON deliveries (workspace_id, id);
CREATE INDEX triggers_workspace ON triggers (workspace_id, id);

-- +goose Down
DROP INDEX triggers_workspace;
DROP INDEX deliveries_workspace;
