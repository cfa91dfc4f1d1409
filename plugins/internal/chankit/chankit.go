// Package chankit is the plumbing the Slack, Twilio and Telegram plugins
// share: the registry of configured channel instances, strict configuration
// decoding into field-named errors, ordered batch sending and text splitting.
// It holds no platform knowledge.
package chankit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Version is reported by every plugin's Describe. The build may override it
// with -ldflags "-X github.com/switchboard-gw/switchboard/plugins/internal/chankit.Version=...".
var Version = "dev"

// ErrUnknownChannel is returned for a channel id that Configure never saw,
// typically right after a plugin restart, before the gateway re-configures
// it. The gateway treats it like any transient failure.
var ErrUnknownChannel = errors.New("channel is not configured")

// Instances is a concurrency-safe registry of configured channel instances,
// keyed by channel id. Configure replaces an instance as a whole, so a
// request in flight keeps using the configuration it started with.
type Instances[T any] struct {
	mu sync.RWMutex
	m  map[string]T
}

// Put installs or replaces the instance for id.
func (r *Instances[T]) Put(id string, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]T)
	}
	r.m[id] = v
}

// Get returns the instance for id, or an error wrapping ErrUnknownChannel.
func (r *Instances[T]) Get(id string) (T, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.m[id]
	if !ok {
		var zero T
		return zero, fmt.Errorf("%w: %q", ErrUnknownChannel, id)
	}
	return v, nil
}

// DecodeConfig decodes a channel's config JSON into dst, which holds the
// defaults. Unknown keys are refused, so a misspelt option is reported
// instead of silently ignored. Problems go into p under the field's name.
func DecodeConfig(raw json.RawMessage, dst any, p Problems) {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &typeErr) && typeErr.Field != "":
		p.Add(typeErr.Field, fmt.Sprintf("must be a %s, not a JSON %s", typeErr.Type, typeErr.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for unknown fields.
		p.Add(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown option")
	default:
		p.Add("config", "is not a JSON object: "+err.Error())
	}
}
