package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// latencyWorkspace has a one-message bot, so "the message arrived" is one
// sink request.
func latencyWorkspace(sinkURL string) string {
	return fmt.Sprintf(`
workspace: {id: bench}
bots:
  - name: ping
    default_flow: pong
    flows:
      - id: pong
        steps:
          - say: "pong {{ metadata.n }}{{ event.text }}"
          - end
channels:
  - name: hook
    id: bench-hook
    type: webhook
    bot: ping
    config: {url: %q}
    secrets: {signing_secret: %s, outbound_signing_secret: %s}
`, sinkURL, gatewaytest.InboundSecret, gatewaytest.OutboundSecret)
}

// arrivals records when each user's message reached the sink.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
	ch map[string]chan struct{}
}

func (a *arrivals) expect(user string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := make(chan struct{})
	a.ch[user] = c
	return c
}

func (a *arrivals) handler(_ http.ResponseWriter, m gatewaytest.SinkMessage) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.at[m.UserID]; !ok {
		a.at[m.UserID] = m.At
		if c, ok := a.ch[m.UserID]; ok {
			close(c)
		}
	}
	return false
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func report(b *testing.B, name string, ds []time.Duration, total time.Duration) {
	p50, p99 := percentile(ds, 0.50), percentile(ds, 0.99)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(len(ds))/total.Seconds(), "req/s")
	b.Logf("%s: %d requests, p50 %s, p99 %s, max %s, %.0f req/s", name, len(ds), p50, p99, slices.Max(ds), float64(len(ds))/total.Seconds())
}

// BenchmarkFlowTriggerLatency measures POST /v1/api/broadcasts accepted →
// the flow's message at a local sink, through the real webhook plugin, on
// SQLite, one request at a time (1,000 per iteration).
func BenchmarkFlowTriggerLatency(b *testing.B) {
	const n = 1000
	arr := &arrivals{at: map[string]time.Time{}, ch: map[string]chan struct{}{}}
	sink := gatewaytest.NewSink(b, gatewaytest.OutboundSecret)
	sink.Handler = arr.handler
	g := gatewaytest.Start(b, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: quiet})
	g.Apply(b, latencyWorkspace(sink.URL))
	key := gatewaytest.NewKey(b, g.Store, "bench", store.ScopeChannel, "bench-hook")
	client := &http.Client{}
	b.ResetTimer()
	for it := range b.N {
		lat := make([]time.Duration, 0, n)
		begin := time.Now()
		for i := range n {
			user := fmt.Sprintf("u%d-%d", it, i)
			done := arr.expect(user)
			start := time.Now()
			postPong(b, client, g.URL, key, user, 1)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				b.Fatalf("message for %s never arrived", user)
			}
			arr.mu.Lock()
			lat = append(lat, arr.at[user].Sub(start))
			arr.mu.Unlock()
		}
		report(b, "flow_trigger accepted → message at sink", lat, time.Since(begin))
	}
}

// BenchmarkInboundReplyLatency measures a signed user message POSTed to a
// webhook channel → the bot's reply at the sink (1,000 per iteration).
func BenchmarkInboundReplyLatency(b *testing.B) {
	const n = 1000
	arr := &arrivals{at: map[string]time.Time{}, ch: map[string]chan struct{}{}}
	sink := gatewaytest.NewSink(b, gatewaytest.OutboundSecret)
	sink.Handler = arr.handler
	g := gatewaytest.Start(b, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: quiet})
	g.Apply(b, latencyWorkspace(sink.URL))
	url := g.URL + "/channels/bench-hook/webhook"
	b.ResetTimer()
	for it := range b.N {
		lat := make([]time.Duration, 0, n)
		begin := time.Now()
		for i := range n {
			user := fmt.Sprintf("in%d-%d", it, i)
			done := arr.expect(user)
			start := time.Now()
			resp := gatewaytest.PostWebhook(b, url, gatewaytest.InboundSecret, "m-"+user, map[string]string{"user_id": user, "text": "ping"})
			resp.Body.Close()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				b.Fatalf("reply for %s never arrived", user)
			}
			arr.mu.Lock()
			lat = append(lat, arr.at[user].Sub(start))
			arr.mu.Unlock()
		}
		report(b, "inbound message → reply at sink", lat, time.Since(begin))
	}
}

// quiet keeps benchmark logs to warnings and lifts the per-key rate limit,
// which would otherwise be what the benchmark measures.
func quiet(cfg *config.Config) {
	cfg.Log.Level = "warn"
	cfg.API.KeyRateLimit = 1e6
}

// postPong asks the CSML Broadcasts API to run the bench bots' pong flow
// for user, with metadata n, and fails the bench unless it is accepted.
func postPong(b *testing.B, client *http.Client, url, key, user string, n int) {
	body := fmt.Sprintf(`{"payload":{"content_type":"flow_trigger","content":{"flow_id":"pong"}},"client":{"user_id":%q},"metadata":{"n":%d}}`, user, n)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/api/broadcasts", strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatalf("broadcast to %s: %v", user, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("broadcast to %s: status %d", user, resp.StatusCode)
	}
}
