package webchat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/inbound"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Store is what the service needs.
type Store interface {
	GetChannel(ctx context.Context, id string) (store.Channel, error)
	WithTx(ctx context.Context, fn func(tx store.Store) error) error
	store.Webchat
}

// Plugins finds running plugins by type; *pluginhost.Host is one.
type Plugins interface {
	Channel(name string) (sdk.Channel, error)
	Describe(name string) (sdk.Description, bool)
}

// EventSink makes a session's events durable; *inbound.Sink is one.
type EventSink interface {
	Accept(ctx context.Context, ch store.Channel, events []sdk.Event) error
}

// Limits tune connections. Zero values take the defaults.
type Limits struct {
	// MaxFrameBytes is the read limit; a larger frame closes the
	// connection with 1009. Defaults to 64 KiB.
	MaxFrameBytes int64
	// HelloTimeout is how long a connection may go without a session.
	// Defaults to 10s.
	HelloTimeout time.Duration
	// PongWait is how long a connection may stay silent (no frame, no
	// pong); pings go out at 9/10 of it. Defaults to 60s.
	PongWait time.Duration
	// WriteWait bounds one write. Defaults to 10s.
	WriteWait time.Duration
	// SendQueue is how many frames may wait for a connection's writer; a
	// connection that falls further behind is a slow consumer and is
	// closed. Defaults to 16.
	SendQueue int
	// FrameRate and FrameBurst limit the frames one connection sends.
	// Frames over the limit are dropped unanswered (a client resends what
	// was not "received" when it reconnects); once the dropped ones exceed
	// the same rate and burst, the connection is closed with 1008. Default
	// 30/s, burst 60: far above a person typing and a widget acknowledging
	// at most every 50 ms, far below a flood.
	FrameRate  rate.Limit
	FrameBurst int
	// PluginWait is how long a frame waits for a restarting plugin before
	// the connection is closed with 1013 (try again later). Defaults to 30s.
	PluginWait time.Duration
	// HistoryKeep is how many acknowledged messages are kept per user, for
	// new tabs and reloads. Defaults to 200.
	HistoryKeep int
	// Retention is how long a message stays in the outbox: one no client
	// acknowledged by then expires (its delivery fails with reason
	// expired), and older history is no longer replayed. Defaults to 7
	// days.
	Retention time.Duration
	// NodeTTL is how long a node's presence counts without the node
	// renewing its lease (every third of it): a node that dies stops
	// counting after at most this. Defaults to 30s.
	NodeTTL time.Duration
}

func (l *Limits) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.HelloTimeout, 10*time.Second)
	def(&l.PongWait, 60*time.Second)
	def(&l.WriteWait, 10*time.Second)
	def(&l.PluginWait, 30*time.Second)
	def(&l.Retention, 7*24*time.Hour)
	def(&l.NodeTTL, 30*time.Second)
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = 64 << 10
	}
	if l.SendQueue <= 0 {
		l.SendQueue = 16
	}
	if l.FrameRate <= 0 {
		l.FrameRate = 30
	}
	if l.FrameBurst <= 0 {
		l.FrameBurst = 60
	}
	if l.HistoryKeep <= 0 {
		l.HistoryKeep = 200
	}
}

// Options configure a Service. Store, Plugins, Events and Queue are
// required.
type Options struct {
	Store   Store
	Plugins Plugins
	// Events stores the messages and clicks of sessions.
	Events EventSink
	// Queue is woken after a session's conversation start is stored.
	Queue  inbound.Notifier
	Limits Limits
	// SecretKey is the gateway's secret_key, from which each channel's
	// session signing key is derived (SessionKey).
	SecretKey string
	// Wakeups joins the gateway nodes sharing the store (PostgreSQL): this
	// node then files its users' presence under Node and wakes the other
	// nodes for every message it stores. Nil on a single node (SQLite):
	// presence stays in memory and nothing crosses processes.
	Wakeups Wakeups
	// Node names this process among the nodes; required with Wakeups.
	Node   string
	Logger *slog.Logger
	// Now is the clock of retention and node leases. Defaults to time.Now.
	Now func() time.Time
}

// Service is the gateway side of web chat. Create it with New; Run closes
// every connection when its context ends.
type Service struct {
	opts     Options
	limits   Limits
	log      *slog.Logger
	now      func() time.Time
	hub      *hub
	acks     *coalescer[userKey, int64]
	presence *coalescer[userKey, bool] // nil on a single node
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Plugins == nil || opts.Events == nil || opts.Queue == nil {
		return nil, errors.New("webchat: Options.Store, Plugins, Events and Queue are required")
	}
	if opts.SecretKey == "" {
		return nil, errors.New("webchat: Options.SecretKey is required")
	}
	if opts.Wakeups != nil && opts.Node == "" {
		return nil, errors.New("webchat: Options.Node is required with Wakeups")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Limits.defaults()
	log := opts.Logger.With("component", "webchat")
	s := &Service{
		opts:   opts,
		limits: opts.Limits,
		log:    log,
		now:    opts.Now,
		acks:   newAcker(opts.Store, opts.Limits.HistoryKeep, log),
	}
	var onPresence func(userKey, bool)
	if s.clustered() {
		s.presence = newPresence(opts.Store, opts.Node, log)
		onPresence = s.presence.add
	}
	s.hub = newHub(onPresence)
	return s, nil
}

// Routes are the service's HTTP routes: the websocket, the demo page and
// the widget script of every web chat channel.
func (s *Service) Routes() []httpapi.Route {
	return []httpapi.Route{
		// The socket bounds its own reads (hello, pongs) and writes.
		{Pattern: "GET /channels/{channel_id}/ws", Handler: http.HandlerFunc(s.serveSocket), Public: true, Stream: true},
		{Pattern: "GET /channels/{channel_id}/{$}", Handler: http.HandlerFunc(s.servePage), Public: true},
		{Pattern: "GET /channels/{channel_id}/widget.js", Handler: http.HandlerFunc(s.serveWidget), Public: true},
	}
}

// Run expires old messages and, with several nodes, keeps this node's lease
// and listens to the others. It returns when ctx ends, after closing every
// connection (1001, going away: clients reconnect to another node or after
// the restart), recording the last acks and ending the node's lease.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.expireLoop(ctx) })
	if s.clustered() {
		s.log.Info("web chat node joins the nodes sharing the store", "node", s.opts.Node)
		wg.Go(func() { s.runCluster(ctx) })
	}
	<-ctx.Done()
	s.hub.closeAll()
	s.acks.wait()
	wg.Wait()
	if s.clustered() {
		s.presence.wait()
		s.leave()
	}
	return nil
}

// Connected reports whether the user has a connection to this node.
func (s *Service) Connected(channelID, userID string) bool { return s.hub.connected(channelID, userID) }

// Connections counts this node's open connections, with a session or not.
func (s *Service) Connections() int { return s.hub.count() }

// SessionKey derives a channel's session signing key from the gateway's
// secret: the same for a channel as long as the secret is.
func SessionKey(secretKey, channelID string) string {
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte("switchboard/webchat-session/v1/" + channelID))
	return hex.EncodeToString(m.Sum(nil))
}

// InstanceSecrets returns a channel's secrets as its plugin must get them:
// for a websocket plugin, with the channel's session key added
// (sdk.SecretSessionKey); otherwise unchanged.
func (s *Service) InstanceSecrets(ch store.Channel, secrets map[string]string) map[string]string {
	if d, ok := s.opts.Plugins.Describe(ch.Type); !ok || !d.Capabilities.Websocket {
		return secrets
	}
	return WithSessionKey(s.opts.SecretKey, ch.ID, secrets)
}

// WithSessionKey returns a websocket channel's secrets with the session
// key the gateway gives its plugin added.
func WithSessionKey(secretKey, channelID string, secrets map[string]string) map[string]string {
	out := maps.Clone(secrets)
	if out == nil {
		out = map[string]string{}
	}
	out[sdk.SecretSessionKey] = SessionKey(secretKey, channelID)
	return out
}

// socketChannel looks up the web chat channel of a request: an enabled
// channel whose plugin has a websocket protocol.
func (s *Service) socketChannel(w http.ResponseWriter, r *http.Request) (store.Channel, bool) {
	id := r.PathValue("channel_id")
	ch, err := s.opts.Store.GetChannel(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !ch.Enabled) {
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusNotFound, "channel_not_found", "", "no channel %q", id))
		return ch, false
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return ch, false
	}
	if d, ok := s.opts.Plugins.Describe(ch.Type); !ok || !d.Capabilities.Websocket {
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusNotFound, "not_web_chat", "",
			"channel %q (%s) is not a web chat channel", id, ch.Type))
		return ch, false
	}
	return ch, true
}

// startConversation stores the conversation start a session asked for:
// the flow it names (a flow_trigger), else the default flow unless one is
// open. StartID dedupes it like an event id.
func (s *Service) startConversation(ctx context.Context, ch store.Channel, userID string, st *sdk.SessionStart) error {
	var meta map[string]any
	if len(st.Metadata) > 0 {
		if err := json.Unmarshal(st.Metadata, &meta); err != nil {
			return fmt.Errorf("session start metadata: %w", err)
		}
	}
	ev := inbound.Event{
		Kind: inbound.KindStart, WorkspaceID: ch.WorkspaceID, BotID: ch.BotID, ChannelID: ch.ID, UserID: userID,
		EventKey: "in:" + ch.ID + ":start:" + st.StartID, Metadata: meta, Profile: st.Profile,
		SourceKind: "reply", Received: time.Now(),
	}
	if st.FlowID != "" {
		// A page's ?ref= starts its flow afresh, as CSML's does.
		ev.Kind, ev.FlowID, ev.StepID, ev.CloseFlows = inbound.KindFlowTrigger, st.FlowID, st.StepID, true
	}
	err := s.opts.Store.WithTx(ctx, func(tx store.Store) error {
		first, err := tx.MarkEventSeen(ctx, ch.ID, ev.EventKey, ev.Received)
		if err != nil || !first {
			return err
		}
		return inbound.Enqueue(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("store session start: %w", err)
	}
	s.opts.Queue.Notify()
	return nil
}
