// Package queue runs durable background jobs (inbound events, broadcasts,
// fan-out chunks) stored in the store's job table.
//
// Producers insert jobs with store.Jobs.EnqueueJob, usually inside the same
// transaction as the state they accompany, then call Notify so the runner
// claims them at once instead of at its next poll. The store guarantees that
// jobs sharing a Key run one at a time in id order, which is how one
// conversation's events are serialized across workers and nodes.
//
// A claimed job is held by this node's lease (package cluster), not by a
// guess at how long it may run: it runs under the lease's context, so
// losing the lease cancels it, and under Options.JobTimeout. Its attempt is
// counted when it is claimed, and every outcome names that attempt, so a
// run that lost its claim cannot complete a newer one. A job claimed past
// Options.MaxAttempts is not run again: it kept dying with its node (or
// timing out), and is failed with its handler's GiveUp told why.
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
	ClaimJobs(ctx context.Context, o store.JobClaimOptions) ([]store.Job, error)
	CompleteJob(ctx context.Context, id int64, attempt int) error
	RetryJob(ctx context.Context, id int64, attempt int, err string, runAt time.Time) error
	FailJob(ctx context.Context, id int64, attempt int, err string) error
	ReleaseOrphans(ctx context.Context, node string, before time.Time, jobs, deliveries bool) (store.Released, error)
}

// Lease is the node lease claims are held under (a *cluster.Node).
type Lease interface {
	// ID names the node in claims.
	ID() string
	// Held is cancelled when the lease is lost.
	Held() context.Context
}

// Handler processes one job. Returning nil completes it; an error retries
// it with backoff until Options.MaxAttempts, or at once gives up when the
// error wraps ErrPermanent or the handler panics.
type Handler func(ctx context.Context, job store.Job) error

// GiveUp is told that a job is failed for good without its handler having
// said so (it ran out of attempts by dying or timing out), so the record
// the job works for (a trigger, a request) can say why.
type GiveUp func(ctx context.Context, job store.Job, reason string) error

// ErrPermanent marks a job error that retrying cannot fix.
var ErrPermanent = errors.New("permanent job failure")

// Permanent wraps err so the job fails without retries.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Options configure a Runner.
type Options struct {
	// Lease holds the claims; required outside tests (nil: a lease that
	// is never lost, under the node id "local").
	Lease Lease
	// Workers is how many jobs run at once. Defaults to 16.
	Workers int
	// JobTimeout bounds one run of a job; its context is cancelled then
	// and the run counts as a failed attempt. Defaults to 5m. Jobs that
	// take longer must split themselves (fan-out continues in a new job).
	JobTimeout time.Duration
	// StatementTimeout bounds each claim and outcome statement. Defaults
	// to 2s; keep it shorter than the node lease.
	StatementTimeout time.Duration
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
	giveUps  map[string]GiveUp
	wake     chan struct{}
	log      *slog.Logger
}

// New returns a Runner; register handlers before Run.
func New(st Store, opts Options) *Runner {
	if opts.Lease == nil {
		opts.Lease = Local
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.JobTimeout <= 0 {
		opts.JobTimeout = 5 * time.Minute
	}
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = 2 * time.Second
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
		giveUps:  map[string]GiveUp{},
		wake:     make(chan struct{}, 1),
		log:      opts.Logger.With("component", "queue"),
	}
}

// Handle registers the handler for a job kind.
func (r *Runner) Handle(kind string, h Handler) { r.handlers[kind] = h }

// OnGiveUp registers what to tell when a job of kind runs out of attempts
// without its handler failing it.
func (r *Runner) OnGiveUp(kind string, g GiveUp) { r.giveUps[kind] = g }

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
	var audited time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer.C:
		}
		failed := false
		if len(sem) == 0 && time.Since(audited) >= orphanAge/2 {
			audited = time.Now()
			r.releaseOrphans(ctx)
		}
		for {
			free := r.opts.Workers - len(sem)
			if free == 0 {
				break
			}
			held := r.opts.Lease.Held()
			if held.Err() != nil {
				break // between leases: claim under the next one
			}
			jobs, err := r.claim(ctx, free)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error("claim jobs", "err", err)
				}
				failed = true
				break
			}
			for _, j := range jobs {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done(); r.Notify() }()
					r.run(ctx, held, j)
				}()
			}
			if len(jobs) < free {
				break
			}
		}
		// While the store fails (a database restart), poll at most once
		// a second rather than log an error every poll interval.
		if failed {
			timer.Reset(max(r.opts.PollInterval, time.Second))
		} else {
			timer.Reset(r.opts.PollInterval)
		}
	}
}

func (r *Runner) claim(ctx context.Context, n int) ([]store.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.StatementTimeout)
	defer cancel()
	start := time.Now()
	jobs, err := r.store.ClaimJobs(ctx, store.JobClaimOptions{Node: r.opts.Lease.ID(), Limit: n, Now: start})
	if took := time.Since(start); took > r.opts.StatementTimeout/2 {
		r.log.Warn("slow job claim", "took", took, "claimed", len(jobs))
	}
	return jobs, err
}

// orphanAge is how old a claim must be before an idle runner takes it for
// an orphan.
const orphanAge = time.Minute

// releaseOrphans runs when no job runs here: whatever the store says this
// node holds from before orphanAge can only be the result of a claim whose
// answer was lost (the database committed it, the connection died first),
// and would otherwise stay held until this node restarts.
func (r *Runner) releaseOrphans(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, r.opts.StatementTimeout)
	defer cancel()
	rel, err := r.store.ReleaseOrphans(sctx, r.opts.Lease.ID(), time.Now().Add(-orphanAge), true, false)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("release orphaned job claims", "err", err)
		}
		return
	}
	if rel.Jobs > 0 {
		r.log.Warn("released job claims whose answer was lost", "count", rel.Jobs)
	}
}

// run runs one claimed job under the lease it was claimed with; shutdown
// (ctx) does not cancel it, losing the lease does.
func (r *Runner) run(ctx context.Context, held context.Context, j store.Job) {
	log := r.log.With("job_id", j.ID, "kind", j.Kind, "attempt", j.Attempts)
	if j.Attempts > r.opts.MaxAttempts {
		reason := fmt.Sprintf("gave up after %d attempts that did not finish (last: %s)", j.Attempts-1, j.LastError)
		log.Error("job failed", "err", reason)
		if g := r.giveUps[j.Kind]; g != nil {
			if err := g(held, j, reason); err != nil {
				log.Error("record why the job was given up", "err", err)
			}
		}
		r.record(ctx, held, log, j, func(c context.Context) error { return r.store.FailJob(c, j.ID, j.Attempts, reason) })
		jobsTotal.WithLabelValues(j.Kind, "gave_up").Inc()
		return
	}
	h, ok := r.handlers[j.Kind]
	var err error
	if !ok {
		err = Permanent(fmt.Errorf("no handler for job kind %q", j.Kind))
	} else {
		jctx, cancel := context.WithTimeout(held, r.opts.JobTimeout)
		err = safeCall(jctx, h, j)
		if err != nil && errors.Is(jctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("job ran longer than its %s timeout: %w", r.opts.JobTimeout, err)
		}
		cancel()
	}
	var outcome func(context.Context) error
	var label string
	switch {
	case held.Err() != nil:
		log.Warn("job cancelled: this node lost its lease; another node runs it", "err", err)
		jobsTotal.WithLabelValues(j.Kind, "lost_claim").Inc()
		return
	case err == nil:
		label = "completed"
		outcome = func(c context.Context) error { return r.store.CompleteJob(c, j.ID, j.Attempts) }
	case errors.Is(err, ErrPermanent) || j.Attempts >= r.opts.MaxAttempts:
		log.Error("job failed", "err", err)
		label = "failed"
		outcome = func(c context.Context) error { return r.store.FailJob(c, j.ID, j.Attempts, err.Error()) }
	default:
		next := time.Now().Add(Backoff(j.Attempts, time.Second, 5*time.Minute))
		log.Warn("job will retry", "err", err, "run_at", next)
		label = "retrying"
		outcome = func(c context.Context) error { return r.store.RetryJob(c, j.ID, j.Attempts, err.Error(), next) }
	}
	r.record(ctx, held, log, j, outcome)
	jobsTotal.WithLabelValues(j.Kind, label).Inc()
}

// record stores a job's outcome, retrying while the store is unreachable
// (a database restart) for as long as this node holds the job: an outcome
// is never dropped while it can still land.
func (r *Runner) record(ctx, held context.Context, log *slog.Logger, j store.Job, outcome func(context.Context) error) {
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.StatementTimeout)
		err := outcome(sctx)
		cancel()
		switch {
		case err == nil:
			return
		case errors.Is(err, store.ErrClaimLost):
			log.Warn("job outcome refused: its claim was taken over", "err", err)
			return
		}
		log.Warn("record job outcome; retrying", "err", err)
		select {
		case <-held.Done():
			log.Warn("job outcome dropped: this node lost its lease; another node runs the job again")
			return
		case <-time.After(Backoff(attempt, 100*time.Millisecond, 2*time.Second)):
		}
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

// Local is a lease that is never lost, under the node id "local", for a
// runner or pipeline used alone (tests, a command-line process).
var Local Lease = localLease{}

type localLease struct{}

func (localLease) ID() string            { return "local" }
func (localLease) Held() context.Context { return context.Background() }

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
