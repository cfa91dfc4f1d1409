package sdk

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrorKind classifies a failed send so the gateway knows what to do next.
type ErrorKind string

// Send error kinds.
const (
	// KindRateLimited: the platform throttled us; retry after RetryAfter
	// without counting an attempt against the retry limit.
	KindRateLimited ErrorKind = "rate_limited"
	// KindPermanent: this message to this recipient can never succeed
	// (unknown or blocked user, invalid content). Not retried.
	KindPermanent ErrorKind = "permanent"
	// KindAuth: the channel's credentials or configuration are wrong. Not
	// retried; the channel's health turns degraded.
	KindAuth ErrorKind = "auth"
	// KindTransient: a timeout, 5xx or network error. Retried with backoff.
	KindTransient ErrorKind = "transient"
)

// SendError is the typed failure of one Outbound.
type SendError struct {
	Kind ErrorKind
	// Code is a short machine-readable reason, preferably the platform's own
	// (e.g. "channel_not_found", "21211", "bot_blocked").
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *SendError) Error() string {
	s := string(e.Kind)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// RateLimited returns a KindRateLimited error.
func RateLimited(retryAfter time.Duration, code, msg string) *SendError {
	return &SendError{Kind: KindRateLimited, Code: code, Message: msg, RetryAfter: retryAfter}
}

// Permanent returns a KindPermanent error.
func Permanent(code, msg string) *SendError {
	return &SendError{Kind: KindPermanent, Code: code, Message: msg}
}

// AuthError returns a KindAuth error.
func AuthError(code, msg string) *SendError {
	return &SendError{Kind: KindAuth, Code: code, Message: msg}
}

// Transient returns a KindTransient error.
func Transient(code, msg string) *SendError {
	return &SendError{Kind: KindTransient, Code: code, Message: msg}
}

// KindOf classifies any error: a *SendError (anywhere in the chain) keeps its
// kind, everything else is transient.
func KindOf(err error) ErrorKind {
	var se *SendError
	if errors.As(err, &se) {
		return se.Kind
	}
	return KindTransient
}

// ConfigError reports invalid channel configuration, field by field.
type ConfigError struct {
	// Fields maps a field path (e.g. "bot_token", "limits.per_second") to
	// what is wrong with it.
	Fields map[string]string
}

func (e *ConfigError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid channel config: " + strings.Join(parts, "; ")
}

// FieldError returns a ConfigError for one field.
func FieldError(field, problem string) *ConfigError {
	return &ConfigError{Fields: map[string]string{field: problem}}
}
