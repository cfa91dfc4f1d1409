package httpapi

import (
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// PublicLimits guard the routes served without a key (platform webhooks,
// web chat, health), which anyone who can reach the gateway may call.
// Zero fields switch a limit off.
type PublicLimits struct {
	// BodyTimeout bounds reading a request body from the start of the
	// request, so a body trickled byte by byte cannot hold a connection
	// (and a handler) for long.
	BodyTimeout time.Duration
	// Rate is requests per second per client address (an IPv6 /64 is one
	// address); above it, and past Burst, requests are answered 429 with
	// Retry-After.
	Rate  float64
	Burst int
	// Now is the rate limit's clock. Defaults to time.Now.
	Now func() time.Time
}

// publicGuard applies PublicLimits to one server's public routes.
type publicGuard struct {
	lim      PublicLimits
	limiters *addressLimiters // nil: no rate limit
}

func newPublicGuard(lim PublicLimits) *publicGuard {
	if lim.Now == nil {
		lim.Now = time.Now
	}
	g := &publicGuard{lim: lim}
	if lim.Rate > 0 {
		g.limiters = &addressLimiters{rate: rate.Limit(lim.Rate), burst: max(lim.Burst, 1), m: map[netip.Prefix]*rate.Limiter{}}
	}
	return g
}

func (g *publicGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.limiters != nil {
			if wait := g.limiters.wait(requestKey(r), g.lim.Now()); wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				WriteErrors(w, Errf(http.StatusTooManyRequests, "rate_limited", "",
					"more than %g requests per second from this address (server.public.rate_limit); retry after %s",
					g.lim.Rate, wait.Round(time.Millisecond)))
				return
			}
		}
		if g.lim.BodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(g.lim.BodyTimeout)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the body read deadline once the body has been read:
// net/http keeps reading the connection in the background while the
// handler runs, and a deadline passing then would cancel the request's
// context.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// addressLimiters hold one token bucket per client address.
type addressLimiters struct {
	rate  rate.Limit
	burst int

	mu        sync.Mutex
	m         map[netip.Prefix]*rate.Limiter
	nextSweep int
}

// minSweep is the table size below which idle buckets are not swept.
const minSweep = 1024

// wait takes a token for key at now, or reports how long until one is due
// (taking nothing then).
func (a *addressLimiters) wait(key netip.Prefix, now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	lim, ok := a.m[key]
	if !ok {
		a.sweep(now)
		lim = rate.NewLimiter(a.rate, a.burst)
		a.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// sweep forgets the buckets that have refilled (indistinguishable from new
// ones) once the table has doubled since the last sweep, so the table stays
// proportional to the addresses active in the last few seconds at an
// amortized constant cost per request.
func (a *addressLimiters) sweep(now time.Time) {
	if len(a.m) < max(a.nextSweep, minSweep) {
		return
	}
	for k, lim := range a.m {
		if lim.TokensAt(now) >= float64(a.burst) {
			delete(a.m, k)
		}
	}
	a.nextSweep = 2 * len(a.m)
}

// requestKey is the client address of r, as the connection limits count it.
func requestKey(r *http.Request) netip.Prefix { return addressKey(r.RemoteAddr) }
