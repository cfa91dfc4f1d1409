package webchat

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

var _ Wakeups = (*busNode)(nil)

// bus carries wake-ups between services in one process, as NOTIFY does
// between nodes.
type bus struct {
	mu    sync.Mutex
	nodes map[string]func([]store.WebchatWake)
}

type busNode struct {
	bus  *bus
	name string
}

func (n *busNode) Wake(_ context.Context, ws []store.WebchatWake) error {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	for name, wake := range n.bus.nodes {
		if name != n.name {
			wake(ws)
		}
	}
	return nil
}

func (n *busNode) Listen(ctx context.Context, resync func(context.Context), wake func([]store.WebchatWake)) error {
	n.bus.mu.Lock()
	if n.bus.nodes == nil {
		n.bus.nodes = map[string]func([]store.WebchatWake){}
	}
	n.bus.nodes[n.name] = wake
	n.bus.mu.Unlock()
	resync(ctx)
	<-ctx.Done()
	n.bus.mu.Lock()
	delete(n.bus.nodes, n.name)
	n.bus.mu.Unlock()
	return nil
}

func (n *busNode) listening() bool {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	return n.bus.nodes[n.name] != nil
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// enqueue stores the deliveries env.deliver hands over (same keys), so
// their status can be checked.
func enqueue(t *testing.T, st *sqlstore.Store, user string, texts ...string) {
	t.Helper()
	ds := make([]store.Delivery, len(texts))
	for i, text := range texts {
		ds[i] = store.Delivery{WorkspaceID: "ws", ChannelID: "web", Recipient: user, IdempotencyKey: user + "/" + text,
			Content: message.Text(text), SourceKind: "test", SourceID: user}
	}
	if _, err := st.EnqueueDeliveries(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
}

// deliveryOf returns the delivery env.deliver handed over for text.
func deliveryOf(t *testing.T, st *sqlstore.Store, user, text string) store.Delivery {
	t.Helper()
	ds, err := st.ListDeliveriesBySource(t.Context(), "test", user)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.IdempotencyKey == user+"/"+text {
			return d
		}
	}
	t.Fatalf("no delivery %s/%s", user, text)
	return store.Delivery{}
}

// twoNodes runs nodes a and b on one store, joined by a bus, on clk.
func twoNodes(t *testing.T, clk *clock) (a, b *env) {
	t.Helper()
	st := newStore(t)
	bs := &bus{}
	// Leases renewed every 20 minutes: within a test, only at start.
	limits := Limits{NodeTTL: time.Hour}
	an, bn := &busNode{bus: bs, name: "a"}, &busNode{bus: bs, name: "b"}
	a = startNode(t, st, Options{Limits: limits, Wakeups: an, Node: "a", Now: clk.Now})
	b = startNode(t, st, Options{Limits: limits, Wakeups: bn, Node: "b", Now: clk.Now})
	waitFor(t, "both nodes to listen", func() bool { return an.listening() && bn.listening() })
	return a, b
}

// TestMessageStoredOnAnotherNodeReachesTheConnection: node b stores a
// message of a user connected to node a; a's connection gets it at once,
// and b hands the delivery over as sent to a connected user. Once a's
// lease runs out (it stopped renewing), b counts the user offline, and the
// wake-up still reaches a's connection.
func TestMessageStoredOnAnotherNodeReachesTheConnection(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	a, b := twoNodes(t, clk)
	ws := a.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	read(t, ws)
	waitFor(t, "ann filed as connected to a", func() bool {
		on, err := b.st.WebchatOnline(t.Context(), "web", []string{"ann"}, "b", clk.Now())
		return err == nil && on["ann"]
	})

	enqueue(t, b.st, "ann", "hi", "later")
	if rs := b.deliver(t, "ann", "hi"); rs[0].Err != nil || rs[0].ProviderID != "seq:1" {
		t.Fatalf("b's result %+v", rs[0])
	}
	if got := read(t, ws); got != `{"seq":1,"text":"hi"}` {
		t.Fatalf("a's connection got %s", got)
	}
	if d := deliveryOf(t, b.st, "ann", "hi"); d.Status != store.DeliverySent || d.Reason != store.ReasonAwaitingAck {
		t.Fatalf("delivery to a user connected to another node = %s/%q, want sent/%s", d.Status, d.Reason, store.ReasonAwaitingAck)
	}

	clk.advance(time.Hour)
	b.deliver(t, "ann", "later")
	if d := deliveryOf(t, b.st, "ann", "later"); d.Reason != store.ReasonPendingConnection {
		t.Fatalf("delivery after a's lease ran out: reason %q, want %s", d.Reason, store.ReasonPendingConnection)
	}
	if got := read(t, ws); got != `{"seq":2,"text":"later"}` {
		t.Fatalf("a's connection got %s", got)
	}
	write(t, ws, `{"ack":2}`)
	waitFor(t, "the ack", func() bool {
		return deliveryOf(t, b.st, "ann", "later").Status == store.DeliveryDelivered
	})
}

// TestLastConnectionOnANodeKeepsDeliveriesOfAUserConnectedElsewhere: node
// a stops, closing ann's tab there, while she is connected to b; her
// unacknowledged delivery is not marked waiting until her last connection
// anywhere closes.
func TestLastConnectionOnANodeKeepsDeliveriesOfAUserConnectedElsewhere(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	a, b := twoNodes(t, clk)
	onA, onB := a.dial(t), b.dial(t)
	for _, ws := range []*websocket.Conn{onA, onB} {
		write(t, ws, `{"hello":"ann"}`)
		read(t, ws)
	}
	waitFor(t, "ann filed on b", func() bool {
		on, err := a.st.WebchatOnline(t.Context(), "web", []string{"ann"}, "a", clk.Now())
		return err == nil && on["ann"]
	})
	enqueue(t, a.st, "ann", "hi")
	a.deliver(t, "ann", "hi")
	for _, ws := range []*websocket.Conn{onA, onB} {
		if got := read(t, ws); got != `{"seq":1,"text":"hi"}` {
			t.Fatalf("got %s", got)
		}
	}
	a.stop() // returns once its connections have ended
	if d := deliveryOf(t, a.st, "ann", "hi"); d.Reason != store.ReasonAwaitingAck {
		t.Fatalf("reason %q while ann is connected to b", d.Reason)
	}
	_ = onB.Close()
	waitFor(t, "the delivery to wait", func() bool {
		return deliveryOf(t, a.st, "ann", "hi").Reason == store.ReasonPendingConnection
	})
}

// TestDeadNodesMessagesAreReevaluated: node a dies holding ann's and bob's
// connections (bob is also connected to b) with messages not acknowledged,
// one of them stored by a without waking anyone. Once b forgets a, ann's
// message waits for a connection, and bob's connection on b gets what it
// lacked, still awaiting its ack.
func TestDeadNodesMessagesAreReevaluated(t *testing.T) {
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	a, b := twoNodes(t, clk)
	for _, u := range []string{"ann", "bob"} {
		ws := a.dial(t)
		write(t, ws, `{"hello":"`+u+`"}`)
		read(t, ws)
	}
	bobOnB := b.dial(t)
	write(t, bobOnB, `{"hello":"bob"}`)
	read(t, bobOnB)
	waitFor(t, "ann and bob filed on a", func() bool {
		on, err := b.st.WebchatOnline(t.Context(), "web", []string{"ann", "bob"}, "b", clk.Now())
		return err == nil && on["ann"] && on["bob"]
	})
	enqueue(t, b.st, "ann", "hi")
	b.deliver(t, "ann", "hi")
	// What a stored just before it died, waking nobody.
	enqueue(t, a.st, "bob", "lost")
	if _, err := a.st.AppendWebchat(t.Context(), []store.WebchatAppend{{WebchatMessage: store.WebchatMessage{
		ChannelID: "web", UserID: "bob", Seq: 1, IdempotencyKey: "bob/lost", Frame: []byte(`{"seq":1,"text":"lost"}`)}}}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if d := deliveryOf(t, b.st, "ann", "hi"); d.Reason != store.ReasonAwaitingAck {
		t.Fatalf("ann's delivery while a lives: reason %q, want %s", d.Reason, store.ReasonAwaitingAck)
	}

	clk.advance(2 * time.Hour) // a's lease runs out; b renews
	b.svc.renew(t.Context())
	if d := deliveryOf(t, b.st, "ann", "hi"); d.Status != store.DeliverySent || d.Reason != store.ReasonPendingConnection {
		t.Fatalf("ann's delivery after a died = %s/%q, want sent/%s", d.Status, d.Reason, store.ReasonPendingConnection)
	}
	if got := read(t, bobOnB); got != `{"seq":1,"text":"lost"}` {
		t.Fatalf("bob's connection on b got %s", got)
	}
	if d := deliveryOf(t, b.st, "bob", "lost"); d.Reason != store.ReasonAwaitingAck {
		t.Fatalf("bob's delivery after a died: reason %q, want %s", d.Reason, store.ReasonAwaitingAck)
	}
}

// TestResyncFetchesWhatNoWakeupTold: a message stored while the node was
// not listening reaches the connection when listening starts again.
func TestResyncFetchesWhatNoWakeupTold(t *testing.T) {
	clk := &clock{now: time.Now()}
	a, _ := twoNodes(t, clk)
	ws := a.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	read(t, ws)
	waitFor(t, "ann to be connected", func() bool { return a.svc.Connected("web", "ann") })
	if _, err := a.st.AppendWebchat(t.Context(), []store.WebchatAppend{{WebchatMessage: store.WebchatMessage{
		ChannelID: "web", UserID: "ann", Seq: 1, IdempotencyKey: "k1", Frame: []byte(`{"seq":1}`)}}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	a.svc.resync(t.Context())
	if got := read(t, ws); got != `{"seq":1}` {
		t.Fatalf("got %s", got)
	}
	a.svc.resync(t.Context()) // nothing new: nothing written twice
	write(t, ws, `{"say":"r1"}`)
	if got := read(t, ws); got != `{"ok":"r1"}` {
		t.Fatalf("got %s, want only the reply", got)
	}
}
