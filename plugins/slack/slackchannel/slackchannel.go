// Package slackchannel is the Slack channel plugin: it verifies and
// translates Events API and interactivity requests into Switchboard events and
// sends messages with the Web API (chat.postMessage, conversations.open),
// rendering buttons, images and cards as Block Kit.
//
// It is a stateless translator: the gateway dedupes events by Event.ID (the
// outer event_id, which Slack keeps across its retries), paces sends with the
// limits from Describe and retries according to the typed errors returned by
// Send. The only thing cached is the DM channel opened for a user id, which
// conversations.open would return again anyway.
package slackchannel

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Name is the plugin's type name.
const Name = "slack"

// Channel implements sdk.Channel for Slack. The zero value is not usable;
// call New.
type Channel struct {
	http      *http.Client
	instances chankit.Instances[*instance]
}

var (
	_ sdk.Channel       = (*Channel)(nil)
	_ sdk.HealthChecker = (*Channel)(nil)
)

// New returns a Slack channel plugin. A nil client means a client with a
// 10 s timeout, well inside the gateway's delivery deadlines.
func New(client *http.Client) *Channel {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Channel{http: client}
}

// config is the non-secret configuration of one instance.
type config struct {
	// APIURL replaces https://slack.com/api/ (for fakes). slack-go joins
	// method names to it verbatim, so it must end with a slash; one is
	// added when missing.
	APIURL string `json:"api_url"`
}

// instance is one configured Slack app installation.
type instance struct {
	api           *slack.Client
	signingSecret string
	dms           sync.Map // user id → DM channel id
}

var configSchema = json.RawMessage(`{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "api_url": {"type": "string", "format": "uri", "description": "Web API base URL, default https://slack.com/api/ (fakes only)"}
  }
}`)

// Describe reports what Slack renders and how fast it accepts messages:
// chat.postMessage allows about one message per second per channel, plus a
// workspace-wide cap of several hundred per minute.
func (c *Channel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:            Name,
		Version:         chankit.Version,
		ProtocolVersion: sdk.ProtocolVersion,
		Capabilities: sdk.Capabilities{
			Buttons:       true,
			Images:        true,
			Cards:         true,
			Carousel:      true,
			MaxTextLength: maxText,
		},
		RateLimits: sdk.RateLimits{
			Global:       sdk.Rate{Count: 300, Per: time.Minute, Burst: 20},
			PerRecipient: sdk.Rate{Count: 1, Per: time.Second},
		},
		ConfigSchema: configSchema,
	}, nil
}

// Configure validates and installs one channel instance. Secrets:
// bot_token (xoxb-…) and signing_secret.
func (c *Channel) Configure(_ context.Context, ic sdk.InstanceConfig) error {
	in, err := c.parse(ic)
	if err != nil {
		return err
	}
	c.instances.Put(ic.ChannelID, in)
	return nil
}

// ValidateConfig implements sdk.ConfigValidator: Configure's checks,
// nothing installed.
func (c *Channel) ValidateConfig(_ context.Context, ic sdk.InstanceConfig) error {
	_, err := c.parse(ic)
	return err
}

// parse checks a configuration and builds its instance.
func (c *Channel) parse(ic sdk.InstanceConfig) (*instance, error) {
	p := chankit.Problems{}
	var cfg config
	chankit.DecodeConfig(ic.Config, &cfg, p)
	token := p.Secret(ic.Secrets, "bot_token")
	secret := p.Secret(ic.Secrets, "signing_secret")
	opts := []slack.Option{slack.OptionHTTPClient(c.http)}
	if u := p.BaseURL("api_url", cfg.APIURL); u != nil {
		base := u.String()
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		opts = append(opts, slack.OptionAPIURL(base))
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return &instance{api: slack.New(token, opts...), signingSecret: secret}, nil
}

// CheckHealth calls auth.test: a revoked or invalid token makes the channel
// unhealthy with Slack's error code as the reason. An unreachable Slack is an
// error, not a verdict on the credentials.
func (c *Channel) CheckHealth(ctx context.Context, channelID string) (sdk.Health, error) {
	in, err := c.instances.Get(channelID)
	if err != nil {
		return sdk.Health{}, err
	}
	if _, err := in.api.AuthTestContext(ctx); err != nil {
		if se := classify(err); se.Kind == sdk.KindAuth || se.Kind == sdk.KindPermanent {
			return sdk.Health{OK: false, Reason: se.Code}, nil
		}
		return sdk.Health{}, err
	}
	return sdk.Health{OK: true}, nil
}
