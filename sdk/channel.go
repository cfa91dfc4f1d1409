package sdk

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/switchboard-gw/switchboard/sdk/message"
)

// ProtocolVersion is the wire major of the plugin protocol this SDK speaks.
// It is the go-plugin handshake version: a gateway and a plugin that share no
// version refuse each other at start-up.
const ProtocolVersion = 1

// Channel is what a plugin author implements: a stateless translator between
// one chat platform and Switchboard's normalized model. One plugin process
// serves every channel instance of its type; every call names the instance by
// its channel id.
//
// Implementations must be safe for concurrent use.
type Channel interface {
	// Describe reports the plugin's name, version, capabilities and the rate
	// limits of the platform. It is called once after start-up.
	Describe(ctx context.Context) (Description, error)
	// Configure validates and installs (or replaces) the configuration of one
	// channel instance. Invalid configuration is reported as a *ConfigError
	// naming each bad field.
	Configure(ctx context.Context, cfg InstanceConfig) error
	// HandleHTTP verifies and translates one raw platform request. The
	// response is what the platform receives; Events are what the gateway
	// processes (after the response is written). A request with a bad
	// signature gets a 401/403 response and no events.
	HandleHTTP(ctx context.Context, req *HTTPRequest) (*HTTPResponse, error)
	// Send delivers a batch of messages. It returns exactly one result per
	// input, in input order. Messages for the same recipient must be sent in
	// input order. A non-nil error fails the whole batch as transient.
	Send(ctx context.Context, batch []Outbound) ([]SendResult, error)
}

// ConfigValidator is implemented by channels that can check an instance's
// configuration without installing it: ValidateConfig answers as
// Configure would (nil, a *ConfigError naming each bad field, or another
// error) and changes nothing. The gateway asks it before it stores a
// channel (switchboard apply), so a bad configuration is refused with the
// plugin's own field errors instead of failing later. Channels without it
// have their configuration accepted unchecked until Configure runs.
type ConfigValidator interface {
	ValidateConfig(ctx context.Context, cfg InstanceConfig) error
}

// HealthChecker is implemented by channels that can tell whether the platform
// accepts their credentials (for example a revoked token). Channels without it
// are considered healthy while their process runs.
type HealthChecker interface {
	CheckHealth(ctx context.Context, channelID string) (Health, error)
}

// Description is a plugin's answer to Describe.
type Description struct {
	Name            string
	Version         string
	ProtocolVersion int
	Capabilities    Capabilities
	RateLimits      RateLimits
	// ConfigSchema is a JSON Schema for InstanceConfig.Config, for tooling
	// and documentation.
	ConfigSchema json.RawMessage
	// MaxBatch is the most messages the plugin wants in one Send call.
	// Zero means the gateway default.
	MaxBatch int
}

// Capabilities say which content a channel renders natively. Everything else
// is downgraded to message.Content.TextFallback by the plugin.
type Capabilities struct {
	Buttons          bool
	QuickReplies     bool
	Images           bool
	Files            bool
	Cards            bool
	Carousel         bool
	Typing           bool
	MaxTextLength    int
	DeliveryReceipts bool
	Websocket        bool
}

// Rate is Count events per Per, with bursts up to Burst (Count when zero).
type Rate struct {
	Count int
	Per   time.Duration
	Burst int
}

// Unlimited reports whether the rate imposes no limit.
func (r Rate) Unlimited() bool { return r.Count <= 0 || r.Per <= 0 }

// RateLimits are the limits the platform imposes on sends, which the gateway's
// delivery pipeline respects before calling Send.
type RateLimits struct {
	Global       Rate
	PerRecipient Rate
}

// InstanceConfig configures one channel instance.
type InstanceConfig struct {
	ChannelID string
	// WebhookURL is the full public URL the platform calls for this channel,
	// as configured on the gateway (never derived from a Host header), for
	// example https://chat.example.com/channels/<id>/webhook.
	WebhookURL string
	// Config is the channel's non-secret configuration, as JSON.
	Config json.RawMessage
	// Secrets holds tokens and signing secrets. Never log or echo them.
	Secrets map[string]string
}

// HTTPRequest is a platform request exactly as the gateway received it.
type HTTPRequest struct {
	ChannelID string
	Method    string
	// URL is the full public URL (configured base + request URI): signatures
	// such as Twilio's cover it.
	URL    string
	Header http.Header
	Body   []byte
	// Received is when the gateway read the request.
	Received time.Time
}

// HTTPResponse is what the gateway answers the platform.
type HTTPResponse struct {
	Status int
	Header http.Header
	Body   []byte
	Events []Event
}

// EventType classifies an inbound Event.
type EventType string

// Inbound event types.
const (
	EventMessage           EventType = "message"
	EventButton            EventType = "button"
	EventDeliveryStatus    EventType = "delivery_status"
	EventConversationStart EventType = "conversation_start"
)

// Event is one normalized thing that happened on the platform.
type Event struct {
	Type EventType
	// ID identifies the platform event (Slack event_id, Telegram update_id,
	// Twilio MessageSid, webhook-id). The gateway drops an event whose ID it
	// has seen for the same channel, so platform retries are processed once.
	ID string
	// UserID is the user's address on the platform: what Outbound.Recipient
	// takes to reach the same user proactively.
	UserID string
	// ReplyTo optionally routes replies elsewhere than UserID (a Slack
	// channel, a Telegram group). The gateway passes it back in
	// Outbound.ReplyTo for replies in the same conversation.
	ReplyTo string
	// Content is the message (EventMessage) or the click (EventButton, with
	// Content.Payload set).
	Content message.Content
	// Profile carries what the platform tells about the user.
	Profile map[string]string
	// Status is set for EventDeliveryStatus.
	Status *DeliveryStatus
	// Time is when the platform says the event happened (zero: unknown).
	Time time.Time
}

// DeliveryState is a platform-reported state of a sent message.
type DeliveryState string

// Delivery states reported by receipts.
const (
	StateSent        DeliveryState = "sent"
	StateDelivered   DeliveryState = "delivered"
	StateRead        DeliveryState = "read"
	StateUndelivered DeliveryState = "undelivered"
	StateFailed      DeliveryState = "failed"
)

// DeliveryStatus is a receipt for a message sent earlier.
type DeliveryStatus struct {
	ProviderID string
	State      DeliveryState
	ErrorCode  string
	Reason     string
}

// Outbound is one message to send.
type Outbound struct {
	ChannelID string
	// IdempotencyKey is the same on every attempt to send this message,
	// across retries and gateway restarts. Plugins pass it to platforms that
	// accept one and may use it to suppress duplicates.
	IdempotencyKey string
	Recipient      string
	ReplyTo        string
	Content        message.Content
	// Attempt counts from 1.
	Attempt int
}

// SendResult is the outcome of one Outbound.
type SendResult struct {
	IdempotencyKey string
	// ProviderID is the platform's id of the sent message, when it has one.
	ProviderID string
	// Err is nil on success; otherwise a *SendError (other errors count as
	// transient).
	Err error
}

// Health is a channel's answer to CheckHealth.
type Health struct {
	OK     bool
	Reason string
}
