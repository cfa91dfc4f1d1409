package adminapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Admin is what operators do: the admin API serves it over HTTP (Service
// behind Handler), Client calls it remotely, and the CLI, which opens the
// database without --url, calls a Service directly. Every method acts in
// one workspace. What the caller must fix (unknown objects, bad input) is
// an error with a message saying so: an *httpapi.APIError (from a Client
// always, carrying the answer's status), or package audience's typed
// errors from TriggerBroadcast.
type Admin interface {
	ListWorkspaces(ctx context.Context, o ListOptions) (Page[Workspace], error)
	CreateWorkspace(ctx context.Context, w Workspace) (Workspace, error)

	ListKeys(ctx context.Context, ws string, o ListOptions) (Page[Key], error)
	CreateKey(ctx context.Context, ws string, r KeyRequest) (NewKey, error)
	RevokeKey(ctx context.Context, ws, id string) (Key, error)
	RotateKey(ctx context.Context, ws, id string, grace time.Duration) (Rotation, error)

	ListBots(ctx context.Context, ws string, o ListOptions) (Page[Bot], error)
	GetBot(ctx context.Context, ws, idOrName string) (Bot, error)
	ListChannels(ctx context.Context, ws string, o ListOptions) (Page[Channel], error)
	GetChannel(ctx context.Context, ws, idOrName string) (Channel, error)
	Apply(ctx context.Context, ws string, r ApplyRequest, dryRun bool) (ApplyResult, error)

	ListPeople(ctx context.Context, ws string, o ListOptions) (Page[Person], error)
	GetPerson(ctx context.Context, ws, id string) (Person, error)
	ListConversations(ctx context.Context, ws string, q ConversationQuery) (Page[Conversation], error)
	GetConversation(ctx context.Context, ws, id string) (Conversation, error)
	ListDeliveries(ctx context.Context, ws string, q DeliveryQuery) (Page[Delivery], error)
	GetDelivery(ctx context.Context, ws string, id int64) (Delivery, error)

	ListTriggers(ctx context.Context, ws string, q TriggerQuery) (Page[Trigger], error)
	GetTrigger(ctx context.Context, ws string, id int64) (Trigger, error)
	// TriggerBroadcast is POST /v1/campaigns/{id}/triggers: body is that
	// route's body.
	TriggerBroadcast(ctx context.Context, ws string, broadcastID int64, body json.RawMessage) (TriggerCreated, error)

	Status(ctx context.Context, ws string) (Status, error)
}

// TriggerCreated is a queued trigger's id, or a dry run's result.
type TriggerCreated struct {
	ID     int64            `json:"id,omitempty"`
	DryRun *audience.DryRun `json:"dry_run,omitempty"`
}

// Store is what Service reads and writes.
type Store interface {
	store.Tenancy
	GetPerson(ctx context.Context, workspaceID, id string) (store.Person, error)
	ListIdentities(ctx context.Context, workspaceID, personID string) ([]store.Identity, error)
	ListRecipients(ctx context.Context, q store.RecipientQuery) ([]store.Recipient, error)
	GetConversation(ctx context.Context, id string) (store.Conversation, error)
	ListConversations(ctx context.Context, f store.ConversationFilter) ([]store.Conversation, error)
	ListMessages(ctx context.Context, conversationID string, afterID int64, limit int) ([]store.Message, error)
	GetDelivery(ctx context.Context, id int64) (store.Delivery, error)
	ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error)
	CountPendingDeliveries(ctx context.Context, workspaceID string) ([]store.PendingCount, error)
	GetBroadcast(ctx context.Context, workspaceID string, id int64) (store.Broadcast, error)
	GetTrigger(ctx context.Context, workspaceID string, id int64) (store.Trigger, error)
	ListTriggers(ctx context.Context, workspaceID string, broadcastID, before int64, limit int) ([]store.Trigger, error)
	ListNodes(ctx context.Context) ([]store.Node, error)
	WithTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Options configure a Service.
type Options struct {
	Store Store
	// Audience counts triggers' deliveries and queues new triggers.
	Audience *audience.Service
	// Bots compiles bot documents for Apply; Channels, when set, checks
	// channel configurations with their plugins first (as `switchboard
	// apply` does).
	Bots     apply.BotCompiler
	Channels apply.ChannelValidator
	// Node is the answering node's id, Plugins its plugins' states; both
	// empty when no plugins run here (the CLI on the database).
	Node    string
	Plugins func() []pluginhost.PluginStatus
	// Now is the clock keys and node leases are judged by (default
	// time.Now).
	Now func() time.Time
}

// Service implements Admin on a store.
type Service struct{ o Options }

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}
}

var _ Admin = (*Service)(nil)

// DefaultKeyGrace is how long a rotated key keeps working by default: time
// to deploy the new key everywhere the old one is used.
const DefaultKeyGrace = 24 * time.Hour

// Page sizes.
const (
	defaultLimit = 100
	maxLimit     = 500
	// messagesShown is how many messages a conversation get returns.
	messagesShown = 200
	// errorLinesShown is how many error lines a trigger get returns.
	errorLinesShown = 100
)

// --- errors the caller fixes ---

func notFound(kind, id string) error {
	return httpapi.Errf(http.StatusNotFound, "not_found", "", "no %s %q in this workspace", kind, id)
}

func badRequest(pointer, format string, a ...any) error {
	return httpapi.Errf(http.StatusBadRequest, "invalid_field", pointer, format, a...)
}

// found turns the store's ErrNotFound into a 404 naming the object.
func found(err error, kind, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(kind, id)
	}
	return err
}

// --- cursors: opaque to clients, "v1:" and a position inside ---

func encodeCursor(pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + pos))
}

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !bytes.HasPrefix(b, []byte("v1:")) {
		return "", badRequest("/cursor", "cursor %q is not one this API returned: pass a page's next value as it is", c)
	}
	return string(b[3:]), nil
}

func decodeIntCursor(c string) (int64, error) {
	pos, err := decodeCursor(c)
	if err != nil || pos == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(pos, 10, 64)
	if err != nil {
		return 0, badRequest("/cursor", "cursor %q is not one this API returned: pass a page's next value as it is", c)
	}
	return n, nil
}

func limitOf(o ListOptions) (int, error) {
	switch {
	case o.Limit == 0:
		return defaultLimit, nil
	case o.Limit < 1 || o.Limit > maxLimit:
		return 0, badRequest("/limit", "limit %d: must be from 1 to %d", o.Limit, maxLimit)
	}
	return o.Limit, nil
}

// pageOf pages a short list the store returns whole (keys, bots,
// channels, workspaces): sorted by pos, a unique key, the cursor is the
// last position shown.
func pageOf[T, V any](items []T, pos func(T) string, view func(T) V, o ListOptions) (Page[V], error) {
	limit, err := limitOf(o)
	if err != nil {
		return Page[V]{}, err
	}
	after, err := decodeCursor(o.Cursor)
	if err != nil {
		return Page[V]{}, err
	}
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(pos(a), pos(b)) })
	p := Page[V]{Data: []V{}}
	last := ""
	for _, it := range items {
		if after != "" && pos(it) <= after {
			continue
		}
		if len(p.Data) == limit {
			p.Next = encodeCursor(last)
			break
		}
		p.Data = append(p.Data, view(it))
		last = pos(it)
	}
	return p, nil
}
