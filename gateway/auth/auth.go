// Package auth issues and checks API keys.
//
// A key is shown once, at creation, and only its SHA-256 is stored: keys are
// 256-bit random secrets, so a fast hash is as strong as a slow one here and
// keeps the per-request check cheap. Every key has one scope (channel, app,
// track, admin) and belongs to one workspace; a key never authorizes anything
// outside its scope or its workspace.
//
// Keys are not cached: every request reads its key from the store (one
// lookup by a unique index), so a key revoked, or a rotated key whose grace
// period ended, is refused by every node from the next request on. When a
// key was last used is written at most once a minute per key
// (UseResolution), not once per request.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// ErrUnauthorized means the key is missing, unknown, revoked or of another
// scope. Callers answer 401 without saying which.
var ErrUnauthorized = errors.New("unauthorized")

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// prefixes make a leaked key's kind recognizable (and greppable by secret
// scanners) without revealing anything about it.
var prefixes = map[store.Scope]string{
	store.ScopeChannel: "sbc_",
	store.ScopeApp:     "sba_",
	store.ScopeTrack:   "sbt_",
	store.ScopeAdmin:   "sbk_",
}

// Prefix is the prefix of every key of scope ("" for an unknown scope).
func Prefix(scope store.Scope) string { return prefixes[scope] }

// ScopeOf is the scope a raw key's prefix claims, so that an error can say
// which kind of key was given where another was needed; whether the key
// exists is not told.
func ScopeOf(raw string) (store.Scope, bool) {
	for scope, prefix := range prefixes {
		if strings.HasPrefix(raw, prefix) {
			return scope, true
		}
	}
	if strings.HasPrefix(raw, OperatorPrefix) {
		return "operator", true
	}
	return "", false
}

// Hash is the stored form of a raw key.
func Hash(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// NewKey generates a key of scope for a workspace (and channel, for channel
// keys). It returns the raw key, to show once, and the record to store.
func NewKey(workspaceID string, scope store.Scope, channelID, name string, now time.Time) (string, store.APIKey, error) {
	prefix, ok := prefixes[scope]
	if !ok {
		return "", store.APIKey{}, fmt.Errorf("unknown key scope %q", scope)
	}
	if (scope == store.ScopeChannel) != (channelID != "") {
		return "", store.APIKey{}, fmt.Errorf("a channel id is required for channel keys and only for them")
	}
	raw, err := randomKey(prefix)
	if err != nil {
		return "", store.APIKey{}, err
	}
	return raw, store.APIKey{
		ID:          uuid.NewString(),
		WorkspaceID: workspaceID,
		Scope:       scope,
		ChannelID:   channelID,
		Name:        name,
		Hash:        Hash(raw),
		CreatedAt:   now,
	}, nil
}

// randomKey is prefix and 43 base62 digits (≈ 256 bits).
func randomKey(prefix string) (string, error) {
	var b strings.Builder
	b.WriteString(prefix)
	max := big.NewInt(int64(len(alphabet)))
	for range 43 {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate key: %w", err)
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String(), nil
}

// OperatorPrefix starts every operator key. Operator keys are
// instance-wide (they create workspaces and act in any of them) and are
// not stored: the gateway config lists their SHA-256 digests
// (admin.operator_keys), so nothing a workspace can write grants one.
const OperatorPrefix = "sbo_"

// NewOperatorKey generates an operator key; digest (hex SHA-256) is what
// the config lists.
func NewOperatorKey() (raw, digest string, err error) {
	raw, err = randomKey(OperatorPrefix)
	if err != nil {
		return "", "", err
	}
	return raw, hex.EncodeToString(Hash(raw)), nil
}

// OperatorKeys checks raw keys against configured digests.
type OperatorKeys [][]byte

// ParseOperatorKeys decodes hex SHA-256 digests (config.AdminConfig
// validated them).
func ParseOperatorKeys(digests []string) (OperatorKeys, error) {
	out := make(OperatorKeys, 0, len(digests))
	for _, d := range digests {
		b, err := hex.DecodeString(d)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("operator key digest %q: want 64 hex digits", d)
		}
		out = append(out, b)
	}
	return out, nil
}

// Match returns the index of the digest raw matches, or -1. Comparisons
// are constant-time.
func (o OperatorKeys) Match(raw string) int {
	if !strings.HasPrefix(raw, OperatorPrefix) {
		return -1
	}
	h := Hash(raw)
	found := -1
	for i, d := range o {
		if subtle.ConstantTimeCompare(h, d) == 1 {
			found = i
		}
	}
	return found
}

// KeyStore is what Authenticator needs from the store.
type KeyStore interface {
	GetAPIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error)
	RecordAPIKeyUse(ctx context.Context, id string, at, since time.Time) error
}

// UseResolution is how precisely a key's last use is recorded.
const UseResolution = time.Minute

// Authenticator checks raw keys against the store.
type Authenticator struct {
	Keys KeyStore
	// Now is the clock expiry and last use are judged by. Default
	// time.Now.
	Now func() time.Time
	// Logger reports failures to record a key's use (which do not fail
	// the request). Default slog.Default().
	Logger *slog.Logger
}

// Authenticate returns the key record for raw when it exists, is not revoked
// or expired and has the wanted scope. Anything else is ErrUnauthorized;
// store failures are returned as they are.
func (a *Authenticator) Authenticate(ctx context.Context, raw string, scope store.Scope) (store.APIKey, error) {
	prefix := prefixes[scope]
	if raw == "" || prefix == "" || !strings.HasPrefix(raw, prefix) {
		return store.APIKey{}, ErrUnauthorized
	}
	k, err := a.Keys.GetAPIKeyByHash(ctx, Hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("look up key: %w", err)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	if k.Scope != scope || k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return store.APIKey{}, ErrUnauthorized
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= UseResolution {
		if err := a.Keys.RecordAPIKeyUse(ctx, k.ID, now, now.Add(-UseResolution)); err != nil {
			log := a.Logger
			if log == nil {
				log = slog.Default()
			}
			log.Warn("record api key use", "key_id", k.ID, "err", err)
		}
	}
	return k, nil
}
