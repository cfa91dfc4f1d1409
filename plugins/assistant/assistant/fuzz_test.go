package assistant_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-gw/switchboard/plugins/assistant/assistant"
	"github.com/switchboard-gw/switchboard/sdk"
)

// maxReply bounds a reply frame: the longest is a welcome (a token) or an
// error naming a JSON syntax error, a few hundred bytes either way.
const maxReply = 4 << 10

// FuzzFrame feeds the web chat frame decoder arbitrary client frames, with
// and without a started session. It never panics or fails, every reply is
// a bounded JSON server frame, an event's content is valid and re-encodes
// (through RenderOutbound) to a message frame that decodes to the same
// content, and request ids and metadata stay within their limits.
func FuzzFrame(f *testing.F) {
	ch := assistant.New(assistant.Options{Now: func() time.Time { return now }})
	if err := ch.Configure(f.Context(), config("web", `{}`, nil)); err != nil {
		f.Fatal(err)
	}
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u9", "exp": now.Add(time.Hour).Unix()})
	identity, err := token.SignedString([]byte(identityKey))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"type":"hello"}`, `{"type":"hello","last_seq":3,"request_id":"h1"}`,
		`{"type":"hello","start":true,"ref":"target:ask@main","metadata":{"plan":"pro"},"request_id":"h2"}`,
		`{"type":"hello","token":"` + identity + `"}`, `{"type":"hello","token":"x.y.z"}`,
		`{"type":"hello","ref":"@"}`, `{"type":"hello","start":true,"metadata":[1]}`,
		`{"type":"message","request_id":"r1","text":"hi"}`, `{"type":"message","text":"no id"}`,
		`{"type":"button","request_id":"r2","payload":"yes","title":"Yes"}`, `{"type":"button","request_id":"r3"}`,
		`{"type":"ack","seq":9}`, `{"type":"ack","seq":-1}`, `{"type":"dance"}`, `not json`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, session bool) {
		user := ""
		if session {
			user = "u1"
		}
		res, err := ch.HandleFrame(t.Context(), &sdk.Frame{ChannelID: "web", UserID: user, Data: data, Received: now})
		if err != nil || res == nil {
			t.Fatalf("HandleFrame(%q): %v, %v", data, res, err)
		}
		for _, r := range res.Replies {
			var frame struct {
				Type string `json:"type"`
			}
			if len(r) > maxReply || json.Unmarshal(r, &frame) != nil {
				t.Fatalf("reply of %d bytes is not a bounded JSON frame: %.200q", len(r), r)
			}
			switch frame.Type {
			case "welcome", "received", "error":
			default:
				t.Fatalf("reply of type %q", frame.Type)
			}
		}
		if res.Close != nil && res.Close.Code != 1008 {
			t.Fatalf("close code %d", res.Close.Code)
		}
		if s := res.Start; s != nil {
			if session || s.UserID == "" {
				t.Fatalf("session start %+v (session open: %v)", s, session)
			}
			if len(s.Metadata) > 8<<10 || (len(s.Metadata) > 0 && !json.Valid(s.Metadata)) {
				t.Fatalf("start metadata of %d bytes", len(s.Metadata))
			}
		}
		if len(res.Events) > 0 && !session {
			t.Fatal("an event without a session")
		}
		for _, ev := range res.Events {
			if id, ok := strings.CutPrefix(ev.ID, "u1/"); !ok || id == "" || len(id) > 100 {
				t.Fatalf("event id %q: want u1/ and a request id of 1 to 100 bytes", ev.ID)
			}
			if err := ev.Content.Validate(); err != nil {
				t.Fatalf("event content invalid: %v", err)
			}
			rendered, err := ch.RenderOutbound(t.Context(), []sdk.SequencedOutbound{{Outbound: sdk.Outbound{ChannelID: "web", Recipient: "u1", Content: ev.Content}, Seq: 1}})
			if err != nil || len(rendered) != 1 || rendered[0].Err != nil {
				t.Fatalf("re-encoding the event's content: %v %+v", err, rendered)
			}
			var back struct {
				Content json.RawMessage `json:"content"`
			}
			want, _ := json.Marshal(ev.Content)
			if json.Unmarshal(rendered[0].Frame, &back) != nil || !bytes.Equal(back.Content, want) {
				t.Fatalf("re-encoded frame %q does not carry the content %s", rendered[0].Frame, want)
			}
			// Worst case: each input byte is "<" (escaped as \u003c, six
			// bytes), carried twice (content and text fallback).
			if len(rendered[0].Frame) > 12*len(data)+maxReply {
				t.Fatalf("a %d-byte frame re-encodes to %d bytes", len(data), len(rendered[0].Frame))
			}
		}
	})
}
