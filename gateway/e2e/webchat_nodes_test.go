package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// freshPostgres returns the URL of a new schema in the database of
// $SWITCHBOARD_TEST_POSTGRES_URL, dropped when the test ends (after the
// gateways started later have stopped). Without the variable the test is
// skipped.
func freshPostgres(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(sqlstore.PostgresTestEnv)
	if base == "" {
		tb.Skipf("several gateway nodes need PostgreSQL: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", sqlstore.PostgresTestEnv)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "switchboard_e2e_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// startNodes runs two gateways on one PostgreSQL schema with resources
// applied. Node a holds web chat sockets and runs no job or delivery of
// its own: its queue and pipeline claim once at start, then only when
// woken in-process, which nothing does unless a session starts a
// conversation there. Every message is stored by b.
func startNodes(tb testing.TB, resources string, configure func(*config.Config)) (a, b *gatewaytest.Gateway) {
	tb.Helper()
	dsn := freshPostgres(tb)
	plugins := []string{"webhook", "assistant"}
	a = gatewaytest.Start(tb, gatewaytest.Options{Plugins: plugins, Database: dsn, Configure: func(cfg *config.Config) {
		cfg.Delivery.PollInterval = time.Hour
		cfg.Queue.PollInterval = time.Hour
		if configure != nil {
			configure(cfg)
		}
	}})
	b = gatewaytest.Start(tb, gatewaytest.Options{Plugins: plugins, Database: dsn, Configure: configure})
	b.Apply(tb, resources)
	a.App.SyncChannels(context.Background())
	return a, b
}

// waitPresent waits until the gateways' shared presence counts user as
// connected.
func waitPresent(tb testing.TB, st *sqlstore.Store, channelID, user string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		on, err := st.WebchatOnline(context.Background(), channelID, []string{user}, "", time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		if on[user] {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s is not filed as connected", user)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebchatAcrossNodes: a user connected to node a gets a flow_trigger
// sent through node b at once, and the request's result says
// sending/awaiting_ack, then delivered after the ack. Once a stops, b
// counts the user offline (pending_connection), and the user resuming on b
// gets the message.
func TestWebchatAcrossNodes(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	a, b := startNodes(t, demoWorkspace(t, sink.URL), nil)
	e := csmlEnv{g: b, sink: sink, key: gatewaytest.NewKey(t, b.Store, "demo", store.ScopeChannel, webChannel)}

	c := openChat(t, a)
	c.hello(nil) // a session, no conversation: node a starts no job
	waitPresent(t, b.Store, webChannel, c.user)

	id := e.broadcast(t, c.user, "reminder", `{"when":"Monday"}`)
	ms := c.messages(2, 10*time.Second)
	if !reflect.DeepEqual(seqs(ms), []int64{1, 2}) || !strings.HasPrefix(ms[0].Text, "Reminder: you have an appointment on Monday") {
		t.Fatalf("node a's client got %v %q", seqs(ms), frameTexts(ms))
	}
	out := broadcastMessages(t, e, id, func(ms []map[string]any) bool {
		return len(ms) == 2 && every(ms, "sent", store.ReasonAwaitingAck)
	})
	if out["status"] != "sending" || out["reason"] != store.ReasonAwaitingAck {
		t.Fatalf("result %v for a connected user who has not acknowledged, want sending/%s", out, store.ReasonAwaitingAck)
	}
	c.ack(2)
	out = broadcastMessages(t, e, id, func(ms []map[string]any) bool { return every(ms, "delivered", "") })
	if out["status"] != "delivered" {
		t.Fatalf("request status %v after the ack, want delivered", out["status"])
	}

	// Node a stops: its client is told to go away, and its presence
	// counts no more.
	a.Stop()
	if code, _ := c.closed(10 * time.Second); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d when node a stops, want 1001", code)
	}
	id = e.broadcast(t, c.user, "reminder", "")
	broadcastMessages(t, e, id, func(ms []map[string]any) bool {
		return len(ms) == 2 && every(ms, "sent", store.ReasonPendingConnection)
	})
	c2 := openChat(t, b)
	c2.token = c.token
	c2.hello(map[string]any{"last_seq": 2})
	if ms := c2.messages(2, 10*time.Second); !reflect.DeepEqual(seqs(ms), []int64{3, 4}) {
		t.Fatalf("resumed on node b: %v %q", seqs(ms), frameTexts(ms))
	}
	c2.ack(4)
	broadcastMessages(t, e, id, func(ms []map[string]any) bool { return every(ms, "delivered", "") })
}

// BenchmarkWebchatAcrossNodesLatency measures POST /v1/api/broadcasts on
// node b → the message at a client connected to node a (stored by b, woken
// by NOTIFY, read by a from the outbox), and the same with the client on b,
// on one PostgreSQL database, one request at a time (200 per iteration).
func BenchmarkWebchatAcrossNodesLatency(b *testing.B) {
	const n = 200
	na, nb := startNodes(b, webchatBenchWorkspace, quiet)
	e := csmlEnv{g: nb, key: gatewaytest.NewKey(b, nb.Store, "wcbench", store.ScopeChannel, "wcbench-web")}
	for _, node := range []struct {
		name string
		g    *gatewaytest.Gateway
	}{{"client on node a (other node)", na}, {"client on node b (same node)", nb}} {
		c, _, err := dialChat(b, wsURL(node.g, "wcbench-web"), nil)
		if err != nil {
			b.Fatal(err)
		}
		c.token = identityToken(b, "lat-"+node.g.URL)
		c.hello(nil)
		waitPresent(b, nb.Store, "wcbench-web", c.user)
		for range b.N {
			begin := time.Now()
			lat := pongLatency(b, nb.URL, e.key, c, n)
			report(b, "PostgreSQL, flow_trigger on node b → message, "+node.name, lat, time.Since(begin))
		}
	}
}
