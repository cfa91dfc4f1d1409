-- A trigger's counts per action that no delivery records: the flows each
-- flow action triggered and the people each attributes action updated, a
-- JSON array indexed by action ([{"flows":n,"updated":n}, ...]).

-- +goose Up
ALTER TABLE triggers ADD COLUMN action_counts TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE triggers DROP COLUMN action_counts;
