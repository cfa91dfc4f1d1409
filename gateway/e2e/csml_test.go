package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// seedBroadcast is the request of CSML Studio's Broadcasts API docs, with
// the demo bot's reminder flow.
const seedBroadcast = `{
  "payload": {
    "content": {
      "flow_id": "reminder"
    },
    "content_type": "flow_trigger"
  },
  "client": {
    "user_id": "some-user-id"
  },
  "metadata": {
    "somekey": "somevalue",
    "title": "your dentist appointment"
  }
}`

type csmlEnv struct {
	g    *gatewaytest.Gateway
	sink *gatewaytest.Sink
	key  string
	bot  string
}

func newCSML(t *testing.T) csmlEnv {
	t.Helper()
	return newCSMLWith(t, nil)
}

// newCSMLWith is newCSML on a gateway whose config configure adjusts.
func newCSMLWith(t *testing.T, configure func(*config.Config)) csmlEnv {
	t.Helper()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: configure})
	g.Apply(t, demoWorkspace(t, sink.URL))
	b, err := g.Store.GetBotByName(context.Background(), "demo", "demo")
	if err != nil {
		t.Fatal(err)
	}
	return csmlEnv{g: g, sink: sink, key: gatewaytest.NewKey(t, g.Store, "demo", store.ScopeChannel, "demo-webhook"), bot: b.ID}
}

func (e csmlEnv) do(t *testing.T, method, path, key, body string, hdr ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.g.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// result polls the per-request result until it reaches want.
func (e csmlEnv) result(t *testing.T, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, _ := e.do(t, "GET", "/v1/api/broadcasts/"+id, e.key, "")
		if code != 200 {
			t.Fatalf("GET result: %d %v", code, out)
		}
		if out["status"] == want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s is %v (%v), want %s", id, out["status"], out["reason"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestBroadcastSeedRequestMatchesCSMLAndDelivers(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, seedBroadcast)
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, out)
	}
	id, _ := out["request_id"].(string)
	if !uuidRe.MatchString(id) {
		t.Fatalf("request_id %q is not a UUID", id)
	}
	want := map[string]any{
		"request_id": id,
		"client":     map[string]any{"user_id": "some-user-id", "bot_id": e.bot, "channel_id": "demo-webhook"},
		"payload":    map[string]any{"content_type": "flow_trigger", "content": map[string]any{"flow_id": "reminder", "close_flows": true}},
		"metadata":   map[string]any{"somekey": "somevalue", "title": "your dentist appointment"},
	}
	if fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("response\n got %v\nwant %v", out, want)
	}
	msgs := e.sink.WaitFor(t, 2, 10*time.Second)
	if msgs[0].UserID != "some-user-id" || msgs[0].Text != "Reminder: your dentist appointment." {
		t.Fatalf("first message %q to %s, want the reminder rendered with the metadata", msgs[0].Text, msgs[0].UserID)
	}
	res := e.result(t, id, "delivered")
	if res["delivered_at"] == nil || res["processed_at"] == nil || len(res["messages"].([]any)) != 2 {
		t.Fatalf("result = %v", res)
	}
}

func TestBroadcastCloseFlows(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	// Alice is mid-way through the welcome menu (an open ask).
	send(t, e.g, "w1", map[string]any{"user_id": "alice", "text": "hi"})
	e.sink.WaitFor(t, 2, 10*time.Second)
	_, open1, _ := e.do(t, "GET", "/v1/api/conversations/open?user_id=alice", e.key, "")
	if open1["flow_id"] != "welcome" {
		t.Fatalf("open conversation = %v", open1)
	}

	// close_flows defaults to true: the welcome conversation is closed and
	// the reminder runs in a new one.
	body := `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"REMINDER"}},"client":{"user_id":"alice"}}`
	code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, body)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	e.result(t, out["request_id"].(string), "delivered")
	_, open2, _ := e.do(t, "GET", "/v1/api/conversations/open?user_id=alice", e.key, "")
	if open2["flow_id"] != "reminder" || open2["id"] == open1["id"] {
		t.Fatalf("after close_flows=true: open conversation %v, want a new one in flow reminder (old %v)", open2["id"], open1["id"])
	}
	_, hist, _ := e.do(t, "GET", "/v1/api/conversations?user_id=alice", e.key, "")
	convs := hist["conversations"].([]any)
	if len(convs) != 2 || convs[1].(map[string]any)["status"] != "closed" {
		t.Fatalf("history = %v, want the welcome conversation closed", hist)
	}
	for _, m := range convs[0].(map[string]any)["messages"].([]any) {
		mm := m.(map[string]any)
		if mm["direction"] == "SEND" && mm["delivery"].(map[string]any)["status"] != "sent" {
			t.Fatalf("message delivery status = %v", mm["delivery"])
		}
	}

	// close_flows=false re-points the open conversation to the new flow,
	// keeping it (CSML engine behaviour).
	body = `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"Ask name","close_flows":false}},"client":{"user_id":"alice"}}`
	code, out, _ = e.do(t, "POST", "/v1/api/broadcasts", e.key, body)
	if code != 200 || out["payload"].(map[string]any)["content"].(map[string]any)["close_flows"] != false {
		t.Fatalf("%d %v", code, out)
	}
	e.result(t, out["request_id"].(string), "delivered")
	_, open3, _ := e.do(t, "GET", "/v1/api/conversations/open?user_id=alice", e.key, "")
	if open3["id"] != open2["id"] || open3["flow_id"] != "ask_name" {
		t.Fatalf("after close_flows=false: %v, want conversation %v re-pointed to ask_name", open3, open2["id"])
	}
	code, closed, _ := e.do(t, "POST", "/v1/api/conversations/close", e.key, `{"user_id":"alice"}`)
	if code != 200 || closed["closed"] != true {
		t.Fatalf("close: %d %v", code, closed)
	}
	code, _, _ = e.do(t, "GET", "/v1/api/conversations/open?user_id=alice", e.key, "")
	if code != 200 {
		t.Fatalf("open after close: %d", code)
	}
}

func TestBroadcastIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	_, a, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, seedBroadcast, "Idempotency-Key", "k-1")
	_, b, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, seedBroadcast, "Idempotency-Key", "k-1")
	if a["request_id"] == nil || a["request_id"] != b["request_id"] {
		t.Fatalf("retries with one key got request ids %v and %v", a["request_id"], b["request_id"])
	}
	e.result(t, a["request_id"].(string), "delivered")
	time.Sleep(300 * time.Millisecond)
	if n := len(e.sink.Messages()); n != 2 {
		t.Fatalf("sink got %d messages, want the reminder's 2 once", n)
	}
	other := strings.Replace(seedBroadcast, "somevalue", "othervalue", 1)
	code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, other, "Idempotency-Key", "k-1")
	if code != http.StatusConflict || errCode(out) != "idempotency_conflict" {
		t.Fatalf("same key, other body: %d %v, want 409", code, out)
	}
}

func errCode(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	c, _ := errs[0].(map[string]any)["code"].(string)
	return c
}

func errPointer(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	src, _ := errs[0].(map[string]any)["source"].(map[string]any)
	p, _ := src["pointer"].(string)
	return p
}

func TestBroadcastBadInput(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	big := fmt.Sprintf(`{"payload":{"content_type":"flow_trigger","content":{"flow_id":"reminder"}},"client":{"user_id":"u"},"metadata":{"x":%q}}`, strings.Repeat("a", 70<<10))
	cases := []struct {
		name, key, body string
		status          int
		code, pointer   string
	}{
		{"no key", "", seedBroadcast, 401, "missing_api_key", ""},
		{"wrong key", "sbc_nope", seedBroadcast, 401, "unauthorized", ""},
		{"invalid json", e.key, `{"payload":`, 400, "invalid_json", ""},
		{"wrong content type", e.key, `{"payload":{"content_type":"text","content":{"flow_id":"x"}},"client":{"user_id":"u"}}`, 400, "invalid_field", "/payload/content_type"},
		{"no flow", e.key, `{"payload":{"content_type":"flow_trigger","content":{}},"client":{"user_id":"u"}}`, 400, "missing_field", "/payload/content/flow_id"},
		{"no user", e.key, `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"reminder"}},"client":{}}`, 400, "missing_field", "/client/user_id"},
		{"user id not a string", e.key, `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"reminder"}},"client":{"user_id":5}}`, 400, "invalid_field", "/client/user_id"},
		{"metadata too large", e.key, big, 400, "metadata_too_large", "/metadata"},
		{"unknown flow", e.key, `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"nope"}},"client":{"user_id":"u"}}`, 400, "unknown_flow", "/payload/content/flow_id"},
		{"unknown step", e.key, `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"welcome","step_id":"nope"}},"client":{"user_id":"u"}}`, 400, "unknown_step", "/payload/content/step_id"},
	}
	for _, c := range cases {
		code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", c.key, c.body)
		if code != c.status || errCode(out) != c.code || errPointer(out) != c.pointer {
			t.Errorf("%s: %d %s %s (%v), want %d %s %s", c.name, code, errCode(out), errPointer(out), out, c.status, c.code, c.pointer)
		}
	}
	_, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"nope"}},"client":{"user_id":"u"}}`)
	if d := out["errors"].([]any)[0].(map[string]any)["detail"].(string); !strings.Contains(d, "welcome, ask_name (Ask name), reminder") {
		t.Errorf("unknown flow detail %q does not list the valid flows", d)
	}
	// Several problems are reported together.
	_, out, _ = e.do(t, "POST", "/v1/api/broadcasts", e.key, `{"payload":{"content_type":"flow_trigger","content":{}},"client":{}}`)
	if n := len(out["errors"].([]any)); n != 2 {
		t.Errorf("got %d errors for two missing fields: %v", n, out)
	}
}

func TestBroadcastKeysAreScopedToTheirChannel(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	_, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, seedBroadcast)
	id := out["request_id"].(string)
	// A second workspace with its own channel and key.
	gatewaytest.ApplyTo(t, e.g.Store, strings.NewReplacer("id: demo\n", "id: other\n", "id: demo-webhook", "id: other-webhook", "id: demo-web\n", "id: other-web\n").Replace(demoWorkspace(t, e.sink.URL)))
	otherKey := gatewaytest.NewKey(t, e.g.Store, "other", store.ScopeChannel, "other-webhook")
	code, out, _ := e.do(t, "GET", "/v1/api/broadcasts/"+id, otherKey, "")
	if code != http.StatusNotFound {
		t.Fatalf("another workspace's key read the request: %d %v", code, out)
	}
	code, out, _ = e.do(t, "GET", "/v1/api/conversations?user_id=some-user-id", otherKey, "")
	if code != 200 || len(out["conversations"].([]any)) != 0 {
		t.Fatalf("another workspace's key saw conversations: %v", out)
	}
	// App and track keys are not channel keys.
	appKey := gatewaytest.NewKey(t, e.g.Store, "demo", store.ScopeApp, "")
	if code, _, _ := e.do(t, "GET", "/v1/api/broadcasts/"+id, appKey, ""); code != http.StatusUnauthorized {
		t.Fatalf("an app key was accepted as a channel key: %d", code)
	}
}

func TestBroadcastResultReasons(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	var limited atomic.Bool
	limited.Store(true)
	e.sink.Handler = func(w http.ResponseWriter, m gatewaytest.SinkMessage) bool {
		switch {
		case m.UserID == "gone":
			w.WriteHeader(http.StatusGone)
			return true
		case m.UserID == "busy" && limited.Load():
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	}
	post := func(user string) string {
		code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key,
			`{"payload":{"content_type":"flow_trigger","content":{"flow_id":"reminder"}},"client":{"user_id":"`+user+`"}}`)
		if code != 200 {
			t.Fatalf("%d %v", code, out)
		}
		return out["request_id"].(string)
	}
	gone := e.result(t, post("gone"), "failed")
	if gone["reason"] != "channel_rejected" || !strings.Contains(fmt.Sprint(gone["messages"]), "410") {
		t.Fatalf("410 from the endpoint: %v", gone)
	}
	busy := e.result(t, post("busy"), "retrying")
	if busy["reason"] != "rate_limited" {
		t.Fatalf("429 from the endpoint: %v", busy)
	}
	// A channel whose plugin is not installed on this gateway.
	gatewaytest.ApplyTo(t, e.g.Store, `
workspace: {id: demo}
channels:
  - {name: tg, id: demo-tg, type: telegram, bot: demo}
`)
	tgKey := gatewaytest.NewKey(t, e.g.Store, "demo", store.ScopeChannel, "demo-tg")
	code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", tgKey, `{"payload":{"content_type":"flow_trigger","content":{"flow_id":"reminder"}},"client":{"user_id":"42"}}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	saved := e.key
	e.key = tgKey
	down := e.result(t, out["request_id"].(string), "retrying")
	e.key = saved
	if down["reason"] != "plugin_down" {
		t.Fatalf("plugin not installed: %v", down)
	}
}

func TestBroadcastSurvivesAGatewayCrashAfterTheAnswer(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	var open atomic.Bool
	sink.Handler = func(w http.ResponseWriter, _ gatewaytest.SinkMessage) bool {
		if !open.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	cfg.Delivery.PollInterval = 50 * time.Millisecond
	g := gatewaytest.StartProcess(t, cfg)
	st := gatewaytest.OpenStore(t, cfg)
	gatewaytest.ApplyTo(t, st, demoWorkspace(t, sink.URL))
	key := gatewaytest.NewKey(t, st, "demo", store.ScopeChannel, "demo-webhook")
	st.Close()

	req, _ := http.NewRequest("POST", g.URL+"/v1/api/broadcasts", strings.NewReader(seedBroadcast))
	req.Header.Set("x-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	g.Kill() // right after the answer: nothing was delivered (the endpoint refuses)
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("sink got %d messages before the crash", n)
	}
	open.Store(true)
	g.Restart()
	msgs := sink.WaitFor(t, 2, 60*time.Second)
	if msgs[0].Text != "Reminder: your dentist appointment." {
		t.Fatalf("after restart the sink got %q", msgs[0].Text)
	}
}
