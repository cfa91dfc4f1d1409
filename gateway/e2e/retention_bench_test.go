package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/retention"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// The steady load of BenchmarkRetentionSteadyLoad, issue 20's soak.
const (
	steadyTriggersPerSec = 100
	steadyInboundPerSec  = 20
	steadyUsers          = 200 // users cycle, so people do not grow
	steadyHorizon        = 10 * time.Second
	steadyWithout        = 30 * time.Second // phase 1: nothing is deleted
	steadyWith           = 45 * time.Second // phase 2: the cleaner runs
	steadyWarmUp         = 5 * time.Second  // before phase 1, not measured
)

// BenchmarkRetentionSteadyLoad runs 100 flow_triggers/s and 20 inbound
// messages/s against one SQLite gateway through the webhook plugin: first
// with nothing deleted, then with a cleaner keeping every kind for 10 s
// (a run every second, the first catching up on phase 1). It prints the
// database size (file + WAL, and the pages in use) every 5 s, and the
// p50/p99 of the API requests of each phase: what the cleaner costs the
// single writer.
func BenchmarkRetentionSteadyLoad(b *testing.B) {
	for range b.N {
		steadyLoad(b)
	}
}

func steadyLoad(b *testing.B) {
	sink := gatewaytest.NewSink(b, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(b, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: func(cfg *config.Config) {
		quiet(cfg)
		// The app's own cleaner keeps everything; the benchmark runs one.
		r := &cfg.Retention
		for _, d := range []*time.Duration{&r.FailedJobs, &r.SeenEvents, &r.SentDeliveries, &r.FailedDeliveries,
			&r.Messages, &r.ClosedConversations, &r.Triggers, &r.FlowTriggers} {
			*d = -1
		}
	}})
	g.Apply(b, latencyWorkspace(sink.URL))
	key := gatewaytest.NewKey(b, g.Store, "bench", store.ScopeChannel, "bench-hook")
	path := strings.TrimPrefix(g.Config.Database, "sqlite://")

	load := &steadyLoadGen{url: g.URL, key: key, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go load.run(ctx)

	// One line of samples per phase: benchmark logs are cut at 10 lines.
	watch := func(phase string, d time.Duration) (first, last int64) {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		end := time.After(d)
		var line strings.Builder
		defer func() { fmt.Printf("    %-17s MB on disk / in use, every 5 s: %s\n", phase, line.String()) }()
		for {
			select {
			case <-t.C:
				size, used := dbSize(b, g, path)
				fmt.Fprintf(&line, " %.1f/%.1f", mb(size), mb(used))
				if first == 0 {
					first = size
				} else {
					last = size
				}
			case <-end:
				return first, last
			}
		}
	}

	time.Sleep(steadyWarmUp)
	_ = load.take()
	w1, w1end := watch("no cleaner", steadyWithout)
	without := load.take()

	policy := retention.Policy{}
	for _, k := range store.RetentionKinds {
		policy[k] = steadyHorizon
	}
	timed := &timedPrunes{Store: g.Store}
	c := retention.New(retention.Options{Store: timed, Policy: policy, Holder: g.App.Node.ID(), Interval: time.Second})
	var deleted atomic.Int64
	var slowest atomic.Int64
	cleanerDone := make(chan struct{})
	go func() {
		defer close(cleanerDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			rep, err := c.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				b.Errorf("cleaner run: %v", err)
				return
			}
			for _, n := range rep.Deleted {
				deleted.Add(int64(n))
			}
			if d := int64(time.Since(start)); d > slowest.Load() {
				slowest.Store(d)
			}
		}
	}()
	// The first horizon of phase 2 catches up; its samples are the
	// plateau's start.
	_, _ = watch("cleaner catch-up", steadyHorizon+5*time.Second)
	catchUp := load.take()
	w2, w2end := watch("cleaner steady", steadyWith-steadyHorizon-5*time.Second)
	with := load.take()
	stop()
	<-cleanerDone

	if load.failed.Load() > 0 {
		b.Fatalf("%d requests failed: %v", load.failed.Load(), load.firstErr.Load())
	}
	growth := func(first, last int64, d time.Duration) float64 { return mb(last-first) / d.Minutes() }
	// Printed, not logged: benchmark logs are cut at 10 lines, and the
	// gateway's own count.
	fmt.Printf("    %d flow_triggers/s + %d inbound/s; the cleaner keeps every kind %s and runs every second\n",
		steadyTriggersPerSec, steadyInboundPerSec, steadyHorizon)
	fmt.Printf("    database growth: %.2f MB/min without the cleaner, %.2f MB/min with it after the horizon\n",
		growth(w1, w1end, steadyWithout-5*time.Second), growth(w2, w2end, steadyWith-steadyHorizon-15*time.Second))
	fmt.Printf("    cleaner: %d records deleted in %d batches, longest batch %s, longest run %s\n", deleted.Load(),
		timed.batches.Load(), time.Duration(timed.longest.Load()).Round(100*time.Microsecond), time.Duration(slowest.Load()).Round(time.Millisecond))
	for _, p := range []struct {
		name string
		ds   []time.Duration
	}{{"without cleaner", without}, {"cleaner catch-up", catchUp}, {"cleaner steady", with}} {
		fmt.Printf("    API requests %-16s %6d, p50 %s, p99 %s\n", p.name, len(p.ds), percentile(p.ds, 0.5), percentile(p.ds, 0.99))
	}
	b.ReportMetric(float64(percentile(without, 0.99).Microseconds())/1000, "p99_no_cleaner_ms")
	b.ReportMetric(float64(percentile(with, 0.99).Microseconds())/1000, "p99_cleaner_ms")
	b.ReportMetric(float64(percentile(catchUp, 0.99).Microseconds())/1000, "p99_catchup_ms")
	b.ReportMetric(growth(w2, w2end, steadyWith-steadyHorizon-15*time.Second), "MB/min_cleaner")
}

// timedPrunes records how long the cleaner's batches hold the writer.
type timedPrunes struct {
	retention.Store
	batches, longest atomic.Int64
}

func (p *timedPrunes) Prune(ctx context.Context, kind store.RetentionKind, before time.Time, limit int) (int, error) {
	start := time.Now()
	n, err := p.Store.Prune(ctx, kind, before, limit)
	p.batches.Add(1)
	if d := int64(time.Since(start)); d > p.longest.Load() {
		p.longest.Store(d)
	}
	return n, err
}

// steadyLoadGen sends flow_triggers and signed inbound messages at fixed
// rates (open loop: a slow answer does not slow the load) and records each
// request's latency.
type steadyLoadGen struct {
	url, key string
	client   *http.Client
	seq      atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Value
	mu       sync.Mutex
	lat      []time.Duration
}

func (l *steadyLoadGen) run(ctx context.Context) {
	tick := time.NewTicker(time.Second / steadyTriggersPerSec)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wg.Go(func() { l.send(l.trigger) })
		if i%(steadyTriggersPerSec/steadyInboundPerSec) == 0 {
			wg.Go(func() { l.send(l.inbound) })
		}
	}
}

func (l *steadyLoadGen) trigger(n int64) (*http.Request, error) {
	body := fmt.Sprintf(`{"payload":{"content_type":"flow_trigger","content":{"flow_id":"pong"}},"client":{"user_id":"u%d"},"metadata":{"n":%d}}`,
		n%steadyUsers, n)
	req, err := http.NewRequest(http.MethodPost, l.url+"/v1/api/broadcasts", strings.NewReader(body))
	if err == nil {
		req.Header.Set("x-api-key", l.key)
	}
	return req, err
}

func (l *steadyLoadGen) inbound(n int64) (*http.Request, error) {
	return gatewaytest.SignedWebhook(l.url+"/channels/bench-hook/webhook", gatewaytest.InboundSecret, fmt.Sprintf("m%d", n),
		map[string]string{"user_id": fmt.Sprintf("in%d", n%steadyUsers), "text": "ping"})
}

func (l *steadyLoadGen) send(mk func(int64) (*http.Request, error)) {
	req, err := mk(l.seq.Add(1))
	start := time.Now()
	var resp *http.Response
	if err == nil {
		resp, err = l.client.Do(req)
	}
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			err = fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
		}
	}
	if err != nil {
		l.failed.Add(1)
		l.firstErr.CompareAndSwap(nil, err.Error())
		return
	}
	d := time.Since(start)
	l.mu.Lock()
	l.lat = append(l.lat, d)
	l.mu.Unlock()
}

// take returns the latencies recorded since the last take.
func (l *steadyLoadGen) take() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lat
	l.lat = nil
	return out
}

// dbSize is the database's bytes on disk (file and WAL) and in use (pages
// not on the free list).
func dbSize(b *testing.B, g *gatewaytest.Gateway, path string) (onDisk, used int64) {
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			onDisk += fi.Size()
		}
	}
	var pages, free, size int64
	db := g.Store.WriteDB()
	for q, dst := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRow(q).Scan(dst); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	return onDisk, (pages - free) * size
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
