package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Authenticator checks raw API keys.
type Authenticator interface {
	Authenticate(ctx context.Context, raw string, scope store.Scope) (store.APIKey, error)
}

// keyLimiter enforces a request rate per API key, as CSML does per
// key/secret pair. Limiters live as long as the process; there is one per
// key that was used, which is bounded by the keys that exist.
type keyLimiter struct {
	rate float64
	mu   sync.Mutex
	lim  map[string]*rate.Limiter
}

func newKeyLimiter(perSecond float64) *keyLimiter {
	return &keyLimiter{rate: perSecond, lim: map[string]*rate.Limiter{}}
}

// allow reports whether the key may make a request now and, if not, how
// many seconds to wait.
func (k *keyLimiter) allow(keyID string) (bool, int) {
	k.mu.Lock()
	l, ok := k.lim[keyID]
	if !ok {
		l = rate.NewLimiter(rate.Limit(k.rate), max(1, int(k.rate)))
		k.lim[keyID] = l
	}
	k.mu.Unlock()
	r := l.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}

// requireKey authenticates raw as a key of scope and applies the key's rate
// limit; it answers 401 or 429 itself and returns ok=false then.
func requireKey(w http.ResponseWriter, r *http.Request, a Authenticator, lim *keyLimiter, raw string, scope store.Scope) (store.APIKey, bool) {
	if raw == "" {
		WriteErrors(w, Errf(http.StatusUnauthorized, "missing_api_key", "", "no API key: send it in the %s header", keyHeader(scope)))
		return store.APIKey{}, false
	}
	k, err := a.Authenticate(r.Context(), raw, scope)
	if errors.Is(err, auth.ErrUnauthorized) {
		WriteErrors(w, Errf(http.StatusUnauthorized, "unauthorized", "", "unauthorized: the API key is unknown, revoked, or not a %s key", scope))
		return store.APIKey{}, false
	}
	if err != nil {
		WriteError(w, r, err)
		return store.APIKey{}, false
	}
	if !lim.admit(w, k.ID) {
		return store.APIKey{}, false
	}
	return k, true
}

// admit applies the rate limit of key id (a nil limiter admits all),
// answering 429 itself when the key is over it.
func (k *keyLimiter) admit(w http.ResponseWriter, id string) bool {
	if k == nil {
		return true
	}
	if ok, wait := k.allow(id); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		WriteErrors(w, Errf(http.StatusTooManyRequests, "rate_limited", "", "too many requests for this API key; retry after %d s", wait))
		return false
	}
	return true
}

// KeyGuard authenticates keys of one scope and limits each key's request
// rate, answering 401 and 429 in the error envelope, for APIs outside
// this package.
type KeyGuard struct {
	auth  Authenticator
	scope store.Scope
	lim   *keyLimiter
}

// NewKeyGuard guards with a's keys of scope, perSecond requests per key
// (≤ 0: unlimited).
func NewKeyGuard(a Authenticator, scope store.Scope, perSecond float64) *KeyGuard {
	g := &KeyGuard{auth: a, scope: scope}
	if perSecond > 0 {
		g.lim = newKeyLimiter(perSecond)
	}
	return g
}

// Require authenticates raw and applies its key's limit; on ok=false the
// answer is written.
func (g *KeyGuard) Require(w http.ResponseWriter, r *http.Request, raw string) (store.APIKey, bool) {
	return requireKey(w, r, g.auth, g.lim, raw, g.scope)
}

// Admit applies the rate limit to a key the guard did not authenticate
// (one checked elsewhere, named by id); on false the 429 is written.
func (g *KeyGuard) Admit(w http.ResponseWriter, id string) bool { return g.lim.admit(w, id) }

func keyHeader(scope store.Scope) string {
	switch scope {
	case store.ScopeChannel:
		return "x-api-key"
	case store.ScopeTrack:
		return "Authorization: Basic (site id : track key)"
	default:
		return "Authorization: Bearer"
	}
}
