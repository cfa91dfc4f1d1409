-- CSML-compatible broadcast requests (POST /v1/api/broadcasts): one row per
-- accepted request, written with its conversation job in one transaction.

-- +goose Up
CREATE TABLE flow_triggers (
    request_id      TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL,
    bot_id          TEXT NOT NULL,
    channel_id      TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    flow_id         TEXT NOT NULL,
    step_id         TEXT NOT NULL,
    close_flows     BOOLEAN NOT NULL,
    metadata        JSONB NOT NULL,
    idempotency_key TEXT NOT NULL,
    body_hash       BYTEA NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    error           TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    processed_at    BIGINT
);
-- Idempotency keys are scoped to the channel (the API key's scope).
CREATE UNIQUE INDEX flow_triggers_idempotency ON flow_triggers (channel_id, idempotency_key)
    WHERE idempotency_key <> '';

-- +goose Down
DROP TABLE flow_triggers;
