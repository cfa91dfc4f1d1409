package e2e

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// startProcessNode runs `switchboard serve` as a second node on the
// PostgreSQL schema dsn, whose resources are applied already. Like node a
// of startNodes it holds web chat sockets and claims no job or delivery
// after its start, so every message is stored by the other node.
func startProcessNode(t *testing.T, dsn string) *gatewaytest.Process {
	t.Helper()
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook", "assistant"}, Database: dsn,
		Configure: func(cfg *config.Config) {
			cfg.Delivery.PollInterval = time.Hour
			cfg.Queue.PollInterval = time.Hour
		}})
	return gatewaytest.StartProcess(t, cfg)
}

// openChatAt connects a web chat client to the demo channel of the gateway
// at url.
func openChatAt(t *testing.T, url string) *chat {
	t.Helper()
	c, _, err := dialChat(t, "ws"+strings.TrimPrefix(url, "http")+"/channels/"+webChannel+"/ws", nil)
	if err != nil {
		t.Fatalf("dial web chat: %v", err)
	}
	return c
}

// waitResult polls a request's result until its messages all have status
// and reason, and checks the request's own status and reason.
func waitResult(t *testing.T, e csmlEnv, id string, n int, status, reason, reqStatus, reqReason string) {
	t.Helper()
	out := broadcastMessages(t, e, id, func(ms []map[string]any) bool { return len(ms) == n && every(ms, status, reason) })
	if r, _ := out["reason"].(string); out["status"] != reqStatus || r != reqReason {
		t.Fatalf("request %s with messages %s/%s: status %v/%q, want %s/%s", id, status, reason, out["status"], r, reqStatus, reqReason)
	}
}

// TestWebchatDeliveredMeansAcknowledged: on two gateway processes sharing
// PostgreSQL, a web chat message is sent/awaiting_ack, never delivered,
// until a client acknowledges it. Node a, holding ann's only connection and
// one of bob's tabs, is killed (-9) without anyone acknowledging: once its
// lease runs out, ann's messages (also those node b stored while a's lease
// still counted) become pending_connection, while bob's stay awaiting_ack
// and his tab on b acknowledges them. Ann resumes on b and acknowledges.
func TestWebchatDeliveredMeansAcknowledged(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	dsn := freshPostgres(t)
	b := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook", "assistant"}, Database: dsn})
	b.Apply(t, demoWorkspace(t, sink.URL))
	a := startProcessNode(t, dsn)
	e := csmlEnv{g: b, sink: sink, key: gatewaytest.NewKey(t, b.Store, "demo", store.ScopeChannel, webChannel)}

	ann := openChatAt(t, a.URL)
	ann.hello(nil)
	bobOnA := openChatAt(t, a.URL)
	bobOnA.hello(nil)
	bobOnB := openChat(t, b)
	bobOnB.token = bobOnA.token
	bobOnB.hello(nil)
	if bobOnB.user != bobOnA.user {
		t.Fatalf("bob's second tab is %s, his first %s", bobOnB.user, bobOnA.user)
	}
	bob := bobOnA.user
	waitPresent(t, b.Store, webChannel, ann.user)
	waitPresent(t, b.Store, webChannel, bob)

	annFirst := e.broadcast(t, ann.user, "reminder", "")
	bobFirst := e.broadcast(t, bob, "reminder", "")
	for _, c := range []*chat{ann, bobOnA, bobOnB} {
		if ms := c.messages(2, 10*time.Second); !reflect.DeepEqual(seqs(ms), []int64{1, 2}) {
			t.Fatalf("%s got %v", c.user, seqs(ms))
		}
	}
	// Written to the connections, not acknowledged: not delivered.
	waitResult(t, e, annFirst, 2, "sent", store.ReasonAwaitingAck, "sending", store.ReasonAwaitingAck)
	waitResult(t, e, bobFirst, 2, "sent", store.ReasonAwaitingAck, "sending", store.ReasonAwaitingAck)

	a.Kill()
	annSecond := e.broadcast(t, ann.user, "reminder", "") // stored by b, perhaps while a's lease still counts
	waitResult(t, e, annFirst, 2, "sent", store.ReasonPendingConnection, "pending_connection", "not_connected")
	waitResult(t, e, annSecond, 2, "sent", store.ReasonPendingConnection, "pending_connection", "not_connected")
	// a is forgotten now (ann's first messages changed only then), and bob
	// still has a tab on b.
	waitResult(t, e, bobFirst, 2, "sent", store.ReasonAwaitingAck, "sending", store.ReasonAwaitingAck)
	bobOnB.ack(2)
	waitResult(t, e, bobFirst, 2, "delivered", "", "delivered", "")

	annOnB := openChat(t, b)
	annOnB.token = ann.token
	annOnB.hello(map[string]any{"last_seq": 2})
	if ms := annOnB.messages(2, 10*time.Second); !reflect.DeepEqual(seqs(ms), []int64{3, 4}) {
		t.Fatalf("ann resumed on b: %v", seqs(ms))
	}
	annOnB.ack(4)
	waitResult(t, e, annFirst, 2, "delivered", "", "delivered", "")
	waitResult(t, e, annSecond, 2, "delivered", "", "delivered", "")
}

// TestWebchatResumeFromTheFuture: a tab on node a resuming after a sequence
// number the store never gave out gets a resume_reset with the user's real
// last one after its welcome, then the next messages like the user's tab
// on node b.
func TestWebchatResumeFromTheFuture(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	a, b := startNodes(t, demoWorkspace(t, sink.URL), nil)
	e := csmlEnv{g: b, sink: sink, key: gatewaytest.NewKey(t, b.Store, "demo", store.ScopeChannel, webChannel)}

	onB := openChat(t, b)
	onB.hello(nil)
	e.broadcast(t, onB.user, "reminder", "")
	onB.messages(2, 10*time.Second)
	onB.ack(2)

	onA := openChat(t, a)
	onA.token = onB.token
	onA.hello(map[string]any{"last_seq": 1000})
	if f := onA.next(10 * time.Second); f.Type != "resume_reset" || f.LastSeq != 2 {
		t.Fatalf("after the welcome of a resume after 1000: %+v, want resume_reset with last_seq 2", f)
	}
	id := e.broadcast(t, onB.user, "reminder", "")
	for _, c := range []*chat{onA, onB} {
		if ms := c.messages(2, 10*time.Second); !reflect.DeepEqual(seqs(ms), []int64{3, 4}) {
			t.Fatalf("after the reset: %v", seqs(ms))
		}
	}
	onA.ack(4)
	waitResult(t, e, id, 2, "delivered", "", "delivered", "")
}

// TestWebchatSessionMovesBetweenNodes: a PostgreSQL gateway without a secret
// key does not start, so nodes cannot each sign session tokens with a key
// of their own; nodes sharing the key (here a `switchboard serve` process
// and an in-process gateway) accept each other's tokens, so a client that
// moves between them keeps its user and resumes.
func TestWebchatSessionMovesBetweenNodes(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	dsn := freshPostgres(t)
	keyless := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"assistant"}, Database: dsn})
	keyless.SecretKey = ""
	if _, err := app.New(context.Background(), keyless, slog.New(slog.DiscardHandler)); !errors.Is(err, app.ErrNoSecretKey) {
		t.Fatalf("a PostgreSQL node without a secret key: %v, want %v", err, app.ErrNoSecretKey)
	}

	b := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook", "assistant"}, Database: dsn})
	b.Apply(t, demoWorkspace(t, sink.URL))
	a := startProcessNode(t, dsn)
	e := csmlEnv{g: b, sink: sink, key: gatewaytest.NewKey(t, b.Store, "demo", store.ScopeChannel, webChannel)}

	onA := openChatAt(t, a.URL)
	onA.hello(nil)
	e.broadcast(t, onA.user, "reminder", "")
	onA.messages(1, 10*time.Second)
	onA.drop()

	onB := openChat(t, b)
	onB.token = onA.token // issued by a
	if w := onB.hello(map[string]any{"last_seq": 1}); w.UserID != onA.user {
		t.Fatalf("a's token on b: user %s, want %s", w.UserID, onA.user)
	}
	if ms := onB.messages(1, 10*time.Second); ms[0].Seq != 2 {
		t.Fatalf("resumed on b after 1: seq %d", ms[0].Seq)
	}
	onB.drop()

	back := openChatAt(t, a.URL)
	back.token = onB.token // issued by b
	if w := back.hello(map[string]any{"last_seq": 2}); w.UserID != onA.user {
		t.Fatalf("b's token on a: user %s, want %s", w.UserID, onA.user)
	}
}
