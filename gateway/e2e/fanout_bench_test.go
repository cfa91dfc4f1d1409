package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

var (
	fanoutRecipients = flag.Int("fanout.recipients", 100_000, "recipients of BenchmarkFanout (1000000 for the target run)")
	fanoutProfile    = flag.String("fanout.cpuprofile", "", "run BenchmarkFanout's gateway in-process and write a CPU profile of the fan-out here")
)

// countingSink is the bench's webhook endpoint: it answers 204 and counts
// distinct recipients (by the index in their id, p0000042) in a bitset, so
// it stays cheap at a million requests. It does not verify signatures: the
// sink's cost is the same for the gateway and for the plain client.
type countingSink struct {
	mu       sync.Mutex
	seen     []uint64
	distinct int
	requests atomic.Int64
	want     int
	last     time.Time
	done     chan struct{}
}

func newCountingSink(n int) *countingSink {
	return &countingSink{seen: make([]uint64, n/64+1), want: n, done: make(chan struct{})}
}

var userMarker = []byte(`"user_id":"p`)

func (s *countingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.requests.Add(1)
	i := bytes.Index(body, userMarker)
	if i < 0 {
		http.Error(w, "no user_id", http.StatusBadRequest)
		return
	}
	digits := body[i+len(userMarker):]
	end := bytes.IndexByte(digits, '"')
	n, err := strconv.Atoi(string(digits[:max(end, 0)]))
	if err != nil || n >= s.want {
		http.Error(w, "bad user_id", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.seen[n/64]&(1<<(n%64)) == 0 {
		s.seen[n/64] |= 1 << (n % 64)
		s.distinct++
		s.last = time.Now()
		if s.distinct == s.want {
			close(s.done)
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// seedBench writes n people with an address on the news channel straight
// into the database, in multi-row statements (the API would be the
// bottleneck of the setup, not of what is measured).
func seedBench(b *testing.B, st *sqlstore.Store, n int) {
	b.Helper()
	ctx := context.Background()
	tx, err := st.WriteDB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	const rows = 500
	now := time.Now().UnixMicro()
	for start := 0; start < n; start += rows {
		cnt := min(rows, n-start)
		var people, ids strings.Builder
		pArgs := make([]any, 0, cnt*6)
		iArgs := make([]any, 0, cnt*4)
		for i := range cnt {
			if i > 0 {
				people.WriteString(", ")
				ids.WriteString(", ")
			}
			people.WriteString("(?, ?, '', ?, ?, ?)")
			ids.WriteString("(?, ?, ?, ?)")
			id := fmt.Sprintf("p%07d", start+i)
			pArgs = append(pArgs, "media", id, `{"first_name":"`+id+`","likes_baseball":true}`, now, now)
			iArgs = append(iArgs, "media-news", id, "media", id)
		}
		if _, err := tx.ExecContext(ctx, numbered(st, "INSERT INTO people (workspace_id, id, email, attributes, created_at, updated_at) VALUES "+people.String()), pArgs...); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, numbered(st, "INSERT INTO identities (channel_id, address, workspace_id, person_id) VALUES "+ids.String()), iArgs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// numbered turns ? placeholders into $1, $2, … on PostgreSQL.
func numbered(st *sqlstore.Store, q string) string {
	if st.Dialect() != "postgres" {
		return q
	}
	var out strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&out, "$%d", n)
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

// plainClient posts n webhook-sized requests to url with a plain net/http
// client at the concurrency the gateway may use, and returns the time.
func plainClient(b *testing.B, url string, n, concurrency int) time.Duration {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				id := fmt.Sprintf("p%07d", i)
				body := `{"channel_id":"media-news","user_id":"` + id + `","idempotency_key":"trigger:1:0:` + id +
					`","attempt":1,"message":{"type":"text","text":"` + id + `: fan-out"},"text":"` + id + `: fan-out"}`
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// procRSS reads a process's current and peak resident set size in MB.
func procRSS(pid int) (cur, peak float64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return cur, peak
}

// procCPU reads a process's CPU time (user + system) so far.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// childOf finds the child process of parent whose command is comm.
func childOf(parent int, comm string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		raw, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		s := string(raw)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < 0 {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 2 || s[open+1:closing] != comm {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == parent {
			pid, _ := strconv.Atoi(strings.Fields(s)[0])
			return pid
		}
	}
	return 0
}

// BenchmarkFanout fans one trigger out to -fanout.recipients people
// (default 100,000) through the real webhook plugin to a local sink, with
// the gateway running as a process on SQLite, and reports the time from the
// trigger call to the last recipient's delivery, deliveries per second, the
// peak RSS of the gateway and of the plugin, and the ratio of the gateway's
// rate to a plain Go HTTP client posting as many requests to the same sink
// in the same run. Run it once:
//
//	go test ./gateway/e2e -run '^$' -bench BenchmarkFanout -benchtime 1x -timeout 30m [-fanout.recipients 1000000]
func BenchmarkFanout(b *testing.B) {
	n := *fanoutRecipients
	for range b.N {
		plainRate, plainTook := plainRate(b, n)
		r := runFanout(b, fanoutRun{n: n, nodes: 1, profile: *fanoutProfile})
		rate := float64(n) / r.took.Seconds()
		b.ReportMetric(r.took.Seconds(), "s_to_last_delivery")
		b.ReportMetric(r.fanout.Seconds(), "s_fan_out")
		b.ReportMetric(rate, "deliveries/s")
		b.ReportMetric(r.peakGW, "gateway_peak_rss_MB")
		b.ReportMetric(r.peakPlugin, "plugin_peak_rss_MB")
		b.ReportMetric(plainRate, "plain_client_req/s")
		b.ReportMetric(rate/plainRate, "ratio_to_plain_client")
		perDelivery := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
		b.ReportMetric(perDelivery(r.cpuGW), "gateway_cpu_us/delivery")
		b.ReportMetric(perDelivery(r.cpuPlugin), "plugin_cpu_us/delivery")
		fmt.Printf("fan-out %d recipients: last delivery after %s (deliveries written after %s), %.0f deliveries/s, "+
			"peak RSS gateway %.0f MB + webhook plugin %.0f MB, CPU per delivery gateway %.0f µs + plugin %.0f µs, "+
			"plain Go client %.0f req/s (%s), ratio %.2f; %d sink requests\n",
			n, r.took.Round(time.Millisecond), r.fanout.Round(time.Millisecond), rate, r.peakGW, r.peakPlugin,
			perDelivery(r.cpuGW), perDelivery(r.cpuPlugin), plainRate, plainTook.Round(time.Millisecond), rate/plainRate, r.requests)
	}
}

// plainRate measures a plain Go client posting n requests to a sink of
// its own, at the concurrency the gateway may use.
func plainRate(b *testing.B, n int) (float64, time.Duration) {
	plain := newCountingSink(n)
	srv := httptest.NewServer(plain)
	defer srv.Close()
	concurrency := 8 * 16 // delivery workers × the webhook plugin's per-batch concurrency
	took := plainClient(b, srv.URL+"/sink", n, concurrency)
	return float64(n) / took.Seconds(), took
}

// fanoutRun is one fan-out of a benchmark.
type fanoutRun struct {
	n int
	// database is a postgres:// URL; "" runs on a fresh SQLite file.
	database string
	// nodes is how many gateway processes share the database.
	nodes int
	// killAt > 0 SIGKILLs the node running the fan-out once that share
	// of the recipients was reached.
	killAt float64
	// profile runs the (single) gateway in-process and writes a CPU
	// profile of the fan-out there.
	profile string
}

type fanoutResult struct {
	took, fanout       time.Duration // trigger → last delivery; trigger → fan-out written
	peakGW, peakPlugin float64       // MB, of the first node and its plugin
	cpuGW, cpuPlugin   time.Duration // CPU time of the first node and its plugin during the run
	requests           int64         // at the sink, re-sends included
	killed             string        // the node killed
	afterKill          time.Duration // kill → last delivery
}

// runFanout seeds r.n people, starts the gateways, triggers one broadcast
// to all of them and waits until every one was reached at the sink.
func runFanout(b *testing.B, r fanoutRun) fanoutResult {
	b.Helper()
	n := r.n
	sink := newCountingSink(n)
	srv := httptest.NewServer(sink)
	defer srv.Close()
	var cfgs []*config.Config
	for i := range r.nodes {
		cfgs = append(cfgs, gatewaytest.Config(b, gatewaytest.Options{Plugins: []string{"webhook"}, Database: r.database,
			Configure: func(cfg *config.Config) {
				cfg.Log.Level = "warn"
				cfg.Cluster.NodeID = fmt.Sprintf("node-%d", i)
				// The production node lease: the harness shortens it for
				// crash tests.
				cfg.Cluster.Lease, cfg.Cluster.Heartbeat = 5*time.Second, time.Second
			}}))
	}
	st := gatewaytest.OpenStore(b, cfgs[0])
	defer st.Close()
	gatewaytest.ApplyTo(b, st, audienceWorkspace(srv.URL+"/sink"))
	seedStart := time.Now()
	seedBench(b, st, n)
	b.Logf("seeded %d people in %s", n, time.Since(seedStart).Round(time.Millisecond))
	appKey := gatewaytest.NewKey(b, st, "media", store.ScopeApp, "")

	var url string
	var gatewayPID int
	var stopProfile func()
	procs := map[string]*gatewaytest.Process{}
	if r.profile != "" {
		g := gatewaytest.StartWith(b, cfgs[0])
		url, gatewayPID = g.URL, os.Getpid()
		stopProfile = startProfile(b, r.profile)
	} else {
		for i, cfg := range cfgs {
			p := gatewaytest.StartProcess(b, cfg)
			procs[cfg.Cluster.NodeID] = p
			if i == 0 {
				url, gatewayPID = p.URL, childOf(os.Getpid(), "switchboard")
			}
		}
	}
	pluginPID := childOf(gatewayPID, "webhook")
	c := &cio{t: b, url: url, app: appKey, wsID: "media"}
	def := newsBroadcast()
	def["actions"] = []any{map[string]any{"type": "message", "channel": "news",
		"message": map[string]any{"type": "text", "text": "{{ customer.first_name }}: {{ trigger.headline }}"}}}
	news := c.broadcast(def)

	var res fanoutResult
	var killedAt time.Time
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for tick := 1; ; tick++ {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
			g, _ := procRSS(gatewayPID)
			p, _ := procRSS(pluginPID)
			res.peakGW, res.peakPlugin = max(res.peakGW, g), max(res.peakPlugin, p)
			sink.mu.Lock()
			reached := sink.distinct
			sink.mu.Unlock()
			if tick%20 == 0 {
				b.Logf("%4.1fs: %d delivered, gateway RSS %.0f MB", float64(tick)/10, reached, g)
			}
			if r.killAt > 0 && res.killed == "" && float64(reached) >= r.killAt*float64(n) {
				if node := fanOutNodeOf(b, st); node != "" {
					procs[node].Kill()
					res.killed, killedAt = node, time.Now()
					b.Logf("killed %s with %d delivered", node, reached)
				}
			}
		}
	}()
	cpuGW0, cpuPlugin0 := procCPU(gatewayPID), procCPU(pluginPID)
	start := time.Now()
	triggerID := c.trigger(news, map[string]any{"data": map[string]any{"headline": "fan-out"}})
	select {
	case <-sink.done:
	case <-time.After(time.Duration(n/500+120) * time.Second):
		b.Fatalf("only %d of %d recipients reached", sink.distinct, n)
	}
	sink.mu.Lock()
	res.took = sink.last.Sub(start)
	if !killedAt.IsZero() {
		res.afterKill = sink.last.Sub(killedAt)
	}
	sink.mu.Unlock()
	if stopProfile != nil {
		stopProfile()
	}
	close(stopSampling)
	<-sampled
	if r.profile == "" && res.killed != "node-0" {
		_, hwm := procRSS(gatewayPID)
		res.peakGW = max(res.peakGW, hwm)
		res.cpuGW = procCPU(gatewayPID) - cpuGW0
	}
	res.cpuPlugin = procCPU(pluginPID) - cpuPlugin0
	_, hwm := procRSS(pluginPID)
	res.peakPlugin = max(res.peakPlugin, hwm)
	res.requests = sink.requests.Load()
	// How long the fan-out itself (recipients resolved, rendered and
	// written as deliveries) took, apart from sending.
	tr, err := st.GetTrigger(context.Background(), "media", triggerID)
	if err != nil || tr.ProcessedAt == nil {
		b.Fatalf("trigger %d not processed: %+v %v", triggerID, tr, err)
	}
	res.fanout = tr.ProcessedAt.Sub(tr.CreatedAt)
	return res
}

// fanOutNodeOf says which node runs a trigger's fan-out job now.
func fanOutNodeOf(b *testing.B, st *sqlstore.Store) string {
	var node string
	_ = st.WriteDB().QueryRow(`SELECT claimed_by FROM jobs WHERE kind = 'audience_trigger' AND status = 'running'`).Scan(&node)
	return node
}

// startProfile writes a CPU profile until the returned function is called.
func startProfile(b *testing.B, path string) func() {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
