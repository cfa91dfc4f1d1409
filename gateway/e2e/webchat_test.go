package e2e

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/webchat"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

func frameTexts(fs []frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Content.Text
	}
	return out
}

// waitDeliveries polls the deliveries of a user's conversations (through
// their outbound messages) until check accepts them.
func waitDeliveries(t *testing.T, e csmlEnv, user string, check func([]store.Delivery) bool) []store.Delivery {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		convs, err := e.g.Store.ListConversations(ctx, store.ConversationFilter{ChannelID: webChannel, UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		var ds []store.Delivery
		for _, c := range convs {
			msgs, err := e.g.Store.ListMessages(ctx, c.ID, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if m.Direction != store.Outbound {
					continue
				}
				d, err := e.g.Store.GetDelivery(ctx, m.DeliveryID)
				if err != nil {
					t.Fatal(err)
				}
				ds = append(ds, d)
			}
		}
		if check(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s: %+v", user, ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allDelivered(ds []store.Delivery) bool {
	for _, d := range ds {
		if d.Status != store.DeliveryDelivered {
			return false
		}
	}
	return len(ds) > 0
}

// broadcastMessages polls a request's result until its messages exist and
// check accepts them.
func broadcastMessages(t *testing.T, e csmlEnv, id string, check func([]map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, out, _ := e.do(t, "GET", "/v1/api/broadcasts/"+id, e.key, "")
		var ms []map[string]any
		if raw, ok := out["messages"].([]any); ok {
			for _, m := range raw {
				ms = append(ms, m.(map[string]any))
			}
		}
		if len(ms) > 0 && check(ms) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("broadcast %s: %v", id, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func every(ms []map[string]any, status, reason string) bool {
	for _, m := range ms {
		r, _ := m["reason"].(string)
		if m["status"] != status || r != reason {
			return false
		}
	}
	return true
}

func TestWebchatConversationRoundTrip(t *testing.T) {
	t.Parallel()
	e := webchatEnv(t)
	c := openChat(t, e.g)
	c.hello(map[string]any{"start": true})
	if !strings.HasPrefix(c.user, "anon-") {
		t.Fatalf("user %q, want an anonymous id", c.user)
	}

	ms := c.messages(2, 10*time.Second)
	if !reflect.DeepEqual(seqs(ms), []int64{1, 2}) || !strings.HasPrefix(ms[0].Text, "Hi! I'm the Switchboard demo bot") {
		t.Fatalf("welcome messages = %v %q", seqs(ms), frameTexts(ms))
	}
	menu := ms[1].Content
	if menu.Type != message.TypeButtons || len(menu.Buttons) != 3 || menu.Buttons[0].Payload != "name" {
		t.Fatalf("menu = %+v, want the demo bot's 3 buttons", menu)
	}

	c.click("name")
	if ms = c.messages(1, 10*time.Second); ms[0].Seq != 3 || ms[0].Text != "What's your name?" {
		t.Fatalf("after the click: %d %q", ms[0].Seq, ms[0].Text)
	}
	c.say("  bob ")
	ms = c.messages(2, 10*time.Second)
	if !reflect.DeepEqual(seqs(ms), []int64{4, 5}) || ms[0].Text != "Nice to meet you, Bob!" || ms[1].Content.Text != "Anything else?" {
		t.Fatalf("after the answer: %v %q", seqs(ms), frameTexts(ms))
	}

	// Until the client acknowledges, the messages are sent, not delivered.
	ds := waitDeliveries(t, e, c.user, func(ds []store.Delivery) bool { return len(ds) == 5 })
	for _, d := range ds {
		if d.Status != store.DeliverySent || d.ProviderID == "" {
			t.Fatalf("before the ack: delivery %d is %s (provider %q), want sent", d.ID, d.Status, d.ProviderID)
		}
	}
	c.ack(5)
	waitDeliveries(t, e, c.user, allDelivered)
	c.quiet(200 * time.Millisecond)
}

func TestWebchatResumeAfterADroppedConnectionHasNoGapNoDuplicate(t *testing.T) {
	t.Parallel()
	e := webchatEnv(t)
	c := openChat(t, e.g)
	c.hello(map[string]any{"start": true})
	c.messages(2, 10*time.Second) // seen, not acknowledged
	c.drop()

	// Sent while the user has no connection: the request says so.
	id := e.broadcast(t, c.user, "reminder", `{"title":"the demo"}`)
	out := broadcastMessages(t, e, id, func(ms []map[string]any) bool {
		return len(ms) == 2 && every(ms, "sent", store.ReasonPendingConnection)
	})
	if out["status"] != "pending_connection" {
		t.Errorf("request status %v, want pending_connection", out["status"])
	}

	// The client resumes after the last message it saw.
	c2 := openChat(t, e.g)
	c2.token = c.token
	if w := c2.hello(map[string]any{"last_seq": 2}); w.UserID != c.user {
		t.Fatalf("resumed as %s, want %s", w.UserID, c.user)
	}
	ms := c2.messages(2, 10*time.Second)
	if !reflect.DeepEqual(seqs(ms), []int64{3, 4}) || ms[0].Text != "Reminder: the demo." || ms[1].Content.Text != "Will you make it?" {
		t.Fatalf("resumed with %v %q, want the reminder as 3 and 4", seqs(ms), frameTexts(ms))
	}
	c2.quiet(300 * time.Millisecond)
	c2.ack(4)
	broadcastMessages(t, e, id, func(ms []map[string]any) bool { return every(ms, "delivered", "") })
	waitDeliveries(t, e, c.user, allDelivered)

	// A third connection resuming in the middle gets only what follows;
	// a reloaded page (last_seq 0) gets the whole history, in order.
	c3 := openChat(t, e.g)
	c3.token = c.token
	c3.hello(map[string]any{"last_seq": 3})
	if ms = c3.messages(1, 5*time.Second); ms[0].Seq != 4 {
		t.Fatalf("resume after 3 gave %d", ms[0].Seq)
	}
	c3.quiet(200 * time.Millisecond)
	c4 := openChat(t, e.g)
	c4.token = c.token
	c4.hello(nil)
	if ms = c4.messages(4, 5*time.Second); !reflect.DeepEqual(seqs(ms), []int64{1, 2, 3, 4}) {
		t.Fatalf("history = %v", seqs(ms))
	}
	c4.quiet(200 * time.Millisecond)
}

func TestWebchatOfflineMessageIsDeliveredOnTheNextConnection(t *testing.T) {
	t.Parallel()
	e := webchatEnv(t)
	c := openChat(t, e.g)
	c.hello(nil) // a session, no conversation yet
	c.send(map[string]any{"type": "ack", "seq": 1})
	if err := c.ws.WriteMessage(8, []byte{0x03, 0xe8}); err != nil { // close 1000
		t.Fatal(err)
	}
	c.closed(5 * time.Second)

	id := e.broadcast(t, c.user, "reminder", "")
	broadcastMessages(t, e, id, func(ms []map[string]any) bool {
		return len(ms) == 2 && every(ms, "sent", store.ReasonPendingConnection)
	})
	// Nothing is lost by waiting: it comes on the next connection.
	time.Sleep(300 * time.Millisecond)
	c2 := openChat(t, e.g)
	c2.token = c.token
	c2.hello(nil)
	ms := c2.messages(2, 10*time.Second)
	if !reflect.DeepEqual(seqs(ms), []int64{1, 2}) || !strings.HasPrefix(ms[0].Text, "Reminder: you have an appointment") {
		t.Fatalf("offline messages = %v %q", seqs(ms), frameTexts(ms))
	}
	c2.ack(2)
	out := broadcastMessages(t, e, id, func(ms []map[string]any) bool { return every(ms, "delivered", "") })
	if out["status"] != "delivered" {
		t.Errorf("request status %v after the ack, want delivered", out["status"])
	}
}

func TestWebchatTwoTabsBothReceive(t *testing.T) {
	t.Parallel()
	e := webchatEnv(t)
	tab1 := openChat(t, e.g)
	tab1.hello(map[string]any{"start": true})
	tab1.messages(2, 10*time.Second)
	tab2 := openChat(t, e.g)
	tab2.token = tab1.token
	tab2.hello(map[string]any{"last_seq": 2})

	id := e.broadcast(t, tab1.user, "reminder", `{"when":"Monday"}`)
	m1, m2 := tab1.messages(2, 10*time.Second), tab2.messages(2, 10*time.Second)
	if !reflect.DeepEqual(seqs(m1), []int64{3, 4}) || !reflect.DeepEqual(m1, m2) {
		t.Fatalf("tab 1 got %v %q, tab 2 %v %q; want the same reminder as 3 and 4", seqs(m1), frameTexts(m1), seqs(m2), frameTexts(m2))
	}
	// An answer from one tab shows its reply in both.
	tab1.click("yes")
	m1, m2 = tab1.messages(1, 10*time.Second), tab2.messages(1, 10*time.Second)
	if m1[0].Seq != 5 || m1[0].Text != "Great, see you Monday!" || !reflect.DeepEqual(m1, m2) {
		t.Fatalf("reply: tab 1 %+v, tab 2 %+v", m1[0], m2[0])
	}
	// One tab's ack is the user's.
	tab2.ack(5)
	broadcastMessages(t, e, id, func(ms []map[string]any) bool { return every(ms, "delivered", "") })
}

func TestWebchatPluginRestartMidConversationLosesNothing(t *testing.T) {
	t.Parallel()
	e := webchatEnv(t)
	c := openChat(t, e.g)
	c.hello(map[string]any{"start": true})
	c.messages(2, 10*time.Second)
	c.ack(2)

	pid := pluginPID(t, e, "assistant")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// While the plugin is down, the user answers and a broadcast comes in.
	// The socket stays open; the click waits in the gateway for the new
	// process, the broadcast in the outbox.
	c.click("name")
	id := e.broadcast(t, c.user, "reminder", "")
	ms := c.messages(3, 30*time.Second)
	if !reflect.DeepEqual(seqs(ms), []int64{3, 4, 5}) {
		t.Fatalf("after the restart: %v %q, want 3, 4, 5", seqs(ms), frameTexts(ms))
	}
	got := strings.Join(frameTexts(ms), " | ")
	for _, want := range []string{"What's your name?", "Reminder: you have an appointment.", "Will you make it?"} {
		if !strings.Contains(got, want) {
			t.Fatalf("after the restart got %q, missing %q", got, want)
		}
	}
	if newPID := pluginPID(t, e, "assistant"); newPID == pid {
		t.Fatalf("plugin pid %d unchanged: it was not restarted", pid)
	}
	c.ack(5)
	broadcastMessages(t, e, id, func(ms []map[string]any) bool { return every(ms, "delivered", "") })
	c.quiet(300 * time.Millisecond)
}

func pluginPID(t *testing.T, e csmlEnv, name string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, p := range e.g.App.Host.Status() {
			if p.Name == name && p.PID != 0 && p.State == "running" {
				return p.PID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin %s is not running: %+v", name, e.g.App.Host.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWebchatRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := webchatEnv(t)
	url := wsURL(e.g, webChannel)

	t.Run("foreign origin", func(t *testing.T) {
		_, resp, err := dialChat(t, url, http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial from a foreign origin: %v, %v; want 403", resp, err)
		}
		for _, origin := range []string{"http://localhost:8080", e.g.URL} { // allowed; the gateway's own
			c, _, err := dialChat(t, url, http.Header{"Origin": {origin}})
			if err != nil {
				t.Fatalf("dial from %s: %v", origin, err)
			}
			c.hello(nil)
		}
	})

	t.Run("not a web chat channel", func(t *testing.T) {
		for _, id := range []string{"nope", "demo-webhook"} {
			_, resp, err := dialChat(t, wsURL(e.g, id), nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
				t.Fatalf("dial %s: %v; want 404", id, err)
			}
		}
	})

	t.Run("bad or expired token", func(t *testing.T) {
		key := webchat.SessionKey(e.g.Config.SecretKey, webChannel)
		expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "switchboard", "aud": webChannel,
			"sub": "anon-x", "exp": time.Now().Add(-time.Hour).Unix()}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{expired, "not-a-token", expired[:len(expired)-2] + "xx"} {
			c := openChat(t, e.g)
			c.send(map[string]any{"type": "hello", "token": tok})
			if f := c.next(5 * time.Second); f.Type != "error" || f.Code != "unauthorized" {
				t.Fatalf("hello with a bad token: %+v", f)
			}
			if code, _ := c.closed(5 * time.Second); code != 1008 {
				t.Fatalf("close code %d, want 1008", code)
			}
		}
	})

	t.Run("oversize frame", func(t *testing.T) {
		c := openChat(t, e.g)
		c.hello(nil)
		// The gateway closes as soon as the frame passes the limit, so the
		// write itself may fail (the close arrived first): what counts is
		// the close code the client gets.
		_ = c.ws.WriteJSON(map[string]any{"type": "message", "request_id": "big", "text": strings.Repeat("x", 100<<10)})
		if code, _ := c.closed(5 * time.Second); code != 1009 {
			t.Fatalf("close code %d, want 1009", code)
		}
	})

	t.Run("malformed frames keep the connection", func(t *testing.T) {
		c := openChat(t, e.g)
		c.hello(nil)
		for _, bad := range []string{`not json`, `{"type":"message"}`, `{"type":"teleport"}`} {
			if err := c.ws.WriteMessage(1, []byte(bad)); err != nil {
				t.Fatal(err)
			}
			if f := c.next(5 * time.Second); f.Type != "error" || f.Code != "bad_frame" {
				t.Fatalf("answer to %s: %+v", bad, f)
			}
		}
		c.say("still here")
	})

	t.Run("flood", func(t *testing.T) {
		c := openChat(t, e.g)
		c.hello(nil)
		const sent = 300
		go func() {
			for i := range sent {
				if c.ws.WriteJSON(map[string]any{"type": "ack", "seq": i + 1}) != nil {
					return
				}
			}
		}()
		code, _ := c.closed(10 * time.Second)
		if code != 1008 {
			t.Fatalf("close code %d, want 1008 (policy violation)", code)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get(e.g.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`switchboard_webchat_connections_closed_total{code="1009"}`,
			`switchboard_webchat_connections_closed_total{code="1008"}`, `switchboard_webchat_frames_total{direction="dropped"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics has no %s", want)
			}
		}
	})

	t.Run("page and widget", func(t *testing.T) {
		for path, want := range map[string]string{
			"/channels/demo-web/":          `src="widget.js"`,
			"/channels/demo-web/widget.js": "new WebSocket(",
		} {
			resp, err := http.Get(e.g.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Fatalf("GET %s: %d, body without %q", path, resp.StatusCode, want)
			}
		}
		resp, err := http.Get(e.g.URL + "/channels/demo-webhook/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("demo page of a webhook channel: %d, want 404", resp.StatusCode)
		}
	})
}
