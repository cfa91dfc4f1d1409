package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/conversation"
	"github.com/switchboard-gw/switchboard/gateway/queue"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Engine runs one conversation event.
type Engine interface {
	Handle(ctx context.Context, in conversation.Input) (conversation.Output, error)
}

// HandlerStore is what Handler needs from the store.
type HandlerStore interface {
	GetChannel(ctx context.Context, id string) (store.Channel, error)
	PersonByIdentity(ctx context.Context, channelID, address string) (store.Person, error)
	FindPeopleByPhone(ctx context.Context, workspaceID, phone string) ([]store.Person, error)
	UpsertPerson(ctx context.Context, p store.Person) (store.Person, error)
	LinkIdentity(ctx context.Context, id store.Identity) error
}

// Handler runs conversation jobs through the engine.
type Handler struct {
	Store    HandlerStore
	Engine   Engine
	Delivery Notifier
	// Observe, when set, is told the outcome of every event (the
	// broadcast APIs record per-request results with it). err is the
	// final error of a failed event.
	Observe func(ctx context.Context, ev Event, out conversation.Output, err error)
}

// Run is the queue handler for JobKind.
func (h *Handler) Run(ctx context.Context, job store.Job) error {
	var ev Event
	if err := json.Unmarshal(job.Payload, &ev); err != nil {
		return queue.Permanent(fmt.Errorf("decode conversation event: %w", err))
	}
	out, err := h.Handle(ctx, ev)
	if err != nil && !IsPermanent(err) {
		return err // retried: the engine is idempotent per EventKey
	}
	if h.Observe != nil {
		h.Observe(ctx, ev, out, err)
	}
	if err != nil {
		return queue.Permanent(err)
	}
	return nil
}

// GiveUp is the queue's OnGiveUp hook of JobKind: the event's runs kept
// dying before they finished, and Observe hears it as the event's failure.
func (h *Handler) GiveUp(ctx context.Context, job store.Job, reason string) error {
	var ev Event
	if err := json.Unmarshal(job.Payload, &ev); err != nil {
		return fmt.Errorf("decode conversation event: %w", err)
	}
	if h.Observe != nil {
		h.Observe(ctx, ev, conversation.Output{}, errors.New(reason))
	}
	return nil
}

// Handle runs one event now (the synchronous Chat API uses it directly) and
// wakes the delivery pipeline for the messages it produced.
func (h *Handler) Handle(ctx context.Context, ev Event) (conversation.Output, error) {
	out, err := h.handle(ctx, ev)
	if err == nil && len(out.Messages) > 0 {
		h.Delivery.Notify()
	}
	return out, err
}

func (h *Handler) handle(ctx context.Context, ev Event) (conversation.Output, error) {
	ch, err := h.Store.GetChannel(ctx, ev.ChannelID)
	if err != nil {
		return conversation.Output{}, fmt.Errorf("channel %s: %w", ev.ChannelID, err)
	}
	person, err := h.person(ctx, ch, ev)
	if err != nil {
		return conversation.Output{}, err
	}
	in := conversation.Input{
		Kind: conversation.Kind(ev.Kind), WorkspaceID: ev.WorkspaceID, BotID: ev.BotID,
		ChannelID: ev.ChannelID, ChannelType: ch.Type, UserID: ev.UserID, ReplyTo: ev.ReplyTo,
		EventKey: ev.EventKey, Content: ev.Content, Profile: ev.Profile,
		FlowID: ev.FlowID, StepID: ev.StepID, CloseFlows: ev.CloseFlows, Metadata: ev.Metadata, Trigger: ev.Trigger,
		SourceKind: ev.SourceKind, SourceID: ev.SourceID,
	}
	if person.ID != "" {
		in.PersonID = person.ID
		in.Customer = CustomerVars(person)
	}
	return h.Engine.Handle(ctx, in)
}

// person finds who the user is. Someone who writes on a channel for the
// first time becomes a person with that channel identity; proactive events
// never create people.
func (h *Handler) person(ctx context.Context, ch store.Channel, ev Event) (store.Person, error) {
	p, err := h.Store.PersonByIdentity(ctx, ch.ID, ev.UserID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return p, err
	}
	if ev.Kind == KindFlowTrigger {
		return store.Person{}, nil
	}
	if phoneAddressed[ch.Type] {
		// Someone a broadcast reached at their phone attribute (the
		// audience's default address there) answers: it is them.
		ps, err := h.Store.FindPeopleByPhone(ctx, ch.WorkspaceID, ev.UserID)
		if err != nil {
			return store.Person{}, fmt.Errorf("find person by phone: %w", err)
		}
		if len(ps) > 0 {
			id := store.Identity{WorkspaceID: ch.WorkspaceID, PersonID: ps[0].ID, ChannelID: ch.ID, Address: ev.UserID}
			if err := h.Store.LinkIdentity(ctx, id); err != nil {
				return store.Person{}, fmt.Errorf("link identity: %w", err)
			}
			return ps[0], nil
		}
	}
	attrs := map[string]any{}
	for k, v := range ev.Profile {
		attrs[k] = v
	}
	p, err = h.Store.UpsertPerson(ctx, store.Person{WorkspaceID: ch.WorkspaceID, ID: uuid.NewString(), Attributes: attrs})
	if err != nil {
		return store.Person{}, fmt.Errorf("create person: %w", err)
	}
	if err := h.Store.LinkIdentity(ctx, store.Identity{WorkspaceID: ch.WorkspaceID, PersonID: p.ID, ChannelID: ch.ID, Address: ev.UserID}); err != nil {
		return store.Person{}, fmt.Errorf("link identity: %w", err)
	}
	return p, nil
}

// phoneAddressed are the channel types whose addresses are phone numbers,
// which people hold in their phone attribute (the audience reaches people
// without an identity there at {{ customer.phone }}): a first message
// from an unknown number belongs to the person with that phone, the
// oldest if several share it.
var phoneAddressed = map[string]bool{"twilio": true}

// CustomerVars is what templates see as customer.*: the attributes, plus
// id and email.
func CustomerVars(p store.Person) map[string]any {
	vars := make(map[string]any, len(p.Attributes)+2)
	for k, v := range p.Attributes {
		vars[k] = v
	}
	vars["id"] = p.ID
	vars["email"] = p.Email
	return vars
}

// IsPermanent tells failures that retrying cannot fix: bad input, a bot or
// flow that does not exist or does not compile, a failing step.
func IsPermanent(err error) bool {
	for _, target := range []error{conversation.ErrInvalidInput, conversation.ErrUnknownStep,
		conversation.ErrStepLimit, conversation.ErrStep, bot.ErrInvalid, store.ErrNotFound} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
