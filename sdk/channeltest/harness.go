package channeltest

import (
	"net/http"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Harness describes a channel under test and its platform. Every field is
// required unless it says otherwise.
type Harness struct {
	// Channel is the channel under test: the plugin's own value, or one
	// returned by Serve or Launch.
	Channel sdk.Channel

	// Config returns a valid configuration for instance channelID whose
	// platform API calls go to platformURL (the fake platform's base URL,
	// "http://127.0.0.1:port").
	Config func(channelID, platformURL string) sdk.InstanceConfig
	// InvalidConfigs must each be refused with a *sdk.ConfigError naming at
	// least the listed fields. At least one is required.
	InvalidConfigs []InvalidConfig

	// Inbound returns the request the platform would send to deliver msg
	// to the instance configured with cfg, signed as of msg.Time.
	Inbound func(cfg sdk.InstanceConfig, msg InboundMessage) *sdk.HTTPRequest
	// Tamper breaks the signature of a request Inbound made (change a body
	// byte, a header, the URL: whatever the platform's signature covers).
	Tamper func(req *sdk.HTTPRequest)
	// Timestamped says the platform's signatures cover a timestamp, so a
	// request signed an hour ago must be refused as a replay. Optional:
	// false skips that check (e.g. Telegram's secret-token header).
	Timestamped bool

	// Decode reads one request the plugin made to the platform's send API:
	// whom it is for and what it shows. Returning an error fails the test
	// (the plugin sent something the platform would reject).
	Decode func(r *http.Request, body []byte) (Delivery, error)
	// Respond writes the platform's answer to a send request with the
	// given outcome (for a rate limit, with o.RetryAfter in whatever form
	// the platform uses). r.Body can be read again.
	Respond func(w http.ResponseWriter, r *http.Request, o Outcome)
}

// InvalidConfig is a configuration Configure must refuse.
type InvalidConfig struct {
	// Name labels the case in test output.
	Name string
	// Config is the configuration; Run fills in ChannelID when empty.
	Config sdk.InstanceConfig
	// Fields must all appear in the *sdk.ConfigError.
	Fields []string
}

// InboundMessage is one user message as the platform delivers it.
type InboundMessage struct {
	// ID is the platform's event id, the same on every delivery attempt.
	ID     string
	UserID string
	Text   string
	// Time is when the platform made (and signed) this attempt.
	Time time.Time
}

// Delivery is what one send request to the platform carried.
type Delivery struct {
	Recipient string
	// Type is the content type the platform shows: the message's own type
	// when rendered natively, message.TypeText when downgraded to text.
	Type message.Type
	// Text is the text shown; for a downgraded message it must equal
	// Content.TextFallback().
	Text string
}

// OutcomeKind is how the fake platform answers a send.
type OutcomeKind int

// Outcomes the fake platform can be scripted with.
const (
	OK OutcomeKind = iota
	RateLimited
	Permanent
	Transient
)

func (k OutcomeKind) String() string {
	return [...]string{"ok", "rate limited", "permanent failure", "transient failure"}[k]
}

// Outcome is the fake platform's answer to one send request.
type Outcome struct {
	Kind OutcomeKind
	// RetryAfter is set for RateLimited.
	RetryAfter time.Duration
}
