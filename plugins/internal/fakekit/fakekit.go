// Package fakekit is the plumbing shared by the platform fakes (slackfake,
// twiliofake, telegramfake) and by the plugins' in-process tests: recorded
// calls, one-shot scripted failures, per-key rate limiting that notices
// clients retrying too early, webhook posting, and a minimal stand-in for the
// gateway's ingress.
package fakekit

import (
	"sync"
	"time"
)

// Clock returns the current time. Fakes take one so tests can decide what
// "one second later" means instead of sleeping.
type Clock func() time.Time

// Now returns c's time, or the wall clock for a nil Clock.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// ManualClock is a Clock that only moves when told to.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock stopped at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's current time.
func (m *ManualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d.
func (m *ManualClock) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
}

// Log is an append-only, concurrency-safe record of calls.
type Log[T any] struct {
	mu    sync.Mutex
	items []T
}

// Add appends v.
func (l *Log[T]) Add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, v)
}

// All returns a copy of everything recorded so far.
func (l *Log[T]) All() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.items...)
}

// Script holds one-shot replies queued per key (an API method, a recipient):
// each Pop consumes the oldest.
type Script[T any] struct {
	mu sync.Mutex
	q  map[string][]T
}

// Push queues v for key.
func (s *Script[T]) Push(key string, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.q == nil {
		s.q = make(map[string][]T)
	}
	s.q[key] = append(s.q[key], v)
}

// Pop removes and returns the oldest reply queued for key.
func (s *Script[T]) Pop(key string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.q[key]
	if len(q) == 0 {
		var zero T
		return zero, false
	}
	s.q[key] = q[1:]
	return q[0], true
}

// Set is a concurrency-safe map of sticky per-key settings (a blocked chat,
// a revoked token, a recipient that always fails).
type Set[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

// Put sets key to v.
func (s *Set[V]) Put(key string, v V) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]V)
	}
	s.m[key] = v
}

// Delete removes key.
func (s *Set[V]) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// Get returns the value for key.
func (s *Set[V]) Get(key string) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}
