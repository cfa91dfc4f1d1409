package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// fakePlugin speaks a toy protocol: {"hello":"USER","last":N} starts a
// session, {"ack":N} acknowledges, {"say":"ID"} is a message answered with
// {"ok":"ID"}; outbound frames are {"seq":N,"text":"…"}; a resume from the
// future is answered {"resume_reset":N}.
type fakePlugin struct {
	mu   sync.Mutex
	down int // the next calls find the plugin restarting
	// noReset makes the plugin one built against an sdk without
	// sdk.ResumeResetter.
	noReset bool
}

func (p *fakePlugin) Channel(string) (sdk.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down > 0 {
		p.down--
		return nil, &pluginhost.UnavailableError{Plugin: "fake", State: pluginhost.StateRestarting}
	}
	if p.noReset {
		return struct {
			sdk.Channel
			sdk.SocketChannel
		}{SocketChannel: fakeSocket{}}, nil
	}
	return fakeSocket{}, nil
}

func (p *fakePlugin) Describe(string) (sdk.Description, bool) {
	return sdk.Description{Name: "fake", Capabilities: sdk.Capabilities{Websocket: true}}, true
}

type fakeSocket struct {
	sdk.Channel // not called
}

func (fakeSocket) HandleFrame(_ context.Context, f *sdk.Frame) (*sdk.FrameResult, error) {
	var in struct {
		Hello string `json:"hello"`
		Last  int64  `json:"last"`
		Ack   int64  `json:"ack"`
		Say   string `json:"say"`
	}
	if err := json.Unmarshal(f.Data, &in); err != nil {
		return &sdk.FrameResult{Replies: [][]byte{[]byte(`{"error":"bad_frame"}`)}}, nil
	}
	switch {
	case in.Hello != "":
		return &sdk.FrameResult{Start: &sdk.SessionStart{UserID: in.Hello, ResumeAfter: in.Last},
			Replies: [][]byte{[]byte(`{"welcome":"` + in.Hello + `"}`)}}, nil
	case in.Ack > 0:
		return &sdk.FrameResult{AckSeq: in.Ack}, nil
	}
	return &sdk.FrameResult{
		Events:  []sdk.Event{{Type: sdk.EventMessage, ID: in.Say, Content: message.Text(in.Say)}},
		Replies: [][]byte{[]byte(`{"ok":"` + in.Say + `"}`)},
	}, nil
}

func (fakeSocket) RenderOutbound(_ context.Context, b []sdk.SequencedOutbound) ([]sdk.RenderedFrame, error) {
	out := make([]sdk.RenderedFrame, len(b))
	for i, m := range b {
		out[i].Frame = fmt.Appendf(nil, `{"seq":%d,"text":%q}`, m.Seq, m.Content.Text)
	}
	return out, nil
}

func (fakeSocket) RenderResumeReset(_ context.Context, r sdk.ResumeReset) ([]byte, error) {
	return fmt.Appendf(nil, `{"resume_reset":%d}`, r.LastSeq), nil
}

// events records what the service stores.
type events struct {
	mu  sync.Mutex
	got []sdk.Event
}

func (e *events) Accept(_ context.Context, _ store.Channel, evs []sdk.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, evs...)
	return nil
}

type notifier struct{}

func (notifier) Notify() {}

type env struct {
	svc    *Service
	st     *sqlstore.Store
	plugin *fakePlugin
	events *events
	url    string
	// stop ends the service's Run and waits for it (also done at
	// cleanup).
	stop func()
}

func newEnv(t *testing.T, limits Limits) *env {
	t.Helper()
	return startNode(t, newStore(t), Options{Limits: limits})
}

// newStore is a store with the channel "web" of the fake plugin.
func newStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	st := sqlstore.OpenTest(t)
	ctx := t.Context()
	if err := st.UpsertWorkspace(ctx, store.Workspace{ID: "ws", Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	b := store.Bot{WorkspaceID: "ws", Name: "bot", Definition: json.RawMessage(`{"flows":[]}`)}
	if err := st.UpsertBot(ctx, &b); err != nil {
		t.Fatal(err)
	}
	ch := store.Channel{ID: "web", WorkspaceID: "ws", BotID: b.ID, Name: "web", Type: "fake", Enabled: true,
		Config: json.RawMessage(`{"allowed_origins":["https://shop.example.com"]}`)}
	if err := st.UpsertChannel(ctx, &ch); err != nil {
		t.Fatal(err)
	}
	return st
}

// startNode runs a service on st with opts (its store, plugins, events,
// queue and secret filled in) until the test ends.
func startNode(t *testing.T, st *sqlstore.Store, opts Options) *env {
	t.Helper()
	e := &env{st: st, plugin: &fakePlugin{}, events: &events{}}
	opts.Store, opts.Plugins, opts.Events, opts.Queue, opts.SecretKey = st, e.plugin, e.events, notifier{}, "secret"
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	mux := http.NewServeMux()
	for _, r := range svc.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = svc.Run(runCtx); close(done) }()
	e.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(func() { e.stop(); srv.Close() })
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/channels/web/ws"
	return e
}

func (e *env) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func write(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// closeCode reads until the connection ends and returns the close code (0
// when it ended without one).
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			return 0
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliver hands outbound messages to the outbox as the pipeline would.
func (e *env) deliver(t *testing.T, user string, texts ...string) []sdk.SendResult {
	t.Helper()
	ch, err := e.svc.Plugins(e.plugin).Channel("fake")
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]sdk.Outbound, len(texts))
	for i, text := range texts {
		batch[i] = sdk.Outbound{ChannelID: "web", Recipient: user, IdempotencyKey: user + "/" + text, Content: message.Text(text)}
	}
	rs, err := ch.Send(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestOriginAllowed(t *testing.T) {
	allowed := []string{"https://shop.example.com", "http://localhost:8080/"}
	for origin, want := range map[string]bool{
		"":                              true, // not a browser
		"http://gw.example.com":         true, // the gateway's own pages
		"https://shop.example.com":      true,
		"HTTPS://SHOP.EXAMPLE.COM":      true,
		"http://localhost:8080":         true,
		"https://evil.example.com":      false,
		"https://shop.example.com.evil": false,
		"http://shop.example.com":       false, // another scheme is another origin
		"::bad":                         false,
	} {
		r := httptest.NewRequest("GET", "http://gw.example.com/channels/web/ws", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if got := originAllowed(r, allowed); got != want {
			t.Errorf("origin %q: allowed %v, want %v", origin, got, want)
		}
	}
	if !originAllowed(httptest.NewRequest("GET", "http://gw/ws", nil), []string{"*"}) {
		t.Error(`"*" must allow any origin`)
	}
}

func TestConnectionWithoutSessionIsClosed(t *testing.T) {
	e := newEnv(t, Limits{HelloTimeout: 50 * time.Millisecond})
	ws := e.dial(t)
	if code := closeCode(t, ws); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008", code)
	}
	waitFor(t, "the connection to be forgotten", func() bool { return e.svc.Connections() == 0 })
}

func TestSilentClientIsDropped(t *testing.T) {
	e := newEnv(t, Limits{PongWait: 100 * time.Millisecond})
	ws := e.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	// Not reading, the client answers no ping.
	waitFor(t, "ann to be connected", func() bool { return e.svc.Connected("web", "ann") })
	waitFor(t, "the silent connection to be dropped", func() bool { return !e.svc.Connected("web", "ann") && e.svc.Connections() == 0 })
}

func TestPingsKeepAReadingClient(t *testing.T) {
	e := newEnv(t, Limits{PongWait: 500 * time.Millisecond})
	ws := e.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	read(t, ws) // welcome
	// gorilla's client answers pings while it reads.
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	time.Sleep(2500 * time.Millisecond) // five pong waits
	if !e.svc.Connected("web", "ann") {
		t.Fatal("a client answering pings was dropped")
	}
}

func TestSlowConsumerIsClosedAndResumesWithoutLoss(t *testing.T) {
	e := newEnv(t, Limits{SendQueue: 2, WriteWait: 2 * time.Second})
	ws := e.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	read(t, ws)
	waitFor(t, "ann to be connected", func() bool { return e.svc.Connected("web", "ann") })
	// The client does not read: its TCP buffers fill, then its queue.
	big := strings.Repeat("x", 512<<10)
	var texts []string
	for i := 0; e.svc.Connected("web", "ann"); i++ {
		if i == 200 {
			t.Fatal("200 messages of 512 KiB queued for a client that does not read")
		}
		texts = append(texts, fmt.Sprintf("%d-%s", i, big))
		e.deliver(t, "ann", texts[i])
	}
	// Reconnected, the client gets every message, in order.
	ws2 := e.dial(t)
	write(t, ws2, `{"hello":"ann","last":0}`)
	read(t, ws2)
	for i := range texts {
		var f struct {
			Seq  int64
			Text string
		}
		if err := json.Unmarshal([]byte(read(t, ws2)), &f); err != nil {
			t.Fatal(err)
		}
		if f.Seq != int64(i+1) || f.Text != texts[i] {
			t.Fatalf("message %d after resume: seq %d, text %.10q", i+1, f.Seq, f.Text)
		}
	}
}

func TestFrameWaitsForARestartingPlugin(t *testing.T) {
	e := newEnv(t, Limits{})
	ws := e.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	read(t, ws)
	e.plugin.mu.Lock()
	e.plugin.down = 3
	e.plugin.mu.Unlock()
	write(t, ws, `{"say":"r1"}`)
	if got := read(t, ws); got != `{"ok":"r1"}` {
		t.Fatalf("reply %s", got)
	}
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	if len(e.events.got) != 1 || e.events.got[0].UserID != "ann" || e.events.got[0].ID != "r1" {
		t.Fatalf("events = %+v, want r1 of ann", e.events.got)
	}
}

func TestPluginDownTooLongClosesWithTryAgainLater(t *testing.T) {
	e := newEnv(t, Limits{PluginWait: 200 * time.Millisecond})
	ws := e.dial(t)
	e.plugin.mu.Lock()
	e.plugin.down = 1000
	e.plugin.mu.Unlock()
	write(t, ws, `{"hello":"ann"}`)
	if code := closeCode(t, ws); code != websocket.CloseTryAgainLater {
		t.Fatalf("close code %d, want 1013", code)
	}
}

func TestOutboxOrderAndGaps(t *testing.T) {
	e := newEnv(t, Limits{})
	ws := e.dial(t)
	write(t, ws, `{"hello":"ann"}`)
	read(t, ws)
	waitFor(t, "ann to be connected", func() bool { return e.svc.Connected("web", "ann") })

	// Offline bob's delivery waits; connected ann's is in flight.
	rs := e.deliver(t, "bob", "b1")
	if rs[0].Err != nil || rs[0].ProviderID != "seq:1" {
		t.Fatalf("bob's result %+v", rs[0])
	}
	rs = e.deliver(t, "ann", "a1", "a2")
	if rs[0].ProviderID != "seq:1" || rs[1].ProviderID != "seq:2" {
		t.Fatalf("ann's results %+v", rs)
	}
	for _, want := range []string{`{"seq":1,"text":"a1"}`, `{"seq":2,"text":"a2"}`} {
		if got := read(t, ws); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	// Messages stored by another node (or published late) reach the
	// connection in order when a later one shows the gap.
	_, err := e.st.AppendWebchat(t.Context(), []store.WebchatAppend{
		{WebchatMessage: store.WebchatMessage{ChannelID: "web", UserID: "ann", Seq: 3, IdempotencyKey: "x3", Frame: []byte(`{"seq":3}`)}},
		{WebchatMessage: store.WebchatMessage{ChannelID: "web", UserID: "ann", Seq: 4, IdempotencyKey: "x4", Frame: []byte(`{"seq":4}`)}},
	}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.hub.publish(userKey{"web", "ann"}, 4, []byte(`{"seq":4}`))
	e.svc.hub.publish(userKey{"web", "ann"}, 3, []byte(`{"seq":3}`)) // late: skipped
	e.svc.hub.publish(userKey{"web", "ann"}, 2, []byte(`{"seq":2}`)) // again: skipped
	for _, want := range []string{`{"seq":3}`, `{"seq":4}`} {
		if got := read(t, ws); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	write(t, ws, `{"say":"after"}`)
	if got := read(t, ws); got != `{"ok":"after"}` {
		t.Fatalf("got %s after the gap, want only the reply (no duplicate)", got)
	}
}

// blockingAcks holds the first AckWebchat call until released.
type blockingAcks struct {
	release chan struct{}
	mu      sync.Mutex
	calls   [][]store.WebchatAck
}

func (b *blockingAcks) AckWebchat(_ context.Context, acks []store.WebchatAck, _ int, _ time.Time) error {
	b.mu.Lock()
	first := len(b.calls) == 0
	b.calls = append(b.calls, acks)
	b.mu.Unlock()
	if first {
		<-b.release
	}
	return nil
}

func TestAcksArrivingDuringAWriteAreMerged(t *testing.T) {
	st := &blockingAcks{release: make(chan struct{})}
	a := newAcker(st, 10, slog.New(slog.DiscardHandler))
	a.add(userKey{"web", "ann"}, 1)
	waitFor(t, "the first write", func() bool { st.mu.Lock(); defer st.mu.Unlock(); return len(st.calls) == 1 })
	for i := int64(2); i <= 50; i++ {
		a.add(userKey{"web", "ann"}, i)
		a.add(userKey{"web", "bob"}, i)
	}
	a.add(userKey{"web", "ann"}, 7) // older than what ann acked: no effect
	close(st.release)
	a.wait()
	if len(st.calls) != 2 {
		t.Fatalf("%d writes, want 2 (the blocked one and one merged batch): %+v", len(st.calls), st.calls)
	}
	got := map[string]int64{}
	for _, ack := range st.calls[1] {
		got[ack.UserID] = ack.Seq
	}
	if got["ann"] != 50 || got["bob"] != 50 || len(got) != 2 {
		t.Fatalf("merged batch = %v, want ann and bob at 50", got)
	}
}

// TestResumeFromTheFutureIsReset: a client resuming after a sequence number
// never given out is told the last one (after its welcome, before any
// message) and then gets the next message live; one resuming within range
// is not told anything.
func TestResumeFromTheFutureIsReset(t *testing.T) {
	e := newEnv(t, Limits{})
	enqueue(t, e.st, "ann", "one", "two", "three")
	e.deliver(t, "ann", "one", "two")

	ws := e.dial(t)
	write(t, ws, `{"hello":"ann","last":1000}`)
	for _, want := range []string{`{"welcome":"ann"}`, `{"resume_reset":2}`} {
		if got := read(t, ws); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	waitFor(t, "ann's session", func() bool { return e.svc.Connected("web", "ann") })
	e.deliver(t, "ann", "three")
	if got := read(t, ws); got != `{"seq":3,"text":"three"}` {
		t.Fatalf("after the reset got %s", got)
	}

	ws2 := e.dial(t)
	write(t, ws2, `{"hello":"ann","last":2}`)
	for _, want := range []string{`{"welcome":"ann"}`, `{"seq":3,"text":"three"}`} {
		if got := read(t, ws2); got != want {
			t.Fatalf("resume within range: got %s, want %s", got, want)
		}
	}
}

// TestResumeFromTheFutureWithAnOlderPlugin: a plugin without a resume reset
// frame cannot tell the client, but the session still resumes after the
// last sequence number, so the next message arrives.
func TestResumeFromTheFutureWithAnOlderPlugin(t *testing.T) {
	e := newEnv(t, Limits{})
	e.plugin.noReset = true
	enqueue(t, e.st, "ann", "one", "two")
	e.deliver(t, "ann", "one")

	ws := e.dial(t)
	write(t, ws, `{"hello":"ann","last":1000}`)
	if got := read(t, ws); got != `{"welcome":"ann"}` {
		t.Fatalf("got %s", got)
	}
	waitFor(t, "ann's session", func() bool { return e.svc.Connected("web", "ann") })
	e.deliver(t, "ann", "two")
	if got := read(t, ws); got != `{"seq":2,"text":"two"}` {
		t.Fatalf("got %s, want the next message", got)
	}
}
