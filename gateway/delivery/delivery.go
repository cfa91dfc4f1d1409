// Package delivery sends the outbox: it claims pending deliveries from the
// store in batches, paces them under the limits each channel's plugin
// declares, calls the plugin's Send, and records every outcome.
//
// The rules it keeps:
//   - a delivery is durable before any send and keeps its idempotency key on
//     every attempt, across restarts;
//   - messages to one recipient go out in order (the store claims only the
//     oldest pending delivery per recipient);
//   - no request reaches a platform before a retry-after it gave has passed:
//     a rate-limited answer pauses the whole channel until then, batches
//     already scheduled included;
//   - a recipient's spacing counts from when its last send returned, not
//     from the slot it was scheduled in;
//   - transient failures retry with capped exponential backoff up to
//     Options.MaxAttempts; permanent ones fail at once with their reason;
//   - rate-limit waits never use up attempts.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/queue"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Reason codes recorded on deliveries that did not go out (yet).
const (
	ReasonRateLimited      = "rate_limited"
	ReasonThrottled        = "throttled" // paced by the channel's declared limits
	ReasonPluginDown       = "plugin_down"
	ReasonChannelRejected  = "channel_rejected"
	ReasonAuth             = "auth_error"
	ReasonTransient        = "transient_error"
	ReasonRetriesExhausted = "retries_exhausted"
	ReasonChannelMissing   = "channel_not_found"
)

// passThroughReasons are permanent error codes from plugins that already
// name the reason in the gateway's vocabulary.
var passThroughReasons = map[string]bool{
	"unknown_user": true, "not_connected": true, "bot_blocked": true,
}

// Store is what the pipeline needs from the store.
type Store interface {
	ClaimDeliveries(ctx context.Context, o store.ClaimOptions) ([]store.Delivery, error)
	CompleteDeliveries(ctx context.Context, node string, rs []store.DeliveryResult) error
	GetChannel(ctx context.Context, id string) (store.Channel, error)
	ReleaseOrphans(ctx context.Context, node string, before time.Time, jobs, deliveries bool) (store.Released, error)
}

// Lease is the node lease claims are held under (a *cluster.Node; the
// queue's Lease is the same interface).
type Lease = queue.Lease

// Plugins gives access to running channel plugins by type name.
type Plugins interface {
	// Channel returns the plugin serving a channel type, or an error when
	// it is not running.
	Channel(name string) (sdk.Channel, error)
	Describe(name string) (sdk.Description, bool)
}

// Options tune a Pipeline. Zero values take the defaults.
type Options struct {
	// Workers is how many Send batches may be in flight. Defaults to 8.
	Workers int
	// ClaimSize caps one claim. Defaults to 1000.
	ClaimSize int
	// BatchSize caps one Send call. Defaults to 100.
	BatchSize int
	// MaxAttempts before a transient failure is final. Defaults to 10.
	MaxAttempts int
	// Lease holds the claims (nil: a lease never lost, node "local").
	Lease Lease
	// StatementTimeout bounds each claim and outcome statement. Defaults
	// to 2s; keep it shorter than the node lease.
	StatementTimeout time.Duration
	// PollInterval bounds how long a due retry waits. Defaults to 250ms.
	PollInterval time.Duration
	// Horizon is the longest a claimed delivery is held in memory waiting
	// for its turn under a rate limit; later ones go back to the store.
	// Defaults to 1s.
	Horizon time.Duration
	// RetryBase and RetryMax shape the backoff of transient failures.
	// Default to 1s and 5m.
	RetryBase, RetryMax time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&o.Workers, 8)
	setInt(&o.ClaimSize, 1000)
	setInt(&o.BatchSize, 100)
	setInt(&o.MaxAttempts, 10)
	setDur(&o.StatementTimeout, 2*time.Second)
	setDur(&o.PollInterval, 250*time.Millisecond)
	setDur(&o.Horizon, time.Second)
	setDur(&o.RetryBase, time.Second)
	setDur(&o.RetryMax, 5*time.Minute)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lease == nil {
		o.Lease = queue.Local
	}
}

// Pipeline is the outbox sender.
type Pipeline struct {
	store   Store
	plugins Plugins
	opts    Options
	log     *slog.Logger
	wake    chan struct{}
	// space is signalled when in-flight deliveries finish, for Submit.
	space chan struct{}
	sem   chan struct{} // Send workers
	wg    sync.WaitGroup

	mu         sync.Mutex
	inflight   int
	submitting int       // Submit calls under way
	audited    time.Time // last look for orphaned claims
	channels   map[string]*channelState
}

// New returns a Pipeline; call Run to start it.
func New(st Store, plugins Plugins, opts Options) *Pipeline {
	opts.defaults()
	return &Pipeline{
		store:    st,
		plugins:  plugins,
		opts:     opts,
		log:      opts.Logger.With("component", "delivery"),
		wake:     make(chan struct{}, 1),
		space:    make(chan struct{}, 1),
		sem:      make(chan struct{}, opts.Workers),
		channels: map[string]*channelState{},
	}
}

// Notify wakes the pipeline: deliveries were enqueued.
func (p *Pipeline) Notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// maxInflight is how many claimed deliveries the pipeline holds at once:
// enough to keep every worker busy with a full batch and the next one.
func (p *Pipeline) maxInflight() int { return p.opts.Workers * p.opts.BatchSize * 2 }

// Node is the node id deliveries handed to Submit must be claimed for.
func (p *Pipeline) Node() string { return p.opts.Lease.ID() }

// Submit sends deliveries that were claimed for this node as they were
// stored (store.EnqueueClaimedDeliveries), without a claim scan. It waits
// while the pipeline holds as many deliveries as it can send, so a
// producer (a fan-out) runs no further ahead of the platform than that.
// When ctx ends first they are taken all the same (they are this node's
// to send, and nothing else would send them before this node's claims
// are released) and ctx's error is returned; once the lease they were
// claimed under is lost they are another node's, and are dropped.
func (p *Pipeline) Submit(ctx context.Context, ds []store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	p.mu.Lock()
	p.submitting++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.submitting--
		p.mu.Unlock()
	}()
	held := p.opts.Lease.Held()
	for {
		if held.Err() != nil {
			return fmt.Errorf("hand deliveries over: %w", store.ErrClaimLost)
		}
		p.mu.Lock()
		if p.inflight < p.maxInflight() || ctx.Err() != nil {
			p.inflight += len(ds)
			p.mu.Unlock()
			p.dispatch(context.WithoutCancel(ctx), held, ds)
			return ctx.Err()
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-held.Done():
		case <-p.space:
		}
	}
}

// Run sends until ctx is done, then waits for in-flight batches.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-timer.C:
		}
		failed := false
		for ctx.Err() == nil {
			p.mu.Lock()
			free := min(p.opts.ClaimSize, p.maxInflight()-p.inflight)
			p.mu.Unlock()
			held := p.opts.Lease.Held()
			if free <= 0 || held.Err() != nil {
				break
			}
			ds, err := p.claim(ctx, free)
			if err != nil {
				if ctx.Err() == nil {
					p.log.Error("claim deliveries", "err", err)
				}
				failed = true
				break
			}
			if len(ds) == 0 {
				break
			}
			p.mu.Lock()
			p.inflight += len(ds)
			p.mu.Unlock()
			p.dispatch(context.WithoutCancel(ctx), held, ds)
		}
		p.releaseOrphans(ctx)
		// While the store fails (a database restart), poll at most once
		// a second rather than log an error every poll interval.
		if failed {
			timer.Reset(max(p.opts.PollInterval, time.Second))
		} else {
			timer.Reset(p.opts.PollInterval)
		}
	}
}

// orphanAge is how old a claim must be before an idle pipeline takes it
// for an orphan: far longer than the gap between a fan-out storing its
// claimed deliveries and handing them over.
const orphanAge = time.Minute

// releaseOrphans runs when nothing is in flight, at most every half
// minute: whatever the store says this node holds from before orphanAge
// can only be the result of a claim whose answer was lost (the database
// committed it, the connection died first), and would otherwise stay held
// until this node restarts.
func (p *Pipeline) releaseOrphans(ctx context.Context) {
	now := p.opts.Now()
	p.mu.Lock()
	idle := p.inflight == 0 && p.submitting == 0 && now.Sub(p.audited) >= orphanAge/2
	if idle {
		p.audited = now
	}
	p.mu.Unlock()
	if !idle {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, p.opts.StatementTimeout)
	defer cancel()
	rel, err := p.store.ReleaseOrphans(sctx, p.opts.Lease.ID(), now.Add(-orphanAge), false, true)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("release orphaned delivery claims", "err", err)
		}
		return
	}
	if rel.Deliveries > 0 {
		p.log.Warn("released delivery claims whose answer was lost", "count", rel.Deliveries)
		p.Notify()
	}
}

func (p *Pipeline) claim(ctx context.Context, n int) ([]store.Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.StatementTimeout)
	defer cancel()
	start := time.Now()
	ds, err := p.store.ClaimDeliveries(ctx, store.ClaimOptions{Node: p.opts.Lease.ID(), Limit: n, Now: p.opts.Now()})
	took := time.Since(start)
	claimSeconds.Observe(took.Seconds())
	if took > p.opts.StatementTimeout/2 {
		p.log.Warn("slow delivery claim", "took", took, "claimed", len(ds))
	}
	return ds, err
}

// batch is a group of deliveries of one channel sent in one Send call, not
// before start.
type batch struct {
	channel store.Channel
	plugin  sdk.Channel
	state   *channelState
	items   []store.Delivery
	start   time.Time
}

// dispatch groups claimed deliveries into Send batches and starts them.
// held is the lease they were claimed under.
func (p *Pipeline) dispatch(ctx, held context.Context, ds []store.Delivery) {
	now := p.opts.Now()
	byChannel := map[string][]store.Delivery{}
	var order []string
	for _, d := range ds {
		if _, ok := byChannel[d.ChannelID]; !ok {
			order = append(order, d.ChannelID)
		}
		byChannel[d.ChannelID] = append(byChannel[d.ChannelID], d)
	}
	early := map[string][]store.DeliveryResult{} // outcomes decided without a send, by channel
	var batches []batch
	for _, chID := range order {
		group := byChannel[chID]
		ch, err := p.store.GetChannel(ctx, chID)
		if err != nil {
			for _, d := range group {
				if errors.Is(err, store.ErrNotFound) {
					early[chID] = append(early[chID], p.failed(d, ReasonChannelMissing, "channel was deleted", now))
				} else {
					early[chID] = append(early[chID], p.retry(d, ReasonTransient, err.Error(), now))
				}
			}
			continue
		}
		plug, err := p.plugins.Channel(ch.Type)
		if err != nil {
			for _, d := range group {
				early[chID] = append(early[chID], p.retry(d, ReasonPluginDown, err.Error(), now))
			}
			continue
		}
		desc, _ := p.plugins.Describe(ch.Type)
		st := p.channelState(chID, desc.RateLimits)
		size := p.opts.BatchSize
		if desc.MaxBatch > 0 && desc.MaxBatch < size {
			size = desc.MaxBatch
		}
		ready, snoozed := st.schedule(group, now, p.opts.Horizon)
		for _, s := range snoozed {
			early[chID] = append(early[chID], throttled(s.d, s.at, now))
		}
		for len(ready) > 0 {
			// A batch goes out when its last delivery may, so it takes
			// only those due within a poll interval of its first: a
			// delivery due now must not wait for another recipient's
			// turn a second later.
			n := 1
			for n < min(size, len(ready)) && !ready[n].at.After(ready[0].at.Add(p.opts.PollInterval)) {
				n++
			}
			b := batch{channel: ch, plugin: plug, state: st, start: ready[n-1].at}
			for _, s := range ready[:n] {
				b.items = append(b.items, s.d)
			}
			batches = append(batches, b)
			ready = ready[n:]
		}
	}
	for _, chID := range order {
		if rs := early[chID]; len(rs) > 0 {
			p.complete(ctx, held, chID, rs)
		}
	}
	for _, b := range batches {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if wait := b.start.Sub(p.opts.Now()); wait > 0 {
				time.Sleep(wait)
			}
			// A rate-limited answer may have paused the channel since the
			// batch was scheduled: hand it back until the pause ends
			// rather than send before the platform's retry-after.
			if now, end := p.opts.Now(), b.state.pauseEnd(); end.After(now) {
				rs := make([]store.DeliveryResult, len(b.items))
				for i, d := range b.items {
					rs[i] = throttled(d, end, now)
				}
				p.complete(ctx, held, b.channel.ID, rs)
				return
			}
			// Take a worker only once it is the batch's turn, so batches
			// waiting for theirs do not hold back those that are due,
			// and only for the Send: recording its outcome waits for the
			// store's writer, which must not keep the next batch from
			// going out.
			p.sem <- struct{}{}
			rs := p.send(ctx, b)
			<-p.sem
			p.complete(ctx, held, b.channel.ID, rs)
		}()
	}
}

// throttled puts d back in the store until at, without using an attempt:
// the channel's limits (or the platform's retry-after) hold it back.
func throttled(d store.Delivery, at, now time.Time) store.DeliveryResult {
	return store.DeliveryResult{ID: d.ID, Status: store.DeliveryRetrying, Reason: ReasonThrottled, NextAttemptAt: at, At: now}
}

// send sends one batch and returns its outcomes.
func (p *Pipeline) send(ctx context.Context, b batch) []store.DeliveryResult {
	out := make([]sdk.Outbound, len(b.items))
	for i, d := range b.items {
		out[i] = sdk.Outbound{
			ChannelID:      d.ChannelID,
			IdempotencyKey: d.IdempotencyKey,
			Recipient:      d.Recipient,
			ReplyTo:        d.ReplyTo,
			Content:        d.Content,
			Attempt:        d.Attempts + 1,
		}
	}
	results, err := b.plugin.Send(ctx, out)
	if err == nil && len(results) != len(out) {
		err = fmt.Errorf("plugin %s returned %d results for %d messages", b.channel.Type, len(results), len(out))
	}
	now := p.opts.Now()
	b.state.sent(b.items, now)
	rs := make([]store.DeliveryResult, len(b.items))
	latency := sendLatency.WithLabelValues(b.channel.ID)
	logged := false // one line per batch, not per delivery
	for i, d := range b.items {
		sendErr := err
		if err == nil {
			sendErr = results[i].Err
		}
		if sendErr == nil {
			rs[i] = store.DeliveryResult{ID: d.ID, Status: store.DeliverySent, ProviderID: results[i].ProviderID,
				CountAttempt: true, At: now}
			latency.Observe(now.Sub(d.CreatedAt).Seconds())
			continue
		}
		rs[i] = p.classify(b.channel.ID, d, sendErr, now)
		if rs[i].Status == store.DeliveryRetrying {
			if !logged {
				p.log.Info("deliveries will be retried", "channel", b.channel.ID, "reason", rs[i].Reason,
					"next_attempt_at", rs[i].NextAttemptAt, "err", rs[i].LastError)
				logged = true
			}
		}
	}
	return rs
}

func (p *Pipeline) classify(channelID string, d store.Delivery, err error, now time.Time) store.DeliveryResult {
	var se *sdk.SendError
	if !errors.As(err, &se) {
		se = sdk.Transient("", err.Error())
	}
	switch se.Kind {
	case sdk.KindRateLimited:
		wait := max(se.RetryAfter, time.Second)
		p.channelState(channelID, sdk.RateLimits{}).pause(now.Add(wait))
		return store.DeliveryResult{ID: d.ID, Status: store.DeliveryRetrying, Reason: ReasonRateLimited,
			LastError: se.Error(), NextAttemptAt: now.Add(wait), At: now}
	case sdk.KindPermanent:
		reason := ReasonChannelRejected
		if passThroughReasons[se.Code] {
			reason = se.Code
		}
		return p.failed(d, reason, se.Error(), now)
	case sdk.KindAuth:
		return p.retry(d, ReasonAuth, se.Error(), now)
	default:
		return p.retry(d, ReasonTransient, se.Error(), now)
	}
}

func (p *Pipeline) retry(d store.Delivery, reason, msg string, now time.Time) store.DeliveryResult {
	attempt := d.Attempts + 1
	if attempt >= p.opts.MaxAttempts {
		return p.failed(d, ReasonRetriesExhausted, reason+": "+msg, now)
	}
	return store.DeliveryResult{ID: d.ID, Status: store.DeliveryRetrying, Reason: reason, LastError: msg,
		NextAttemptAt: now.Add(queue.Backoff(attempt, p.opts.RetryBase, p.opts.RetryMax)), CountAttempt: true, At: now}
}

func (p *Pipeline) failed(d store.Delivery, reason, msg string, now time.Time) store.DeliveryResult {
	return store.DeliveryResult{ID: d.ID, Status: store.DeliveryFailed, Reason: reason, LastError: msg,
		CountAttempt: true, At: now}
}

// complete records outcomes and frees their places in flight. While the store cannot take them (a database
// restart) it retries for as long as this node holds the deliveries: an
// outcome that is dropped makes its delivery go out again. Once the lease
// under which they were claimed is lost, another node owns them and the
// store would refuse the results anyway.
func (p *Pipeline) complete(ctx, held context.Context, channelID string, rs []store.DeliveryResult) {
	p.record(ctx, held, rs)
	for _, r := range rs {
		deliveriesTotal.WithLabelValues(channelID, string(r.Status), r.Reason).Inc()
	}
	p.mu.Lock()
	p.inflight -= len(rs)
	p.mu.Unlock()
	select {
	case p.space <- struct{}{}:
	default:
	}
	p.Notify()
}

func (p *Pipeline) record(ctx, held context.Context, rs []store.DeliveryResult) {
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, p.opts.StatementTimeout)
		err := p.store.CompleteDeliveries(sctx, p.opts.Lease.ID(), rs)
		cancel()
		if err == nil {
			return
		}
		p.log.Warn("record delivery results; retrying", "err", err, "count", len(rs))
		select {
		case <-held.Done():
			p.log.Warn("delivery results dropped: this node lost its lease; another node sends them again",
				"count", len(rs))
			return
		case <-time.After(queue.Backoff(attempt, 100*time.Millisecond, 2*time.Second)):
		}
	}
}

func (p *Pipeline) channelState(channelID string, limits sdk.RateLimits) *channelState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.channels[channelID]
	if !ok {
		st = newChannelState(limits)
		p.channels[channelID] = st
	}
	return st
}

// scheduled is a delivery with the time it may be sent.
type scheduled struct {
	d  store.Delivery
	at time.Time
}

// sortByTime orders deliveries by send time, keeping claim order for ties.
func sortByTime(s []scheduled) {
	sort.SliceStable(s, func(i, j int) bool { return s[i].at.Before(s[j].at) })
}
