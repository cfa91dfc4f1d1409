package audienceapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// readLimiter holds each App API key to Customer.io's read limit (10
// requests per second). There is one limiter per key that was used, which
// is bounded by the keys that exist.
type readLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]*rate.Limiter
}

func newReadLimiter(perSecond float64, now func() time.Time) *readLimiter {
	return &readLimiter{limit: rate.Limit(perSecond), burst: max(1, int(perSecond)), now: now,
		keys: map[string]*rate.Limiter{}}
}

// wait reports how long the key must wait before its next read; zero
// means the read may go now (and is counted).
func (l *readLimiter) wait(keyID string) time.Duration {
	l.mu.Lock()
	lim, ok := l.keys[keyID]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.keys[keyID] = lim
	}
	l.mu.Unlock()
	now := l.now()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		// A refused read takes no token.
		r.CancelAt(now)
		return d
	}
	return 0
}

// inflight caps the expensive requests (triggers, dry runs above all, and
// segment counts) one workspace has running at once: each may decode a
// 25 MB body or walk the whole audience, so a handful in parallel would
// take the gateway's memory and cores from everyone else.
type inflight struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newInflight(max int) *inflight { return &inflight{max: max, n: map[string]int{}} }

// acquire takes a place for the workspace, false when all are taken.
func (l *inflight) acquire(ws string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ws] >= l.max {
		return false
	}
	l.n[ws]++
	return true
}

func (l *inflight) release(ws string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ws]--; l.n[ws] <= 0 {
		delete(l.n, ws)
	}
}
