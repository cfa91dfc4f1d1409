package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/webhook/webhook"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

func configured(t testing.TB, url string, secrets map[string]string) *webhook.Channel {
	t.Helper()
	ch := webhook.New(local)
	cfg := validConfig("wh", url)
	for k, v := range secrets {
		cfg.Secrets[k] = v
	}
	if err := ch.Configure(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestInboundForms(t *testing.T) {
	t.Parallel()
	ch := configured(t, "https://example.com", nil)
	now := time.Now().Unix()
	for _, tc := range []struct {
		name, body string
		status     int
		want       sdk.Event
	}{
		{"text", `{"user_id":"u1","text":"hi","reply_to":"room-9"}`, 204,
			sdk.Event{Type: sdk.EventMessage, UserID: "u1", ReplyTo: "room-9", Content: message.Text("hi")}},
		{"button", `{"user_id":"u1","button":{"payload":"YES","title":"Yes"}}`, 204,
			sdk.Event{Type: sdk.EventButton, UserID: "u1", Content: message.Content{Type: message.TypeText, Text: "Yes", Payload: "YES"}}},
		{"content", `{"user_id":"u1","message":{"type":"image","media":{"url":"https://x/cat.png"}}}`, 204,
			sdk.Event{Type: sdk.EventMessage, UserID: "u1", Content: message.Content{Type: message.TypeImage, Media: &message.Media{URL: "https://x/cat.png"}}}},
		{"no user", `{"text":"hi"}`, 400, sdk.Event{}},
		{"two forms", `{"user_id":"u1","text":"hi","button":{"payload":"Y"}}`, 400, sdk.Event{}},
		{"invalid content", `{"user_id":"u1","message":{"type":"image"}}`, 400, sdk.Event{}},
		{"unknown field", `{"user_id":"u1","txt":"hi"}`, 400, sdk.Event{}},
		{"not json", `hello`, 400, sdk.Event{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ch.HandleHTTP(t.Context(), signedRequest("wh", testSecret, "msg_"+tc.name[:2], now, []byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			if tc.status != 204 {
				if len(resp.Events) != 0 {
					t.Errorf("rejected request produced events")
				}
				return
			}
			got := resp.Events[0]
			if got.ID != "msg_"+tc.name[:2] || got.Time.Unix() != now {
				t.Errorf("event id/time = %q/%v, want the webhook-id and timestamp", got.ID, got.Time)
			}
			got.ID, got.Time = "", time.Time{}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if string(gj) != string(wj) {
				t.Errorf("event = %s\nwant    %s", gj, wj)
			}
		})
	}
}

func TestInboundRouting(t *testing.T) {
	t.Parallel()
	ch := configured(t, "https://example.com", nil)
	body := []byte(`{"user_id":"u1","text":"hi"}`)
	req := signedRequest("other", testSecret, "msg_1", time.Now().Unix(), body)
	if resp, _ := ch.HandleHTTP(t.Context(), req); resp.Status != http.StatusNotFound {
		t.Errorf("unknown channel: %d, want 404", resp.Status)
	}
	req = signedRequest("wh", testSecret, "msg_1", time.Now().Unix(), body)
	req.Method = http.MethodGet
	if resp, _ := ch.HandleHTTP(t.Context(), req); resp.Status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.Status)
	}
	req = signedRequest("wh", testSecret, "msg_1", time.Now().Unix(), body)
	req.Header.Del("webhook-signature")
	if resp, _ := ch.HandleHTTP(t.Context(), req); resp.Status != http.StatusUnauthorized {
		t.Errorf("no signature: %d, want 401", resp.Status)
	}
	req = signedRequest("wh", secret(9), "msg_1", time.Now().Unix(), body)
	if resp, _ := ch.HandleHTTP(t.Context(), req); resp.Status != http.StatusUnauthorized {
		t.Errorf("other key: %d, want 401", resp.Status)
	}
}

// A sender rotating keys signs with the old and the new key at once.
func TestInboundKeyRotation(t *testing.T) {
	t.Parallel()
	ch := configured(t, "https://example.com", nil)
	body := []byte(`{"user_id":"u1","text":"hi"}`)
	now := time.Now().Unix()
	req := signedRequest("wh", testSecret, "msg_rot", now, body)
	old := signedRequest("wh", secret(9), "msg_rot", now, body).Header.Get("webhook-signature")
	req.Header.Set("webhook-signature", old+" "+req.Header.Get("webhook-signature"))
	if resp, _ := ch.HandleHTTP(t.Context(), req); resp.Status != http.StatusNoContent {
		t.Errorf("two signatures, one valid: %d (%s), want 204", resp.Status, resp.Body)
	}
}

// receiver is a scripted endpoint that records webhook-ids.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	ids []string
}

func newReceiver(t *testing.T, secret string, answer func(w http.ResponseWriter, m outboundMessage)) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m, err := receive(r, body, secret)
		if err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
		rc.mu.Unlock()
		answer(w, m)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func sendTexts(t *testing.T, ch sdk.Channel, recipients ...string) []sdk.SendResult {
	t.Helper()
	batch := make([]sdk.Outbound, len(recipients))
	for i, r := range recipients {
		batch[i] = sdk.Outbound{ChannelID: "wh", IdempotencyKey: "key-" + string(rune('a'+i)), Recipient: r, Content: message.Text("m"), Attempt: 1}
	}
	results, err := ch.Send(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	return results
}

func TestOutboundSignedWithOutboundSecret(t *testing.T) {
	t.Parallel()
	out := secret(42)
	rc := newReceiver(t, out, func(w http.ResponseWriter, _ outboundMessage) {})
	ch := configured(t, rc.URL, map[string]string{"outbound_signing_secret": out})
	if r := sendTexts(t, ch, "u1"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if rc.ids[0] != "key-a" {
		t.Errorf("webhook-id = %q, want the idempotency key", rc.ids[0])
	}
}

func TestOutboundClassification(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answer  func(w http.ResponseWriter)
		kind    sdk.ErrorKind
		timeout bool
		retry   time.Duration
	}{
		{"204", func(w http.ResponseWriter) { w.WriteHeader(204) }, "", false, 0},
		{"410", func(w http.ResponseWriter) { w.WriteHeader(410) }, sdk.KindPermanent, false, 0},
		{"400", func(w http.ResponseWriter) { w.WriteHeader(400) }, sdk.KindPermanent, false, 0},
		{"302 not followed", func(w http.ResponseWriter) { w.Header().Set("Location", "/elsewhere"); w.WriteHeader(302) }, sdk.KindPermanent, false, 0},
		{"502", func(w http.ResponseWriter) { w.WriteHeader(502) }, sdk.KindTransient, false, 0},
		{"429 seconds", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "30"); w.WriteHeader(429) }, sdk.KindRateLimited, false, 30 * time.Second},
		{"429 no header", func(w http.ResponseWriter) { w.WriteHeader(429) }, sdk.KindRateLimited, false, 5 * time.Second},
		{"timeout", func(w http.ResponseWriter) { time.Sleep(1500 * time.Millisecond) }, sdk.KindTransient, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, testSecret, func(w http.ResponseWriter, _ outboundMessage) { tc.answer(w) })
			ch := webhook.New(local)
			cfg := validConfig("wh", rc.URL)
			if tc.timeout {
				cfg.Config = json.RawMessage(`{"url": "` + rc.URL + `", "timeout": "1s"}`)
			}
			if err := ch.Configure(t.Context(), cfg); err != nil {
				t.Fatal(err)
			}
			err := sendTexts(t, ch, "u1")[0].Err
			if tc.kind == "" {
				if err != nil {
					t.Errorf("err = %v, want success", err)
				}
				return
			}
			var se *sdk.SendError
			if !errors.As(err, &se) || se.Kind != tc.kind || se.RetryAfter != tc.retry {
				t.Errorf("err = %#v, want kind %s retry after %s", err, tc.kind, tc.retry)
			}
		})
	}
}

// The signature and the webhook-timestamp header come from one reading of
// the clock, even when the clock crosses a second between readings.
func TestSignatureTimestampAcrossASecond(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret, func(http.ResponseWriter, outboundMessage) {})
	// Each reading is 2 ns after the last, starting 1 ns before a second
	// ends: a second reading would be in the next second.
	var mu sync.Mutex
	tick := time.Now().Truncate(time.Second).Add(time.Second - time.Nanosecond)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := tick
		tick = tick.Add(2 * time.Nanosecond)
		return now
	}
	ch := webhook.New(webhook.Options{Now: clock, AllowInternal: true})
	if err := ch.Configure(t.Context(), validConfig("wh", rc.URL)); err != nil {
		t.Fatal(err)
	}
	if err := sendTexts(t, ch, "u1")[0].Err; err != nil {
		t.Fatalf("send across a second boundary: %v", err)
	}
}

// Once a recipient's message fails with a retryable error, the rest of that
// recipient's batch is held back so a retry cannot reorder them; other
// recipients are unaffected, and a permanent failure holds nothing.
func TestOrderHeldAfterRetryableFailure(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	rc := newReceiver(t, testSecret, func(w http.ResponseWriter, m outboundMessage) {
		mu.Lock()
		seen[m.UserID]++
		mu.Unlock()
		switch m.UserID {
		case "flaky":
			w.WriteHeader(503)
		case "gone":
			w.WriteHeader(410)
		}
	})
	ch := configured(t, rc.URL, nil)
	results := sendTexts(t, ch, "flaky", "ok", "flaky", "gone", "gone", "flaky")
	kinds := make([]string, len(results))
	for i, r := range results {
		kinds[i] = string(sdk.KindOf(r.Err))
		if r.Err == nil {
			kinds[i] = "sent"
		}
	}
	if got := strings.Join(kinds, ","); got != "transient,sent,transient,permanent,permanent,transient" {
		t.Errorf("kinds = %s", got)
	}
	if seen["flaky"] != 1 || seen["gone"] != 2 {
		t.Errorf("attempts = %v, want flaky tried once (rest held), gone tried twice", seen)
	}
}

func TestSendToUnconfiguredChannel(t *testing.T) {
	t.Parallel()
	results, err := webhook.New(webhook.Options{}).Send(context.Background(), []sdk.Outbound{{ChannelID: "nope", IdempotencyKey: "k", Recipient: "u", Content: message.Text("x")}})
	if err != nil || sdk.KindOf(results[0].Err) != sdk.KindAuth {
		t.Errorf("got %v / %v, want a per-message auth error", results, err)
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	if r, err := webhook.ParseRate("100/1s"); err != nil || r.Count != 100 || r.Per != time.Second {
		t.Errorf("ParseRate(100/1s) = %+v, %v", r, err)
	}
	for _, bad := range []string{"", "100", "x/1s", "0/1s", "10/0s", "10/soon"} {
		if _, err := webhook.ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) succeeded", bad)
		}
	}
}

func TestRateLimitsDeclared(t *testing.T) {
	t.Parallel()
	d, _ := webhook.New(webhook.Options{}).Describe(t.Context())
	if !d.RateLimits.Global.Unlimited() || !d.RateLimits.PerRecipient.Unlimited() {
		t.Errorf("default rate limits = %+v, want none", d.RateLimits)
	}
	rate := sdk.Rate{Count: 5, Per: time.Second}
	d, _ = webhook.New(webhook.Options{RateLimits: sdk.RateLimits{Global: rate}}).Describe(t.Context())
	if d.RateLimits.Global != rate {
		t.Errorf("rate limits = %+v, want %+v", d.RateLimits, rate)
	}
}
