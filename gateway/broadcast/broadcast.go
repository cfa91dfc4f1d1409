// Package broadcast implements proactive flow triggers, the CSML Studio
// Broadcasts API's semantics: run a bot flow for one user of one channel,
// queued durably and delivered within seconds.
//
// A request is validated against the channel's bot (unknown flows and steps
// are refused, where CSML silently falls back to the default flow), stored
// together with its conversation job in one transaction before the caller
// answers, and processed like any other event of that user's conversation,
// after whatever that conversation is doing now. Its outcome is queryable:
// Result combines the request with the deliveries its flow produced.
package broadcast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/conversation"
	"github.com/switchboard-gw/switchboard/gateway/inbound"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// SourceKind tags the deliveries of flow_trigger requests.
const SourceKind = "broadcast"

// UnknownFlowError: the bot has no flow with that id or name.
type UnknownFlowError struct {
	Flow  string
	Bot   string
	Valid []string // "id" or "id (name)" of every flow
}

func (e *UnknownFlowError) Error() string {
	return fmt.Sprintf("flow %q not found in bot %q; valid flows: %s", e.Flow, e.Bot, strings.Join(e.Valid, ", "))
}

// UnknownStepError: the flow has no step with that id.
type UnknownStepError struct {
	Flow, Step string
}

func (e *UnknownStepError) Error() string {
	return fmt.Sprintf("flow %q has no step %q", e.Flow, e.Step)
}

// ErrIdempotencyConflict: the idempotency key was used with another body.
var ErrIdempotencyConflict = errors.New("idempotency key already used with a different request body")

// Store is what the service needs.
type Store interface {
	WithTx(ctx context.Context, fn func(tx store.Store) error) error
	GetFlowTrigger(ctx context.Context, channelID, requestID string) (store.FlowTrigger, error)
	GetFlowTriggerByKey(ctx context.Context, channelID, key string) (store.FlowTrigger, error)
	FinishFlowTrigger(ctx context.Context, requestID string, status store.FlowTriggerStatus, reason, errMsg, conversationID string, at time.Time) error
	ListDeliveriesBySource(ctx context.Context, kind, id string) ([]store.Delivery, error)
}

// Bots gives compiled bots by id.
type Bots interface {
	Bot(ctx context.Context, botID string) (*bot.Bot, error)
}

// Service accepts flow triggers and reports their outcome.
type Service struct {
	Store  Store
	Bots   Bots
	Queue  inbound.Notifier
	Logger *slog.Logger
	Now    func() time.Time
	// Retention is how long requests are kept (the cleaner's
	// retention.flow_triggers); an unknown id older than that is
	// *ExpiredError. ≤ 0: requests are kept for ever.
	Retention time.Duration
}

// Request is one flow trigger.
type Request struct {
	Channel    store.Channel
	UserID     string
	FlowID     string
	StepID     string
	CloseFlows bool
	// Metadata is a JSON object ({} or empty for none).
	Metadata json.RawMessage
	// IdempotencyKey makes retries safe; BodyHash identifies the request
	// it was first used with.
	IdempotencyKey string
	BodyHash       []byte
}

// Trigger validates and durably queues r. When r repeats an earlier
// request's idempotency key with the same body, it returns that request
// and replayed = true, queueing nothing.
func (s *Service) Trigger(ctx context.Context, r Request) (ft store.FlowTrigger, replayed bool, err error) {
	if r.IdempotencyKey != "" {
		if prev, ok, err := s.replay(ctx, r); ok || err != nil {
			return prev, ok, err
		}
	}
	b, err := s.Bots.Bot(ctx, r.Channel.BotID)
	if err != nil {
		return store.FlowTrigger{}, false, fmt.Errorf("load bot: %w", err)
	}
	f := b.Flow(r.FlowID)
	if f == nil {
		return store.FlowTrigger{}, false, &UnknownFlowError{Flow: r.FlowID, Bot: b.Name, Valid: flowNames(b)}
	}
	if r.StepID != "" && f.Step(r.StepID) == nil {
		return store.FlowTrigger{}, false, &UnknownStepError{Flow: f.ID, Step: r.StepID}
	}
	var meta map[string]any
	if len(r.Metadata) > 0 {
		if err := json.Unmarshal(r.Metadata, &meta); err != nil {
			return store.FlowTrigger{}, false, fmt.Errorf("metadata: %w", err)
		}
	}
	now := s.now()
	ft = store.FlowTrigger{
		RequestID: newRequestID(now), WorkspaceID: r.Channel.WorkspaceID, BotID: r.Channel.BotID,
		ChannelID: r.Channel.ID, UserID: r.UserID, FlowID: r.FlowID, StepID: r.StepID,
		CloseFlows: r.CloseFlows, Metadata: r.Metadata, IdempotencyKey: r.IdempotencyKey,
		BodyHash: r.BodyHash, Status: store.FlowTriggerQueued, CreatedAt: now,
	}
	err = s.Store.WithTx(ctx, func(tx store.Store) error {
		if err := tx.CreateFlowTrigger(ctx, ft); err != nil {
			return err
		}
		return inbound.Enqueue(ctx, tx, inbound.Event{
			Kind: inbound.KindFlowTrigger, WorkspaceID: ft.WorkspaceID, BotID: ft.BotID,
			ChannelID: ft.ChannelID, UserID: ft.UserID, EventKey: "broadcast:" + ft.RequestID,
			FlowID: f.ID, StepID: r.StepID, CloseFlows: r.CloseFlows, Metadata: meta,
			SourceKind: SourceKind, SourceID: ft.RequestID, Received: now,
		})
	})
	if errors.Is(err, store.ErrConflict) && r.IdempotencyKey != "" {
		// A concurrent request with the same key won the race.
		if prev, ok, err := s.replay(ctx, r); ok || err != nil {
			return prev, ok, err
		}
	}
	if err != nil {
		return store.FlowTrigger{}, false, fmt.Errorf("queue flow trigger: %w", err)
	}
	s.Queue.Notify()
	return ft, false, nil
}

// replay finds an earlier request with r's idempotency key.
func (s *Service) replay(ctx context.Context, r Request) (store.FlowTrigger, bool, error) {
	prev, err := s.Store.GetFlowTriggerByKey(ctx, r.Channel.ID, r.IdempotencyKey)
	if errors.Is(err, store.ErrNotFound) {
		return store.FlowTrigger{}, false, nil
	}
	if err != nil {
		return store.FlowTrigger{}, false, err
	}
	if !bytes.Equal(prev.BodyHash, r.BodyHash) {
		return store.FlowTrigger{}, false, ErrIdempotencyConflict
	}
	return prev, true, nil
}

func flowNames(b *bot.Bot) []string {
	out := make([]string, 0, len(b.Flows))
	for _, f := range b.Flows {
		if f.Name != "" && !strings.EqualFold(f.Name, f.ID) {
			out = append(out, fmt.Sprintf("%s (%s)", f.ID, f.Name))
			continue
		}
		out = append(out, f.ID)
	}
	return out
}

// Observe records the outcome of flow triggers' conversation events; wire
// it as the conversation job handler's Observe hook.
func (s *Service) Observe(ctx context.Context, ev inbound.Event, out conversation.Output, err error) {
	if ev.SourceKind != SourceKind {
		return
	}
	status, reason, msg := store.FlowTriggerProcessed, "", ""
	if err != nil {
		status, reason, msg = store.FlowTriggerFailed, "flow_error", err.Error()
	}
	// A failure to record is logged, not retried: the deliveries, which are
	// most of the result, are stored already.
	if err := s.Store.FinishFlowTrigger(ctx, ev.SourceID, status, reason, msg, out.Conversation.ID, s.now()); err != nil {
		s.logger().ErrorContext(ctx, "record flow trigger outcome", "request_id", ev.SourceID, "err", err)
	}
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
