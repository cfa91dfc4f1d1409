package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

var (
	webchatConns      = flag.Int("webchat.conns", 10_000, "web chat connections of BenchmarkWebchatConnections")
	webchatMemProfile = flag.String("webchat.memprofile", "", "write a heap profile of the gateway holding BenchmarkWebchatConnections' connections here")
)

// swarmEnv carries the swarm's settings to the helper process.
const swarmEnv = "SWITCHBOARD_WEBCHAT_SWARM"

const benchIdentitySecret = "webchat-bench-identity-secret-0123456789"

// webchatBenchWorkspace has a one-message bot on a web chat channel whose
// users sign in with identity tokens, so the swarm picks their ids.
const webchatBenchWorkspace = `
workspace: {id: wcbench}
bots:
  - name: ping
    default_flow: pong
    flows:
      - id: pong
        steps:
          - say: "pong {{ metadata.n }}"
          - end
channels:
  - name: web
    id: wcbench-web
    type: assistant
    bot: ping
    secrets: {identity_secret: ` + benchIdentitySecret + `}
`

// BenchmarkWebchatFlowTriggerLatency measures POST /v1/api/broadcasts
// accepted → the flow's message at a connected web chat client, through the
// real assistant plugin, on SQLite, one request at a time (1,000 per
// iteration). The client acknowledges every message, as the widget does.
func BenchmarkWebchatFlowTriggerLatency(b *testing.B) {
	const n = 1000
	g := gatewaytest.Start(b, gatewaytest.Options{Plugins: []string{"assistant"}, Configure: quiet})
	g.Apply(b, webchatBenchWorkspace)
	e := csmlEnv{g: g, key: gatewaytest.NewKey(b, g.Store, "wcbench", store.ScopeChannel, "wcbench-web")}
	c, _, err := dialChat(b, wsURL(g, "wcbench-web"), nil)
	if err != nil {
		b.Fatal(err)
	}
	c.token = identityToken(b, "lat-user")
	c.hello(nil)
	b.ResetTimer()
	for range b.N {
		begin := time.Now()
		lat := pongLatency(b, g.URL, e.key, c, n)
		report(b, "web chat flow_trigger accepted → message at the client", lat, time.Since(begin))
	}
}

// pongLatency sends n flow_triggers of the pong flow to c's user through
// the Broadcasts API at url, one at a time, and returns the time from each
// request to its message at c. The client acknowledges as the widget does.
func pongLatency(b *testing.B, url, key string, c *chat, n int) []time.Duration {
	client := &http.Client{}
	var lastAck time.Time
	lat := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		postPong(b, client, url, key, c.user, i)
		f := c.next(10 * time.Second)
		lat = append(lat, time.Since(start))
		if f.Type != "message" || f.Text != "pong "+strconv.Itoa(i) {
			b.Fatalf("broadcast %d: got %+v", i, f)
		}
		if time.Since(lastAck) >= 50*time.Millisecond || i == n-1 {
			c.ack(f.Seq)
			lastAck = time.Now()
		}
	}
	return lat
}

// BenchmarkWebchatConnections holds -webchat.conns connections (10,000 by
// default) to one in-process gateway and reports the gateway's memory per
// connection, then sends every connected user a flow_trigger through the
// Broadcasts API and reports the time until the last message reached its
// client and until every delivery was acknowledged (delivered). The clients
// run in a helper process (this test binary again), so the gateway's memory
// is measured alone.
func BenchmarkWebchatConnections(b *testing.B) {
	n := *webchatConns
	g := gatewaytest.Start(b, gatewaytest.Options{Plugins: []string{"assistant"}, Configure: quiet})
	g.Apply(b, webchatBenchWorkspace)
	key := gatewaytest.NewKey(b, g.Store, "wcbench", store.ScopeChannel, "wcbench-web")
	before := memNow()

	sw := startSwarm(b, swarmConfig{URL: wsURL(g, "wcbench-web"), Conns: n, Messages: 2 * b.N})
	connectTook := sw.waitReady(b)
	deadline := time.Now().Add(30 * time.Second)
	for g.App.Webchat.Connections() < n {
		if time.Now().After(deadline) {
			b.Fatalf("gateway holds %d of %d connections", g.App.Webchat.Connections(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := memNow()
	if *webchatMemProfile != "" {
		writeHeapProfile(b, *webchatMemProfile)
	}
	rss := float64(after.rss-before.rss) / float64(n) / 1024
	heap := float64(after.heap-before.heap) / float64(n) / 1024
	b.Logf("%d connections (opened in %s): gateway RSS +%.1f MB = %.1f KB/conn; Go heap+stacks +%.1f MB = %.1f KB/conn (stacks %.1f KB/conn); goroutines +%d",
		n, connectTook.Round(time.Millisecond), float64(after.rss-before.rss)/(1<<20), rss,
		float64(after.heap-before.heap)/(1<<20), heap, float64(after.stacks-before.stacks)/float64(n)/1024,
		after.goroutines-before.goroutines)

	ro := readOnly(b, g)
	b.ResetTimer()
	for it := range b.N {
		begin := time.Now()
		accepted := broadcastAll(b, g.URL, key, n, it)
		last := sw.waitRound(b)
		delivered := waitDeliveredVia(b, ro, "broadcast", (it+1)*n)
		b.ReportMetric(accepted.Sub(begin).Seconds(), "accept_all_s")
		b.ReportMetric(last.Sub(begin).Seconds(), "last_message_s")
		b.ReportMetric(delivered.Sub(begin).Seconds(), "all_delivered_s")
		b.Logf("flow_trigger to %d connected users: all accepted after %s, last message at its client after %s, all delivered (acknowledged) after %s",
			n, accepted.Sub(begin).Round(time.Millisecond), last.Sub(begin).Round(time.Millisecond), delivered.Sub(begin).Round(time.Millisecond))

		// The web chat side alone: one queued message per user (what a
		// group trigger's message action writes), no flow to run.
		begin = time.Now()
		enqueueDirect(b, g, n, it)
		last = sw.waitRound(b)
		delivered = waitDeliveredVia(b, ro, "bench", (it+1)*n)
		b.ReportMetric(last.Sub(begin).Seconds(), "direct_last_message_s")
		b.Logf("a queued message to each of %d connected users (no flow): last message at its client after %s, all delivered after %s",
			n, last.Sub(begin).Round(time.Millisecond), delivered.Sub(begin).Round(time.Millisecond))
	}
	b.ReportMetric(float64(n), "conns")
	b.ReportMetric(rss, "rss_KB/conn")
	b.ReportMetric(heap, "go_KB/conn")
}

type mem struct {
	rss, heap, stacks uint64
	goroutines        int
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// memNow is the process's resident memory and the Go heap and stacks in
// use, after collections.
func memNow() mem {
	// Stacks shrink by half per collection while mostly unused: the
	// collections a running gateway makes anyway.
	for range 4 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := mem{heap: ms.HeapInuse + ms.StackInuse, stacks: ms.StackInuse, goroutines: runtime.NumGoroutine()}
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			m.rss = kb * 1024
		}
	}
	return m
}

// broadcastAll sends one flow_trigger per swarm user from 32 workers and
// returns when all are accepted.
func broadcastAll(b *testing.B, url, key string, n, round int) time.Time {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body := fmt.Sprintf(`{"payload":{"content_type":"flow_trigger","content":{"flow_id":"pong"}},"client":{"user_id":"u%d"},"metadata":{"n":%d}}`, i, round)
				req, _ := http.NewRequest("POST", url+"/v1/api/broadcasts", strings.NewReader(body))
				req.Header.Set("x-api-key", key)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("broadcast to u%d: %w", i, err):
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return time.Now()
}

// enqueueDirect queues one message per swarm user and wakes the pipeline.
func enqueueDirect(b *testing.B, g *gatewaytest.Gateway, n, round int) {
	b.Helper()
	ch, err := g.Store.GetChannel(context.Background(), "wcbench-web")
	if err != nil {
		b.Fatal(err)
	}
	ds := make([]store.Delivery, n)
	for i := range ds {
		ds[i] = store.Delivery{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, Recipient: fmt.Sprintf("u%d", i),
			Content: message.Text(fmt.Sprintf("direct %d", round)), IdempotencyKey: fmt.Sprintf("direct-%d-%d", round, i),
			SourceKind: "bench", SourceID: strconv.Itoa(round)}
	}
	if _, err := g.Store.EnqueueDeliveries(context.Background(), ds); err != nil {
		b.Fatal(err)
	}
	g.App.Pipeline.Notify()
}

func identityToken(tb testing.TB, user string) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte(benchIdentitySecret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

type swarmConfig struct {
	URL      string
	Conns    int
	Messages int // rounds: messages each client waits for
}

// swarm is the helper process holding the client connections.
type swarm struct {
	cmd   *exec.Cmd
	lines chan string
}

func startSwarm(b *testing.B, cfg swarmConfig) *swarm {
	b.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^TestWebchatSwarmHelper$", "-test.v")
	cmd.Env = append(os.Environ(), swarmEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // closed when the benchmark ends
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &swarm{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "SWARM "); ok {
				s.lines <- line
			}
		}
		close(s.lines)
	}()
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return s
}

func (s *swarm) line(b *testing.B, prefix string) string {
	b.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			b.Fatal("swarm helper exited")
		}
		v, found := strings.CutPrefix(l, prefix+" ")
		if !found {
			b.Fatalf("swarm said %q, want %s", l, prefix)
		}
		return v
	case <-time.After(3 * time.Minute):
		b.Fatalf("swarm helper silent, waiting for %s", prefix)
	}
	return ""
}

func (s *swarm) waitReady(b *testing.B) time.Duration {
	d, err := time.ParseDuration(s.line(b, "ready"))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// waitRound returns when the last client got its message of the round.
func (s *swarm) waitRound(b *testing.B) time.Time {
	ns, err := strconv.ParseInt(s.line(b, "round"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Unix(0, ns)
}

// TestWebchatSwarmHelper is BenchmarkWebchatConnections' client process;
// run alone it skips.
func TestWebchatSwarmHelper(t *testing.T) {
	raw := os.Getenv(swarmEnv)
	if raw == "" {
		t.Skip("helper process of BenchmarkWebchatConnections")
	}
	var cfg swarmConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	// lastAt[r] is the latest arrival of a round-r message, in Unix ns.
	lastAt := make([]atomic.Int64, cfg.Messages)
	roundDone := make([]sync.WaitGroup, cfg.Messages)
	for r := range cfg.Messages {
		roundDone[r].Add(cfg.Conns)
	}
	var connected sync.WaitGroup
	connected.Add(cfg.Conns)
	sem := make(chan struct{}, 64) // dials in flight
	dialer := &websocket.Dialer{HandshakeTimeout: time.Minute}
	for i := range cfg.Conns {
		go func() {
			sem <- struct{}{}
			ws, _, err := dialer.Dial(cfg.URL, nil)
			if err == nil {
				err = ws.WriteJSON(map[string]any{"type": "hello", "token": identityToken(t, fmt.Sprintf("u%d", i))})
			}
			var f frame
			if err == nil {
				err = ws.ReadJSON(&f)
			}
			<-sem
			if err != nil || f.Type != "welcome" {
				fmt.Printf("SWARM error client %d: %v %+v\n", i, err, f)
				os.Exit(1)
			}
			connected.Done()
			for r := range cfg.Messages {
				if err := ws.ReadJSON(&f); err != nil || f.Type != "message" {
					fmt.Printf("SWARM error client %d: %v %+v\n", i, err, f)
					os.Exit(1)
				}
				now := time.Now().UnixNano()
				for {
					old := lastAt[r].Load()
					if now <= old || lastAt[r].CompareAndSwap(old, now) {
						break
					}
				}
				_ = ws.WriteJSON(map[string]any{"type": "ack", "seq": f.Seq})
				roundDone[r].Done()
			}
			// Hold the connection, answering pings, until the benchmark
			// ends.
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	connected.Wait()
	fmt.Printf("SWARM ready %s\n", time.Since(begin))
	for r := range cfg.Messages {
		roundDone[r].Wait()
		fmt.Printf("SWARM round %d\n", lastAt[r].Load())
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
}
