package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Sentinel errors; implementations wrap them with %w.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Store is the whole persistent state. Consumers should depend on the small
// interfaces they need, not on Store.
type Store interface {
	Tenancy
	People
	Conversations
	Deliveries
	Jobs
	Nodes
	Stats
	InboundDedupe
	FlowTriggers
	Audience
	Retention

	// WithTx runs fn in one transaction: fn's Store sees and writes inside
	// it; the transaction commits when fn returns nil and rolls back
	// otherwise.
	WithTx(ctx context.Context, fn func(tx Store) error) error
	// Close releases the connections.
	Close() error
}

// Workspace is a tenant. Nothing crosses workspaces.
type Workspace struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Bot is a bot with its flows. Definition is the validated bot document (see
// package bot) stored as JSON; its call.secret is sealed at rest (see
// Tenancy) and plaintext here.
type Bot struct {
	ID          string
	WorkspaceID string
	Name        string
	Definition  json.RawMessage
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Channel is one instance of a channel plugin type, attached to a bot.
// Secrets are stored apart (ChannelSecrets) and never returned with it.
type Channel struct {
	ID          string
	WorkspaceID string
	BotID       string
	Name        string
	Type        string // plugin name: webhook, slack, twilio, telegram, assistant
	Config      json.RawMessage
	Enabled     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Scope says what an API key may do.
type Scope string

// API key scopes.
const (
	ScopeChannel Scope = "channel" // CSML-compatible APIs of one channel
	ScopeApp     Scope = "app"     // Customer.io-compatible App API of one workspace
	ScopeTrack   Scope = "track"   // Customer.io-compatible Track API of one workspace
	ScopeAdmin   Scope = "admin"   // native admin API of one workspace
)

// APIKey is a stored key. Only the SHA-256 of the secret is kept.
type APIKey struct {
	ID          string
	WorkspaceID string
	Scope       Scope
	ChannelID   string // ScopeChannel only
	Name        string
	Hash        []byte
	CreatedAt   time.Time
	RevokedAt   *time.Time
	// LastUsedAt is when the key last authorized a request, to within
	// the minute (see RecordAPIKeyUse); nil when never.
	LastUsedAt *time.Time
	// ExpiresAt is when a rotated key stops working; nil for keys that
	// do not expire.
	ExpiresAt *time.Time
}

// ResealReport counts what ResealSecrets rewrote.
type ResealReport struct {
	ChannelSecrets int // channels whose secrets were sealed again
	BotSecrets     int // bots whose call.secret was sealed again
	// Plaintext is how many of those were plaintext (written before
	// sealing existed).
	Plaintext int
	// Current is how many were already sealed under the current key and
	// left as they were.
	Current int
}

// Tenancy stores workspaces, bots, channels and keys.
//
// Channel secrets and bots' call.secret are sealed at rest (package
// secrets) under the store's current key and opened under any key it
// knows; plaintext left by databases older than sealing is read as it is
// and sealed by the next write of that row or by ResealSecrets.
type Tenancy interface {
	UpsertWorkspace(ctx context.Context, w Workspace) error
	GetWorkspace(ctx context.Context, id string) (Workspace, error)
	ListWorkspaces(ctx context.Context) ([]Workspace, error)

	// UpsertBot creates or updates the bot named (WorkspaceID, Name); it
	// fills in ID (kept when the bot exists) and the timestamps.
	UpsertBot(ctx context.Context, b *Bot) error
	GetBot(ctx context.Context, id string) (Bot, error)
	GetBotByName(ctx context.Context, workspaceID, name string) (Bot, error)
	ListBots(ctx context.Context, workspaceID string) ([]Bot, error)

	// UpsertChannel creates or updates the channel named (WorkspaceID,
	// Name); an empty ID is generated, a given ID is kept.
	UpsertChannel(ctx context.Context, c *Channel) error
	GetChannel(ctx context.Context, id string) (Channel, error)
	// ListChannels lists one workspace's channels, or all with "".
	ListChannels(ctx context.Context, workspaceID string) ([]Channel, error)
	SetChannelSecrets(ctx context.Context, channelID string, secrets map[string]string) error
	GetChannelSecrets(ctx context.Context, channelID string) (map[string]string, error)

	// ResealSecrets seals every channel secret and bot call secret under
	// the current key, in one transaction: all of them, or with
	// plaintextOnly only those still in plaintext.
	ResealSecrets(ctx context.Context, plaintextOnly bool) (ResealReport, error)

	CreateAPIKey(ctx context.Context, k APIKey) error
	// GetAPIKeyByHash finds a non-revoked key (expired or not: the
	// caller compares ExpiresAt with its clock).
	GetAPIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// GetAPIKey returns a key by id, revoked or not.
	GetAPIKey(ctx context.Context, id string) (APIKey, error)
	// ListAPIKeys lists a workspace's keys, revoked ones included, oldest
	// first.
	ListAPIKeys(ctx context.Context, workspaceID string) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, workspaceID, id string) error
	// ExpireAPIKey makes a key stop working at at, or keeps its earlier
	// expiry.
	ExpireAPIKey(ctx context.Context, workspaceID, id string, at time.Time) error
	// RecordAPIKeyUse sets the key's LastUsedAt to at unless it is
	// already later than since: callers pass since = at minus their
	// resolution, so a busy key costs one write per resolution, not one
	// per request, whatever the number of nodes.
	RecordAPIKeyUse(ctx context.Context, id string, at, since time.Time) error
}

// Person is someone a workspace can reach.
type Person struct {
	WorkspaceID string
	ID          string
	Email       string // lower-cased; "" when unknown
	// CioID is generated when the person is created and never changes:
	// Customer.io's cio_id, which addresses a person whose id or email
	// is being changed.
	CioID      string
	Attributes map[string]any
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Identity is a person's address on one channel.
type Identity struct {
	WorkspaceID string
	PersonID    string
	ChannelID   string
	Address     string
}

// People stores people and their channel identities.
type People interface {
	// UpsertPerson creates the person or merges attrs into the existing
	// attributes (a nil value deletes the attribute). A non-empty email
	// replaces the stored one.
	UpsertPerson(ctx context.Context, p Person) (Person, error)
	GetPerson(ctx context.Context, workspaceID, id string) (Person, error)
	GetPersonByCioID(ctx context.Context, workspaceID, cioID string) (Person, error)
	// RenamePerson changes a person's id; their cio id, email,
	// attributes, identities, segment memberships and events go with
	// them. Deliveries and conversations already made keep the old id. A
	// newID in use is ErrConflict, an unknown id ErrNotFound.
	RenamePerson(ctx context.Context, workspaceID, id, newID string) error
	// FindPeopleByEmail returns every person with that email (compared
	// case-insensitively), oldest first.
	FindPeopleByEmail(ctx context.Context, workspaceID, email string) ([]Person, error)
	// FindPeopleByPhone returns every person whose phone attribute (a
	// string) is phone, oldest first.
	FindPeopleByPhone(ctx context.Context, workspaceID, phone string) ([]Person, error)
	// DeletePerson deletes the person and everything recorded about
	// them (a privacy request): their identities, segment memberships and
	// events; the conversations stored under their id, with memory and
	// messages; the deliveries to them, pending ones included (they are
	// not sent); and the web chat outbox messages to their addresses.
	// Records made under an id the person had before RenamePerson keep
	// that id and are not found.
	DeletePerson(ctx context.Context, workspaceID, id string) error
	// LinkIdentity attaches (ChannelID, Address) to a person, moving it if
	// it belonged to someone else.
	LinkIdentity(ctx context.Context, id Identity) error
	// PersonByIdentity finds who owns an address on a channel.
	PersonByIdentity(ctx context.Context, channelID, address string) (Person, error)
	ListIdentities(ctx context.Context, workspaceID, personID string) ([]Identity, error)
}

// ConversationStatus is open or closed.
type ConversationStatus string

// Conversation states.
const (
	ConversationOpen   ConversationStatus = "open"
	ConversationClosed ConversationStatus = "closed"
)

// Conversation is the state of one user's dialogue with a bot on a channel.
// At most one is open per (BotID, ChannelID, UserID).
type Conversation struct {
	ID                string
	WorkspaceID       string
	BotID             string
	ChannelID         string
	UserID            string // the user's address on the channel
	PersonID          string
	ReplyTo           string
	Status            ConversationStatus
	FlowID            string
	StepID            string
	Memory            map[string]any
	LastInteractionAt time.Time
	ExpiresAt         time.Time
	CreatedAt         time.Time
	ClosedAt          *time.Time
}

// Direction of a message.
type Direction string

// Message directions.
const (
	Inbound  Direction = "in"
	Outbound Direction = "out"
)

// Message is one entry of a conversation's history.
type Message struct {
	ID             int64
	ConversationID string
	Direction      Direction
	Content        message.Content
	DeliveryID     int64 // outbound only: the delivery that carries it
	CreatedAt      time.Time
}

// ConversationFilter selects conversations for listing. Empty fields match
// anything.
type ConversationFilter struct {
	WorkspaceID string
	ChannelID   string
	UserID      string
	Status      ConversationStatus // "" = any
	Limit       int                // ≤ 0 = 100
	// Before pages backwards: conversations created strictly before this
	// conversation id's creation (newest first).
	Before string
}

// Conversations stores conversations and their messages.
type Conversations interface {
	// GetOpenConversation returns ErrNotFound when none is open.
	GetOpenConversation(ctx context.Context, botID, channelID, userID string) (Conversation, error)
	// CreateConversation stores a new open conversation (ID generated when
	// empty). It fails with ErrConflict when one is already open.
	CreateConversation(ctx context.Context, c *Conversation) error
	UpdateConversation(ctx context.Context, c Conversation) error
	GetConversation(ctx context.Context, id string) (Conversation, error)
	CloseConversation(ctx context.Context, id string, at time.Time) error
	// CloseExpired closes open conversations whose ExpiresAt is before now
	// and returns how many it closed.
	CloseExpired(ctx context.Context, now time.Time) (int, error)
	ListConversations(ctx context.Context, f ConversationFilter) ([]Conversation, error)

	AppendMessages(ctx context.Context, msgs []Message) error
	// ListMessages returns a conversation's messages oldest first, after the
	// message id afterID (0 = from the start), at most limit (≤ 0 = 100).
	ListMessages(ctx context.Context, conversationID string, afterID int64, limit int) ([]Message, error)
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// Delivery states. Queued and retrying are pending; the rest are final except
// sent, which a platform receipt may still move to delivered or failed.
const (
	DeliveryQueued    DeliveryStatus = "queued"
	DeliveryRetrying  DeliveryStatus = "retrying"
	DeliverySending   DeliveryStatus = "sending" // claimed by a worker
	DeliverySent      DeliveryStatus = "sent"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
	DeliverySkipped   DeliveryStatus = "skipped"
)

// Delivery is one outbound message to one address: the outbox row written
// before any send.
type Delivery struct {
	ID             int64
	WorkspaceID    string
	ChannelID      string
	Recipient      string
	ReplyTo        string
	PersonID       string
	ConversationID string
	Content        message.Content
	// IdempotencyKey is unique; enqueueing an existing key is a no-op.
	IdempotencyKey string
	Status         DeliveryStatus
	Reason         string // machine-readable reason of failed/skipped
	LastError      string
	Attempts       int
	NextAttemptAt  time.Time
	ProviderID     string
	// SourceKind and SourceID name what produced the delivery, e.g.
	// ("reply", conversation id), ("broadcast", request id),
	// ("trigger", trigger id).
	SourceKind  string
	SourceID    string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	SentAt      *time.Time
	DeliveredAt *time.Time
}

// ClaimOptions bound one claim of pending deliveries.
type ClaimOptions struct {
	// Node is the claiming node (see Nodes): the claim holds while the
	// node's lease does.
	Node  string
	Limit int
	Now   time.Time
}

// DeliveryResult records the outcome of one send attempt.
type DeliveryResult struct {
	ID         int64
	Status     DeliveryStatus // sent, delivered, failed, skipped or retrying
	ProviderID string
	Reason     string
	LastError  string
	// NextAttemptAt is required for retrying.
	NextAttemptAt time.Time
	// CountAttempt is false for rate-limit snoozes, which do not use up
	// the retry budget.
	CountAttempt bool
	At           time.Time
}

// Deliveries is the outbox.
type Deliveries interface {
	// EnqueueDeliveries inserts deliveries in one batch; rows whose
	// idempotency key exists already are skipped. It fills in IDs of the
	// inserted rows and returns how many were inserted.
	EnqueueDeliveries(ctx context.Context, ds []Delivery) (int, error)
	// EnqueueClaimedDeliveries inserts like EnqueueDeliveries and claims
	// for node, in the same statement, each queued delivery that is next
	// in line for its (ChannelID, Recipient): the first of the batch for
	// that recipient, with no older pending delivery. It returns those,
	// as ClaimDeliveries would have (status sending), so the node can send
	// them without a claim scan; the rest stay queued for any node.
	EnqueueClaimedDeliveries(ctx context.Context, node string, ds []Delivery) (claimed []Delivery, inserted int, err error)
	// ClaimDeliveries marks up to Limit queued or retrying deliveries due
	// by Now as sending, held by o.Node, earliest due first, and returns
	// them in id order. A delivery is not claimed while an older pending
	// or sending delivery exists for the same (ChannelID, Recipient):
	// messages to one person go out in order. A claim does not expire: it
	// is released when its node's lease does (Nodes).
	ClaimDeliveries(ctx context.Context, o ClaimOptions) ([]Delivery, error)
	// CompleteDeliveries records outcomes of deliveries node holds.
	// Results for deliveries it no longer holds (released to another node,
	// or finished already) are ignored: a late finisher never overwrites
	// a newer claim.
	CompleteDeliveries(ctx context.Context, node string, rs []DeliveryResult) error
	// ApplyReceipt updates the delivery a platform receipt refers to.
	ApplyReceipt(ctx context.Context, channelID, providerID string, status DeliveryStatus, reason string, at time.Time) error
	GetDelivery(ctx context.Context, id int64) (Delivery, error)
	ListDeliveriesBySource(ctx context.Context, kind, id string) ([]Delivery, error)
	// ListDeliveries lists one workspace's deliveries newest first (by
	// id), as f selects.
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// CountPendingDeliveries counts one workspace's queued, retrying and
	// sending deliveries by channel and status, with the oldest one's
	// creation time: the outbox depth an operator watches.
	CountPendingDeliveries(ctx context.Context, workspaceID string) ([]PendingCount, error)
}

// DeliveryFilter selects deliveries for listing. Empty fields match
// anything; WorkspaceID is required.
type DeliveryFilter struct {
	WorkspaceID string
	Status      DeliveryStatus
	Reason      string
	ChannelID   string
	PersonID    string
	// Since and Until bound CreatedAt: Since ≤ created < Until (zero: no
	// bound).
	Since, Until time.Time
	// Before pages backwards: deliveries with ids below it (0: from the
	// newest).
	Before int64
	// After pages forwards instead (follow new outcomes): ids above it,
	// oldest first. Before and After are not given together.
	After int64
	Limit int // ≤ 0 = 100
}

// PendingCount is how many deliveries of a channel are in one pending
// status.
type PendingCount struct {
	ChannelID string
	Status    DeliveryStatus
	N         int64
	Oldest    time.Time // CreatedAt of the oldest of them
}

// Job is a unit of durable background work.
type Job struct {
	ID   int64
	Kind string
	// Key serializes jobs: jobs with the same non-empty key run one at a
	// time, in id order (e.g. one conversation's events).
	Key       string
	Payload   json.RawMessage
	Attempts  int       // runs started, this one included
	RunAt     time.Time // when due; for a claimed job, when it was claimed
	LastError string
	CreatedAt time.Time
}

// JobClaimOptions bound one claim of due jobs.
type JobClaimOptions struct {
	// Node is the claiming node: the claim holds while its lease does.
	Node  string
	Limit int
	Now   time.Time
}

// ErrClaimLost means a job or delivery is no longer held by the caller:
// its node's lease ran out and the work was released to another node.
var ErrClaimLost = errors.New("claim lost")

// Jobs is the durable job queue. A claimed job is fenced by its attempt
// number: completing, retrying or failing a job names the attempt that
// ran, and fails with ErrClaimLost when the job has been claimed again
// since (or finished).
type Jobs interface {
	EnqueueJob(ctx context.Context, j *Job) error
	// ClaimJobs claims up to o.Limit due pending jobs for o.Node,
	// honouring Key ordering, and counts an attempt on each (so a job
	// that kills its process still uses up attempts).
	ClaimJobs(ctx context.Context, o JobClaimOptions) ([]Job, error)
	CompleteJob(ctx context.Context, id int64, attempt int) error
	// RetryJob releases the job to run again at runAt, recording err.
	RetryJob(ctx context.Context, id int64, attempt int, err string, runAt time.Time) error
	// FailJob gives up on the job, recording err.
	FailJob(ctx context.Context, id int64, attempt int, err string) error
}

// QueueStat counts the jobs of one kind that wait or run.
type QueueStat struct {
	Kind             string
	Pending, Running int
	// OldestDue is when the longest-waiting pending job became due (zero
	// when none is pending).
	OldestDue time.Time
}

// OutboxStat counts one channel's deliveries in one pending state.
type OutboxStat struct {
	ChannelID string
	Status    DeliveryStatus // queued, retrying or sending
	Count     int
}

// Stats are the store-wide counts operators watch (metrics). They read,
// never write, and may scan the pending rows.
type Stats interface {
	QueueStats(ctx context.Context) ([]QueueStat, error)
	OutboxStats(ctx context.Context) ([]OutboxStat, error)
}

// Released counts the work taken back from nodes.
type Released struct {
	// Nodes are the nodes whose leases ran out (RescueExpiredNodes).
	Nodes      []string
	Jobs       int
	Deliveries int
}

// Nodes are the gateway processes sharing a store. A node holds a lease it
// renews by heartbeat; every job and delivery it claims names it. When the
// lease runs out the node's claims are released for any node to take;
// when it starts again under the same id, its old claims are released at
// once (the process that held them is gone).
type Nodes interface {
	// StartNode takes the lease of node id until now+lease and releases
	// whatever an earlier process under the same id held.
	StartNode(ctx context.Context, id string, now time.Time, lease time.Duration) (Released, error)
	// RenewNode extends the lease to now+lease. ErrClaimLost means the
	// lease ran out and was taken: the node's claims were released, and
	// it must StartNode again before claiming.
	RenewNode(ctx context.Context, id string, now time.Time, lease time.Duration) error
	// RescueExpiredNodes releases the claims of nodes other than self
	// whose lease ran out before now and forgets those nodes. (A node
	// never rescues itself: its own lagging heartbeat is not its death.)
	RescueExpiredNodes(ctx context.Context, self string, now time.Time) (Released, error)
	// StopNode releases the node's claims and its lease (clean shutdown).
	StopNode(ctx context.Context, id string) (Released, error)
	// ReleaseOrphans releases what node holds that it claimed before
	// before: a node that holds nothing in memory calls it, since such
	// claims can only come from a claim whose answer was lost (the store
	// committed it, the connection died before the answer arrived).
	// Jobs or deliveries, as the flags say.
	ReleaseOrphans(ctx context.Context, node string, before time.Time, jobs, deliveries bool) (Released, error)
	// ListNodes lists the nodes holding a lease (expired or not, until a
	// rescue forgets them), by id.
	ListNodes(ctx context.Context) ([]Node, error)
}

// Node is one gateway process's lease.
type Node struct {
	ID         string
	LeaseUntil time.Time
	StartedAt  time.Time
}

// InboundDedupe remembers platform event ids so retries are processed once.
type InboundDedupe interface {
	// MarkEventSeen records (channelID, eventID) and reports whether it was
	// new.
	// Old ids are forgotten by Retention (RetainSeenEvents).
	MarkEventSeen(ctx context.Context, channelID, eventID string, at time.Time) (bool, error)
}
