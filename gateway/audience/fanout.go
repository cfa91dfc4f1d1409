package audience

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/inbound"
	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/queue"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
)

// JobKind is the job kind of trigger fan-outs.
const JobKind = "audience_trigger"

// Skip and failure reasons recorded on a trigger's deliveries.
const (
	ReasonNoAddress      = "no_address"      // no identity on the action's channel, and its to: or default is empty
	ReasonInvalidAddress = "invalid_address" // the to: or default rendered an address the channel cannot take
	ReasonRenderError    = "render_error"    // the person's message (or to:) did not render
)

// FanoutStore is what the fan-out needs.
type FanoutStore interface {
	RecipientStore
	SegmentGetter
	GetTrigger(ctx context.Context, workspaceID string, id int64) (store.Trigger, error)
	GetChannel(ctx context.Context, id string) (store.Channel, error)
	EnqueueDeliveries(ctx context.Context, ds []store.Delivery) (int, error)
	EnqueueClaimedDeliveries(ctx context.Context, node string, ds []store.Delivery) ([]store.Delivery, int, error)
	EnqueueJob(ctx context.Context, j *store.Job) error
	FailTrigger(ctx context.Context, id int64, reason string, errs []string, at time.Time) error
	WithTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Notifier wakes a worker after work was stored.
type Notifier interface{ Notify() }

// Outbox is this node's delivery pipeline (*delivery.Pipeline). The
// fan-out stores each recipient's next delivery claimed for the pipeline's
// node and hands it over in memory, so the pipeline sends it without a
// claim scan; it stays durable and, if this node dies, is released to the
// others with the rest of its claims.
type Outbox interface {
	Notifier
	Node() string
	// Submit sends deliveries claimed for Node, waiting while the
	// pipeline is full.
	Submit(ctx context.Context, ds []store.Delivery) error
}

// EngineOptions configure the fan-out. Zero values take the defaults.
type EngineOptions struct {
	// BatchSize is how many recipients one step handles (default 1000).
	BatchSize int
	// StepBudget is how long a job keeps starting steps before it hands
	// over to a continuation job (default 30s); keep it well inside the
	// queue's lease.
	StepBudget time.Duration
	// MaxLineBytes caps a data file line (default 2 MB).
	MaxLineBytes int
	// MaxFileBytes caps a data file, decompressed (default 10 GB).
	MaxFileBytes int64
	// MaxFileLines caps a data file's lines, blank ones included
	// (default 100,000,000).
	MaxFileLines int
	// FileTimeout is how long after the trigger was made its data file
	// must have been read to the end, over every job that fetched it
	// (default 2h).
	FileTimeout time.Duration
	// StepLines and StepBytes end a data file step early when that many
	// lines or decompressed bytes were read without filling a batch
	// (default 100,000 lines, 16 MiB), so a run of blank or bad lines
	// still commits its progress step by step.
	StepLines int
	StepBytes int64
	// MaxErrorLines caps the error lines a trigger's fan-out stores
	// (default 10,000); one more line says the rest were not kept.
	MaxErrorLines int
	// FetchAttempts is how often a data file that cannot be fetched
	// (network errors, 5xx) is tried before the trigger fails (default 3).
	FetchAttempts int
	// MaxAttempts is how often a failing fan-out job runs before the
	// trigger fails (default 8; keep it below the queue's own limit).
	MaxAttempts int
	// Filter bounds recipients filters with their segments expanded,
	// checked again when the fan-out starts: a segment may have grown
	// since the trigger was accepted.
	Filter FilterLimits
	// Net guards data file fetches.
	Net netguard.Options
	// Deliveries takes the deliveries written (nil: they are only
	// stored, for whichever gateway runs a pipeline); Jobs is woken after
	// jobs are enqueued.
	Deliveries Outbox
	Jobs       Notifier
	Templates  *template.Engine
	Logger     *slog.Logger
	Now        func() time.Time
}

func (o *EngineOptions) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.StepBudget <= 0 {
		o.StepBudget = 30 * time.Second
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 2 << 20
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 10 << 30
	}
	if o.MaxFileLines <= 0 {
		o.MaxFileLines = 100_000_000
	}
	if o.FileTimeout <= 0 {
		o.FileTimeout = 2 * time.Hour
	}
	if o.StepLines <= 0 {
		o.StepLines = 100_000
	}
	if o.StepBytes <= 0 {
		o.StepBytes = 16 << 20
	}
	if o.MaxErrorLines <= 0 {
		o.MaxErrorLines = 10_000
	}
	if o.FetchAttempts <= 0 {
		o.FetchAttempts = 3
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Templates == nil {
		o.Templates = template.New(template.Options{})
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Engine fans triggers out.
type Engine struct {
	store  FanoutStore
	opts   EngineOptions
	client *http.Client
	log    *slog.Logger
}

// NewEngine returns an Engine; register Run as the queue handler of
// JobKind.
func NewEngine(st FanoutStore, o EngineOptions) *Engine {
	o.defaults()
	// Data files may be large: no overall timeout, the job's context and
	// the step budget bound the work instead.
	client := o.Net.Client(0, nil)
	return &Engine{store: st, opts: o, client: client, log: o.Logger.With("component", "audience")}
}

type jobPayload struct {
	WorkspaceID string `json:"workspace_id"`
	TriggerID   int64  `json:"trigger_id"`
}

// Enqueue stores the job that fans t out, inside tx. The key serializes a
// trigger's jobs, so a continuation never runs beside the job that
// enqueued it.
func Enqueue(ctx context.Context, tx store.Jobs, t store.Trigger) error {
	payload, err := json.Marshal(jobPayload{WorkspaceID: t.WorkspaceID, TriggerID: t.ID})
	if err != nil {
		return err
	}
	return tx.EnqueueJob(ctx, &store.Job{Kind: JobKind, Key: fmt.Sprintf("%s:%d", JobKind, t.ID), Payload: payload})
}

// Run is the queue handler of JobKind. Failures are retried by the queue;
// a data file that cannot be fetched, or a fan-out that keeps failing,
// fails the trigger instead.
func (e *Engine) Run(ctx context.Context, job store.Job) error {
	var p jobPayload
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return queue.Permanent(fmt.Errorf("decode trigger job: %w", err))
	}
	t, err := e.store.GetTrigger(ctx, p.WorkspaceID, p.TriggerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the broadcast was deleted with its triggers
	}
	if err != nil {
		return err
	}
	if t.State != store.TriggerQueued && t.State != store.TriggerRunning {
		return nil // a duplicate of a job that finished the trigger
	}
	err = e.fanOut(ctx, t)
	var fe *fetchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe) && (fe.permanent || job.Attempts >= e.opts.FetchAttempts):
		return e.fail(ctx, t, fe.msg, nil)
	case errors.Is(err, store.ErrInvalidFilter):
		return e.fail(ctx, t, "the recipients cannot be selected", err) // a segment cycle, or over the store's bounds
	case job.Attempts >= e.opts.MaxAttempts:
		// Give up before the queue does, so the trigger does not stay
		// running (and hold a place in the workspace's queue) forever.
		return e.fail(ctx, t, "the fan-out kept failing", err)
	}
	return err
}

// GiveUp is the queue's OnGiveUp hook of JobKind: the fan-out's runs kept
// dying (or timing out) before they finished, so the trigger fails with
// that reason instead of staying running.
func (e *Engine) GiveUp(ctx context.Context, job store.Job, reason string) error {
	var p jobPayload
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return fmt.Errorf("decode trigger job: %w", err)
	}
	t, err := e.store.GetTrigger(ctx, p.WorkspaceID, p.TriggerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return e.fail(ctx, t, "the fan-out did not finish", errors.New(reason))
}

// fanOut runs steps from the trigger's cursor until the fan-out ends or
// the budget is spent, then enqueues its continuation.
func (e *Engine) fanOut(ctx context.Context, t store.Trigger) error {
	log := e.log.With("trigger_id", t.ID, "broadcast_id", t.BroadcastID)
	if t.Steps == 0 && t.State == store.TriggerQueued {
		triggersTotal.WithLabelValues("started").Inc()
	}
	var req TriggerRequest
	if err := json.Unmarshal(t.Request, &req); err != nil {
		return e.fail(ctx, t, "the stored request does not decode", err)
	}
	pl, err := e.plan(ctx, t)
	if err != nil {
		return e.fail(ctx, t, "the broadcast cannot be sent", err)
	}
	src, err := e.source(ctx, t.WorkspaceID, &req, pl, t.Cursor, t.CreatedAt)
	var fe *FieldError
	if errors.As(err, &fe) {
		return e.fail(ctx, t, "the recipients cannot be selected: "+fe.Detail, nil)
	}
	if err != nil {
		return err
	}
	defer src.close()
	// The next batch is read and rendered while the current one is
	// written: reading recipients (a read connection) and rendering (CPU)
	// need not wait for the writer. A batch read ahead when the step
	// budget ends is dropped; the continuation reads it again from the
	// cursor.
	pctx, cancel := context.WithCancel(ctx)
	var ahead <-chan prepared
	defer func() {
		cancel()
		if ahead != nil {
			<-ahead // src stays open until the read ahead ends
		}
	}()
	prepare := func() <-chan prepared {
		c := make(chan prepared, 1)
		go func() {
			b, err := src.next(pctx)
			if err != nil {
				c <- prepared{err: err}
				return
			}
			c <- prepared{b: b, out: pl.render(pctx, e.opts.Templates, &req, b.items)}
		}()
		return c
	}
	deadline := e.opts.Now().Add(e.opts.StepBudget)
	steps := t.Steps
	errs := errorBudget{stored: t.Errors, max: int64(e.opts.MaxErrorLines)}
	ahead = prepare()
	for {
		p := <-ahead
		ahead = nil
		if p.err != nil {
			return p.err
		}
		b, out := p.b, p.out
		if !b.done {
			ahead = prepare()
		}
		err = e.commit(ctx, t, steps, b, out, errs.take(append(b.errs, out.errs...)))
		if errors.Is(err, store.ErrConflict) {
			log.Warn("another worker advanced the trigger; stopping")
			return nil
		}
		if err != nil {
			return err
		}
		steps++
		if b.done {
			log.Info("trigger fanned out", "steps", steps)
			triggersTotal.WithLabelValues("processed").Inc()
			return nil
		}
		if e.opts.Now().After(deadline) {
			err := e.store.WithTx(ctx, func(tx store.Store) error { return Enqueue(ctx, tx, t) })
			if err != nil {
				return err
			}
			e.notify(e.opts.Jobs)
			return nil
		}
	}
}

// prepared is a batch read and rendered ahead of its commit.
type prepared struct {
	b   batch
	out output
	err error
}

// errorBudget caps the error lines a fan-out stores: a data file of
// millions of bad lines must not write millions of rows.
type errorBudget struct {
	stored, max int64
}

// take returns the lines of a step that fit, and once the budget is spent
// one line saying so; after it, nothing.
func (eb *errorBudget) take(lines []string) []string {
	room := eb.max - eb.stored
	if int64(len(lines)) <= room {
		eb.stored += int64(len(lines))
		return lines
	}
	if room < 0 {
		return nil
	}
	eb.stored = eb.max + 1
	return append(lines[:room:room], fmt.Sprintf("more error lines were not kept: a trigger keeps at most %d", eb.max))
}

// commit writes one step: the deliveries first (idempotent by key, so a
// step re-run after a crash skips the ones it wrote), then in one
// transaction the flow events, the attribute updates and the cursor with
// the step's error lines errs.
func (e *Engine) commit(ctx context.Context, t store.Trigger, steps int64, b batch, out output, errs []string) error {
	if err := e.deliver(ctx, out.deliveries); err != nil {
		return err
	}
	err := e.store.WithTx(ctx, func(tx store.Store) error {
		for _, id := range out.links {
			if err := tx.LinkIdentity(ctx, id); err != nil {
				return err
			}
		}
		for _, ev := range out.flows {
			if err := inbound.Enqueue(ctx, tx, ev); err != nil {
				return err
			}
		}
		for _, p := range out.updates {
			if _, err := tx.UpsertPerson(ctx, p); err != nil {
				return err
			}
		}
		return tx.AdvanceTrigger(ctx, store.TriggerStep{TriggerID: t.ID, Steps: steps, Cursor: b.cursor,
			Matched: int64(len(b.items)), Flows: int64(len(out.flows)), Actions: out.tallies, Errors: errs,
			Done: b.done, At: e.opts.Now()})
	})
	if err != nil {
		return err
	}
	if len(out.flows) > 0 {
		e.notify(e.opts.Jobs)
	}
	return nil
}

// deliver stores a step's deliveries and hands those claimed for this node
// to its pipeline.
func (e *Engine) deliver(ctx context.Context, ds []store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	ob := e.opts.Deliveries
	if ob == nil {
		_, err := e.store.EnqueueDeliveries(ctx, ds)
		return err
	}
	claimed, _, err := e.store.EnqueueClaimedDeliveries(ctx, ob.Node(), ds)
	if err != nil {
		return err
	}
	if len(claimed) < len(ds) {
		ob.Notify() // the rest wait in the store for any node's claim
	}
	return ob.Submit(ctx, claimed)
}

func (e *Engine) notify(n Notifier) {
	if n != nil {
		n.Notify()
	}
}

// fail ends the trigger as failed with reason; the job itself succeeds
// (there is nothing to retry).
func (e *Engine) fail(ctx context.Context, t store.Trigger, reason string, cause error) error {
	line := reason
	if cause != nil {
		line += ": " + cause.Error()
	}
	e.log.Error("trigger failed", "trigger_id", t.ID, "reason", line)
	triggersTotal.WithLabelValues("failed").Inc()
	if err := e.store.FailTrigger(ctx, t.ID, reason, []string{line}, e.opts.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// source opens the trigger's recipient source at cursor; a data file
// must be read within the time limit counted from started.
func (e *Engine) source(ctx context.Context, ws string, req *TriggerRequest, pl *plan, cursor string, started time.Time) (source, error) {
	res := resolver{st: e.store, ws: ws, channels: pl.channels, req: req}
	switch {
	case req.DataFileURL != "":
		lim := fileLimits{batch: e.opts.BatchSize, stepLines: e.opts.StepLines, stepBytes: e.opts.StepBytes,
			maxLine: e.opts.MaxLineBytes, maxBytes: e.opts.MaxFileBytes, maxLines: e.opts.MaxFileLines, now: e.opts.Now}
		if !started.IsZero() {
			lim.deadline = started.Add(e.opts.FileTimeout)
		}
		return openFileSource(ctx, e.client, res, req.DataFileURL, cursor, lim)
	case len(req.IDs) > 0 || len(req.Emails) > 0 || len(req.PerUserData) > 0:
		return newListSource(res, req, cursor, e.opts.BatchSize)
	}
	filter := req.Recipients
	if filter == nil {
		filter = pl.broadcast.Recipients
	}
	if filter == nil {
		return nil, fmt.Errorf("no recipients: the trigger names none and the broadcast has no default recipients")
	}
	if err := CheckFilter(ctx, e.store, ws, filter, "", e.opts.Filter); err != nil {
		return nil, err
	}
	return &filterSource{st: e.store, q: store.RecipientQuery{WorkspaceID: ws, Filter: filter, After: cursor,
		Limit: e.opts.BatchSize, Channels: pl.channels}}, nil
}

// isRefusal tells a netguard refusal, which retrying cannot fix.
func isRefusal(err error) bool { return errors.Is(err, netguard.ErrForbidden) }

// DryRun is what a trigger would do, counted without sending.
type DryRun struct {
	// Matched counts recipients resolved.
	Matched int64 `json:"matched"`
	// Channels counts, per channel id, the recipients an action reaches
	// there (at an identity, a to: or the channel type's default).
	Channels map[string]int64 `json:"channels"`
	// Skipped counts, per reason, the deliveries that would be skipped or
	// fail.
	Skipped map[string]int64 `json:"skipped"`
	// Missing counts unknown recipients ignored as asked.
	Missing int64 `json:"missing"`
	// Errors are the first error lines; ErrorCount counts them all.
	Errors     []string `json:"errors"`
	ErrorCount int64    `json:"error_count"`
}

const dryRunErrorLines = 100

// DryRun resolves and renders the whole audience of a trigger of b,
// batch by batch like a real fan-out, and counts.
func (e *Engine) DryRun(ctx context.Context, b store.Broadcast, req *TriggerRequest) (*DryRun, error) {
	pl, err := e.planFor(ctx, b)
	if err != nil {
		return nil, err
	}
	src, err := e.source(ctx, b.WorkspaceID, req, pl, "", e.opts.Now())
	if err != nil {
		return nil, err
	}
	defer src.close()
	dr := &DryRun{Channels: map[string]int64{}, Skipped: map[string]int64{}, Errors: []string{}}
	for {
		bt, err := src.next(ctx)
		if err != nil {
			return nil, err
		}
		out := pl.render(ctx, e.opts.Templates, req, bt.items)
		dr.Matched += int64(len(bt.items))
		dr.Missing += int64(bt.missing)
		for i, ch := range pl.channels {
			if n := out.addressed[i]; n > 0 {
				dr.Channels[ch] += n
			}
		}
		for _, d := range out.deliveries {
			if d.Status != store.DeliveryQueued {
				dr.Skipped[d.Reason]++
			}
		}
		for _, line := range append(bt.errs, out.errs...) {
			dr.ErrorCount++
			if len(dr.Errors) < dryRunErrorLines {
				dr.Errors = append(dr.Errors, line)
			}
		}
		if bt.done {
			return dr, nil
		}
	}
}

// sourceID is a trigger's deliveries' source id.
func sourceID(id int64) string { return strconv.FormatInt(id, 10) }
