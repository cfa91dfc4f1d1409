-- Group-triggered broadcasts (Customer.io-compatible): segments, broadcasts,
-- their triggers with error lines, and person events for goals. Segment,
-- broadcast and trigger ids are global integers, as in Customer.io's API.

-- +goose Up
CREATE TABLE segments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    filter       TEXT, -- NULL: a manual segment
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Members of manual segments. A person's deletion removes their memberships.
CREATE TABLE segment_members (
    segment_id   INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    PRIMARY KEY (segment_id, person_id),
    FOREIGN KEY (workspace_id, person_id) REFERENCES people (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX segment_members_person ON segment_members (workspace_id, person_id);

CREATE TABLE broadcasts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    active       INTEGER NOT NULL,
    recipients   TEXT, -- default audience filter; NULL: none
    actions      TEXT NOT NULL,
    goal         TEXT, -- NULL: no goal
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

-- One row per trigger call. steps is a compare-and-set token: each committed
-- fan-out step increments it, so two workers can never commit the same step.
CREATE TABLE triggers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    request      TEXT NOT NULL,
    broadcast    TEXT NOT NULL,
    cursor       TEXT NOT NULL,
    steps        INTEGER NOT NULL,
    matched      INTEGER NOT NULL,
    flows        INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    error        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    processed_at INTEGER
);
CREATE INDEX triggers_broadcast ON triggers (broadcast_id, id);
CREATE INDEX triggers_open ON triggers (workspace_id) WHERE state IN ('queued', 'running');

CREATE TABLE trigger_errors (
    trigger_id INTEGER NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    message    TEXT NOT NULL,
    PRIMARY KEY (trigger_id, seq)
);

-- A recipient's address on a channel, looked up for every recipient of a
-- fan-out: without it the lowest-address probe walks the channel's whole
-- (channel_id, address) primary key.
CREATE INDEX identities_person_channel ON identities (workspace_id, person_id, channel_id, address);

CREATE TABLE person_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    data         TEXT NOT NULL,
    at           INTEGER NOT NULL,
    FOREIGN KEY (workspace_id, person_id) REFERENCES people (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX person_events_goal ON person_events (workspace_id, person_id, name, at);

-- +goose Down
DROP INDEX identities_person_channel;
DROP TABLE person_events;
DROP TABLE trigger_errors;
DROP TABLE triggers;
DROP TABLE broadcasts;
DROP TABLE segment_members;
DROP TABLE segments;
