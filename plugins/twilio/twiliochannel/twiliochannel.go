// Package twiliochannel is the Twilio Programmable Messaging (SMS) channel
// plugin: it verifies and translates inbound SMS webhooks and delivery
// StatusCallbacks, and sends messages with the Messages API through
// twilio-go.
//
// SMS is text only. Buttons, cards and carousels are sent as their
// TextFallback (numbered options). The plugin is stateless, so it cannot
// know which buttons the user's previous message offered: a reply such as
// "2" or "Yes" arrives as an ordinary text message, and the gateway maps it
// to the button with message.MatchButtonReply.
package twiliochannel

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/twilio/twilio-go/client"
	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Name is the plugin's type name.
const Name = "twilio"

// Channel implements sdk.Channel for Twilio SMS. Create it with New.
type Channel struct {
	http      *http.Client
	instances chankit.Instances[*instance]
	progress  chankit.Progress
	pacers    sync.Map // account sid + sender → *rate.Limiter
}

var (
	_ sdk.Channel       = (*Channel)(nil)
	_ sdk.HealthChecker = (*Channel)(nil)
)

// New returns a Twilio channel plugin. A nil client means a client with a
// 15 s timeout that does not follow redirects (twilio-go's default).
func New(httpClient *http.Client) *Channel {
	if httpClient == nil {
		httpClient = &http.Client{
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Channel{http: httpClient}
}

type config struct {
	From                string `json:"from"`
	MessagingServiceSID string `json:"messaging_service_sid"`
	// APIBase sends every request for *.twilio.com to this origin instead
	// (fakes): twilio-go has no base URL option.
	APIBase string `json:"api_base"`
	// MPS is the sender's throughput in messages (requests) per second.
	MPS int `json:"mps"`
	// MMS sends images as MMS media (US/Canada numbers) instead of links.
	MMS bool `json:"mms"`
}

type instance struct {
	accountSID, authToken string
	from, serviceSID      string
	apiBase               *url.URL // nil: the real API
	statusCallback        string   // the webhook URL with the status marker
	mms                   bool
	validator             client.RequestValidator
	pacer                 *rate.Limiter
}

var (
	e164RE       = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	serviceSIDRE = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	accountSIDRE = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	authTokenRE  = regexp.MustCompile(`^[A-Za-z0-9]+$`) // twilio-go refuses anything else
)

var configSchema = json.RawMessage(`{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "from": {"type": "string", "pattern": "^\\+[1-9][0-9]{1,14}$", "description": "sender number (E.164); or messaging_service_sid"},
    "messaging_service_sid": {"type": "string", "pattern": "^MG[0-9a-fA-F]{32}$"},
    "api_base": {"type": "string", "format": "uri", "description": "replaces https://api.twilio.com (fakes only)"},
    "mps": {"type": "integer", "minimum": 1, "default": 1, "description": "sender throughput, messages per second"},
    "mms": {"type": "boolean", "default": false, "description": "send images as MMS media instead of links"}
  }
}`)

// Describe reports an SMS channel: text only, delivery receipts, 1,600
// characters per message. The global limit is the default sender
// throughput, one message per second (a US long code); see Configure for
// faster senders.
//
// Send takes one message at a time. Twilio's 429 (20429) and 21611 are the
// sender's or the account's, not the recipient's, while the SDK has a batch
// go on to the other recipients after a rate-limited one: with more than one
// message per batch, the next request could reach Twilio before the
// retry-after it gave. One message per Send lets the gateway pause the
// channel first, and costs nothing, since the sender's pace serialises the
// requests anyway.
func (c *Channel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:            Name,
		Version:         chankit.Version,
		ProtocolVersion: sdk.ProtocolVersion,
		Capabilities:    sdk.Capabilities{MaxTextLength: maxBody, DeliveryReceipts: true},
		RateLimits:      sdk.RateLimits{Global: sdk.Rate{Count: 1, Per: time.Second}},
		ConfigSchema:    configSchema,
		MaxBatch:        1,
	}, nil
}

// Configure validates and installs one instance. Secrets: account_sid and
// auth_token (which also verifies webhooks).
//
// mps paces every Messages API request of the sender inside the plugin, the
// parts of a split message included, which the gateway's per-message pacing
// cannot see. Describe cannot declare a per-instance rate, so the gateway
// still paces each channel at the default of one message per second.
func (c *Channel) Configure(_ context.Context, ic sdk.InstanceConfig) error {
	in, mps, err := parse(ic)
	if err != nil {
		return err
	}
	sender := in.serviceSID
	if in.from != "" {
		sender = in.from
	}
	in.pacer = c.pacer(in.accountSID+"/"+sender, mps)
	c.instances.Put(ic.ChannelID, in)
	return nil
}

// ValidateConfig implements sdk.ConfigValidator: Configure's checks,
// nothing installed and no sender's pacer taken.
func (c *Channel) ValidateConfig(_ context.Context, ic sdk.InstanceConfig) error {
	_, _, err := parse(ic)
	return err
}

// parse checks a configuration and builds its instance, without its pacer
// (the sender's messages per second are returned for it).
func parse(ic sdk.InstanceConfig) (*instance, int, error) {
	p := chankit.Problems{}
	cfg := config{MPS: 1}
	chankit.DecodeConfig(ic.Config, &cfg, p)
	switch {
	case cfg.From == "" && cfg.MessagingServiceSID == "":
		p.Add("from", "set from (E.164) or messaging_service_sid")
	case cfg.From != "" && !e164RE.MatchString(cfg.From):
		p.Add("from", fmt.Sprintf("must be an E.164 number such as +14155550100, got %q", cfg.From))
	case cfg.MessagingServiceSID != "" && !serviceSIDRE.MatchString(cfg.MessagingServiceSID):
		p.Add("messaging_service_sid", "must be MG followed by 32 hex digits")
	}
	if cfg.MPS < 1 {
		p.Add("mps", "must be at least 1")
	}
	base := p.BaseURL("api_base", cfg.APIBase)
	sid := p.Secret(ic.Secrets, "account_sid")
	if sid != "" && !accountSIDRE.MatchString(sid) {
		p.Add("account_sid", "must be AC followed by 32 hex digits")
	}
	token := p.Secret(ic.Secrets, "auth_token")
	if token != "" && !authTokenRE.MatchString(token) {
		p.Add("auth_token", "must be letters and digits only")
	}
	callback, err := statusCallbackURL(ic.WebhookURL)
	if err != nil {
		p.Add("webhook_url", err.Error())
	}
	if err := p.Err(); err != nil {
		return nil, 0, err
	}
	return &instance{
		accountSID: sid, authToken: token, from: cfg.From, serviceSID: cfg.MessagingServiceSID,
		apiBase: base, statusCallback: callback, mms: cfg.MMS,
		validator: client.NewRequestValidator(token),
	}, cfg.MPS, nil
}

// pacer returns the limiter of one sender, shared by every instance that
// sends from it, set to the latest configured rate.
func (c *Channel) pacer(key string, mps int) *rate.Limiter {
	l, _ := c.pacers.LoadOrStore(key, rate.NewLimiter(rate.Limit(mps), 1))
	lim := l.(*rate.Limiter)
	lim.SetLimit(rate.Limit(mps))
	return lim
}

// CheckHealth fetches the account: credentials Twilio refuses (a rotated
// auth token, 20003) or an account that is not active (suspended, closed)
// make the channel unhealthy, with Twilio's code and message as the reason.
// An unreachable Twilio is an error, not a verdict on the credentials.
func (c *Channel) CheckHealth(ctx context.Context, channelID string) (sdk.Health, error) {
	in, err := c.instances.Get(channelID)
	if err != nil {
		return sdk.Health{}, err
	}
	api, tr := in.api(ctx, c.http)
	acct, err := api.FetchAccount(in.accountSID)
	if err != nil {
		se := classify(err, tr)
		if se.Kind == sdk.KindAuth || se.Kind == sdk.KindPermanent {
			return sdk.Health{OK: false, Reason: se.Code + ": " + se.Message}, nil
		}
		return sdk.Health{}, fmt.Errorf("twilio health check: %w", se)
	}
	if acct.Status != nil && *acct.Status != "active" {
		return sdk.Health{OK: false, Reason: "account is " + *acct.Status}, nil
	}
	return sdk.Health{OK: true}, nil
}
