-- A web chat delivery is delivered only once a client acknowledges its
-- message. Until then it is sent with a reason: pending_connection (the
-- user has no connection) or, new, awaiting_ack (written to a connection).
-- Deliveries handed to the outbox before this read sent without a reason,
-- which the per-request result took for delivered: the unacknowledged ones
-- get awaiting_ack.

-- +goose Up
UPDATE deliveries SET reason = 'awaiting_ack'
WHERE status = 'sent' AND reason = '' AND idempotency_key IN (
    SELECT m.idempotency_key FROM webchat_messages m
    JOIN webchat_cursors c ON c.channel_id = m.channel_id AND c.user_id = m.user_id
    WHERE m.seq > c.acked_seq);

-- +goose Down
UPDATE deliveries SET reason = '' WHERE status = 'sent' AND reason = 'awaiting_ack';
