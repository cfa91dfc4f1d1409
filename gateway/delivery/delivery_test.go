package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/delivery"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// fakeChannel records sends and answers with scripted errors.
type fakeChannel struct {
	mu    sync.Mutex
	sent  []sdk.Outbound
	calls []time.Time
	// script returns the error for the n-th send (0-based) of a message
	// text; nil means success.
	script   func(text string, n int) error
	counts   map[string]int
	limits   sdk.RateLimits
	maxBatch int
}

func (f *fakeChannel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "fake", RateLimits: f.limits, MaxBatch: f.maxBatch}, nil
}
func (f *fakeChannel) Configure(context.Context, sdk.InstanceConfig) error { return nil }
func (f *fakeChannel) HandleHTTP(context.Context, *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	return nil, errors.New("not used")
}
func (f *fakeChannel) Send(_ context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[string]int{}
	}
	res := make([]sdk.SendResult, len(batch))
	for i, o := range batch {
		f.calls = append(f.calls, time.Now())
		n := f.counts[o.Content.Text]
		f.counts[o.Content.Text]++
		res[i].IdempotencyKey = o.IdempotencyKey
		if f.script != nil {
			if err := f.script(o.Content.Text, n); err != nil {
				res[i].Err = err
				continue
			}
		}
		f.sent = append(f.sent, o)
		res[i].ProviderID = fmt.Sprintf("p-%s", o.IdempotencyKey)
	}
	return res, nil
}

type fakePlugins struct {
	ch   *fakeChannel
	down bool
}

func (p *fakePlugins) Channel(string) (sdk.Channel, error) {
	if p.down {
		return nil, errors.New("plugin fake is restarting")
	}
	return p.ch, nil
}
func (p *fakePlugins) Describe(string) (sdk.Description, bool) {
	d, _ := p.ch.Describe(context.Background())
	return d, true
}

type env struct {
	st      *sqlstore.Store
	channel string
}

func newEnv(t *testing.T) env {
	t.Helper()
	st := sqlstore.OpenTest(t)
	ctx := context.Background()
	if err := st.UpsertWorkspace(ctx, store.Workspace{ID: "ws", Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	b := store.Bot{WorkspaceID: "ws", Name: "bot", Definition: []byte(`{}`)}
	if err := st.UpsertBot(ctx, &b); err != nil {
		t.Fatal(err)
	}
	ch := store.Channel{WorkspaceID: "ws", BotID: b.ID, Name: "fake", Type: "fake", Config: []byte(`{}`), Enabled: true}
	if err := st.UpsertChannel(ctx, &ch); err != nil {
		t.Fatal(err)
	}
	return env{st: st, channel: ch.ID}
}

func (e env) enqueue(t *testing.T, recipient string, texts ...string) {
	t.Helper()
	var ds []store.Delivery
	for _, tx := range texts {
		ds = append(ds, store.Delivery{WorkspaceID: "ws", ChannelID: e.channel, Recipient: recipient,
			Content: message.Text(tx), IdempotencyKey: recipient + "/" + tx, Status: store.DeliveryQueued,
			SourceKind: "test", SourceID: "t"})
	}
	if _, err := e.st.EnqueueDeliveries(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
}

// run starts a pipeline and stops it when the test ends.
func run(t *testing.T, e env, plugins delivery.Plugins, opts delivery.Options) *delivery.Pipeline {
	t.Helper()
	opts.PollInterval = 20 * time.Millisecond
	p := delivery.New(e.st, plugins, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// waitFinal waits until the delivery with that key is final and returns it.
func waitFinal(t *testing.T, e env, key string, timeout time.Duration) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ds, err := e.st.ListDeliveriesBySource(context.Background(), "test", "t")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.IdempotencyKey == key {
				switch d.Status {
				case store.DeliverySent, store.DeliveryFailed, store.DeliveryDelivered, store.DeliverySkipped:
					return d
				}
				if time.Now().After(deadline) {
					t.Fatalf("delivery %s still %s (%s: %s) after %s", key, d.Status, d.Reason, d.LastError, timeout)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPipelineSendsInOrderPerRecipient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fc := &fakeChannel{}
	e.enqueue(t, "alice", "a1", "a2", "a3")
	e.enqueue(t, "bob", "b1", "b2")
	p := run(t, e, &fakePlugins{ch: fc}, delivery.Options{})
	p.Notify()
	for _, k := range []string{"alice/a3", "bob/b2"} {
		if d := waitFinal(t, e, k, 10*time.Second); d.Status != store.DeliverySent || d.ProviderID != "p-"+k {
			t.Fatalf("%s: %+v", k, d)
		}
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var alice []string
	for _, o := range fc.sent {
		if o.Recipient == "alice" {
			alice = append(alice, o.Content.Text)
		}
		if o.Attempt != 1 {
			t.Errorf("%s sent as attempt %d, want 1", o.IdempotencyKey, o.Attempt)
		}
	}
	if fmt.Sprint(alice) != "[a1 a2 a3]" {
		t.Fatalf("alice got %v, want in order", alice)
	}
}

func TestPipelineClassifiesFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fc := &fakeChannel{script: func(text string, n int) error {
		switch text {
		case "blocked":
			return sdk.Permanent("bot_blocked", "bot was blocked by the user")
		case "rejected":
			return sdk.Permanent("invalid_blocks", "bad blocks")
		case "flaky":
			if n < 2 {
				return sdk.Transient("503", "service unavailable")
			}
		case "down":
			return errors.New("connection refused")
		}
		return nil
	}}
	e.enqueue(t, "u1", "blocked")
	e.enqueue(t, "u2", "rejected")
	e.enqueue(t, "u3", "flaky")
	e.enqueue(t, "u4", "down")
	run(t, e, &fakePlugins{ch: fc}, delivery.Options{RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, MaxAttempts: 3}).Notify()

	cases := []struct {
		key      string
		status   store.DeliveryStatus
		reason   string
		attempts int
	}{
		{"u1/blocked", store.DeliveryFailed, "bot_blocked", 1},
		{"u2/rejected", store.DeliveryFailed, delivery.ReasonChannelRejected, 1},
		{"u3/flaky", store.DeliverySent, "", 3},
		{"u4/down", store.DeliveryFailed, delivery.ReasonRetriesExhausted, 3},
	}
	for _, c := range cases {
		d := waitFinal(t, e, c.key, 10*time.Second)
		if d.Status != c.status || d.Reason != c.reason || d.Attempts != c.attempts {
			t.Errorf("%s = %s/%q after %d attempts (%s), want %s/%q after %d", c.key, d.Status, d.Reason, d.Attempts, d.LastError, c.status, c.reason, c.attempts)
		}
	}
}

func TestPipelineHonoursRetryAfterAcrossTheChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var limitedAt time.Time
	fc := &fakeChannel{}
	fc.script = func(text string, n int) error {
		if text == "first" && n == 0 {
			limitedAt = time.Now()
			return sdk.RateLimited(1500*time.Millisecond, "ratelimited", "slow down")
		}
		return nil
	}
	e.enqueue(t, "u1", "first")
	p := run(t, e, &fakePlugins{ch: fc}, delivery.Options{})
	p.Notify()
	// Wait for the 429, then enqueue to another recipient: the pause is
	// channel-wide, so that one waits too.
	for {
		fc.mu.Lock()
		n := len(fc.calls)
		fc.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.enqueue(t, "u2", "second")
	p.Notify()
	d := waitFinal(t, e, "u1/first", 10*time.Second)
	if d.Status != store.DeliverySent || d.Attempts != 1 {
		t.Fatalf("first = %s after %d counted attempts; a rate-limit wait must not count", d.Status, d.Attempts)
	}
	waitFinal(t, e, "u2/second", 10*time.Second)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for i, at := range fc.calls[1:] {
		if at.Before(limitedAt.Add(1500 * time.Millisecond)) {
			t.Fatalf("call %d went out %s after the 429, before its retry-after of 1.5s", i+1, at.Sub(limitedAt))
		}
	}
}

// A batch scheduled before a 429 arrived, waiting for its turn under the
// channel's pace, must not go out before that 429's retry-after either.
func TestPipelineHoldsScheduledBatchesUntilTheRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var limitedAt time.Time
	fc := &fakeChannel{maxBatch: 1, limits: sdk.RateLimits{Global: sdk.Rate{Count: 2, Per: time.Second}}}
	fc.script = func(text string, n int) error {
		if text == "first" && n == 0 {
			limitedAt = time.Now()
			return sdk.RateLimited(1500*time.Millisecond, "ratelimited", "slow down")
		}
		return nil
	}
	e.enqueue(t, "u1", "first")
	e.enqueue(t, "u2", "second") // scheduled 500ms after the first, in its own batch
	run(t, e, &fakePlugins{ch: fc}, delivery.Options{}).Notify()
	for _, k := range []string{"u1/first", "u2/second"} {
		if d := waitFinal(t, e, k, 10*time.Second); d.Status != store.DeliverySent || d.Attempts != 1 {
			t.Fatalf("%s = %s after %d counted attempts", k, d.Status, d.Attempts)
		}
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for i, at := range fc.calls[1:] {
		if at.Before(limitedAt.Add(1500 * time.Millisecond)) {
			t.Fatalf("call %d went out %s after the 429, before its retry-after of 1.5s", i+1, at.Sub(limitedAt))
		}
	}
}

// Each delivery goes out at its own turn under the channel's pace: one due
// now is not held back for, nor sent together with, one due later.
func TestPipelineSendsEachDeliveryAtItsTurn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fc := &fakeChannel{limits: sdk.RateLimits{Global: sdk.Rate{Count: 10, Per: 3 * time.Second}}}
	e.enqueue(t, "u1", "one")
	e.enqueue(t, "u2", "two")
	e.enqueue(t, "u3", "three")
	run(t, e, &fakePlugins{ch: fc}, delivery.Options{}).Notify()
	for _, k := range []string{"u1/one", "u2/two", "u3/three"} {
		waitFinal(t, e, k, 10*time.Second)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	// 300ms apart; allow half of that for scheduling delays.
	for i := 1; i < len(fc.calls); i++ {
		if gap := fc.calls[i].Sub(fc.calls[i-1]); gap < 150*time.Millisecond {
			t.Fatalf("send %d went out %s after the previous one, under the channel's pace of one per 300ms", i, gap)
		}
	}
}

// A batch waiting for its turn does not take a worker: with one worker, a
// delivery due now goes out before another recipient's that waits for its
// per-recipient spacing.
func TestPipelineWaitingBatchesDoNotHoldWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fc := &fakeChannel{limits: sdk.RateLimits{PerRecipient: sdk.Rate{Count: 1, Per: 800 * time.Millisecond}}}
	e.enqueue(t, "u1", "a1", "a2")
	run(t, e, &fakePlugins{ch: fc}, delivery.Options{Workers: 1}).Notify()
	waitFinal(t, e, "u1/a1", 10*time.Second)
	time.Sleep(100 * time.Millisecond) // a2 is claimed and waits for u1's spacing
	e.enqueue(t, "u2", "b1")
	waitFinal(t, e, "u2/b1", 10*time.Second)
	waitFinal(t, e, "u1/a2", 10*time.Second)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var order []string
	for _, o := range fc.sent {
		order = append(order, o.Content.Text)
	}
	if fmt.Sprint(order) != "[a1 b1 a2]" {
		t.Fatalf("sent %v, want b1 before a2, which waits for its turn", order)
	}
}

func TestPipelineWaitsForADownPlugin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plugins := &fakePlugins{ch: &fakeChannel{}, down: true}
	e.enqueue(t, "u1", "hello")
	run(t, e, plugins, delivery.Options{RetryBase: 10 * time.Millisecond, RetryMax: 10 * time.Millisecond}).Notify()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, err := e.st.ListDeliveriesBySource(context.Background(), "test", "t")
		if err != nil {
			t.Fatal(err)
		}
		if ds[0].Reason == delivery.ReasonPluginDown && ds[0].Status == store.DeliveryRetrying {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery = %s/%s, want retrying/plugin_down", ds[0].Status, ds[0].Reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Deliveries stored claimed for the pipeline's node and handed over with
// Submit are sent without a claim scan, in order per recipient; the ones
// behind them wait for the scan, as any node's would.
func TestPipelineSendsHandedOffDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := &fakeChannel{}
	p := run(t, e, &fakePlugins{ch: ch}, delivery.Options{})
	var ds []store.Delivery
	for _, r := range []string{"ann", "bob", "ann"} {
		ds = append(ds, store.Delivery{WorkspaceID: "ws", ChannelID: e.channel, Recipient: r,
			Content: message.Text(r + fmt.Sprint(len(ds))), IdempotencyKey: fmt.Sprintf("h%d", len(ds)),
			SourceKind: "test", SourceID: "t"})
	}
	claimed, _, err := e.st.EnqueueClaimedDeliveries(context.Background(), p.Node(), ds)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 2 {
		t.Fatalf("claimed %d, want ann's first and bob's", len(claimed))
	}
	if err := p.Submit(context.Background(), claimed); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"h0", "h1", "h2"} {
		if d := waitFinal(t, e, k, 10*time.Second); d.Status != store.DeliverySent {
			t.Fatalf("%s = %s", k, d.Status)
		}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if len(ch.sent) != 3 {
		t.Fatalf("%d sends, want 3 (each once)", len(ch.sent))
	}
	var annOrder []string
	for _, o := range ch.sent {
		if o.Recipient == "ann" {
			annOrder = append(annOrder, o.IdempotencyKey)
		}
	}
	if fmt.Sprint(annOrder) != "[h0 h2]" {
		t.Fatalf("ann's messages went out as %v", annOrder)
	}
}

// A claim whose answer was lost leaves a row held by this node that
// nothing in memory knows about; an idle pipeline releases it once it is
// older than a minute, and sends it.
func TestPipelineReleasesOrphanedClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.enqueue(t, "ann", "lost")
	if got, err := e.st.ClaimDeliveries(context.Background(), store.ClaimOptions{Node: "local", Limit: 10}); err != nil || len(got) != 1 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	ch := &fakeChannel{}
	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	run(t, e, &fakePlugins{ch: ch}, delivery.Options{Now: later})
	if d := waitFinal(t, e, "ann/lost", 10*time.Second); d.Status != store.DeliverySent {
		t.Fatalf("orphan = %s", d.Status)
	}
}

// A hand-over whose producer gives up while the pipeline is full (its job
// timed out) is still sent: the deliveries are this node's, claimed, and
// nothing else would send them before its claims are released.
func TestPipelineSubmitAfterTheProducerGaveUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gate := make(chan struct{})
	ch := &fakeChannel{script: func(text string, _ int) error {
		if text == "first" {
			<-gate
		}
		return nil
	}}
	p := run(t, e, &fakePlugins{ch: ch}, delivery.Options{Workers: 1, BatchSize: 1})
	var ds []store.Delivery
	for i, text := range []string{"first", "second", "late"} {
		ds = append(ds, store.Delivery{WorkspaceID: "ws", ChannelID: e.channel, Recipient: fmt.Sprintf("r%d", i),
			Content: message.Text(text), IdempotencyKey: "ann/" + text, SourceKind: "test", SourceID: "t"})
	}
	claimed, _, err := e.st.EnqueueClaimedDeliveries(context.Background(), p.Node(), ds)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	if err := p.Submit(context.Background(), claimed[:2]); err != nil { // fills the pipeline (2 in flight)
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Submit(ctx, claimed[2:]); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit after the producer gave up = %v, want its context's error", err)
	}
	close(gate)
	if d := waitFinal(t, e, "ann/late", 10*time.Second); d.Status != store.DeliverySent {
		t.Fatalf("late = %s", d.Status)
	}
}
