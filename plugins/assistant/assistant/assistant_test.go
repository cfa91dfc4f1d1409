package assistant_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-gw/switchboard/plugins/assistant/assistant"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

const (
	sessionKey  = "0123456789abcdef0123456789abcdef-session"
	identityKey = "0123456789abcdef0123456789abcdef-identity"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func config(id, cfg string, secrets map[string]string) sdk.InstanceConfig {
	if secrets == nil {
		secrets = map[string]string{assistant.SecretSessionKey: sessionKey, assistant.SecretIdentity: identityKey}
	}
	return sdk.InstanceConfig{ChannelID: id, Config: json.RawMessage(cfg), Secrets: secrets}
}

// channel returns a configured channel "web" reached in process or, with
// grpc, through go-plugin and gRPC as the gateway reaches it.
func channel(t *testing.T, grpc bool, cfg sdk.InstanceConfig) sdk.SocketChannel {
	t.Helper()
	var ch sdk.Channel = assistant.New(assistant.Options{Now: func() time.Time { return now }})
	if grpc {
		ch = channeltest.Serve(t, ch)
	}
	if err := ch.Configure(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return ch.(sdk.SocketChannel)
}

func frame(t *testing.T, ch sdk.SocketChannel, userID, data string) *sdk.FrameResult {
	t.Helper()
	res, err := ch.HandleFrame(t.Context(), &sdk.Frame{ChannelID: "web", UserID: userID, Data: []byte(data), Received: now})
	if err != nil {
		t.Fatalf("HandleFrame(%s): %v", data, err)
	}
	return res
}

// reply decodes the only reply of res.
func reply(t *testing.T, res *sdk.FrameResult) map[string]any {
	t.Helper()
	if len(res.Replies) != 1 {
		t.Fatalf("got %d replies, want 1: %q", len(res.Replies), res.Replies)
	}
	var m map[string]any
	if err := json.Unmarshal(res.Replies[0], &m); err != nil {
		t.Fatalf("reply %q is not JSON: %v", res.Replies[0], err)
	}
	return m
}

func wantError(t *testing.T, res *sdk.FrameResult, code string, closed bool) {
	t.Helper()
	m := reply(t, res)
	if m["type"] != "error" || m["code"] != code {
		t.Fatalf("reply = %v, want an error frame with code %q", m, code)
	}
	if len(res.Events) > 0 || res.Start != nil || res.AckSeq != 0 {
		t.Errorf("a refused frame must mean nothing else: %+v", res)
	}
	if closed != (res.Close != nil) {
		t.Errorf("close = %+v, want closed %v", res.Close, closed)
	}
	if closed && res.Close.Code != 1008 {
		t.Errorf("close code %d, want 1008", res.Close.Code)
	}
}

func sign(t *testing.T, key string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDescribeAndConfigure(t *testing.T) {
	ch := assistant.New(assistant.Options{})
	d, err := ch.Describe(t.Context())
	if err != nil || d.Name != "assistant" || !d.Capabilities.Websocket || !json.Valid(d.ConfigSchema) {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	if err := ch.Configure(t.Context(), config("web", `{"allowed_origins":["https://shop.example.com","*"],"session_ttl":"1h"}`, nil)); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, c := range []struct {
		name   string
		cfg    sdk.InstanceConfig
		fields []string
	}{
		{"unknown field", config("web", `{"origins":[]}`, nil), []string{"config"}},
		{"bad origin and ttl", config("web", `{"allowed_origins":["https://x.example.com/path","ftp://x"],"session_ttl":"1s"}`, nil),
			[]string{"allowed_origins[0]", "allowed_origins[1]", "session_ttl"}},
		{"no session key", config("web", `{}`, map[string]string{}), []string{"session_key"}},
		{"short keys", config("web", `{}`, map[string]string{"session_key": "short", "identity_secret": "short"}),
			[]string{"session_key", "identity_secret"}},
		{"identified only without identity secret", config("web", `{"anonymous":false}`, map[string]string{"session_key": sessionKey}),
			[]string{"identity_secret"}},
	} {
		err := ch.Configure(t.Context(), c.cfg)
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: Configure = %v, want a *sdk.ConfigError", c.name, err)
			continue
		}
		for _, f := range c.fields {
			if _, ok := ce.Fields[f]; !ok {
				t.Errorf("%s: %v does not name %q", c.name, ce, f)
			}
		}
	}
}

func TestSessions(t *testing.T) {
	for _, grpc := range []bool{false, true} {
		name := map[bool]string{false: "in-process", true: "grpc"}[grpc]
		t.Run(name, func(t *testing.T) { testSessions(t, grpc) })
	}
}

func testSessions(t *testing.T, grpc bool) {
	ch := channel(t, grpc, config("web", `{}`, nil))

	// A visitor without a token gets an anonymous session and a token.
	res := frame(t, ch, "", `{"type":"hello","last_seq":3}`)
	w := reply(t, res)
	anon, _ := w["user_id"].(string)
	if w["type"] != "welcome" || !strings.HasPrefix(anon, "anon-") || w["anonymous"] != true || w["token"] == "" {
		t.Fatalf("welcome = %v", w)
	}
	if res.Start == nil || res.Start.UserID != anon || res.Start.ResumeAfter != 3 || res.Start.StartID != "" || res.Close != nil {
		t.Fatalf("start = %+v, want the anonymous user resuming after 3 and no conversation start", res.Start)
	}

	// The token resumes the same user on the next connection.
	res = frame(t, ch, "", `{"type":"hello","token":"`+w["token"].(string)+`"}`)
	if w2 := reply(t, res); w2["user_id"] != anon || res.Start.UserID != anon {
		t.Fatalf("resumed welcome = %v, start %+v; want user %s", w2, res.Start, anon)
	}

	// The developer's backend identifies a user with an HS256 token.
	tok := sign(t, identityKey, jwt.MapClaims{"sub": "cust-42", "exp": now.Add(time.Hour).Unix(), "aud": "web",
		"name": "Ann", "email": "ann@example.com"})
	res = frame(t, ch, "", `{"type":"hello","token":"`+tok+`","start":true,"request_id":"h1","metadata":{"plan":"pro"}}`)
	w = reply(t, res)
	st := res.Start
	if w["user_id"] != "cust-42" || w["anonymous"] != false || st.UserID != "cust-42" || st.StartID != "cust-42/h1" ||
		st.FlowID != "" || string(st.Metadata) != `{"plan":"pro"}` || st.Profile["name"] != "Ann" || st.Profile["email"] != "ann@example.com" {
		t.Fatalf("identified welcome = %v, start = %+v", w, st)
	}

	// ?ref= starts a flow, CSML's target:STEP@FLOW form too.
	for ref, want := range map[string][2]string{"reminder": {"reminder", ""}, "target:ask@reminder": {"reminder", "ask"}} {
		res = frame(t, ch, "", `{"type":"hello","ref":"`+ref+`","request_id":"h2"}`)
		if res.Start == nil || res.Start.FlowID != want[0] || res.Start.StepID != want[1] || res.Start.StartID == "" {
			t.Errorf("ref %q: start = %+v, want flow %q step %q", ref, res.Start, want[0], want[1])
		}
	}
	wantError(t, frame(t, ch, "", `{"type":"hello","ref":"@"}`), "bad_frame", false)
	wantError(t, frame(t, ch, "", `{"type":"hello","start":true,"metadata":[1]}`), "bad_frame", false)

	// Bad tokens end the connection.
	for name, tok := range map[string]string{
		"expired":        sign(t, identityKey, jwt.MapClaims{"sub": "u", "exp": now.Add(-time.Hour).Unix()}),
		"no exp":         sign(t, identityKey, jwt.MapClaims{"sub": "u"}),
		"wrong key":      sign(t, "another-key-another-key-another-key!", jwt.MapClaims{"sub": "u", "exp": now.Add(time.Hour).Unix()}),
		"other channel":  sign(t, identityKey, jwt.MapClaims{"sub": "u", "exp": now.Add(time.Hour).Unix(), "aud": "shop"}),
		"anon sub":       sign(t, identityKey, jwt.MapClaims{"sub": "anon-x", "exp": now.Add(time.Hour).Unix()}),
		"forged session": sign(t, identityKey, jwt.MapClaims{"sub": "u", "iss": "switchboard", "aud": "web", "exp": now.Add(time.Hour).Unix()}),
		"alg none":       "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1IiwiZXhwIjo0MTAyNDQ0ODAwfQ.",
		"garbage":        "not-a-token",
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, frame(t, ch, "", `{"type":"hello","token":"`+tok+`"}`), "unauthorized", true)
		})
	}

	// A session token of another channel is refused.
	other := channel(t, grpc, config("shop", `{}`, nil))
	res, err := other.HandleFrame(t.Context(), &sdk.Frame{ChannelID: "shop", Data: []byte(`{"type":"hello"}`), Received: now})
	if err != nil {
		t.Fatal(err)
	}
	shopTok := reply(t, res)["token"].(string)
	wantError(t, frame(t, ch, "", `{"type":"hello","token":"`+shopTok+`"}`), "unauthorized", true)
}

func TestAnonymousOffAndNoIdentitySecret(t *testing.T) {
	ch := channel(t, false, config("web", `{"anonymous":false}`, nil))
	wantError(t, frame(t, ch, "", `{"type":"hello"}`), "identity_required", true)

	ch = channel(t, false, config("web", `{}`, map[string]string{"session_key": sessionKey}))
	tok := sign(t, identityKey, jwt.MapClaims{"sub": "u", "exp": now.Add(time.Hour).Unix()})
	wantError(t, frame(t, ch, "", `{"type":"hello","token":"`+tok+`"}`), "unauthorized", true)
}

func TestFramesOfASession(t *testing.T) {
	ch := channel(t, false, config("web", `{}`, nil))

	res := frame(t, ch, "u1", `{"type":"message","request_id":"r1","text":"hi"}`)
	if m := reply(t, res); m["type"] != "received" || m["request_id"] != "r1" {
		t.Errorf("reply = %v, want received r1", m)
	}
	if len(res.Events) != 1 || res.Events[0].Type != sdk.EventMessage || res.Events[0].ID != "u1/r1" ||
		res.Events[0].UserID != "u1" || res.Events[0].Content.Text != "hi" {
		t.Errorf("events = %+v", res.Events)
	}

	res = frame(t, ch, "u1", `{"type":"button","request_id":"r2","payload":"yes","title":"Yes"}`)
	if len(res.Events) != 1 || res.Events[0].Type != sdk.EventButton || res.Events[0].Content.Payload != "yes" ||
		res.Events[0].Content.Text != "Yes" {
		t.Errorf("events = %+v", res.Events)
	}

	if res = frame(t, ch, "u1", `{"type":"ack","seq":9}`); res.AckSeq != 9 || len(res.Replies) != 0 {
		t.Errorf("ack = %+v", res)
	}

	// Malformed frames get an error frame and keep the connection.
	for _, f := range []string{`not json`, `{"type":"message","request_id":"r3"}`, `{"type":"message","text":"no id"}`,
		`{"type":"button","request_id":"r4"}`, `{"type":"ack","seq":0}`, `{"type":"dance"}`,
		`{"type":"message","request_id":"r5","text":"` + strings.Repeat("x", message.MaxTextBytes+1) + `"}`} {
		wantError(t, frame(t, ch, "u1", f), "bad_frame", false)
	}
	wantError(t, frame(t, ch, "", `{"type":"message","request_id":"r1","text":"hi"}`), "no_session", false)
	wantError(t, frame(t, ch, "u1", `{"type":"hello"}`), "session_started", false)

	if _, err := ch.HandleFrame(t.Context(), &sdk.Frame{ChannelID: "nope", Data: []byte(`{"type":"hello"}`)}); err == nil {
		t.Error("a frame for an unconfigured channel must fail")
	}
}

func TestRenderOutbound(t *testing.T) {
	ch := channel(t, true, config("web", `{}`, nil))
	buttons := message.Content{Type: message.TypeButtons, Text: "Pick", Buttons: []message.Button{{Title: "A", Payload: "a"}}}
	frames, err := ch.RenderOutbound(t.Context(), []sdk.SequencedOutbound{
		{Outbound: sdk.Outbound{ChannelID: "web", Recipient: "u1", Content: buttons}, Seq: 12},
		{Outbound: sdk.Outbound{ChannelID: "web", Recipient: "u1", Content: message.Content{Type: message.TypeImage}}, Seq: 13},
		{Outbound: sdk.Outbound{ChannelID: "nope", Recipient: "u1", Content: message.Text("x")}, Seq: 14},
	})
	if err != nil || len(frames) != 3 {
		t.Fatalf("RenderOutbound = %d frames, %v", len(frames), err)
	}
	var got struct {
		Type    string          `json:"type"`
		Seq     int64           `json:"seq"`
		Content message.Content `json:"content"`
		Text    string          `json:"text"`
	}
	if err := json.Unmarshal(frames[0].Frame, &got); err != nil || frames[0].Err != nil {
		t.Fatalf("frame 0 = %q, %v", frames[0].Frame, frames[0].Err)
	}
	if got.Type != "message" || got.Seq != 12 || got.Content.Buttons[0].Payload != "a" || got.Text != buttons.TextFallback() {
		t.Errorf("frame 0 = %+v", got)
	}
	if sdk.KindOf(frames[1].Err) != sdk.KindPermanent || frames[1].Frame != nil {
		t.Errorf("invalid content: %+v, want a permanent error and no frame", frames[1])
	}
	if sdk.KindOf(frames[2].Err) != sdk.KindTransient {
		t.Errorf("unconfigured channel: %+v, want a transient error", frames[2])
	}
}

func TestSendAndWebhookAreNotForWebChat(t *testing.T) {
	ch := assistant.New(assistant.Options{})
	rs, err := ch.Send(t.Context(), []sdk.Outbound{{IdempotencyKey: "k", Content: message.Text("x")}})
	if err != nil || len(rs) != 1 || sdk.KindOf(rs[0].Err) != sdk.KindPermanent {
		t.Errorf("Send = %+v, %v; want one permanent error", rs, err)
	}
	resp, err := ch.HandleHTTP(t.Context(), &sdk.HTTPRequest{ChannelID: "web"})
	if err != nil || resp.Status != 404 || len(resp.Events) > 0 {
		t.Errorf("HandleHTTP = %+v, %v; want 404 without events", resp, err)
	}
}
