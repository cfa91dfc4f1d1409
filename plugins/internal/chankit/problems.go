package chankit

import (
	"fmt"
	"net/url"

	"github.com/switchboard-gw/switchboard/sdk"
)

// Problems collects configuration problems by field name, so one Configure
// call reports every bad field at once.
type Problems map[string]string

// Add records a problem with field; the first problem per field wins.
func (p Problems) Add(field, problem string) {
	if _, dup := p[field]; !dup {
		p[field] = problem
	}
}

// Err returns nil when there are no problems, else a *sdk.ConfigError.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &sdk.ConfigError{Fields: p}
}

// Secret returns secrets[key], recording a problem when it is missing. The
// message never contains the value.
func (p Problems) Secret(secrets map[string]string, key string) string {
	v := secrets[key]
	if v == "" {
		p.Add(key, "secret is required")
	}
	return v
}

// BaseURL checks that raw, when set, is an absolute http(s) URL and returns
// it parsed (nil when raw is empty or invalid).
func (p Problems) BaseURL(field, raw string) *url.URL {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add(field, fmt.Sprintf("must be an absolute http(s) URL, got %q", raw))
		return nil
	}
	return u
}
