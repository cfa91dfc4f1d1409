// Package inbound turns events into durable conversation work.
//
// Platform events (from channel ingress) and proactive triggers (from the
// broadcast APIs) become "conversation" jobs keyed by (bot, channel, user), so
// that one user's events are processed one at a time, in arrival order, never
// dropped, on any node; the job handler runs them through the conversation
// engine. Platform retries are dropped here by event id, in the same
// transaction that enqueues the first copy.
package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// JobKind is the job kind of conversation events.
const JobKind = "conversation"

// Kind of a conversation event.
type Kind string

// Conversation event kinds.
const (
	KindMessage     Kind = "message"
	KindButton      Kind = "button"
	KindStart       Kind = "start"
	KindFlowTrigger Kind = "flow_trigger"
)

// Event is the payload of a conversation job.
type Event struct {
	Kind        Kind   `json:"kind"`
	WorkspaceID string `json:"workspace_id"`
	BotID       string `json:"bot_id"`
	ChannelID   string `json:"channel_id"`
	UserID      string `json:"user_id"`
	ReplyTo     string `json:"reply_to,omitempty"`
	// EventKey is unique per event; the engine derives delivery idempotency
	// keys from it, so re-running a job never sends twice.
	EventKey string            `json:"event_key"`
	Content  message.Content   `json:"content,omitzero"`
	Profile  map[string]string `json:"profile,omitempty"`
	// flow_trigger fields.
	FlowID     string         `json:"flow_id,omitempty"`
	StepID     string         `json:"step_id,omitempty"`
	CloseFlows bool           `json:"close_flows,omitempty"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	// Trigger is trigger.* for the turn a group-triggered broadcast's flow
	// action starts (the trigger's data, per-person data merged over it).
	Trigger map[string]any `json:"trigger,omitempty"`
	// SourceKind/SourceID tag the deliveries the event produces
	// ("reply"/conversation, "broadcast"/request id, "trigger"/trigger id).
	SourceKind string    `json:"source_kind"`
	SourceID   string    `json:"source_id,omitempty"`
	Received   time.Time `json:"received"`
}

// Key is the serialization key of the event's conversation.
func (e Event) Key() string { return e.BotID + "/" + e.ChannelID + "/" + e.UserID }

// Enqueue stores ev as a conversation job inside tx. Call the queue's Notify
// after the transaction commits.
func Enqueue(ctx context.Context, tx store.Jobs, ev Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode conversation event: %w", err)
	}
	if err := tx.EnqueueJob(ctx, &store.Job{Kind: JobKind, Key: ev.Key(), Payload: payload, RunAt: ev.Received}); err != nil {
		return fmt.Errorf("enqueue conversation event: %w", err)
	}
	return nil
}

// Notifier wakes a worker after work was stored.
type Notifier interface{ Notify() }

// SinkStore is what Sink needs.
type SinkStore interface {
	WithTx(ctx context.Context, fn func(tx store.Store) error) error
	ApplyReceipt(ctx context.Context, channelID, providerID string, status store.DeliveryStatus, reason string, at time.Time) error
}

// Sink stores platform events (see httpapi.EventSink).
type Sink struct {
	Store SinkStore
	Queue Notifier
	Now   func() time.Time
}

// Accept makes events durable: receipts update their deliveries; messages,
// clicks and conversation starts become conversation jobs, except
// duplicates of events already seen on the channel.
func (s *Sink) Accept(ctx context.Context, ch store.Channel, events []sdk.Event) error {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	var convo []Event
	for _, e := range events {
		if e.Type == sdk.EventDeliveryStatus {
			if err := s.applyReceipt(ctx, ch, e, now); err != nil {
				return err
			}
			continue
		}
		kind, ok := map[sdk.EventType]Kind{sdk.EventMessage: KindMessage, sdk.EventButton: KindButton, sdk.EventConversationStart: KindStart}[e.Type]
		if !ok || e.UserID == "" {
			continue // nothing a conversation can act on
		}
		id := e.ID
		if id == "" {
			// Without a platform id retries cannot be recognized; the
			// event is still processed once per delivery to us.
			id = "gen-" + uuid.NewString()
		}
		convo = append(convo, Event{
			Kind: kind, WorkspaceID: ch.WorkspaceID, BotID: ch.BotID, ChannelID: ch.ID,
			UserID: e.UserID, ReplyTo: e.ReplyTo, EventKey: "in:" + ch.ID + ":" + id,
			Content: e.Content, Profile: e.Profile, SourceKind: "reply", Received: now,
		})
	}
	if len(convo) == 0 {
		return nil
	}
	err := s.Store.WithTx(ctx, func(tx store.Store) error {
		for _, ev := range convo {
			first, err := tx.MarkEventSeen(ctx, ev.ChannelID, ev.EventKey, now)
			if err != nil {
				return fmt.Errorf("dedupe event: %w", err)
			}
			if !first {
				continue
			}
			if err := Enqueue(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.Queue.Notify()
	return nil
}

var receiptStates = map[sdk.DeliveryState]store.DeliveryStatus{
	sdk.StateSent:        store.DeliverySent,
	sdk.StateDelivered:   store.DeliveryDelivered,
	sdk.StateRead:        store.DeliveryDelivered,
	sdk.StateUndelivered: store.DeliveryFailed,
	sdk.StateFailed:      store.DeliveryFailed,
}

func (s *Sink) applyReceipt(ctx context.Context, ch store.Channel, e sdk.Event, now time.Time) error {
	if e.Status == nil || e.Status.ProviderID == "" {
		return nil
	}
	st, ok := receiptStates[e.Status.State]
	if !ok {
		return nil
	}
	reason := ""
	if st == store.DeliveryFailed {
		reason = "channel_rejected"
		if e.Status.ErrorCode != "" {
			reason += ":" + e.Status.ErrorCode
		}
	}
	// A receipt for a message we no longer know is dropped rather than
	// refused, or the platform would retry it for days.
	err := s.Store.ApplyReceipt(ctx, ch.ID, e.Status.ProviderID, st, reason, now)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("apply receipt: %w", err)
	}
	return nil
}
