// Package conversation is the conversation engine: it runs a bot's flows for
// one user on one channel, one event at a time.
//
// Semantics follow the CSML engine:
//
//   - at most one open conversation per (bot, channel, user); it records the
//     flow, the step it waits at, its memory, and when it expires;
//   - a user message (or button click) answers the ask the open conversation
//     waits at, or starts the bot's default flow when none is open;
//   - a flow_trigger opens the named flow (by id or name, case-insensitively;
//     an unknown flow falls back to the default flow, as in CSML), at an
//     optional step. With close_flows the open conversation is closed first
//     and a new one is opened; without it the open conversation is re-pointed
//     to the flow, keeping its memory;
//   - a conversation past its expiry is closed, never continued;
//   - steps run until an ask waits or the flow ends (an end step, or no next
//     step), which closes the conversation. Memory belongs to a conversation:
//     a new conversation starts empty (CSML keeps memories per user; here
//     metadata and call steps carry what must outlive a conversation).
//
// A turn runs outside any database transaction, since call steps make HTTP
// requests, and then commits in one store transaction: conversation state,
// the inbound and outbound messages, one queued delivery per outbound message
// (idempotency key derived from the event key and the message's position),
// and the event key itself, so a re-run of a committed event changes nothing.
//
// Handle serializes events per conversation in arrival order with an
// in-process keyed lock; across nodes the job queue's per-key ordering does
// the same, and the commit re-checks that nobody changed the conversation
// meanwhile.
package conversation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Errors callers branch on.
var (
	// ErrInvalidInput: the Input lacks an id, or has an unknown kind.
	ErrInvalidInput = errors.New("conversation: invalid input")
	// ErrUnknownStep: a flow_trigger named a step its flow does not have.
	ErrUnknownStep = errors.New("conversation: unknown step")
	// ErrStepLimit: a turn ran more than Options.MaxStepsPerTurn steps,
	// almost always a goto loop without an ask. Nothing is committed.
	ErrStepLimit = errors.New("conversation: too many steps in one turn")
	// ErrStep: a step failed at run time (a template that fails on the
	// data, content that is invalid once rendered). Nothing is committed.
	ErrStep = errors.New("conversation: step failed")
)

// Store is what the engine needs of the store. Inside WithTx it uses
// GetOpenConversation, CreateConversation, UpdateConversation,
// CloseConversation, AppendMessages, EnqueueDeliveries and MarkEventSeen.
type Store interface {
	GetOpenConversation(ctx context.Context, botID, channelID, userID string) (store.Conversation, error)
	WithTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Bots gives the compiled bot by id; *bot.Cache is one.
type Bots interface {
	Bot(ctx context.Context, botID string) (*bot.Bot, error)
}

// Options configure an Engine. Store and Bots are required.
type Options struct {
	Store Store
	Bots  Bots
	// DefaultTTL is the conversation TTL of bots that set none (default
	// 24h).
	DefaultTTL time.Duration
	// MaxStepsPerTurn guards against goto loops (default 100).
	MaxStepsPerTurn int
	Call            CallOptions
	Logger          *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CallOptions configure call steps.
type CallOptions struct {
	// Net says which addresses call steps may reach; by default only
	// public ones. Whether http is allowed is the bot's call.allow_http.
	Net netguard.Options
	// TLS is the client TLS configuration (nil: system roots).
	TLS *tls.Config
	// MaxResponseBytes caps a call's answer (default 1 MiB).
	MaxResponseBytes int64
}

// Kind is what an Input is.
type Kind string

// Input kinds. The values match package inbound's.
const (
	KindMessage     Kind = "message"      // the user wrote (Content)
	KindButton      Kind = "button"       // the user clicked a button (Content.Payload)
	KindStart       Kind = "start"        // the user opened the chat: start the default flow unless one is open
	KindFlowTrigger Kind = "flow_trigger" // FlowID, StepID, CloseFlows, Metadata
)

// Input is one event for one (bot, channel, user).
type Input struct {
	Kind        Kind
	WorkspaceID string
	BotID       string
	ChannelID   string
	ChannelType string // shown to templates as channel.type
	UserID      string // the user's address on the channel
	PersonID    string // when known
	ReplyTo     string // thread or conversation reference on the platform
	// EventKey identifies the event, unique per channel. It makes
	// processing idempotent and derives the deliveries' idempotency keys.
	EventKey string
	Content  message.Content   // message and button
	Profile  map[string]string // user.profile.* (platform profile)
	// flow_trigger.
	FlowID     string
	StepID     string
	CloseFlows bool
	// Metadata is metadata.* (Chat and Broadcasts APIs). It is kept with
	// the conversation for its later turns; new keys replace old ones.
	Metadata map[string]any
	// Customer and Trigger are customer.* and trigger.*, for this turn.
	Customer map[string]any
	Trigger  map[string]any
	// SourceKind and SourceID tag the deliveries; default "reply" and the
	// conversation id.
	SourceKind string
	SourceID   string
}

// Output is the result of a turn.
type Output struct {
	// Conversation as committed; after a duplicate or a start with a
	// conversation already open, the open conversation (zero if none).
	Conversation store.Conversation
	// Messages are the outbound messages of this turn, in order, with
	// their ids and deliveries (for the synchronous Chat API).
	Messages []store.Message
	// Closed reports that the conversation ended in this turn.
	Closed bool
	// Duplicate reports that EventKey was processed before: nothing was
	// done.
	Duplicate bool
}

// Engine runs conversations. It is safe for concurrent use.
type Engine struct {
	opts  Options
	log   *slog.Logger
	locks *keyedLock
	// Call clients by the bot's allow_http (redirects are checked with
	// it); both dial through the netguard dialer.
	httpsOnly, httpToo *http.Client
}

// New returns an Engine.
func New(o Options) (*Engine, error) {
	if o.Store == nil || o.Bots == nil {
		return nil, errors.New("conversation: Options.Store and Options.Bots are required")
	}
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = 24 * time.Hour
	}
	if o.MaxStepsPerTurn <= 0 {
		o.MaxStepsPerTurn = 100
	}
	if o.Call.MaxResponseBytes <= 0 {
		o.Call.MaxResponseBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := o.Call.Net
	g.AllowHTTP = false
	httpsOnly := g.Client(0, o.Call.TLS) // per-call timeouts come from contexts
	g.AllowHTTP = true
	httpToo := g.Client(0, o.Call.TLS)
	return &Engine{opts: o, log: o.Logger, locks: newKeyedLock(), httpsOnly: httpsOnly, httpToo: httpToo}, nil
}

// errRaced: the conversation changed between the turn's read and its
// commit (another node, or the expiry sweep); the turn is run again, and
// after maxRaces attempts Handle fails with store.ErrConflict.
var errRaced = errors.New("conversation changed during the turn")

// errDuplicate aborts the commit of an event already committed.
var errDuplicate = errors.New("event already processed")

const maxRaces = 3

// Handle processes one event. Events of one (bot, channel, user) are handled
// one at a time, in the order Handle was called.
func (e *Engine) Handle(ctx context.Context, in Input) (Output, error) {
	if err := in.validate(); err != nil {
		return Output{}, err
	}
	unlock, err := e.locks.lock(ctx, in.BotID+"\x00"+in.ChannelID+"\x00"+in.UserID)
	if err != nil {
		return Output{}, err
	}
	defer unlock()
	b, err := e.opts.Bots.Bot(ctx, in.BotID)
	if err != nil {
		return Output{}, fmt.Errorf("conversation: %w", err)
	}
	for attempt := 1; ; attempt++ {
		out, err := e.turn(ctx, b, in)
		if !errors.Is(err, errRaced) {
			return out, err
		}
		if attempt == maxRaces {
			// Retryable: callers branch on store.ErrConflict.
			return Output{}, fmt.Errorf("conversation: %w: %w", store.ErrConflict, err)
		}
		e.log.InfoContext(ctx, "conversation changed concurrently, running the event again",
			"bot", in.BotID, "channel", in.ChannelID, "user", in.UserID, "event", in.EventKey)
	}
}

func (in *Input) validate() error {
	switch {
	case in.BotID == "" || in.ChannelID == "" || in.UserID == "":
		return fmt.Errorf("%w: bot, channel and user are required", ErrInvalidInput)
	case in.EventKey == "":
		return fmt.Errorf("%w: EventKey is required", ErrInvalidInput)
	}
	switch in.Kind {
	case KindMessage, KindButton, KindStart, KindFlowTrigger:
		return nil
	}
	return fmt.Errorf("%w: unknown kind %q", ErrInvalidInput, in.Kind)
}

// turn runs one event against the current state and commits the result.
func (e *Engine) turn(ctx context.Context, b *bot.Bot, in Input) (Output, error) {
	now := e.opts.Now()
	loaded, err := e.opts.Store.GetOpenConversation(ctx, in.BotID, in.ChannelID, in.UserID)
	open := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Output{}, fmt.Errorf("conversation: %w", err)
	}
	var closing []string // conversations this turn closes before its own
	if open && !loaded.ExpiresAt.IsZero() && !now.Before(loaded.ExpiresAt) {
		closing, open = append(closing, loaded.ID), false
	}
	var st state
	if open {
		st = loadState(loaded.Memory)
		if st.Event == in.EventKey {
			return Output{Conversation: loaded, Duplicate: true}, nil
		}
	}

	r := &run{e: e, bot: b, in: in, now: now}
	var from *bot.Step
	switch in.Kind {
	case KindStart:
		if open {
			return Output{Conversation: loaded}, nil
		}
		from = b.Default().First()
	case KindMessage, KindButton:
		if open {
			r.resume(loaded, st)
			if from, err = r.answer(ctx, loaded); err != nil {
				return Output{}, err
			}
		} else {
			from = b.Default().First()
		}
	case KindFlowTrigger:
		if from, err = e.triggerStep(ctx, b, in); err != nil {
			return Output{}, err
		}
		if open && in.CloseFlows {
			closing, open = append(closing, loaded.ID), false
		}
		if open {
			r.resume(loaded, st)
			r.st.Retries = 0
		}
	}
	if !open {
		r.start()
	}
	if err := r.runFrom(ctx, from); err != nil {
		return Output{}, err
	}
	return e.commit(ctx, r, loaded, open, closing)
}

// triggerStep resolves a flow_trigger's entry step.
func (e *Engine) triggerStep(ctx context.Context, b *bot.Bot, in Input) (*bot.Step, error) {
	f := b.Flow(in.FlowID)
	if f == nil {
		// CSML: an unknown flow falls back to the default flow.
		e.log.WarnContext(ctx, "flow_trigger names no flow, using the default flow",
			"bot", in.BotID, "flow", in.FlowID, "default", b.Default().ID)
		f = b.Default()
	}
	if in.StepID == "" {
		return f.First(), nil
	}
	s := f.Step(in.StepID)
	if s == nil {
		return nil, fmt.Errorf("%w: flow %q has no step %q", ErrUnknownStep, f.ID, in.StepID)
	}
	return s, nil
}

// commit writes the turn in one transaction. seen is the conversation that
// was open when the turn started (zero if none), continued says the turn
// continues it, and closing lists the conversations to close first.
func (e *Engine) commit(ctx context.Context, r *run, seen store.Conversation, continued bool, closing []string) (Output, error) {
	in, now := r.in, r.now
	conv := r.conversation(seen, continued)
	var out Output
	err := e.opts.Store.WithTx(ctx, func(tx store.Store) error {
		first, err := tx.MarkEventSeen(ctx, in.ChannelID, "conversation:"+in.EventKey, now)
		if err != nil {
			return err
		}
		if !first {
			return errDuplicate
		}
		cur, err := tx.GetOpenConversation(ctx, in.BotID, in.ChannelID, in.UserID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Every commit records its event key: a different one means
		// another turn committed since this one read the conversation.
		if cur.ID != seen.ID || loadState(cur.Memory).Event != loadState(seen.Memory).Event {
			return errRaced
		}
		for _, id := range closing {
			if err := tx.CloseConversation(ctx, id, now); err != nil {
				return err
			}
		}
		if continued {
			err = tx.UpdateConversation(ctx, conv)
		} else {
			// Created open: the store opens conversations only.
			err = tx.CreateConversation(ctx, &conv)
			if errors.Is(err, store.ErrConflict) {
				return errRaced
			}
			if err == nil && r.closed {
				err = tx.CloseConversation(ctx, conv.ID, now)
				conv.Status, conv.ClosedAt = store.ConversationClosed, &now
			}
		}
		if err != nil {
			return err
		}
		msgs, err := e.enqueue(ctx, tx, r, conv)
		if err != nil {
			return err
		}
		out = Output{Conversation: conv, Messages: msgs[len(msgs)-len(r.out):], Closed: r.closed}
		return nil
	})
	switch {
	case errors.Is(err, errDuplicate):
		return Output{Conversation: seen, Duplicate: true}, nil
	case errors.Is(err, errRaced):
		return Output{}, err
	case err != nil:
		return Output{}, fmt.Errorf("conversation: commit: %w", err)
	}
	return out, nil
}

// enqueue stores the turn's deliveries and messages (the inbound one first,
// when there is one) and returns the messages with their ids.
func (e *Engine) enqueue(ctx context.Context, tx store.Store, r *run, conv store.Conversation) ([]store.Message, error) {
	in := r.in
	kind, source := in.SourceKind, in.SourceID
	if kind == "" {
		kind, source = "reply", conv.ID
	}
	ds := make([]store.Delivery, len(r.out))
	for i, c := range r.out {
		ds[i] = store.Delivery{
			WorkspaceID: conv.WorkspaceID, ChannelID: conv.ChannelID, Recipient: conv.UserID,
			ReplyTo: conv.ReplyTo, PersonID: conv.PersonID, ConversationID: conv.ID, Content: c,
			IdempotencyKey: fmt.Sprintf("conversation:%s:%d", in.EventKey, i),
			Status:         store.DeliveryQueued, SourceKind: kind, SourceID: source,
		}
	}
	if _, err := tx.EnqueueDeliveries(ctx, ds); err != nil {
		return nil, err
	}
	var msgs []store.Message
	if in.Kind == KindMessage || in.Kind == KindButton {
		msgs = append(msgs, store.Message{ConversationID: conv.ID, Direction: store.Inbound, Content: in.Content, CreatedAt: r.now})
	}
	for i, c := range r.out {
		msgs = append(msgs, store.Message{ConversationID: conv.ID, Direction: store.Outbound, Content: c, DeliveryID: ds[i].ID, CreatedAt: r.now})
	}
	if err := tx.AppendMessages(ctx, msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}
