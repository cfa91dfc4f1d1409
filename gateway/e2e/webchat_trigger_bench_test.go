package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// BenchmarkWebchatGroupTrigger holds -webchat.conns connections (10,000 by
// default) and reaches all of them with one group trigger whose action runs
// the bot's flow for each person on the web chat channel: the way to send a
// flow to a whole audience at once. It reports the time from the trigger
// call until the last client got its message and until every delivery was
// acknowledged.
func BenchmarkWebchatGroupTrigger(b *testing.B) {
	n := *webchatConns
	g := gatewaytest.Start(b, gatewaytest.Options{Plugins: []string{"assistant"}, Configure: quiet})
	g.Apply(b, webchatBenchWorkspace)
	seedWebchatPeople(b, g.Store.WriteDB(), n)
	c := &cio{t: b, url: g.URL, app: gatewaytest.NewKey(b, g.Store, "wcbench", store.ScopeApp, ""), wsID: "wcbench"}
	all := c.broadcast(map[string]any{
		"name":       "everyone on web chat",
		"recipients": map[string]any{"attribute": map[string]any{"field": "bench", "operator": "exists"}},
		"actions":    []any{map[string]any{"type": "flow", "channel": "web", "flow": "pong"}},
	})
	sw := startSwarm(b, swarmConfig{URL: wsURL(g, "wcbench-web"), Conns: n, Messages: b.N})
	sw.waitReady(b)
	for g.App.Webchat.Connections() < n {
		time.Sleep(10 * time.Millisecond)
	}
	ro := readOnly(b, g)
	b.ResetTimer()
	for it := range b.N {
		begin := time.Now()
		id := c.trigger(all, map[string]any{})
		last := sw.waitRound(b)
		delivered := waitDeliveredVia(b, ro, "trigger", (it+1)*n)
		b.ReportMetric(last.Sub(begin).Seconds(), "last_message_s")
		b.ReportMetric(delivered.Sub(begin).Seconds(), "all_delivered_s")
		b.Logf("group trigger %d (flow action) to %d connected users: last message at its client after %s, all delivered (acknowledged) after %s",
			id, n, last.Sub(begin).Round(time.Millisecond), delivered.Sub(begin).Round(time.Millisecond))
	}
}

// seedWebchatPeople writes people u0…u(n-1), each with an identity on the
// bench's web chat channel, straight into the database.
func seedWebchatPeople(b *testing.B, db *sql.DB, n int) {
	b.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	const rows = 500
	now := time.Now().UnixMicro()
	for start := 0; start < n; start += rows {
		cnt := min(rows, n-start)
		people := strings.TrimSuffix(strings.Repeat("(?, ?, '', ?, ?, ?), ", cnt), ", ")
		ids := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", cnt), ", ")
		var pArgs, iArgs []any
		for i := start; i < start+cnt; i++ {
			id := fmt.Sprintf("u%d", i)
			pArgs = append(pArgs, "wcbench", id, `{"bench":true}`, now, now)
			iArgs = append(iArgs, "wcbench-web", id, "wcbench", id)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO people (workspace_id, id, email, attributes, created_at, updated_at) VALUES "+people, pArgs...); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO identities (channel_id, address, workspace_id, person_id) VALUES "+ids, iArgs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// readOnly opens the gateway's SQLite file read-only, so a bench's polling
// does not take the gateway's single writer connection.
func readOnly(b *testing.B, g *gatewaytest.Gateway) *sql.DB {
	b.Helper()
	path, ok := strings.CutPrefix(g.Config.Database, "sqlite://")
	if !ok {
		b.Fatalf("bench wants a SQLite gateway, has %s", g.Config.Database)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// waitDeliveredVia polls db every 20 ms until want deliveries of the source
// kind are delivered (acknowledged by their clients), and returns when.
func waitDeliveredVia(b *testing.B, db *sql.DB, kind string, want int) time.Time {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var got int
		err := db.QueryRowContext(context.Background(),
			`SELECT COUNT(*) FROM deliveries WHERE source_kind = ? AND status = 'delivered'`, kind).Scan(&got)
		if err != nil {
			b.Fatal(err)
		}
		if got >= want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries delivered", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
