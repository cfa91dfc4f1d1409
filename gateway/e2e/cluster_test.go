package e2e

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// slowSink is a verifying sink that takes d to answer each message, so
// sending a fan-out spans the fault a test injects.
func slowSink(t testing.TB, d time.Duration) *gatewaytest.Sink {
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	sink.Handler = func(http.ResponseWriter, gatewaytest.SinkMessage) bool {
		time.Sleep(d)
		return false
	}
	return sink
}

// checkOncePerRecipient fails unless each of n recipients got exactly one
// distinct delivery, and returns how many messages repeated one (a re-send
// with the same idempotency key).
func checkOncePerRecipient(t *testing.T, msgs []gatewaytest.SinkMessage, n int) int {
	t.Helper()
	keysByUser := map[string]map[string]bool{}
	for _, m := range msgs {
		if keysByUser[m.UserID] == nil {
			keysByUser[m.UserID] = map[string]bool{}
		}
		keysByUser[m.UserID][m.IdempotencyKey] = true
	}
	if len(keysByUser) != n {
		t.Fatalf("%d recipients reached, want %d", len(keysByUser), n)
	}
	for user, ks := range keysByUser {
		if len(ks) != 1 {
			t.Fatalf("%s received %d distinct deliveries: %v", user, len(ks), ks)
		}
	}
	return len(msgs) - n
}

// fanOutNode says which node runs the trigger's fan-out job now ("" when
// none does).
func fanOutNode(t *testing.T, db *sql.DB) string {
	t.Helper()
	var node string
	err := db.QueryRow(`SELECT claimed_by FROM jobs WHERE kind = 'audience_trigger' AND status = 'running'`).Scan(&node)
	if errors.Is(err, sql.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// TestClusterKillNodeMidFanOut runs three gateway processes on one
// PostgreSQL database, SIGKILLs the one running a trigger's fan-out while
// it sends, and checks that the survivors finish its work: every
// recipient gets exactly one distinct delivery (re-sends of what was in
// flight carry the same idempotency key).
func TestClusterKillNodeMidFanOut(t *testing.T) {
	t.Parallel()
	const people = 3000
	dsn := freshPostgres(t)
	sink := slowSink(t, 100*time.Millisecond)
	var nodes []*gatewaytest.Process
	byID := map[string]*gatewaytest.Process{}
	var cfgs []*config.Config
	for i := range 3 {
		cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}, Database: dsn,
			Configure: func(cfg *config.Config) {
				cfg.Cluster.NodeID = fmt.Sprintf("node-%d", i)
				cfg.Audience.BatchSize = 100
				cfg.Audience.StepBudget = 200 * time.Millisecond
			}})
		cfgs = append(cfgs, cfg)
	}
	st := gatewaytest.OpenStore(t, cfgs[0])
	t.Cleanup(func() { st.Close() })
	gatewaytest.ApplyTo(t, st, audienceWorkspace(sink.URL))
	seedPeople(t, st, people)
	appKey := gatewaytest.NewKey(t, st, "media", store.ScopeApp, "")
	for _, cfg := range cfgs {
		p := gatewaytest.StartProcess(t, cfg)
		nodes = append(nodes, p)
		byID[cfg.Cluster.NodeID] = p
	}
	c := &cio{t: t, url: nodes[0].URL, app: appKey, wsID: "media"}
	news := c.broadcast(newsBroadcast())
	id := c.trigger(news, map[string]any{"data": map[string]any{"headline": "takeover"}})

	// Kill the fan-out's node once messages flow and the fan-out is not
	// done.
	var victim string
	deadline := time.Now().Add(60 * time.Second)
	for victim == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no node ran the fan-out while messages flowed (%d at the sink)", len(sink.Messages()))
		}
		if n := fanOutNode(t, st.WriteDB()); n != "" && len(sink.Messages()) >= 200 {
			victim = n
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	killed := time.Now()
	byID[victim].Kill()
	at := len(sink.Messages())
	t.Logf("killed %s with %d messages at the sink", victim, at)

	msgs := sink.WaitFor(t, people, 120*time.Second)
	last := time.Now()
	dups := checkOncePerRecipient(t, msgs, people)
	t.Logf("survivors finished %.1fs after the kill; %d messages for %d recipients (%d re-sent with the same key)",
		last.Sub(killed).Seconds(), len(msgs), people, dups)
	for _, p := range nodes {
		if p != byID[victim] {
			c.url = p.URL
			break
		}
	}
	status := c.wait(news, id)
	counts := status["counts"].(map[string]any)
	if counts["sent"].(float64) != people {
		t.Fatalf("trigger counts %v, want %d sent", counts, people)
	}
}

// pgProxy forwards TCP connections to PostgreSQL and can cut them all and
// refuse new ones for a while, as a database restart does.
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	down   bool
}

func newPGProxy(t *testing.T, dsn string) (*pgProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: u.Host, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cut closes every connection and refuses new ones until restore.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *pgProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestDatabaseOutageLosesNoResult cuts the gateway off PostgreSQL for 3
// seconds while a fan-out is being sent (every connection closed, new
// ones refused, as in a database restart). Sends in flight finish at the
// platform while their results cannot be recorded; the gateway keeps them
// and records them once the database is back, within its node lease, so
// nothing is sent twice and nothing is lost.
func TestDatabaseOutageLosesNoResult(t *testing.T) {
	t.Parallel()
	const people = 2000
	dsn := freshPostgres(t)
	proxy, proxied := newPGProxy(t, dsn)
	sink := slowSink(t, 300*time.Millisecond)
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}, Database: proxied,
		Configure: func(cfg *config.Config) {
			// The production lease: it must outlast the outage.
			cfg.Cluster.Lease, cfg.Cluster.Heartbeat = 5*time.Second, time.Second
		}})
	st := gatewaytest.OpenStore(t, &config.Config{Database: dsn, SecretKey: cfg.SecretKey})
	t.Cleanup(func() { st.Close() })
	gatewaytest.ApplyTo(t, st, audienceWorkspace(sink.URL))
	seedPeople(t, st, people)
	appKey := gatewaytest.NewKey(t, st, "media", store.ScopeApp, "")
	p := gatewaytest.StartProcess(t, cfg)
	c := &cio{t: t, url: p.URL, app: appKey, wsID: "media"}
	news := c.broadcast(newsBroadcast())
	id := c.trigger(news, map[string]any{"data": map[string]any{"headline": "outage"}})

	deadline := time.Now().Add(60 * time.Second)
	for len(sink.Messages()) < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages before the outage", len(sink.Messages()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	proxy.cut()
	time.Sleep(3 * time.Second)
	during := len(sink.Messages())
	proxy.restore()
	restored := time.Now()
	sink.WaitFor(t, people, 120*time.Second)
	t.Logf("%d messages at the sink when the database came back; the last recipient reached %.1fs after",
		during, time.Since(restored).Seconds())
	// Every delivery final: a result lost in the outage would have left its
	// delivery to be sent again by now.
	status := c.wait(news, id)
	if counts := status["counts"].(map[string]any); counts["sent"].(float64) != people {
		t.Fatalf("trigger counts %v, want %d sent", counts, people)
	}
	msgs := sink.Messages()
	if dups := checkOncePerRecipient(t, msgs, people); dups != 0 {
		t.Fatalf("%d messages sent twice: their results were lost in the outage", dups)
	}
	t.Logf("outage 3s: longest gap between two messages at the sink %.1fs; no result lost (%d messages, %d recipients)",
		longestGap(msgs).Seconds(), len(msgs), people)
}

// longestGap is the longest time between two consecutive arrivals.
func longestGap(msgs []gatewaytest.SinkMessage) time.Duration {
	at := make([]time.Time, len(msgs))
	for i, m := range msgs {
		at[i] = m.At
	}
	slices.SortFunc(at, time.Time.Compare)
	var gap time.Duration
	for i := 1; i < len(at); i++ {
		gap = max(gap, at[i].Sub(at[i-1]))
	}
	return gap
}
