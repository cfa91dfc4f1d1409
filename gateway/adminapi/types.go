package adminapi

import (
	"encoding/json"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Page is one page of a list. Next is an opaque cursor for the following
// page ("" at the end): pass it back as ?cursor=.
type Page[T any] struct {
	Data []T    `json:"data"`
	Next string `json:"next,omitempty"`
}

// ListOptions page a list: Limit items (1–500, default 100) from Cursor
// (a Page.Next; "" from the start).
type ListOptions struct {
	Cursor string
	Limit  int
}

// Workspace is a tenant.
type Workspace struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Key is an API key as the admin API shows it: never the key or its hash.
type Key struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	WorkspaceID string     `json:"workspace_id"`
	Scope       string     `json:"scope"`
	ChannelID   string     `json:"channel_id,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

// KeyRequest asks for a new key of Scope (admin, app, track or channel;
// Channel, an id or name, for channel keys only).
type KeyRequest struct {
	Scope   string `json:"scope"`
	Channel string `json:"channel,omitempty"`
	Name    string `json:"name,omitempty"`
}

// NewKey is a created key: Key is shown this once.
type NewKey struct {
	Key    string `json:"key"`
	Info   Key    `json:"info"`
	Notice string `json:"notice"`
}

// Rotation is a rotated key: the new key (shown this once) and the old
// one with the expiry it got.
type Rotation struct {
	Key    string `json:"key"`
	New    Key    `json:"new"`
	Old    Key    `json:"old"`
	Notice string `json:"notice"`
}

// Bot is a bot and the ids of its flows. Its definition is not shown: it
// holds the bot's call secret.
type Bot struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Flows     []string  `json:"flows"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Channel is a channel with its plugin's health on the node that answered
// (nil when that node runs no plugins, as the CLI without --url does).
type Channel struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Type      string          `json:"type"`
	BotID     string          `json:"bot_id"`
	Enabled   bool            `json:"enabled"`
	Config    json.RawMessage `json:"config"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Health    *ChannelHealth  `json:"health"`
}

// ChannelHealth is a channel's plugin state on one node.
type ChannelHealth struct {
	Node        string `json:"node"`
	PluginState string `json:"plugin_state"` // running, restarting, failed, …, or "missing"
	Healthy     bool   `json:"healthy"`
	Reason      string `json:"reason,omitempty"`
}

// Person is a person with their channel identities.
type Person struct {
	ID         string         `json:"id"`
	Email      string         `json:"email,omitempty"`
	Attributes map[string]any `json:"attributes"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	Identities []Identity     `json:"identities,omitempty"`
}

// Identity is a person's address on a channel.
type Identity struct {
	ChannelID string `json:"channel_id"`
	Address   string `json:"address"`
}

// ConversationQuery filters conversations (empty fields match any).
type ConversationQuery struct {
	ListOptions
	ChannelID string
	UserID    string
	Status    string // open or closed
}

// Conversation is one user's dialogue with a bot on a channel.
type Conversation struct {
	ID                string     `json:"id"`
	BotID             string     `json:"bot_id"`
	ChannelID         string     `json:"channel_id"`
	UserID            string     `json:"user_id"`
	PersonID          string     `json:"person_id,omitempty"`
	Status            string     `json:"status"`
	FlowID            string     `json:"flow_id"`
	StepID            string     `json:"step_id"`
	LastInteractionAt time.Time  `json:"last_interaction_at"`
	CreatedAt         time.Time  `json:"created_at"`
	ClosedAt          *time.Time `json:"closed_at"`
	// Messages are the first messages, oldest first (get only).
	Messages []Message `json:"messages,omitempty"`
}

// Message is one message of a conversation; an outbound one carries its
// delivery's status.
type Message struct {
	ID        int64           `json:"id"`
	Direction string          `json:"direction"`
	Content   message.Content `json:"content"`
	CreatedAt time.Time       `json:"created_at"`
	Delivery  *DeliveryStatus `json:"delivery,omitempty"`
}

// DeliveryStatus is where one delivery stands.
type DeliveryStatus struct {
	ID          int64      `json:"id"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Attempts    int        `json:"attempts"`
	SentAt      *time.Time `json:"sent_at"`
	DeliveredAt *time.Time `json:"delivered_at"`
}

// DeliveryQuery filters deliveries (empty fields match any). After, when
// set, lists deliveries with ids above it oldest first, to follow new
// ones; otherwise they come newest first.
type DeliveryQuery struct {
	ListOptions
	Status    string
	Reason    string
	ChannelID string
	PersonID  string
	Since     time.Time
	Until     time.Time
	After     int64
}

// Delivery is one outbound message to one address.
type Delivery struct {
	ID             int64            `json:"id"`
	ChannelID      string           `json:"channel_id"`
	Recipient      string           `json:"recipient"`
	PersonID       string           `json:"person_id,omitempty"`
	ConversationID string           `json:"conversation_id,omitempty"`
	Status         string           `json:"status"`
	Reason         string           `json:"reason,omitempty"`
	LastError      string           `json:"last_error,omitempty"`
	Attempts       int              `json:"attempts"`
	NextAttemptAt  time.Time        `json:"next_attempt_at"`
	ProviderID     string           `json:"provider_id,omitempty"`
	SourceKind     string           `json:"source_kind"`
	SourceID       string           `json:"source_id"`
	CreatedAt      time.Time        `json:"created_at"`
	UpdatedAt      time.Time        `json:"updated_at"`
	SentAt         *time.Time       `json:"sent_at"`
	DeliveredAt    *time.Time       `json:"delivered_at"`
	Content        *message.Content `json:"content,omitempty"` // get only
}

// TriggerQuery filters triggers: one broadcast's, or (0) every
// broadcast's of the workspace.
type TriggerQuery struct {
	ListOptions
	BroadcastID int64
}

// Trigger is a broadcast trigger's progress; a get adds its first error
// lines.
type Trigger struct {
	audience.TriggerView
	BroadcastName string   `json:"broadcast_name"`
	ErrorLines    []string `json:"error_lines,omitempty"`
}

// ApplyRequest is resource documents in the `switchboard apply` format.
// Env holds the values of the ${VAR} references they make (the gateway's
// own environment is never read).
type ApplyRequest struct {
	Documents []ApplyDocument   `json:"documents"`
	Env       map[string]string `json:"env,omitempty"`
}

// ApplyDocument is one resources file; Name is used in error messages.
type ApplyDocument struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ApplyResult lists what an apply did (or, dry run, would do).
type ApplyResult struct {
	Changes []string `json:"changes"`
	DryRun  bool     `json:"dry_run"`
}

// Status is the deployment at a glance: nodes, the answering node's
// plugins, channels with health, and the outbox depth.
type Status struct {
	Node     string       `json:"node,omitempty"` // the node that answered; "" without --url
	Nodes    []Node       `json:"nodes"`
	Plugins  []Plugin     `json:"plugins"`
	Channels []Channel    `json:"channels"`
	Queue    []QueueDepth `json:"queue"`
}

// Node is a gateway process holding (or having held) a lease.
type Node struct {
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"started_at"`
	LeaseUntil time.Time `json:"lease_until"`
	Live       bool      `json:"live"` // its lease has not run out
}

// Plugin is a plugin's state on the answering node.
type Plugin struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	State    string `json:"state"`
	Error    string `json:"error,omitempty"`
	Restarts int    `json:"restarts"`
}

// QueueDepth counts a channel's pending deliveries in one status.
type QueueDepth struct {
	ChannelID  string    `json:"channel_id"`
	Status     string    `json:"status"`
	Count      int64     `json:"count"`
	Oldest     time.Time `json:"oldest"`
	AgeSeconds float64   `json:"age_seconds"`
}
