package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

const flowTriggerCols = `request_id, workspace_id, bot_id, channel_id, user_id, flow_id, step_id, close_flows,
	metadata, idempotency_key, body_hash, status, reason, error, conversation_id, created_at, processed_at`

func scanFlowTrigger(r scanner) (store.FlowTrigger, error) {
	var t store.FlowTrigger
	var meta jsonCol
	var created int64
	var processed sql.NullInt64
	err := r.Scan(&t.RequestID, &t.WorkspaceID, &t.BotID, &t.ChannelID, &t.UserID, &t.FlowID, &t.StepID,
		&t.CloseFlows, &meta, &t.IdempotencyKey, &t.BodyHash, &t.Status, &t.Reason, &t.Error,
		&t.ConversationID, &created, &processed)
	t.Metadata = []byte(meta)
	t.CreatedAt = fromMicros(created)
	t.ProcessedAt = fromNullMicros(processed)
	return t, err
}

// CreateFlowTrigger stores a new flow_trigger request.
func (s *Store) CreateFlowTrigger(ctx context.Context, t store.FlowTrigger) error {
	if t.RequestID == "" {
		return fmt.Errorf("create flow trigger: empty request id")
	}
	meta, err := rawJSON(t.Metadata)
	if err != nil {
		return fmt.Errorf("create flow trigger %s: metadata: %w", t.RequestID, err)
	}
	if t.Status == "" {
		t.Status = store.FlowTriggerQueued
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	if t.BodyHash == nil {
		t.BodyHash = []byte{}
	}
	_, err = s.exec(ctx, `INSERT INTO flow_triggers (`+flowTriggerCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.RequestID, t.WorkspaceID, t.BotID, t.ChannelID, t.UserID, t.FlowID, t.StepID, t.CloseFlows,
		meta, t.IdempotencyKey, t.BodyHash, string(t.Status), t.Reason, t.Error, t.ConversationID,
		micros(t.CreatedAt), nullMicros(t.ProcessedAt))
	if err != nil {
		return fmt.Errorf("create flow trigger %s: %w", t.RequestID, err)
	}
	return nil
}

// GetFlowTrigger returns one channel's request.
func (s *Store) GetFlowTrigger(ctx context.Context, channelID, requestID string) (store.FlowTrigger, error) {
	return getOne(ctx, s, "get flow trigger "+requestID, scanFlowTrigger,
		`SELECT `+flowTriggerCols+` FROM flow_triggers WHERE channel_id = ? AND request_id = ?`, channelID, requestID)
}

// GetFlowTriggerByKey returns the request a channel made with an
// idempotency key.
func (s *Store) GetFlowTriggerByKey(ctx context.Context, channelID, key string) (store.FlowTrigger, error) {
	if key == "" {
		return store.FlowTrigger{}, fmt.Errorf("get flow trigger by key: empty key: %w", store.ErrNotFound)
	}
	return getOne(ctx, s, "get flow trigger by key", scanFlowTrigger,
		`SELECT `+flowTriggerCols+` FROM flow_triggers WHERE channel_id = ? AND idempotency_key = ?`, channelID, key)
}

// FinishFlowTrigger records the outcome of the request's flow.
func (s *Store) FinishFlowTrigger(ctx context.Context, requestID string, status store.FlowTriggerStatus, reason, errMsg, conversationID string, at time.Time) error {
	if status != store.FlowTriggerProcessed && status != store.FlowTriggerFailed {
		return fmt.Errorf("finish flow trigger %s: invalid status %q", requestID, status)
	}
	n, err := s.execCount(ctx, `UPDATE flow_triggers SET status = ?, reason = ?, error = ?, conversation_id = ?, processed_at = ?
		WHERE request_id = ?`, string(status), reason, errMsg, conversationID, micros(at), requestID)
	return notFoundIfNone(n, err, "finish flow trigger "+requestID)
}
