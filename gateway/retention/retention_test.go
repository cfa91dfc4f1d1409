package retention_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/retention"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// seen marks n events of channel ch seen at at.
func seen(t *testing.T, s store.Store, ch string, n int, at time.Time) {
	t.Helper()
	for i := range n {
		if _, err := s.MarkEventSeen(t.Context(), ch, fmt.Sprintf("%s-%d-%d", ch, at.Unix(), i), at); err != nil {
			t.Fatal(err)
		}
	}
}

// stillSeen counts which of n events of ch seen at at are still known.
func stillSeen(t *testing.T, s store.Store, ch string, n int, at time.Time) int {
	t.Helper()
	known := 0
	for i := range n {
		isNew, err := s.MarkEventSeen(t.Context(), ch, fmt.Sprintf("%s-%d-%d", ch, at.Unix(), i), at)
		if err != nil {
			t.Fatal(err)
		}
		if !isNew {
			known++
		}
	}
	return known
}

func TestRunOncePrunesByPolicyInBatches(t *testing.T) {
	s := sqlstore.OpenTest(t)
	clk := &clock{now: t0}
	var pauses []time.Duration
	c := retention.New(retention.Options{
		Store:     s,
		Policy:    retention.Policy{store.RetainSeenEvents: 24 * time.Hour},
		Holder:    "node-a",
		BatchSize: 2,
		Now:       clk.Now,
		Pause:     func(_ context.Context, d time.Duration) error { pauses = append(pauses, d); return nil },
	})
	seen(t, s, "ch", 5, t0.Add(-25*time.Hour))
	seen(t, s, "ch", 3, t0.Add(-23*time.Hour))

	rep, err := c.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Held || rep.Deleted[store.RetainSeenEvents] != 5 || rep.Batches != 3 {
		t.Fatalf("report = %+v, want held, 5 seen events deleted in 3 batches (the last one short)", rep)
	}
	// A pause after each batch that deleted something: the writer is
	// never held by two in a row.
	if len(pauses) != 3 {
		t.Fatalf("paused %d times, want 3", len(pauses))
	}
	if got := stillSeen(t, s, "ch", 3, t0.Add(-23*time.Hour)); got != 3 {
		t.Fatalf("%d of 3 events inside the retention still known", got)
	}
	if got := stillSeen(t, s, "ch", 5, t0.Add(-25*time.Hour)); got != 0 {
		t.Fatalf("%d of 5 events past the retention still known", got)
	}
}

func TestKindWithoutRetentionIsKept(t *testing.T) {
	s := sqlstore.OpenTest(t)
	c := retention.New(retention.Options{Store: s, Policy: retention.Policy{store.RetainSeenEvents: -1},
		Holder: "node-a", Now: func() time.Time { return t0 }})
	seen(t, s, "ch", 2, t0.Add(-1000*time.Hour))
	rep, err := c.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Batches != 0 || stillSeen(t, s, "ch", 2, t0.Add(-1000*time.Hour)) != 2 {
		t.Fatalf("kept-for-ever kind was pruned: %+v", rep)
	}
}

// gatedStore blocks the first Prune until released, so a run can be held
// in the middle.
type gatedStore struct {
	retention.Store
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedStore) Prune(ctx context.Context, kind store.RetentionKind, before time.Time, limit int) (int, error) {
	g.once.Do(func() { close(g.entered); <-g.release })
	return g.Store.Prune(ctx, kind, before, limit)
}

// TestOneCleanerAtATimePostgres runs two nodes' cleaners against one
// PostgreSQL database: while the first runs, the second does nothing;
// once the first's lease runs out (it died), the second takes over.
func TestOneCleanerAtATimePostgres(t *testing.T) {
	s := sqlstore.OpenTestPostgres(t)
	clk := &clock{now: t0}
	policy := retention.Policy{store.RetainSeenEvents: time.Hour}
	gate := &gatedStore{Store: s, entered: make(chan struct{}), release: make(chan struct{})}
	opts := func(st retention.Store, holder string) retention.Options {
		return retention.Options{Store: st, Policy: policy, Holder: holder, Interval: time.Minute, Now: clk.Now}
	}
	a := retention.New(opts(gate, "node-a"))
	b := retention.New(opts(s, "node-b"))
	seen(t, s, "ch", 3, t0.Add(-2*time.Hour))

	type result struct {
		rep retention.Report
		err error
	}
	done := make(chan result, 1)
	go func() { rep, err := a.RunOnce(t.Context()); done <- result{rep, err} }()
	<-gate.entered // a holds the lease and is about to delete

	rep, err := b.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Held || rep.Batches != 0 {
		t.Fatalf("second cleaner ran while the first held the lease: %+v", rep)
	}
	close(gate.release)
	ra := <-done
	if ra.err != nil || !ra.rep.Held || ra.rep.Deleted[store.RetainSeenEvents] != 3 {
		t.Fatalf("first cleaner: %+v, %v; want held, 3 deleted", ra.rep, ra.err)
	}

	// a keeps the lease between runs (2 minutes by default)…
	seen(t, s, "ch", 2, t0.Add(-90*time.Minute))
	clk.Set(t0.Add(119 * time.Second))
	if rep, err := b.RunOnce(t.Context()); err != nil || rep.Held {
		t.Fatalf("second cleaner inside the first's lease: %+v, %v", rep, err)
	}
	// …and when it stops renewing it, b takes over.
	clk.Set(t0.Add(2 * time.Minute))
	rep, err = b.RunOnce(t.Context())
	if err != nil || !rep.Held || rep.Deleted[store.RetainSeenEvents] != 2 {
		t.Fatalf("second cleaner after the first's lease: %+v, %v; want held, 2 deleted", rep, err)
	}
}
