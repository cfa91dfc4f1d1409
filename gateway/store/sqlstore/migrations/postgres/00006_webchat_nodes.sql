-- Web chat across gateway nodes: each node's lease and the users it holds
-- connections of (presence), so a node delivering a message knows whether
-- the user is connected anywhere; and an index for the outbox's retention
-- sweep.

-- +goose Up
CREATE TABLE webchat_nodes (
    node_id    TEXT PRIMARY KEY,
    -- The node's presence counts until then; it renews the lease while it
    -- runs, so a dead node's rows stop counting on their own.
    expires_at BIGINT NOT NULL
);

-- No foreign key to webchat_nodes: rows may be filed before the node's
-- first lease, and are deleted with a forgotten node explicitly.
CREATE TABLE webchat_presence (
    channel_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    node_id    TEXT NOT NULL,
    PRIMARY KEY (channel_id, user_id, node_id)
);
CREATE INDEX webchat_presence_node ON webchat_presence (node_id);

CREATE INDEX webchat_messages_created ON webchat_messages (created_at);

-- +goose Down
DROP INDEX webchat_messages_created;
DROP TABLE webchat_presence;
DROP TABLE webchat_nodes;
