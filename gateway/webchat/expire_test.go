package webchat

import (
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// TestExpiredMessagesFailAndResumePassesOverThem: a message no client
// acknowledged within the retention is deleted and its delivery fails with
// reason expired; a client resuming from before it gets the next message
// at once, the sequence number skipping the expired one.
func TestExpiredMessagesFailAndResumePassesOverThem(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := startNode(t, newStore(t), Options{Limits: Limits{Retention: 7 * 24 * time.Hour}, Now: clk.Now})
	enqueue(t, e.st, "bob", "old", "new", "live")
	e.deliver(t, "bob", "old")
	clk.advance(7*24*time.Hour - time.Second)
	e.deliver(t, "bob", "new")
	if n, err := e.svc.expire(t.Context()); err != nil || n != 0 {
		t.Fatalf("expired %d (%v) within the retention", n, err)
	}
	clk.advance(2 * time.Second)
	if n, err := e.svc.expire(t.Context()); err != nil || n != 1 {
		t.Fatalf("expired %d (%v), want the old message", n, err)
	}
	if d := deliveryOf(t, e.st, "bob", "old"); d.Status != store.DeliveryFailed || d.Reason != store.ReasonExpired {
		t.Fatalf("expired delivery = %s/%q", d.Status, d.Reason)
	}
	if d := deliveryOf(t, e.st, "bob", "new"); d.Status != store.DeliverySent || d.Reason != store.ReasonPendingConnection {
		t.Fatalf("newer delivery = %s/%q, want still waiting", d.Status, d.Reason)
	}

	ws := e.dial(t)
	write(t, ws, `{"hello":"bob","last":0}`)
	read(t, ws) // welcome
	if got := read(t, ws); got != `{"seq":2,"text":"new"}` {
		t.Fatalf("after resume got %s, want seq 2", got)
	}
	e.deliver(t, "bob", "live")
	if got := read(t, ws); got != `{"seq":3,"text":"live"}` {
		t.Fatalf("got %s, want seq 3", got)
	}
	write(t, ws, `{"ack":3}`)
	waitFor(t, "the ack", func() bool { return deliveryOf(t, e.st, "bob", "new").Status == store.DeliveryDelivered })
	if d := deliveryOf(t, e.st, "bob", "old"); d.Status != store.DeliveryFailed {
		t.Fatalf("an ack past the expired message made its delivery %s", d.Status)
	}
}

// TestLiveMessageAfterAnExpiredGapIsWritten: a connection that has seq 1
// gets seq 3 although seq 2 expired before reaching it (the writer fills
// the gap from the store, finds nothing, and goes on).
func TestLiveMessageAfterAnExpiredGapIsWritten(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := startNode(t, newStore(t), Options{Limits: Limits{Retention: time.Hour}, Now: clk.Now})
	ws := e.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	read(t, ws)
	waitFor(t, "ann to be connected", func() bool { return e.svc.Connected("web", "ann") })
	e.deliver(t, "ann", "one")
	if got := read(t, ws); got != `{"seq":1,"text":"one"}` {
		t.Fatalf("got %s", got)
	}
	// Seq 2, stored by another node, expires before any wake-up.
	if _, err := e.st.AppendWebchat(t.Context(), []store.WebchatAppend{{WebchatMessage: store.WebchatMessage{
		ChannelID: "web", UserID: "ann", Seq: 2, IdempotencyKey: "k2", Frame: []byte(`{"seq":2}`)}}}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Hour)
	if n, err := e.svc.expire(t.Context()); err != nil || n != 2 {
		t.Fatalf("expired %d (%v), want 2", n, err)
	}
	e.deliver(t, "ann", "three")
	if got := read(t, ws); got != `{"seq":3,"text":"three"}` {
		t.Fatalf("got %s, want seq 3", got)
	}
}
