// Package retention is the cleaner: it deletes records older than their
// kind's retention (finished jobs, platform event ids, final deliveries,
// conversation messages, closed conversations, finished triggers and
// flow_trigger requests), so the database stops growing under steady load.
//
// Every node runs a Cleaner; a lease in the store makes one of them at a
// time do the work (the others find the lease held and wait for the next
// run). Deletes go in small batches, oldest first, through indexes that
// hold only deletable rows, and after each batch the cleaner waits as long
// as the batch took, so on SQLite it holds the single writer for at most
// half the time, one short transaction at a time: a request waits for one
// batch at most.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Store is what the cleaner needs.
type Store interface {
	Prune(ctx context.Context, kind store.RetentionKind, before time.Time, limit int) (int, error)
	TakeCleanerLease(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error)
	ReleaseCleanerLease(ctx context.Context, holder string) error
}

// Policy is how long each kind of record is kept. A kind absent, or with
// a duration ≤ 0, is kept for ever.
type Policy map[store.RetentionKind]time.Duration

// Options configure a Cleaner.
type Options struct {
	Store  Store
	Policy Policy
	// Holder names this node in the cleaner lease.
	Holder string
	// Interval is the time between runs. Default 1 minute.
	Interval time.Duration
	// Lease is how long a run's lease holds without renewal; the cleaner
	// renews it between batches and keeps it between runs, so the same
	// node keeps cleaning, and another takes over a Lease after it dies.
	// Default twice Interval.
	Lease time.Duration
	// BatchSize bounds the records one delete removes. Default 500.
	BatchSize int
	// Now is the clock records' ages are measured on. Default time.Now.
	Now func() time.Time
	// Pause waits d between batches (default: a timer; tests count
	// the waits instead).
	Pause  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// Cleaner deletes old records; see the package doc.
type Cleaner struct {
	o Options
}

// New returns a Cleaner with o's defaults filled in.
func New(o Options) *Cleaner {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Lease <= 0 {
		o.Lease = 2 * o.Interval
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Pause == nil {
		o.Pause = sleep
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Cleaner{o: o}
}

// Report is what one run did.
type Report struct {
	// Held is false when another node holds the lease: the run did
	// nothing.
	Held bool
	// Deleted counts the records removed per kind.
	Deleted map[store.RetentionKind]int
	// Batches counts delete statements.
	Batches int
}

// minPause is the least wait between batches: even a fast batch lets
// the writers queued behind it go first.
const minPause = time.Millisecond

// RunOnce takes the lease and, if it holds it, prunes every kind until
// nothing older than its retention is left. It stops with an error at
// the first failed delete or lost lease, keeping what it deleted.
func (c *Cleaner) RunOnce(ctx context.Context) (Report, error) {
	rep := Report{Deleted: map[store.RetentionKind]int{}}
	renewed := c.o.Now()
	held, err := c.o.Store.TakeCleanerLease(ctx, c.o.Holder, renewed, c.o.Lease)
	if err != nil {
		runsTotal.WithLabelValues("error").Inc()
		return rep, err
	}
	if !held {
		runsTotal.WithLabelValues("skipped").Inc()
		return rep, nil
	}
	rep.Held = true
	start := c.o.Now()
	for _, kind := range store.RetentionKinds {
		keep := c.o.Policy[kind]
		if keep <= 0 {
			continue
		}
		// One cut-off per kind and run: the run ends once it has
		// caught up, even while new records keep ageing.
		before := start.Add(-keep)
		for {
			began := time.Now()
			n, err := c.o.Store.Prune(ctx, kind, before, c.o.BatchSize)
			if err != nil {
				runsTotal.WithLabelValues("error").Inc()
				return rep, err
			}
			rep.Batches++
			rep.Deleted[kind] += n
			deletedTotal.WithLabelValues(string(kind)).Add(float64(n))
			if n == 0 {
				break
			}
			// Also between kinds: back to back, one run's statements
			// would hold the writer for their sum.
			if err := c.o.Pause(ctx, max(time.Since(began), minPause)); err != nil {
				return rep, err
			}
			if n < c.o.BatchSize {
				break
			}
			if now := c.o.Now(); now.Sub(renewed) > c.o.Lease/3 {
				held, err := c.o.Store.TakeCleanerLease(ctx, c.o.Holder, now, c.o.Lease)
				if err == nil && !held {
					err = fmt.Errorf("cleaner lease of %s taken by another node mid-run", c.o.Holder)
				}
				if err != nil {
					runsTotal.WithLabelValues("error").Inc()
					return rep, err
				}
				renewed = now
			}
		}
	}
	runsTotal.WithLabelValues("done").Inc()
	return rep, nil
}

// Run cleans every Interval until ctx ends, then gives the lease up so
// another node takes over at once.
func (c *Cleaner) Run(ctx context.Context) error {
	t := time.NewTicker(c.o.Interval)
	defer t.Stop()
	defer func() {
		if err := c.o.Store.ReleaseCleanerLease(context.WithoutCancel(ctx), c.o.Holder); err != nil {
			c.o.Logger.Warn("release cleaner lease", "err", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		began := time.Now()
		rep, err := c.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			c.o.Logger.Error("retention run", "err", err, "deleted", total(rep), "took", time.Since(began))
			continue
		}
		if !rep.Held {
			c.o.Logger.Debug("retention run skipped: another node holds the cleaner lease")
			continue
		}
		attrs := []any{"deleted", total(rep), "batches", rep.Batches, "took", time.Since(began).Round(time.Millisecond)}
		for _, kind := range store.RetentionKinds {
			if n := rep.Deleted[kind]; n > 0 {
				attrs = append(attrs, string(kind), n)
			}
		}
		c.o.Logger.Info("retention run", attrs...)
	}
}

func total(r Report) int {
	n := 0
	for _, v := range r.Deleted {
		n += v
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var (
	deletedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_retention_deleted_total",
		Help: "Records the cleaner deleted because they outlived their retention, by kind.",
	}, []string{"kind"})
	runsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_retention_runs_total",
		Help: "Cleaner runs by outcome: done, skipped (another node holds the lease) or error.",
	}, []string{"outcome"})
)

// Collectors are the package's Prometheus metrics, for the app to register.
func Collectors() []prometheus.Collector { return []prometheus.Collector{deletedTotal, runsTotal} }
