// Package telegramchannel is the Telegram channel plugin: it verifies and
// translates Bot API webhook updates (messages and inline-button callbacks)
// and sends messages, photos, documents and inline keyboards.
//
// It speaks the Bot API with plain net/http: the Go client libraries compare
// the webhook secret with != or answer 200 on a mismatch, confirm updates
// before handling them, or add fields Telegram rejects; about six methods are
// needed and owning their structs avoids all of that.
//
// It is a stateless translator: the gateway dedupes updates by update_id,
// paces sends with the limits from Describe and retries according to the
// typed errors of Send.
package telegramchannel

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Name is the plugin's type name.
const Name = "telegram"

// DefaultAPIURL is the Bot API server.
const DefaultAPIURL = "https://api.telegram.org"

// Channel implements sdk.Channel for Telegram. Create it with New.
type Channel struct {
	http      *http.Client
	instances chankit.Instances[*instance]
	progress  chankit.Progress
}

var (
	_ sdk.Channel       = (*Channel)(nil)
	_ sdk.HealthChecker = (*Channel)(nil)
)

// New returns a Telegram channel plugin. A nil client means a client with a
// 10 s timeout.
func New(client *http.Client) *Channel {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Channel{http: client}
}

type config struct {
	// APIURL replaces https://api.telegram.org (a local Bot API server or a fake).
	APIURL string `json:"api_url"`
	// SetWebhook makes Configure register the channel's webhook URL and
	// secret token with setWebhook.
	SetWebhook bool `json:"set_webhook"`
}

type instance struct {
	api         *botAPI
	secretToken string
}

var (
	botTokenRE    = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)
	secretTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
)

var configSchema = json.RawMessage(`{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "api_url": {"type": "string", "format": "uri", "default": "https://api.telegram.org"},
    "set_webhook": {"type": "boolean", "default": false, "description": "register the webhook URL and secret token on configure"}
  }
}`)

// Describe reports what Telegram renders and the Bot FAQ's limits: about
// 30 messages per second overall and one per second per chat.
func (c *Channel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:            Name,
		Version:         chankit.Version,
		ProtocolVersion: sdk.ProtocolVersion,
		Capabilities: sdk.Capabilities{
			Buttons:       true,
			Images:        true,
			Files:         true,
			Cards:         true,
			Typing:        true,
			MaxTextLength: maxText,
		},
		RateLimits: sdk.RateLimits{
			Global:       sdk.Rate{Count: 30, Per: time.Second},
			PerRecipient: sdk.Rate{Count: 1, Per: time.Second},
		},
		ConfigSchema: configSchema,
	}, nil
}

// Configure validates and installs one channel instance (secrets bot_token
// and secret_token) and, with set_webhook, registers the webhook.
func (c *Channel) Configure(ctx context.Context, ic sdk.InstanceConfig) error {
	in, setWebhook, err := c.parse(ic)
	if err != nil {
		return err
	}
	if setWebhook {
		if err := in.setWebhook(ctx, ic.WebhookURL); err != nil {
			return err
		}
	}
	c.instances.Put(ic.ChannelID, in)
	return nil
}

// ValidateConfig implements sdk.ConfigValidator: Configure's checks, with
// neither the instance installed nor the webhook registered.
func (c *Channel) ValidateConfig(_ context.Context, ic sdk.InstanceConfig) error {
	_, _, err := c.parse(ic)
	return err
}

// parse checks a configuration and builds its instance; setWebhook says
// whether Configure registers the webhook.
func (c *Channel) parse(ic sdk.InstanceConfig) (in *instance, setWebhook bool, err error) {
	p := chankit.Problems{}
	cfg := config{APIURL: DefaultAPIURL}
	chankit.DecodeConfig(ic.Config, &cfg, p)
	base := p.BaseURL("api_url", cfg.APIURL)
	token := p.Secret(ic.Secrets, "bot_token")
	if token != "" && !botTokenRE.MatchString(token) {
		p.Add("bot_token", "is not a bot token (<bot id>:<secret>)")
	}
	secret := p.Secret(ic.Secrets, "secret_token")
	if secret != "" && !secretTokenRE.MatchString(secret) {
		p.Add("secret_token", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
	}
	if cfg.SetWebhook && ic.WebhookURL == "" {
		p.Add("set_webhook", "needs the channel's public webhook URL")
	}
	if err := p.Err(); err != nil {
		return nil, false, err
	}
	return &instance{api: newBotAPI(c.http, base.String(), token), secretToken: secret}, cfg.SetWebhook, nil
}

// setWebhook registers url and the secret token. Only the update types the
// plugin translates are requested.
func (in *instance) setWebhook(ctx context.Context, url string) error {
	err := in.api.call(ctx, "setWebhook", map[string]any{
		"url":             url,
		"secret_token":    in.secretToken,
		"allowed_updates": []string{"message", "callback_query"},
	}, nil)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusNotFound) {
		return sdk.FieldError("bot_token", "Telegram refused the token")
	}
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return sdk.FieldError("set_webhook", "Telegram refused the webhook: "+ae.Description)
	}
	return err
}

// CheckHealth calls getMe: a refused token makes the channel unhealthy with
// Telegram's description as the reason.
func (c *Channel) CheckHealth(ctx context.Context, channelID string) (sdk.Health, error) {
	in, err := c.instances.Get(channelID)
	if err != nil {
		return sdk.Health{}, err
	}
	err = in.api.call(ctx, "getMe", struct{}{}, nil)
	var ae *apiError
	switch {
	case err == nil:
		return sdk.Health{OK: true}, nil
	case errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests:
		return sdk.Health{OK: false, Reason: ae.Description}, nil
	default:
		return sdk.Health{}, err
	}
}
