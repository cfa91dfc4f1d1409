package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// webChannel is the demo workspace's web chat channel.
const webChannel = "demo-web"

// webchatEnv is a gateway running the demo workspace with its webhook and
// web chat channels, and a channel key of the web chat channel for the
// broadcast API.
func webchatEnv(t *testing.T) csmlEnv {
	t.Helper()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook", "assistant"}})
	g.Apply(t, demoWorkspace(t, sink.URL))
	return csmlEnv{g: g, sink: sink, key: gatewaytest.NewKey(t, g.Store, "demo", store.ScopeChannel, webChannel)}
}

// frame is any server frame of the Assistant protocol.
type frame struct {
	Type      string          `json:"type"`
	Seq       int64           `json:"seq"`
	Content   message.Content `json:"content"`
	Text      string          `json:"text"`
	UserID    string          `json:"user_id"`
	Token     string          `json:"token"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	RequestID string          `json:"request_id"`
	LastSeq   int64           `json:"last_seq"` // resume_reset
}

// chat is a websocket client of the Assistant protocol.
type chat struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan frame
	done   chan struct{}
	err    error // why reading stopped; set before done closes
	user   string
	token  string
	ids    atomic.Int64
	// backlog holds frames set aside while waiting for another, in order.
	backlog []frame
}

func wsURL(g *gatewaytest.Gateway, channelID string) string {
	return "ws" + strings.TrimPrefix(g.URL, "http") + "/channels/" + channelID + "/ws"
}

// dialChat connects; hdr may set Origin.
func dialChat(t testing.TB, url string, hdr http.Header) (*chat, *http.Response, error) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		return nil, resp, err
	}
	c := &chat{t: t, ws: ws, frames: make(chan frame, 4096), done: make(chan struct{})}
	t.Cleanup(func() { _ = ws.Close() })
	go c.read()
	return c, resp, nil
}

func openChat(t testing.TB, g *gatewaytest.Gateway) *chat {
	t.Helper()
	c, _, err := dialChat(t, wsURL(g, webChannel), nil)
	if err != nil {
		t.Fatalf("dial web chat: %v", err)
	}
	return c
}

func (c *chat) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.err = fmt.Errorf("server frame %q is not JSON: %w", data, err)
			return
		}
		c.frames <- f
	}
}

func (c *chat) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

func (c *chat) rid() string { return fmt.Sprintf("r%d", c.ids.Add(1)) }

// next returns the next frame.
func (c *chat) next(within time.Duration) frame {
	c.t.Helper()
	if len(c.backlog) > 0 {
		f := c.backlog[0]
		c.backlog = c.backlog[1:]
		return f
	}
	select {
	case f := <-c.frames:
		return f
	case <-time.After(within):
		c.t.Fatalf("no frame within %s", within)
	case <-c.done:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("connection ended: %v", c.err)
	}
	return frame{}
}

// hello starts a session (with the stored token, if any) and returns the
// welcome.
func (c *chat) hello(fields map[string]any) frame {
	c.t.Helper()
	f := map[string]any{"type": "hello", "request_id": c.rid()}
	if c.token != "" {
		f["token"] = c.token
	}
	for k, v := range fields {
		f[k] = v
	}
	c.send(f)
	w := c.next(10 * time.Second)
	if w.Type != "welcome" || w.UserID == "" || w.Token == "" {
		c.t.Fatalf("answer to hello = %+v, want a welcome", w)
	}
	c.user, c.token = w.UserID, w.Token
	return w
}

// say sends a text message and waits for its "received".
func (c *chat) say(text string) {
	c.t.Helper()
	id := c.rid()
	c.send(map[string]any{"type": "message", "request_id": id, "text": text})
	c.waitReceived(id)
}

// click sends a button click and waits for its "received".
func (c *chat) click(payload string) {
	c.t.Helper()
	id := c.rid()
	c.send(map[string]any{"type": "button", "request_id": id, "payload": payload})
	c.waitReceived(id)
}

func (c *chat) waitReceived(id string) {
	c.t.Helper()
	var kept []frame
	defer func() { c.backlog = append(kept, c.backlog...) }()
	for {
		f := c.next(20 * time.Second)
		if f.Type == "received" && f.RequestID == id {
			return
		}
		if f.Type != "message" {
			c.t.Fatalf("waiting for received %s, got %+v", id, f)
		}
		kept = append(kept, f) // a bot message written before the receipt
	}
}

// messages returns the next n message frames, failing on any other frame.
func (c *chat) messages(n int, within time.Duration) []frame {
	c.t.Helper()
	out := make([]frame, 0, n)
	deadline := time.Now().Add(within)
	for len(out) < n {
		f := c.next(time.Until(deadline))
		if f.Type != "message" {
			c.t.Fatalf("got %+v while waiting for message %d of %d", f, len(out)+1, n)
		}
		out = append(out, f)
	}
	return out
}

func (c *chat) ack(seq int64) { c.send(map[string]any{"type": "ack", "seq": seq}) }

// quiet fails if a frame arrives within d.
func (c *chat) quiet(d time.Duration) {
	c.t.Helper()
	if len(c.backlog) > 0 {
		c.t.Fatalf("unexpected frame %+v", c.backlog[0])
	}
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame %+v", f)
	case <-time.After(d):
	}
}

// closed waits for the server to end the connection and returns its close
// code (0: no close frame).
func (c *chat) closed(within time.Duration) (int, string) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(within):
		c.t.Fatalf("connection still open after %s", within)
	}
	var ce *websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code, ce.Text
	}
	return 0, fmt.Sprint(c.err)
}

// drop ends the connection without a close frame, like a lost network.
func (c *chat) drop() {
	_ = c.ws.NetConn().Close()
	<-c.done
}

// seqs lists the sequence numbers of frames.
func seqs(fs []frame) []int64 {
	out := make([]int64, len(fs))
	for i, f := range fs {
		out[i] = f.Seq
	}
	return out
}

// broadcast triggers a flow for a web chat user through the CSML
// Broadcasts API and returns the request id.
func (e csmlEnv) broadcast(t *testing.T, user, flow string, metadata string) string {
	t.Helper()
	if metadata == "" {
		metadata = "{}"
	}
	code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, fmt.Sprintf(
		`{"payload":{"content_type":"flow_trigger","content":{"flow_id":%q}},"client":{"user_id":%q},"metadata":%s}`, flow, user, metadata))
	if code != http.StatusOK {
		t.Fatalf("POST /v1/api/broadcasts: %d %v", code, out)
	}
	return out["request_id"].(string)
}
