package store

import (
	"context"
	"encoding/json"
	"time"
)

// FlowTriggerStatus is where an accepted flow_trigger request stands.
type FlowTriggerStatus string

// Flow trigger states: queued until its conversation job ran; processed
// when the flow ran (its messages are deliveries with source ("broadcast",
// RequestID)); failed when the flow could not run.
const (
	FlowTriggerQueued    FlowTriggerStatus = "queued"
	FlowTriggerProcessed FlowTriggerStatus = "processed"
	FlowTriggerFailed    FlowTriggerStatus = "failed"
)

// FlowTrigger is one accepted CSML-style broadcast request: run a flow for
// one user of one channel.
type FlowTrigger struct {
	RequestID   string
	WorkspaceID string
	BotID       string
	ChannelID   string
	UserID      string
	FlowID      string
	StepID      string
	CloseFlows  bool
	// Metadata is the request's metadata object ({} when absent).
	Metadata json.RawMessage
	// IdempotencyKey is the client's Idempotency-Key ("" when none);
	// BodyHash the SHA-256 of the request body it came with.
	IdempotencyKey string
	BodyHash       []byte
	Status         FlowTriggerStatus
	Reason         string
	Error          string
	ConversationID string
	CreatedAt      time.Time
	ProcessedAt    *time.Time
}

// FlowTriggers stores flow_trigger requests.
type FlowTriggers interface {
	// CreateFlowTrigger stores a new request (RequestID required). A
	// non-empty IdempotencyKey already used on the channel is ErrConflict.
	CreateFlowTrigger(ctx context.Context, t FlowTrigger) error
	// GetFlowTrigger finds a request of one channel; another channel's
	// request is ErrNotFound.
	GetFlowTrigger(ctx context.Context, channelID, requestID string) (FlowTrigger, error)
	GetFlowTriggerByKey(ctx context.Context, channelID, idempotencyKey string) (FlowTrigger, error)
	// FinishFlowTrigger records that the request's flow ran (processed) or
	// could not run (failed).
	FinishFlowTrigger(ctx context.Context, requestID string, status FlowTriggerStatus, reason, errMsg, conversationID string, at time.Time) error
}
