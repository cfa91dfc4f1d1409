// Package queue runs durable background jobs (inbound events, broadcasts,
// fan-out chunks) stored in the store's job table.
//
// Producers insert jobs with store.Jobs.EnqueueJob, usually inside the same
// transaction as the state they accompany, then call Notify so the runner
// claims them at once instead of at its next poll. The store guarantees that
// jobs sharing a Key run one at a time in id order, which is how one
// conversation's events are serialized across workers and nodes. A job whose
// worker dies is claimed again when its lease runs out.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Store is what the runner needs.
type Store interface {
	ClaimJobs(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]store.Job, error)
	CompleteJob(ctx context.Context, id int64) error
	RetryJob(ctx context.Context, id int64, err string, runAt time.Time) error
	FailJob(ctx context.Context, id int64, err string) error
}

// Handler processes one job. Returning nil completes it; an error retries
// it with backoff until Options.MaxAttempts, or at once gives up when the
// error wraps ErrPermanent or the handler panics.
type Handler func(ctx context.Context, job store.Job) error

// ErrPermanent marks a job error that retrying cannot fix.
var ErrPermanent = errors.New("permanent job failure")

// Permanent wraps err so the job fails without retries.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Options configure a Runner.
type Options struct {
	// Workers is how many jobs run at once. Defaults to 16.
	Workers int
	// Lease is how long a claimed job stays claimed. A job running longer
	// must be split into shorter jobs. Defaults to 5m.
	Lease time.Duration
	// PollInterval is the longest a due job waits without a Notify.
	// Defaults to 500ms.
	PollInterval time.Duration
	// MaxAttempts before a failing job is given up. Defaults to 10.
	MaxAttempts int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Runner claims and runs jobs.
type Runner struct {
	store    Store
	opts     Options
	handlers map[string]Handler
	wake     chan struct{}
	log      *slog.Logger
}

// New returns a Runner; register handlers before Run.
func New(st Store, opts Options) *Runner {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Lease <= 0 {
		opts.Lease = 5 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Runner{
		store:    st,
		opts:     opts,
		handlers: map[string]Handler{},
		wake:     make(chan struct{}, 1),
		log:      opts.Logger.With("component", "queue"),
	}
}

// Handle registers the handler for a job kind.
func (r *Runner) Handle(kind string, h Handler) { r.handlers[kind] = h }

// Notify wakes the runner: a job was enqueued.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx is done, then waits for running jobs.
func (r *Runner) Run(ctx context.Context) error {
	sem := make(chan struct{}, r.opts.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer.C:
		}
		for {
			free := r.opts.Workers - len(sem)
			if free == 0 {
				break
			}
			jobs, err := r.store.ClaimJobs(ctx, free, r.opts.Lease, time.Now())
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error("claim jobs", "err", err)
				}
				break
			}
			for _, j := range jobs {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done(); r.Notify() }()
					r.run(context.WithoutCancel(ctx), j)
				}()
			}
			if len(jobs) < free {
				break
			}
		}
		timer.Reset(r.opts.PollInterval)
	}
}

func (r *Runner) run(ctx context.Context, j store.Job) {
	h, ok := r.handlers[j.Kind]
	var err error
	if !ok {
		err = Permanent(fmt.Errorf("no handler for job kind %q", j.Kind))
	} else {
		err = safeCall(ctx, h, j)
	}
	log := r.log.With("job_id", j.ID, "kind", j.Kind, "attempt", j.Attempts)
	switch {
	case err == nil:
		err = r.store.CompleteJob(ctx, j.ID)
	case errors.Is(err, ErrPermanent) || j.Attempts >= r.opts.MaxAttempts:
		log.Error("job failed", "err", err)
		err = r.store.FailJob(ctx, j.ID, err.Error())
	default:
		next := time.Now().Add(Backoff(j.Attempts, time.Second, 5*time.Minute))
		log.Warn("job will retry", "err", err, "run_at", next)
		err = r.store.RetryJob(ctx, j.ID, err.Error(), next)
	}
	if err != nil {
		log.Error("record job outcome", "err", err)
	}
}

// safeCall runs h; a panic fails the job for good: it is a bug that
// retrying would only repeat.
func safeCall(ctx context.Context, h Handler, j store.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("job handler panicked: %v", p))
		}
	}()
	return h(ctx, j)
}

// Backoff is capped exponential backoff with ±20% jitter for the given
// attempt number (1 = first retry).
func Backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
