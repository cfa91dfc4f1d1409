package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

// Timeout bounds for one outbound POST. Standard Webhooks advises 15–30 s.
const (
	defaultTimeout = 15 * time.Second
	minTimeout     = time.Second
	maxTimeout     = time.Minute
)

// minSecretBytes is the shortest secret Standard Webhooks allows.
const minSecretBytes = 24

const configSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["url"],
  "additionalProperties": false,
  "properties": {
    "url": {"type": "string", "format": "uri", "description": "Where bot messages are POSTed (http or https)."},
    "timeout": {"type": "string", "description": "Timeout of one POST as a Go duration, 1s to 60s. Defaults to 15s."}
  }
}`

// instance is one configured channel.
type instance struct {
	url      string
	inbound  *standardwebhooks.Webhook
	outbound *standardwebhooks.Webhook
	client   *http.Client
}

type config struct {
	URL     string `json:"url"`
	Timeout string `json:"timeout"`
}

// parseConfig validates cfg and reports every bad field at once.
func parseConfig(cfg sdk.InstanceConfig, transport http.RoundTripper, guard netguard.Options) (*instance, error) {
	bad := map[string]string{}
	var c config
	if len(bytes.TrimSpace(cfg.Config)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(cfg.Config))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			bad["config"] = "not a valid webhook config: " + err.Error()
		}
	}
	if u, err := url.Parse(c.URL); c.URL == "" {
		bad["url"] = "is required"
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad["url"] = "must be an absolute http or https URL"
	} else if err := guard.CheckURL(u); err != nil {
		// Refused at send time anyway (the transport checks every
		// request); saying so here lets apply refuse the channel.
		bad["url"] = "must not point at an internal address: " + err.Error()
	}
	timeout := defaultTimeout
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d < minTimeout || d > maxTimeout {
			bad["timeout"] = fmt.Sprintf("must be a duration between %s and %s", minTimeout, maxTimeout)
		}
		timeout = d
	}
	inbound, err := parseSecret(cfg.Secrets["signing_secret"])
	if err != nil {
		bad["signing_secret"] = err.Error()
	}
	outbound := inbound
	if s, ok := cfg.Secrets["outbound_signing_secret"]; ok {
		if outbound, err = parseSecret(s); err != nil {
			bad["outbound_signing_secret"] = err.Error()
		}
	}
	if len(bad) > 0 {
		return nil, &sdk.ConfigError{Fields: bad}
	}
	return &instance{
		url:      c.URL,
		inbound:  inbound,
		outbound: outbound,
		client: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// A redirect is a failure (Standard Webhooks): following it would
			// post signed messages to a place nobody configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func parseSecret(s string) (*standardwebhooks.Webhook, error) {
	if s == "" {
		return nil, errors.New("is required")
	}
	raw, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) < minSecretBytes {
		return nil, fmt.Errorf("must be whsec_ followed by base64 of at least %d bytes", minSecretBytes)
	}
	return standardwebhooks.NewWebhookRaw(key)
}

// ParseRate parses "COUNT/PERIOD", e.g. "100/1s" or "30/1m".
func ParseRate(s string) (sdk.Rate, error) {
	count, per, ok := strings.Cut(s, "/")
	if !ok {
		return sdk.Rate{}, fmt.Errorf("rate %q: want COUNT/PERIOD, e.g. 100/1s", s)
	}
	n, err := strconv.Atoi(count)
	if err != nil || n <= 0 {
		return sdk.Rate{}, fmt.Errorf("rate %q: count must be a positive integer", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return sdk.Rate{}, fmt.Errorf("rate %q: period must be a positive duration", s)
	}
	return sdk.Rate{Count: n, Per: d}, nil
}
