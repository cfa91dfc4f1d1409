-- Core schema. Timestamps are INTEGER microseconds since the Unix epoch (0 =
-- unset) so both dialects compare and index them the same way; JSON is TEXT.

-- +goose Up
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE bots (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name),
    UNIQUE (workspace_id, id)
);

CREATE TABLE channels (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    bot_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    type         TEXT NOT NULL,
    config       TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name),
    UNIQUE (workspace_id, id),
    -- A channel's bot lives in the channel's workspace.
    FOREIGN KEY (workspace_id, bot_id) REFERENCES bots (workspace_id, id) ON DELETE CASCADE
);

-- Secrets live apart from channels so that no channel query can leak them.
CREATE TABLE channel_secrets (
    channel_id TEXT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    secrets    TEXT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    channel_id   TEXT,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    FOREIGN KEY (workspace_id, channel_id) REFERENCES channels (workspace_id, id) ON DELETE CASCADE
);

CREATE TABLE people (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    email        TEXT NOT NULL,
    attributes   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX people_email ON people (workspace_id, email, created_at) WHERE email <> '';

CREATE TABLE identities (
    channel_id   TEXT NOT NULL,
    address      TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    PRIMARY KEY (channel_id, address),
    FOREIGN KEY (workspace_id, person_id) REFERENCES people (workspace_id, id) ON DELETE CASCADE,
    -- The channel belongs to the person's workspace.
    FOREIGN KEY (workspace_id, channel_id) REFERENCES channels (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX identities_person ON identities (workspace_id, person_id);

CREATE TABLE conversations (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL,
    bot_id              TEXT NOT NULL,
    channel_id          TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    person_id           TEXT NOT NULL,
    reply_to            TEXT NOT NULL,
    status              TEXT NOT NULL,
    flow_id             TEXT NOT NULL,
    step_id             TEXT NOT NULL,
    memory              TEXT NOT NULL,
    last_interaction_at INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    closed_at           INTEGER
);
CREATE UNIQUE INDEX conversations_one_open ON conversations (bot_id, channel_id, user_id) WHERE status = 'open';
CREATE INDEX conversations_expiry ON conversations (expires_at) WHERE status = 'open';
CREATE INDEX conversations_channel_user ON conversations (channel_id, user_id, created_at);
CREATE INDEX conversations_workspace ON conversations (workspace_id, created_at);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    direction       TEXT NOT NULL,
    content         TEXT NOT NULL,
    delivery_id     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

-- The outbox. For rows being sent (status 'sending') next_attempt_at is the
-- lease deadline, so "due" means the same thing for every pending status.
-- pending is 1 while the status is queued, retrying or sending and 0 once it
-- is final. The partial indexes test it rather than status so that a claim
-- (queued -> sending) leaves the per-recipient index alone: SQLite rewrites
-- an index entry whenever its WHERE clause mentions an updated column.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id    TEXT NOT NULL,
    channel_id      TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    reply_to        TEXT NOT NULL,
    person_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    content         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    pending         INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    last_error      TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    provider_id     TEXT NOT NULL,
    source_kind     TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    delivered_at    INTEGER
);
-- Claim scan: only pending rows, in due order. Final rows leave the index.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE pending = 1;
-- Per-recipient ordering probe: is an older pending row in the way?
CREATE INDEX deliveries_pending_recipient ON deliveries (channel_id, recipient, id) WHERE pending = 1;
CREATE INDEX deliveries_provider ON deliveries (channel_id, provider_id) WHERE provider_id <> '';
CREATE INDEX deliveries_source ON deliveries (source_kind, source_id, id);

CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    payload    TEXT NOT NULL,
    -- pending, running (run_at is then the lease deadline) or failed;
    -- completed jobs are deleted.
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    run_at     INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_key ON jobs (key, id) WHERE status IN ('pending', 'running') AND key <> '';

CREATE TABLE seen_events (
    channel_id TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (channel_id, event_id)
);
CREATE INDEX seen_events_at ON seen_events (seen_at);

-- +goose Down
DROP TABLE seen_events;
DROP TABLE jobs;
DROP TABLE deliveries;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE identities;
DROP TABLE people;
DROP TABLE api_keys;
DROP TABLE channel_secrets;
DROP TABLE channels;
DROP TABLE bots;
DROP TABLE workspaces;
