package assistant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
)

// Secret names in sdk.InstanceConfig.Secrets.
const (
	// SecretSessionKey signs session tokens (see sdk.SecretSessionKey).
	SecretSessionKey = sdk.SecretSessionKey
	// SecretIdentity verifies identity tokens signed by the bot developer's
	// backend. Optional unless anonymous sessions are off.
	SecretIdentity = "identity_secret"
)

// minKeyBytes is the shortest HMAC-SHA256 key accepted (RFC 7518 §3.2).
const minKeyBytes = 32

const (
	defaultSessionTTL = 30 * 24 * time.Hour
	minSessionTTL     = time.Minute
	maxSessionTTL     = 365 * 24 * time.Hour
)

const configSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "allowed_origins": {
      "type": "array",
      "items": {"type": "string"},
      "description": "Origins (scheme://host[:port]) of the pages allowed to open the websocket, or \"*\" for any. The gateway's own demo page is always allowed. Enforced by the gateway."
    },
    "anonymous": {"type": "boolean", "description": "Whether visitors without an identity token get an anonymous session. Defaults to true."},
    "session_ttl": {"type": "string", "description": "Lifetime of session tokens as a Go duration, 1m to 8760h; each connection renews the token. Defaults to 720h."}
  }
}`

type config struct {
	AllowedOrigins []string `json:"allowed_origins"`
	Anonymous      *bool    `json:"anonymous"`
	SessionTTL     string   `json:"session_ttl"`
}

// instance is one configured channel.
type instance struct {
	id          string
	anonymous   bool
	sessionTTL  time.Duration
	sessionKey  []byte
	identityKey []byte // nil: identity tokens are refused
}

// parseConfig validates cfg and reports every bad field at once.
func parseConfig(cfg sdk.InstanceConfig) (*instance, error) {
	bad := map[string]string{}
	var c config
	if len(bytes.TrimSpace(cfg.Config)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(cfg.Config))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			bad["config"] = "not a valid assistant config: " + err.Error()
		}
	}
	for i, o := range c.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			bad[fmt.Sprintf("allowed_origins[%d]", i)] = err.Error()
		}
	}
	in := &instance{id: cfg.ChannelID, anonymous: c.Anonymous == nil || *c.Anonymous, sessionTTL: defaultSessionTTL}
	if c.SessionTTL != "" {
		d, err := time.ParseDuration(c.SessionTTL)
		if err != nil || d < minSessionTTL || d > maxSessionTTL {
			bad["session_ttl"] = fmt.Sprintf("must be a duration between %s and %s", minSessionTTL, maxSessionTTL)
		}
		in.sessionTTL = d
	}
	switch k := cfg.Secrets[SecretSessionKey]; {
	case k == "":
		bad[SecretSessionKey] = "is required (the gateway derives it from its secret_key)"
	case len(k) < minKeyBytes:
		bad[SecretSessionKey] = fmt.Sprintf("must be at least %d bytes", minKeyBytes)
	default:
		in.sessionKey = []byte(k)
	}
	switch k, ok := cfg.Secrets[SecretIdentity]; {
	case ok && len(k) < minKeyBytes:
		bad[SecretIdentity] = fmt.Sprintf("must be at least %d bytes", minKeyBytes)
	case ok:
		in.identityKey = []byte(k)
	case !in.anonymous:
		bad[SecretIdentity] = "is required when anonymous sessions are off"
	}
	if len(bad) > 0 {
		return nil, &sdk.ConfigError{Fields: bad}
	}
	return in, nil
}

// checkOrigin accepts "*" or a bare origin: scheme and host, no path.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin like https://example.com or \"*\"", o)
	}
	return nil
}
