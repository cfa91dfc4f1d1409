-- Web chat outbox: the frames rendered for each user's messages, replayed to
-- every connection of the user after the sequence number it has, and the
-- per-user cursor of sequence numbers given out and acknowledged.

-- +goose Up
CREATE TABLE webchat_cursors (
    channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    -- Highest sequence number given out; never decreases, so numbers are
    -- never reused after old messages are deleted.
    last_seq   BIGINT NOT NULL,
    -- Every message up to here is acknowledged by a client.
    acked_seq  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

CREATE TABLE webchat_messages (
    channel_id      TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    -- The delivery this message carries.
    idempotency_key TEXT NOT NULL UNIQUE,
    frame           BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id, seq)
);

-- +goose Down
DROP TABLE webchat_messages;
DROP TABLE webchat_cursors;
