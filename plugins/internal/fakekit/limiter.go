package fakekit

import (
	"sync"
	"time"
)

// Limiter lets one request per Interval through for each key (a Slack
// channel, a Twilio sender, a Telegram chat), like the platforms' per-key
// limits, and answers the others with a whole-second retry hint, the unit all
// three platforms use.
//
// It also records every request that arrives before the retry hint it was
// given has elapsed, so a test can assert that a client honours retry-after
// by looking at recorded timestamps instead of at wall-clock speed.
type Limiter struct {
	interval time.Duration

	mu      sync.Mutex
	next    map[string]time.Time // earliest time the key may send again
	retryAt map[string]time.Time // what the last 429 told the client
	early   []EarlyRetry
}

// EarlyRetry is a request that ignored a retry hint.
type EarlyRetry struct {
	Key     string
	At      time.Time // when the request arrived
	RetryAt time.Time // when it was told it could retry
}

// NewLimiter returns a limiter allowing one request per interval and key.
// A zero interval disables limiting.
func NewLimiter(interval time.Duration) *Limiter {
	return &Limiter{interval: interval, next: map[string]time.Time{}, retryAt: map[string]time.Time{}}
}

// Take reports whether a request for key arriving at now may proceed. When
// it may not, retryAfter is the hint to send back (at least one second).
func (l *Limiter) Take(key string, now time.Time) (retryAfter time.Duration, ok bool) {
	if l.interval <= 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, told := l.retryAt[key]; told && now.Before(at) {
		// Repeat the hint already given rather than a shorter one, so that
		// a client obeying the latest hint is never counted as early.
		l.early = append(l.early, EarlyRetry{Key: key, At: now, RetryAt: at})
		return ceilSeconds(at.Sub(now)), false
	}
	next := l.next[key]
	if !now.Before(next) {
		l.next[key] = now.Add(l.interval)
		delete(l.retryAt, key)
		return 0, true
	}
	retryAfter = ceilSeconds(next.Sub(now))
	l.retryAt[key] = now.Add(retryAfter)
	return retryAfter, false
}

// ceilSeconds rounds d up to whole seconds: a hint must be long enough.
func ceilSeconds(d time.Duration) time.Duration {
	s := d.Truncate(time.Second)
	if s < d {
		s += time.Second
	}
	return s
}

// Early returns the requests that arrived before their retry hint elapsed.
func (l *Limiter) Early() []EarlyRetry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]EarlyRetry(nil), l.early...)
}
