package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// workspaceID is what apply accepts as a workspace id.
var workspaceID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// --- workspaces ---

func viewWorkspace(w store.Workspace) Workspace {
	return Workspace{ID: w.ID, Name: w.Name, CreatedAt: w.CreatedAt}
}

// ListWorkspaces lists every workspace (the HTTP layer shows an admin
// key only its own).
func (s *Service) ListWorkspaces(ctx context.Context, o ListOptions) (Page[Workspace], error) {
	ws, err := s.o.Store.ListWorkspaces(ctx)
	if err != nil {
		return Page[Workspace]{}, err
	}
	return pageOf(ws, func(w store.Workspace) string { return w.ID }, viewWorkspace, o)
}

// CreateWorkspace creates a workspace; an id in use is a 409.
func (s *Service) CreateWorkspace(ctx context.Context, w Workspace) (Workspace, error) {
	if !workspaceID.MatchString(w.ID) {
		return Workspace{}, badRequest("/id", "workspace id %q: use 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit", w.ID)
	}
	if _, err := s.o.Store.GetWorkspace(ctx, w.ID); err == nil {
		return Workspace{}, httpapi.Errf(http.StatusConflict, "conflict", "/id", "workspace %q exists already", w.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return Workspace{}, err
	}
	if w.Name == "" {
		w.Name = w.ID
	}
	rec := store.Workspace{ID: w.ID, Name: w.Name, CreatedAt: s.o.Now().UTC().Truncate(time.Microsecond)}
	if err := s.o.Store.UpsertWorkspace(ctx, rec); err != nil {
		return Workspace{}, err
	}
	return viewWorkspace(rec), nil
}

// workspace checks that ws exists, so that every later "not found" is
// about the object asked for.
func (s *Service) workspace(ctx context.Context, ws string) error {
	if ws == "" {
		return badRequest("/workspace", "no workspace given: name one (--workspace, or ?workspace= with an operator key)")
	}
	_, err := s.o.Store.GetWorkspace(ctx, ws)
	if errors.Is(err, store.ErrNotFound) {
		return httpapi.Errf(http.StatusNotFound, "not_found", "/workspace", "no workspace %q", ws)
	}
	return err
}

// --- keys ---

func viewKey(k store.APIKey) Key {
	return Key{ID: k.ID, Name: k.Name, WorkspaceID: k.WorkspaceID, Scope: string(k.Scope), ChannelID: k.ChannelID,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt, ExpiresAt: k.ExpiresAt}
}

const keyNotice = "the key is shown once; only its hash is stored"

// ListKeys lists a workspace's keys, revoked and expired ones included.
func (s *Service) ListKeys(ctx context.Context, ws string, o ListOptions) (Page[Key], error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Page[Key]{}, err
	}
	keys, err := s.o.Store.ListAPIKeys(ctx, ws)
	if err != nil {
		return Page[Key]{}, err
	}
	// Oldest first, as the store lists them.
	return pageOf(keys, func(k store.APIKey) string { return fmt.Sprintf("%020d/%s", k.CreatedAt.UnixMicro(), k.ID) }, viewKey, o)
}

// CreateKey makes a key and returns it, the one time it is shown.
func (s *Service) CreateKey(ctx context.Context, ws string, r KeyRequest) (NewKey, error) {
	if err := s.workspace(ctx, ws); err != nil {
		return NewKey{}, err
	}
	scope := store.Scope(r.Scope)
	switch scope {
	case store.ScopeAdmin, store.ScopeApp, store.ScopeTrack:
		if r.Channel != "" {
			return NewKey{}, badRequest("/channel", "channel is for channel keys only, not %s keys", scope)
		}
	case store.ScopeChannel:
		if r.Channel == "" {
			return NewKey{}, badRequest("/channel", "a channel key needs a channel (id or name)")
		}
	default:
		return NewKey{}, badRequest("/scope", "scope %q: want admin, app, track or channel", r.Scope)
	}
	channelID := ""
	if scope == store.ScopeChannel {
		ch, err := s.findChannel(ctx, ws, r.Channel)
		if err != nil {
			return NewKey{}, err
		}
		channelID = ch.ID
	}
	raw, key, err := auth.NewKey(ws, scope, channelID, r.Name, s.o.Now())
	if err != nil {
		return NewKey{}, err
	}
	if err := s.o.Store.CreateAPIKey(ctx, key); err != nil {
		return NewKey{}, fmt.Errorf("store key: %w", err)
	}
	return NewKey{Key: raw, Info: viewKey(key), Notice: keyNotice}, nil
}

// key finds a key of ws by id (any workspace's when ws is "": the CLI on
// the database addresses keys by id alone).
func key(ctx context.Context, st store.Tenancy, ws, id string) (store.APIKey, error) {
	k, err := st.GetAPIKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ws != "" && k.WorkspaceID != ws) {
		return store.APIKey{}, notFound("API key", id)
	}
	return k, err
}

// RevokeKey revokes a key: every node refuses it from the next request on.
func (s *Service) RevokeKey(ctx context.Context, ws, id string) (Key, error) {
	k, err := key(ctx, s.o.Store, ws, id)
	if err != nil {
		return Key{}, err
	}
	if err := s.o.Store.RevokeAPIKey(ctx, k.WorkspaceID, k.ID); err != nil {
		return Key{}, err
	}
	if k, err = s.o.Store.GetAPIKey(ctx, k.ID); err != nil {
		return Key{}, err
	}
	return viewKey(k), nil
}

// RotateKey creates a key with the old one's workspace, scope, channel and
// name, and makes the old one stop working after grace (an earlier expiry
// is kept), in one transaction.
func (s *Service) RotateKey(ctx context.Context, ws, id string, grace time.Duration) (Rotation, error) {
	if grace < 0 {
		return Rotation{}, badRequest("/grace", "grace %s: must not be negative", grace)
	}
	var rot Rotation
	err := s.o.Store.WithTx(ctx, func(tx store.Store) error {
		now := s.o.Now()
		old, err := key(ctx, tx, ws, id)
		if err != nil {
			return err
		}
		if old.RevokedAt != nil {
			return httpapi.Errf(http.StatusConflict, "key_inactive", "", "API key %s is revoked; make a new one with keys create", old.ID)
		}
		if old.ExpiresAt != nil && !now.Before(*old.ExpiresAt) {
			return httpapi.Errf(http.StatusConflict, "key_inactive", "", "API key %s expired at %s; make a new one with keys create",
				old.ID, old.ExpiresAt.Format(time.RFC3339))
		}
		raw, fresh, err := auth.NewKey(old.WorkspaceID, old.Scope, old.ChannelID, old.Name, now)
		if err != nil {
			return err
		}
		if err := tx.CreateAPIKey(ctx, fresh); err != nil {
			return fmt.Errorf("store key: %w", err)
		}
		if err := tx.ExpireAPIKey(ctx, old.WorkspaceID, old.ID, now.Add(grace)); err != nil {
			return err
		}
		if old, err = tx.GetAPIKey(ctx, old.ID); err != nil {
			return err
		}
		rot = Rotation{Key: raw, New: viewKey(fresh), Old: viewKey(old), Notice: keyNotice}
		return nil
	})
	return rot, err
}

// --- bots and channels ---

func viewBot(b store.Bot) Bot {
	var def struct {
		Flows []struct {
			ID string `json:"id"`
		} `json:"flows"`
	}
	_ = json.Unmarshal(b.Definition, &def) // stored by apply: valid
	v := Bot{ID: b.ID, Name: b.Name, Flows: []string{}, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
	for _, f := range def.Flows {
		v.Flows = append(v.Flows, f.ID)
	}
	return v
}

// ListBots lists a workspace's bots by name.
func (s *Service) ListBots(ctx context.Context, ws string, o ListOptions) (Page[Bot], error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Page[Bot]{}, err
	}
	bots, err := s.o.Store.ListBots(ctx, ws)
	if err != nil {
		return Page[Bot]{}, err
	}
	return pageOf(bots, func(b store.Bot) string { return b.Name }, viewBot, o)
}

// GetBot finds a bot by id or name.
func (s *Service) GetBot(ctx context.Context, ws, idOrName string) (Bot, error) {
	b, err := s.o.Store.GetBot(ctx, idOrName)
	if err == nil && b.WorkspaceID != ws {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		b, err = s.o.Store.GetBotByName(ctx, ws, idOrName)
	}
	if err != nil {
		return Bot{}, found(err, "bot", idOrName)
	}
	return viewBot(b), nil
}

// health is each channel's plugin state on this node, by channel id.
func (s *Service) health() (func(store.Channel) *ChannelHealth, []Plugin) {
	if s.o.Plugins == nil {
		return func(store.Channel) *ChannelHealth { return nil }, []Plugin{}
	}
	plugins := []Plugin{}
	byType := map[string]pluginhost.PluginStatus{}
	instances := map[string]pluginhost.InstanceStatus{}
	for _, p := range s.o.Plugins() {
		plugins = append(plugins, Plugin{Name: p.Name, Version: p.Version, State: string(p.State), Error: p.LastError, Restarts: p.Restarts})
		byType[p.Name] = p
		for _, in := range p.Instances {
			instances[in.ChannelID] = in
		}
	}
	return func(ch store.Channel) *ChannelHealth {
		h := &ChannelHealth{Node: s.o.Node, PluginState: "missing", Reason: fmt.Sprintf("no %s plugin on this node", ch.Type)}
		p, ok := byType[ch.Type]
		if !ok {
			return h
		}
		h.PluginState, h.Reason = string(p.State), p.LastError
		in, ok := instances[ch.ID]
		switch {
		case !ch.Enabled:
			h.Reason = "channel disabled"
		case !ok:
			if h.Reason == "" {
				h.Reason = "the plugin has not configured this channel yet"
			}
		default:
			h.Healthy = in.Healthy && p.State == pluginhost.StateRunning
			if in.Reason != "" {
				h.Reason = in.Reason
			}
		}
		return h
	}, plugins
}

func viewChannel(ch store.Channel, health func(store.Channel) *ChannelHealth) Channel {
	cfg := ch.Config
	if len(cfg) == 0 {
		cfg = json.RawMessage("{}")
	}
	return Channel{ID: ch.ID, Name: ch.Name, Type: ch.Type, BotID: ch.BotID, Enabled: ch.Enabled, Config: cfg,
		CreatedAt: ch.CreatedAt, UpdatedAt: ch.UpdatedAt, Health: health(ch)}
}

// ListChannels lists a workspace's channels by name with their health
// here.
func (s *Service) ListChannels(ctx context.Context, ws string, o ListOptions) (Page[Channel], error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Page[Channel]{}, err
	}
	chs, err := s.o.Store.ListChannels(ctx, ws)
	if err != nil {
		return Page[Channel]{}, err
	}
	health, _ := s.health()
	return pageOf(chs, func(c store.Channel) string { return c.Name },
		func(c store.Channel) Channel { return viewChannel(c, health) }, o)
}

// GetChannel finds a channel by id or name, with its health here.
func (s *Service) GetChannel(ctx context.Context, ws, idOrName string) (Channel, error) {
	ch, err := s.findChannel(ctx, ws, idOrName)
	if err != nil {
		return Channel{}, err
	}
	health, _ := s.health()
	return viewChannel(ch, health), nil
}

func (s *Service) findChannel(ctx context.Context, ws, idOrName string) (store.Channel, error) {
	if err := s.workspace(ctx, ws); err != nil {
		return store.Channel{}, err
	}
	chs, err := s.o.Store.ListChannels(ctx, ws)
	if err != nil {
		return store.Channel{}, err
	}
	for _, ch := range chs {
		if ch.ID == idOrName || ch.Name == idOrName {
			return ch, nil
		}
	}
	return store.Channel{}, notFound("channel", idOrName)
}

// --- apply ---

// Apply applies resource documents as `switchboard apply` does, with the
// same validation; every document must describe workspace ws.
func (s *Service) Apply(ctx context.Context, ws string, r ApplyRequest, dryRun bool) (ApplyResult, error) {
	if len(r.Documents) == 0 {
		return ApplyResult{}, badRequest("/documents", "no documents: send at least one resources file")
	}
	files := make([]apply.File, 0, len(r.Documents))
	for i, d := range r.Documents {
		name := d.Name
		if name == "" {
			name = fmt.Sprintf("documents[%d]", i)
		}
		f, err := apply.ParseFile(name, []byte(d.Content))
		if err != nil {
			return ApplyResult{}, httpapi.Errf(http.StatusUnprocessableEntity, "invalid_document",
				fmt.Sprintf("/documents/%d", i), "%s", err.Error())
		}
		if f.Doc.Workspace.ID != ws {
			return ApplyResult{}, httpapi.Errf(http.StatusForbidden, "wrong_workspace", fmt.Sprintf("/documents/%d", i),
				"%s describes workspace %q; this request acts in workspace %q (an admin key acts in its own workspace only)",
				name, f.Doc.Workspace.ID, ws)
		}
		files = append(files, f)
	}
	var out strings.Builder
	err := apply.Apply(ctx, s.o.Store, files, apply.Options{
		Bots:     s.o.Bots,
		Channels: s.o.Channels,
		DryRun:   dryRun,
		Out:      &out,
		Now:      s.o.Now,
		LookupEnv: func(k string) (string, bool) {
			v, ok := r.Env[k]
			return v, ok
		},
	})
	var probs apply.Problems
	if errors.As(err, &probs) {
		errs := make([]*httpapi.APIError, len(probs))
		for i, p := range probs {
			errs[i] = httpapi.Errf(http.StatusUnprocessableEntity, "invalid_document", "", "%s", p)
		}
		return ApplyResult{}, &ApplyProblems{Errors: errs}
	}
	if err != nil {
		return ApplyResult{}, err
	}
	return ApplyResult{Changes: Changes(out.String()), DryRun: dryRun}, nil
}

// Changes splits what apply printed into its change lines (without the
// dry run's closing notice).
func Changes(printed string) []string {
	changes := []string{}
	for _, line := range strings.Split(printed, "\n") {
		if line != "" && line != apply.DryRunNotice {
			changes = append(changes, line)
		}
	}
	return changes
}

// ApplyProblems is every problem apply found, each one error of the
// envelope.
type ApplyProblems struct{ Errors []*httpapi.APIError }

func (p *ApplyProblems) Error() string {
	lines := make([]string, len(p.Errors))
	for i, e := range p.Errors {
		lines[i] = e.Detail
	}
	return fmt.Sprintf("%d problem(s):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// --- people ---

func viewPerson(p store.Person) Person {
	attrs := p.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	return Person{ID: p.ID, Email: p.Email, Attributes: attrs, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// ListPeople lists a workspace's people by id.
func (s *Service) ListPeople(ctx context.Context, ws string, o ListOptions) (Page[Person], error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Page[Person]{}, err
	}
	limit, err := limitOf(o)
	if err != nil {
		return Page[Person]{}, err
	}
	after, err := decodeCursor(o.Cursor)
	if err != nil {
		return Page[Person]{}, err
	}
	// One more than a page tells whether another page follows.
	rs, err := s.o.Store.ListRecipients(ctx, store.RecipientQuery{WorkspaceID: ws, After: after, Limit: limit + 1})
	if err != nil {
		return Page[Person]{}, err
	}
	p := Page[Person]{Data: []Person{}}
	for i, r := range rs {
		if i == limit {
			p.Next = encodeCursor(rs[i-1].Person.ID)
			break
		}
		p.Data = append(p.Data, viewPerson(r.Person))
	}
	return p, nil
}

// GetPerson returns a person with their identities.
func (s *Service) GetPerson(ctx context.Context, ws, id string) (Person, error) {
	p, err := s.o.Store.GetPerson(ctx, ws, id)
	if err != nil {
		return Person{}, found(err, "person", id)
	}
	ids, err := s.o.Store.ListIdentities(ctx, ws, id)
	if err != nil {
		return Person{}, err
	}
	v := viewPerson(p)
	for _, i := range ids {
		v.Identities = append(v.Identities, Identity{ChannelID: i.ChannelID, Address: i.Address})
	}
	return v, nil
}

// --- conversations ---

func viewConversation(c store.Conversation) Conversation {
	return Conversation{ID: c.ID, BotID: c.BotID, ChannelID: c.ChannelID, UserID: c.UserID, PersonID: c.PersonID,
		Status: string(c.Status), FlowID: c.FlowID, StepID: c.StepID, LastInteractionAt: c.LastInteractionAt,
		CreatedAt: c.CreatedAt, ClosedAt: c.ClosedAt}
}

// ListConversations lists a workspace's conversations, newest first.
func (s *Service) ListConversations(ctx context.Context, ws string, q ConversationQuery) (Page[Conversation], error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Page[Conversation]{}, err
	}
	limit, err := limitOf(q.ListOptions)
	if err != nil {
		return Page[Conversation]{}, err
	}
	before, err := decodeCursor(q.Cursor)
	if err != nil {
		return Page[Conversation]{}, err
	}
	switch store.ConversationStatus(q.Status) {
	case "", store.ConversationOpen, store.ConversationClosed:
	default:
		return Page[Conversation]{}, badRequest("/status", "status %q: want open or closed", q.Status)
	}
	if before != "" {
		// The store pages by a conversation's position; one of another
		// workspace must not even be a position.
		if c, err := s.o.Store.GetConversation(ctx, before); err != nil || c.WorkspaceID != ws {
			return Page[Conversation]{}, badRequest("/cursor", "cursor %q is not one this API returned: pass a page's next value as it is", q.Cursor)
		}
	}
	cs, err := s.o.Store.ListConversations(ctx, store.ConversationFilter{WorkspaceID: ws, ChannelID: q.ChannelID,
		UserID: q.UserID, Status: store.ConversationStatus(q.Status), Limit: limit + 1, Before: before})
	if err != nil {
		return Page[Conversation]{}, err
	}
	p := Page[Conversation]{Data: []Conversation{}}
	for i, c := range cs {
		if i == limit {
			p.Next = encodeCursor(cs[i-1].ID)
			break
		}
		p.Data = append(p.Data, viewConversation(c))
	}
	return p, nil
}

// GetConversation returns a conversation with its first messages, each
// outbound one with its delivery's status.
func (s *Service) GetConversation(ctx context.Context, ws, id string) (Conversation, error) {
	c, err := s.o.Store.GetConversation(ctx, id)
	if err == nil && c.WorkspaceID != ws {
		err = store.ErrNotFound
	}
	if err != nil {
		return Conversation{}, found(err, "conversation", id)
	}
	msgs, err := s.o.Store.ListMessages(ctx, id, 0, messagesShown)
	if err != nil {
		return Conversation{}, err
	}
	v := viewConversation(c)
	v.Messages = []Message{}
	for _, m := range msgs {
		mv := Message{ID: m.ID, Direction: string(m.Direction), Content: m.Content, CreatedAt: m.CreatedAt}
		if m.DeliveryID != 0 {
			d, err := s.o.Store.GetDelivery(ctx, m.DeliveryID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return Conversation{}, err
			}
			if err == nil {
				mv.Delivery = &DeliveryStatus{ID: d.ID, Status: string(d.Status), Reason: d.Reason, Attempts: d.Attempts,
					SentAt: d.SentAt, DeliveredAt: d.DeliveredAt}
			}
		}
		v.Messages = append(v.Messages, mv)
	}
	return v, nil
}

// --- deliveries ---

func viewDelivery(d store.Delivery) Delivery {
	return Delivery{ID: d.ID, ChannelID: d.ChannelID, Recipient: d.Recipient, PersonID: d.PersonID,
		ConversationID: d.ConversationID, Status: string(d.Status), Reason: d.Reason, LastError: d.LastError,
		Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, ProviderID: d.ProviderID, SourceKind: d.SourceKind,
		SourceID: d.SourceID, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, SentAt: d.SentAt, DeliveredAt: d.DeliveredAt}
}

var deliveryStatuses = []store.DeliveryStatus{store.DeliveryQueued, store.DeliveryRetrying, store.DeliverySending,
	store.DeliverySent, store.DeliveryDelivered, store.DeliveryFailed, store.DeliverySkipped}

// ListDeliveries lists a workspace's deliveries as q filters them.
func (s *Service) ListDeliveries(ctx context.Context, ws string, q DeliveryQuery) (Page[Delivery], error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Page[Delivery]{}, err
	}
	limit, err := limitOf(q.ListOptions)
	if err != nil {
		return Page[Delivery]{}, err
	}
	if q.Status != "" && !containsStatus(q.Status) {
		return Page[Delivery]{}, badRequest("/status", "status %q: want one of %s", q.Status, statusList())
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return Page[Delivery]{}, badRequest("/since", "since (%s) must be before until (%s)",
			q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	f := store.DeliveryFilter{WorkspaceID: ws, Status: store.DeliveryStatus(q.Status), Reason: q.Reason,
		ChannelID: q.ChannelID, PersonID: q.PersonID, Since: q.Since, Until: q.Until, Limit: limit + 1}
	pos, err := decodeIntCursor(q.Cursor)
	if err != nil {
		return Page[Delivery]{}, err
	}
	// A cursor continues in the direction its first page went.
	if q.After > 0 {
		f.After = max(q.After, pos)
	} else {
		f.Before = pos
	}
	ds, err := s.o.Store.ListDeliveries(ctx, f)
	if err != nil {
		return Page[Delivery]{}, err
	}
	p := Page[Delivery]{Data: []Delivery{}}
	for i, d := range ds {
		if i == limit {
			p.Next = encodeCursor(strconv.FormatInt(ds[i-1].ID, 10))
			break
		}
		p.Data = append(p.Data, viewDelivery(d))
	}
	return p, nil
}

func containsStatus(s string) bool {
	for _, st := range deliveryStatuses {
		if string(st) == s {
			return true
		}
	}
	return false
}

func statusList() string {
	names := make([]string, len(deliveryStatuses))
	for i, s := range deliveryStatuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// GetDelivery returns one delivery with its content.
func (s *Service) GetDelivery(ctx context.Context, ws string, id int64) (Delivery, error) {
	d, err := s.o.Store.GetDelivery(ctx, id)
	if err == nil && d.WorkspaceID != ws {
		err = store.ErrNotFound
	}
	if err != nil {
		return Delivery{}, found(err, "delivery", strconv.FormatInt(id, 10))
	}
	v := viewDelivery(d)
	v.Content = &d.Content
	return v, nil
}

// --- triggers ---

// ListTriggers lists a workspace's triggers (of one broadcast, or all),
// newest first, with their counts.
func (s *Service) ListTriggers(ctx context.Context, ws string, q TriggerQuery) (Page[Trigger], error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Page[Trigger]{}, err
	}
	limit, err := limitOf(q.ListOptions)
	if err != nil {
		return Page[Trigger]{}, err
	}
	before, err := decodeIntCursor(q.Cursor)
	if err != nil {
		return Page[Trigger]{}, err
	}
	if q.BroadcastID != 0 {
		if _, err := s.o.Store.GetBroadcast(ctx, ws, q.BroadcastID); err != nil {
			return Page[Trigger]{}, found(err, "broadcast", strconv.FormatInt(q.BroadcastID, 10))
		}
	}
	ts, err := s.o.Store.ListTriggers(ctx, ws, q.BroadcastID, before, limit+1)
	if err != nil {
		return Page[Trigger]{}, err
	}
	p := Page[Trigger]{Data: []Trigger{}}
	if len(ts) > limit {
		ts = ts[:limit]
		p.Next = encodeCursor(strconv.FormatInt(ts[limit-1].ID, 10))
	}
	views, err := s.o.Audience.TriggerViews(ctx, ts)
	if err != nil {
		return Page[Trigger]{}, err
	}
	for i, v := range views {
		p.Data = append(p.Data, Trigger{TriggerView: v, BroadcastName: ts[i].Broadcast.Name})
	}
	return p, nil
}

// GetTrigger returns a trigger with its counts and first error lines.
func (s *Service) GetTrigger(ctx context.Context, ws string, id int64) (Trigger, error) {
	t, err := s.o.Store.GetTrigger(ctx, ws, id)
	if err != nil {
		return Trigger{}, found(err, "trigger", strconv.FormatInt(id, 10))
	}
	views, err := s.o.Audience.TriggerViews(ctx, []store.Trigger{t})
	if err != nil {
		return Trigger{}, err
	}
	lines, _, err := s.o.Audience.TriggerErrors(ctx, ws, t.BroadcastID, t.ID, 0, errorLinesShown)
	if err != nil {
		return Trigger{}, err
	}
	return Trigger{TriggerView: views[0], BroadcastName: t.Broadcast.Name, ErrorLines: lines}, nil
}

// TriggerBroadcast triggers a broadcast as the App API does.
func (s *Service) TriggerBroadcast(ctx context.Context, ws string, broadcastID int64, body json.RawMessage) (TriggerCreated, error) {
	if err := s.workspace(ctx, ws); err != nil {
		return TriggerCreated{}, err
	}
	if len(body) == 0 {
		body = json.RawMessage("{}")
	}
	res, err := s.o.Audience.Trigger(ctx, ws, broadcastID, bytes.NewReader(body))
	if err != nil {
		return TriggerCreated{}, found(err, "broadcast", strconv.FormatInt(broadcastID, 10))
	}
	if res.DryRun != nil {
		return TriggerCreated{DryRun: res.DryRun}, nil
	}
	return TriggerCreated{ID: res.Trigger.ID}, nil
}

// --- status ---

// Status is the nodes, this node's plugins, the workspace's channels with
// health and its outbox depth.
func (s *Service) Status(ctx context.Context, ws string) (Status, error) {
	if err := s.workspace(ctx, ws); err != nil {
		return Status{}, err
	}
	now := s.o.Now()
	nodes, err := s.o.Store.ListNodes(ctx)
	if err != nil {
		return Status{}, err
	}
	chs, err := s.o.Store.ListChannels(ctx, ws)
	if err != nil {
		return Status{}, err
	}
	pending, err := s.o.Store.CountPendingDeliveries(ctx, ws)
	if err != nil {
		return Status{}, err
	}
	health, plugins := s.health()
	st := Status{Node: s.o.Node, Nodes: []Node{}, Plugins: plugins, Channels: []Channel{}, Queue: []QueueDepth{}}
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, Node{ID: n.ID, StartedAt: n.StartedAt, LeaseUntil: n.LeaseUntil, Live: now.Before(n.LeaseUntil)})
	}
	for _, ch := range chs {
		st.Channels = append(st.Channels, viewChannel(ch, health))
	}
	for _, c := range pending {
		st.Queue = append(st.Queue, QueueDepth{ChannelID: c.ChannelID, Status: string(c.Status), Count: c.N,
			Oldest: c.Oldest, AgeSeconds: max(0, now.Sub(c.Oldest).Seconds())})
	}
	return st, nil
}
