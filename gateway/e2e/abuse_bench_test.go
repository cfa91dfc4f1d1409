package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// BenchmarkAbuse drives the hardening issue's hostile inputs at one
// gateway process (SQLite, the production per-address limits) while a
// prober reads /healthz every 20 ms from another address, and reports
// the gateway's peak RSS, the prober's latency and what each input got:
//
//	row 1: Liquid that doubles a string 40 times (activation and render);
//	row 3: a gzip data file of 1 GB of newlines;
//	row 4: 5,000 idle connections from one address, and a webhook body
//	       sent a byte every 2 s;
//	row 5: segments of segments past the expansion limit;
//	row 6: 8 concurrent 24 MB dry-run triggers.
//
// Row 2 (internal addresses in every spelling) needs a gateway that
// refuses internal fetches, which this one (its sink is on loopback)
// cannot be: TestAudienceInternalDataFileRefused drives it.
func BenchmarkAbuse(b *testing.B) {
	for range b.N {
		runAbuse(b)
	}
}

func runAbuse(b *testing.B) {
	sink := gatewaytest.NewSink(b, gatewaytest.OutboundSecret)
	cfg := gatewaytest.Config(b, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: func(cfg *config.Config) {
		cfg.Log.Level = "warn"
		cfg.Audience.TriggerInterval = -1
		// The production limits, which the harness turns off.
		cfg.Server.MaxConnectionsPerAddress, cfg.Server.Public.RateLimit = 512, 100
	}})
	st := gatewaytest.OpenStore(b, cfg)
	defer st.Close()
	gatewaytest.ApplyTo(b, st, audienceWorkspace(sink.URL))
	seedBench(b, st, 1000)
	appKey := gatewaytest.NewKey(b, st, "media", store.ScopeApp, "")
	p := gatewaytest.StartProcess(b, cfg)
	c := &cio{t: b, url: p.URL, app: appKey, wsID: "media"}

	// Prober and RSS sampler.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	probeFailures := 0
	var peakRSS float64
	wg.Go(func() {
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			start := time.Now()
			resp, err := client.Get(p.URL + "/healthz")
			took := time.Since(start)
			mu.Lock()
			if err != nil || resp.StatusCode != http.StatusOK {
				probeFailures++
			} else {
				lat = append(lat, took)
			}
			mu.Unlock()
			if err == nil {
				resp.Body.Close()
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			cur, _ := procRSS(p.PID())
			mu.Lock()
			peakRSS = max(peakRSS, cur)
			mu.Unlock()
		}
	})
	var report []string
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		report = append(report, line)
		b.Log(line)
	}

	// Row 1.
	msg := func(name, text string) map[string]any {
		return map[string]any{"name": name, "recipients": map[string]any{"attribute": map[string]any{"field": "likes_baseball", "operator": "exists"}},
			"actions": []any{map[string]any{"type": "message", "channel": "news", "message": map[string]any{"text": text}}}}
	}
	out := c.must(201, http.MethodPost, "/v1/broadcasts", msg("doubling", doublingLiquid), false)
	id := int64(out["broadcast"].(map[string]any)["id"].(float64))
	code, _ := c.once(http.MethodPost, fmt.Sprintf("/v1/broadcasts/%d/activate", id), nil, false)
	guarded := c.broadcast(msg("guarded", `{% if trigger.go == "yes" %}`+doublingLiquid+`{% endif %}hi`))
	start := time.Now()
	tid := c.trigger(guarded, map[string]any{"data": map[string]any{"go": "yes"}})
	status := c.wait(guarded, tid)
	say("row 1: activation of the doubling template → %d; guarded, rendered for 1,000 people: %v render_error in %s",
		code, status["counts"].(map[string]any)["failed_by_reason"].(map[string]any)["render_error"], time.Since(start).Round(time.Millisecond))

	// Row 5.
	orOf := func(n int, item func(int) any) map[string]any {
		items := make([]any, n)
		for i := range items {
			items[i] = item(i)
		}
		return map[string]any{"or": items}
	}
	segment := func(name string, filter any) (int, int64) {
		code, out := c.once(http.MethodPost, "/v1/segments", map[string]any{"name": name, "filter": filter}, false)
		if code != http.StatusCreated {
			return code, 0
		}
		return code, int64(out["segment"].(map[string]any)["id"].(float64))
	}
	attr := func(i int) any {
		return map[string]any{"attribute": map[string]any{"field": "n", "operator": "eq", "value": i}}
	}
	ref := func(id int64) func(int) any {
		return func(int) any { return map[string]any{"segment": map[string]any{"id": id}} }
	}
	start = time.Now()
	_, s1 := segment("l1", orOf(999, attr))
	code5, _ := segment("l2", orOf(999, ref(s1)))
	code5b, _ := segment("l2b", orOf(30, ref(s1)))
	say("row 5: 999-way OR of a 999-way segment → %d; 30-way → %d (%s)", code5, code5b, time.Since(start).Round(time.Millisecond))

	// Row 6.
	var body bytes.Buffer
	body.WriteString(`{"dry_run":true,"per_user_data":[`)
	for i := 0; body.Len() < 24<<20; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"id":"p%07d","data":{"pad":"%s"}}`, i%1000, strings.Repeat("x", 200))
	}
	body.WriteString(`]}`)
	codes := make([]int, 8)
	start = time.Now()
	var dry sync.WaitGroup
	for i := range codes {
		dry.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/v1/campaigns/%d/triggers", p.URL, guarded), bytes.NewReader(body.Bytes()))
			req.Header.Set("Authorization", "Bearer "+appKey)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	dry.Wait()
	slices.Sort(codes)
	say("row 6: 8 concurrent %d MB dry runs → %v in %s", body.Len()>>20, codes, time.Since(start).Round(time.Millisecond))

	// Row 3.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	chunk := bytes.Repeat([]byte("\n"), 1<<20)
	for range 1024 {
		zw.Write(chunk)
	}
	zw.Close()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(gz.Bytes()) }))
	defer files.Close()
	news := c.broadcast(newsBroadcast())
	start = time.Now()
	tid = c.trigger(news, map[string]any{"data": map[string]any{"headline": "blank"}, "data_file_url": files.URL + "/blank.jsonl.gz"})
	deadline := time.Now().Add(5 * time.Minute)
	for {
		tr, err := st.GetTrigger(context.Background(), "media", tid)
		if err != nil {
			b.Fatal(err)
		}
		if tr.State != store.TriggerQueued && tr.State != store.TriggerRunning {
			say("row 3: 1 GB of newlines (%d KB gzipped) → trigger %s after %s in %d steps (%v)",
				gz.Len()>>10, tr.State, time.Since(start).Round(time.Millisecond), tr.Steps, tr.Errors)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("row 3: the trigger still runs after 5 minutes (%d steps)", tr.Steps)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Row 4: idle connections from 127.0.0.2, while the prober uses
	// 127.0.0.1.
	addr := strings.TrimPrefix(p.URL, "http://")
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}
	var conns []net.Conn
	refused := 0
	start = time.Now()
	for range 5000 {
		conn, err := dialer.Dial("tcp", addr)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, conn)
	}
	held := 0
	for _, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil && isTimeout(err) {
			held++ // still open: the gateway neither answered nor closed it
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
	say("row 4: 5,000 idle connections from one address → %d held open, %d answered 429 and closed, %d refused at connect (%s)",
		held, len(conns)-held, refused, time.Since(start).Round(time.Millisecond))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /channels/media-news/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nContent-Type: application/json\r\n\r\n")
	start = time.Now()
	cut := time.Duration(0)
	for i := 0; i < 40; i++ {
		if _, err := conn.Write([]byte("{")); err != nil {
			cut = time.Since(start)
			break
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _ := conn.Read(make([]byte, 512)); n > 0 {
			cut = time.Since(start)
			break
		}
	}
	conn.Close()
	say("row 4: a webhook body at 1 byte per 2 s → cut after %s", cut.Round(100*time.Millisecond))

	close(stop)
	wg.Wait()
	_, hwm := procRSS(p.PID())
	peakRSS = max(peakRSS, hwm)
	resp, err := http.Get(p.URL + "/healthz")
	up := err == nil && resp.StatusCode == http.StatusOK
	if err == nil {
		resp.Body.Close()
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	b.ReportMetric(peakRSS, "gateway_peak_rss_MB")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "healthz_p99_ms")
	fmt.Printf("abuse run: gateway up after it: %v; peak RSS %.0f MB; /healthz p50 %s, p99 %s, max %s over %d probes, %d failed\n%s\n",
		up, peakRSS, pct(0.5).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond),
		len(lat), probeFailures, "  "+strings.Join(report, "\n  "))
	if !up {
		b.Fatal("the gateway is down after the abuse run")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
