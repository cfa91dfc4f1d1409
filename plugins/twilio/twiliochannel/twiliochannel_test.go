package twiliochannel_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliochannel"
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliofake"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

const (
	channelID = "ch-sms"
	from      = "+14155550100"
	user      = "+14155550123"
)

type harness struct {
	fake    *twiliofake.Server
	clock   *fakekit.ManualClock
	plugin  *twiliochannel.Channel
	ingress *fakekit.Ingress
	driver  *twiliofake.Driver
}

// setup configures the plugin against the fake. mps is high so the plugin's
// own pacing never waits in tests; the fake's per-sender limit runs on a
// manual clock.
func setup(t testing.TB, fakeOpts twiliofake.Options, cfg map[string]any) *harness {
	t.Helper()
	clock := fakekit.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	fakeOpts.Clock = clock.Now
	fake := twiliofake.New(fakeOpts)
	t.Cleanup(fake.Close)
	plugin := twiliochannel.New(nil)
	ingress := fakekit.NewIngress(plugin, channelID)
	t.Cleanup(ingress.Close)
	full := map[string]any{"from": from, "api_base": fake.URL(), "mps": 1000}
	for k, v := range cfg {
		full[k] = v
	}
	raw, _ := json.Marshal(full)
	err := plugin.Configure(context.Background(), sdk.InstanceConfig{
		ChannelID: channelID, WebhookURL: ingress.WebhookURL(), Config: raw,
		Secrets: map[string]string{"account_sid": fake.AccountSID(), "auth_token": fake.AuthToken()},
	})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return &harness{fake: fake, clock: clock, plugin: plugin, ingress: ingress,
		driver: &twiliofake.Driver{URL: ingress.WebhookURL(), AuthToken: fake.AuthToken(), AccountSID: fake.AccountSID()}}
}

func (h *harness) post(t *testing.T, r *twiliofake.Request) *fakekit.Response {
	t.Helper()
	resp, err := h.driver.Post(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (h *harness) send(t *testing.T, outs ...sdk.Outbound) []sdk.SendResult {
	t.Helper()
	for i := range outs {
		outs[i].ChannelID = channelID
		if outs[i].IdempotencyKey == "" {
			outs[i].IdempotencyKey = "k-" + string(rune('a'+i))
		}
		if outs[i].Recipient == "" {
			outs[i].Recipient = user
		}
	}
	res, err := h.plugin.Send(context.Background(), outs)
	if err != nil || len(res) != len(outs) {
		t.Fatalf("Send: %d results, %v", len(res), err)
	}
	return res
}

func TestInboundSMSAndReplay(t *testing.T) {
	h := setup(t, twiliofake.Options{}, nil)
	r := h.driver.Inbound(user, from, "2")
	for range 2 {
		resp := h.post(t, r)
		if resp.Status != http.StatusOK || resp.Header.Get("Content-Type") != "text/xml" ||
			!strings.Contains(string(resp.Body), "<Response></Response>") {
			t.Fatalf("answer %d %s %q", resp.Status, resp.Header.Get("Content-Type"), resp.Body)
		}
	}
	ev := h.ingress.Events()
	if len(ev) != 2 {
		t.Fatalf("want 2 events, got %d", len(ev))
	}
	for _, e := range ev {
		// A numbered reply stays text: the gateway maps it to a button.
		if e.Type != sdk.EventMessage || e.ID != r.Form.Get("MessageSid") || e.UserID != user || e.Content.Text != "2" ||
			e.Profile["to"] != from {
			t.Fatalf("unexpected event %+v", e)
		}
	}
}

func TestSignatureRefused(t *testing.T) {
	h := setup(t, twiliofake.Options{}, nil)
	r := h.driver.Inbound(user, from, "hello")
	cases := map[string]*twiliofake.Request{
		"bad signature":     r.BadSignature(),
		"unsigned":          r.Unsigned(),
		"tampered body":     r.Tampered("Body", "transfer everything"),
		"https not http":    r.SignedFor(strings.Replace(h.ingress.WebhookURL(), "http://", "https://", 1)),
		"rebuilt from Host": r.SignedFor(strings.Replace(h.ingress.WebhookURL(), "127.0.0.1", "localhost", 1)),
		"status callback":   h.driver.StatusCallback(h.ingress.WebhookURL()+"?sb_event=status", "SM1", "delivered", 0, from, user).BadSignature(),
	}
	for name, variant := range cases {
		if resp := h.post(t, variant); resp.Status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.Status)
		}
	}
	if ev := h.ingress.Events(); len(ev) != 0 {
		t.Fatalf("refused requests produced events: %+v", ev)
	}
}

func TestSendAndStatusCallbacks(t *testing.T) {
	h := setup(t, twiliofake.Options{}, nil)
	res := h.send(t, sdk.Outbound{Content: message.Text("your code is 1234")})
	if res[0].Err != nil || !strings.HasPrefix(res[0].ProviderID, "SM") {
		t.Fatalf("result %+v", res[0])
	}
	msgs := h.fake.Messages()
	if len(msgs) != 1 || msgs[0].From != from || msgs[0].To != user || msgs[0].Body != "your code is 1234" ||
		msgs[0].StatusCallback != h.ingress.WebhookURL()+"?sb_event=status" {
		t.Fatalf("messages %+v", msgs)
	}
	sid := res[0].ProviderID
	ctx := context.Background()
	// queued is not reported; delivered arrives twice and before sent.
	for _, st := range []string{"queued", "delivered", "sent", "delivered"} {
		resp, err := h.fake.SendStatus(ctx, sid, st, 0)
		if err != nil || resp.Status != http.StatusOK {
			t.Fatalf("status %s: %v %+v", st, err, resp)
		}
	}
	ev := h.ingress.Events()
	want := []sdk.DeliveryState{sdk.StateDelivered, sdk.StateSent, sdk.StateDelivered}
	if len(ev) != len(want) {
		t.Fatalf("want %d receipts, got %+v", len(want), ev)
	}
	for i, e := range ev {
		if e.Type != sdk.EventDeliveryStatus || e.Status.ProviderID != sid || e.Status.State != want[i] ||
			e.ID != sid+":"+string(want[i]) {
			t.Fatalf("receipt %d: %+v %+v", i, e, e.Status)
		}
	}
}

func TestUndeliveredReceiptCarriesErrorCode(t *testing.T) {
	h := setup(t, twiliofake.Options{}, nil)
	res := h.send(t, sdk.Outbound{Content: message.Text("hi")})
	if _, err := h.fake.SendStatus(context.Background(), res[0].ProviderID, "undelivered", 30003); err != nil {
		t.Fatal(err)
	}
	ev := h.ingress.Events()
	if len(ev) != 1 || ev[0].Status.State != sdk.StateUndelivered || ev[0].Status.ErrorCode != "30003" || ev[0].Status.Reason == "" {
		t.Fatalf("got %+v", ev)
	}
}

func TestContentRendering(t *testing.T) {
	h := setup(t, twiliofake.Options{PerSender: -1}, nil)
	buttons := message.Content{Type: message.TypeButtons, Text: "Pick", Buttons: []message.Button{{Title: "Yes", Payload: "y"}, {Title: "No", Payload: "n"}}}
	card := message.Content{Type: message.TypeCard, Cards: []message.Card{{Title: "Tea", ImageURL: "https://example.com/t.png",
		Buttons: []message.Button{{Title: "Site", URL: "https://example.com"}}}}}
	image := message.Content{Type: message.TypeImage, Text: "a cat", Media: &message.Media{URL: "https://example.com/cat.png"}}
	res := h.send(t,
		sdk.Outbound{Content: buttons}, sdk.Outbound{Content: card}, sdk.Outbound{Content: image},
		sdk.Outbound{Content: message.Content{Type: message.TypeTyping}})
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	msgs := h.fake.Messages()
	if len(msgs) != 3 {
		t.Fatalf("want 3 messages (typing sends nothing), got %d", len(msgs))
	}
	for i, c := range []message.Content{buttons, card, image} {
		if msgs[i].Body != c.TextFallback() || len(msgs[i].MediaURLs) != 0 {
			t.Errorf("%s: body %q media %v, want the TextFallback", c.Type, msgs[i].Body, msgs[i].MediaURLs)
		}
	}
	if msgs[0].Body != "Pick\n1. Yes\n2. No" {
		t.Errorf("buttons must be numbered options, got %q", msgs[0].Body)
	}
}

func TestMMSImage(t *testing.T) {
	h := setup(t, twiliofake.Options{}, map[string]any{"mms": true})
	image := message.Content{Type: message.TypeImage, Text: "a cat", Media: &message.Media{URL: "https://example.com/cat.png"}}
	if r := h.send(t, sdk.Outbound{Content: image}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if m := h.fake.Messages(); len(m) != 1 || m[0].Body != "a cat" || strings.Join(m[0].MediaURLs, ",") != "https://example.com/cat.png" {
		t.Fatalf("messages %+v", m)
	}
}

func TestParts(t *testing.T) {
	if p := twiliochannel.Parts("short"); len(p) != 1 || p[0] != "short" {
		t.Fatalf("short: %q", p)
	}
	exact := strings.Repeat("a", 1600)
	if p := twiliochannel.Parts(exact); len(p) != 1 || p[0] != exact {
		t.Fatal("a 1,600-character body is sent whole, without prefix")
	}
	for _, tc := range []struct {
		words, parts int
		prefix       string
	}{{650, 3, "(1/3) "}, {3000, 14, "(1/14) "}} { // 7 chars per word
		text := strings.TrimSpace(strings.Repeat("sixsix ", tc.words))
		parts := twiliochannel.Parts(text)
		if len(parts) != tc.parts || !strings.HasPrefix(parts[0], tc.prefix) {
			t.Fatalf("%d words: %d parts, first %q", tc.words, len(parts), parts[0][:10])
		}
		var rebuilt []string
		for i, p := range parts {
			if chankit.Len(p) > 1600 {
				t.Fatalf("part %d is %d characters", i, chankit.Len(p))
			}
			_, rest, _ := strings.Cut(p, ") ")
			rebuilt = append(rebuilt, rest)
		}
		if strings.Join(rebuilt, " ") != text {
			t.Fatalf("%d words: parts do not rebuild the text (split inside a word?)", tc.words)
		}
	}
	lines := strings.Repeat(strings.Repeat("x", 99)+"\n", 20) // 2,000 characters in 100-character lines
	for _, p := range twiliochannel.Parts(lines) {
		if !strings.HasSuffix(p, strings.Repeat("x", 99)) {
			t.Fatalf("a part does not end at a line break: ...%q", p[len(p)-20:])
		}
	}
}

func TestLongMessageSentInOrderAndResumedAfterRateLimit(t *testing.T) {
	h := setup(t, twiliofake.Options{PerSender: 3 * time.Second}, nil)
	text := strings.TrimSpace(strings.Repeat("sixsix ", 650)) // 3 parts
	out := sdk.Outbound{IdempotencyKey: "long", Content: message.Text(text)}
	var first string
	for attempt := 1; ; attempt++ {
		res := h.send(t, out)
		if res[0].Err == nil {
			first = res[0].ProviderID
			break
		}
		var se *sdk.SendError
		if !errors.As(res[0].Err, &se) || se.Kind != sdk.KindRateLimited || se.Code != "20429" || se.RetryAfter != 3*time.Second {
			t.Fatalf("attempt %d: %v (want rate limited with the fake's Retry-After of 3s)", attempt, res[0].Err)
		}
		if attempt > 3 {
			t.Fatal("the message does not converge")
		}
		h.clock.Advance(se.RetryAfter)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 3 {
		t.Fatalf("want each of the 3 parts once, got %d messages", len(msgs))
	}
	for i, m := range msgs {
		if want := "(" + string(rune('1'+i)) + "/3) "; !strings.HasPrefix(m.Body, want) {
			t.Fatalf("part %d out of order: %q", i, m.Body[:8])
		}
	}
	if first != msgs[0].SID {
		t.Fatalf("ProviderID %s, want the first part's sid %s", first, msgs[0].SID)
	}
	if early := h.fake.EarlyRetries(); len(early) != 0 {
		t.Fatalf("retried before Retry-After: %+v", early)
	}
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name   string
		to     string
		script func(*twiliofake.Server)
		kind   sdk.ErrorKind
		code   string
	}{
		{"invalid To", "12345", func(*twiliofake.Server) {}, sdk.KindPermanent, "unknown_user"},
		{"STOP", user, func(f *twiliofake.Server) { f.SetRecipientError(user, 21610) }, sdk.KindPermanent, "bot_blocked"},
		{"landline", user, func(f *twiliofake.Server) { f.SetRecipientError(user, 21614) }, sdk.KindPermanent, "unknown_user"},
		{"cannot route", user, func(f *twiliofake.Server) { f.SetRecipientError(user, 21612) }, sdk.KindPermanent, "21612"},
		{"auth", user, func(f *twiliofake.Server) { f.RevokeToken() }, sdk.KindAuth, "20003"},
		{"503", user, func(f *twiliofake.Server) {
			f.FailNext(twiliofake.Failure{Status: 503, Code: 20503, Message: "Service unavailable"})
		}, sdk.KindTransient, "20503"},
		{"queue full", user, func(f *twiliofake.Server) {
			f.FailNext(twiliofake.Failure{Status: 400, Code: 21611, Message: "queue full"})
		}, sdk.KindRateLimited, "21611"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t, twiliofake.Options{}, nil)
			tc.script(h.fake)
			res := h.send(t, sdk.Outbound{Recipient: tc.to, Content: message.Text("hi")})
			var se *sdk.SendError
			if !errors.As(res[0].Err, &se) || se.Kind != tc.kind || se.Code != tc.code {
				t.Fatalf("got %v, want %s (%s)", res[0].Err, tc.kind, tc.code)
			}
		})
	}
}

func TestCheckHealth(t *testing.T) {
	h := setup(t, twiliofake.Options{}, nil)
	ctx := context.Background()
	if got, err := h.plugin.CheckHealth(ctx, channelID); err != nil || !got.OK {
		t.Fatalf("healthy channel: %+v, %v", got, err)
	}
	h.fake.RevokeToken()
	got, err := h.plugin.CheckHealth(ctx, channelID)
	if err != nil || got.OK || !strings.HasPrefix(got.Reason, "20003: ") {
		t.Fatalf("revoked token: %+v, %v, want unhealthy with 20003", got, err)
	}
	h.fake.Close() // Twilio unreachable: no verdict on the credentials
	if _, err := h.plugin.CheckHealth(ctx, channelID); err == nil {
		t.Fatal("an unreachable Twilio gave a health verdict")
	}
}

func TestConfigureErrors(t *testing.T) {
	p := twiliochannel.New(nil)
	cases := map[string]struct {
		cfg     string
		secrets map[string]string
		fields  []string
	}{
		"no sender":   {`{}`, map[string]string{"account_sid": "AC" + strings.Repeat("1", 32), "auth_token": "tok"}, []string{"from"}},
		"bad from":    {`{"from":"555-0100"}`, map[string]string{"account_sid": "AC" + strings.Repeat("1", 32), "auth_token": "tok"}, []string{"from"}},
		"bad mps":     {`{"from":"+14155550100","mps":0}`, map[string]string{"account_sid": "AC" + strings.Repeat("1", 32), "auth_token": "tok"}, []string{"mps"}},
		"bad service": {`{"messaging_service_sid":"MG1"}`, map[string]string{"account_sid": "AC" + strings.Repeat("1", 32), "auth_token": "tok"}, []string{"messaging_service_sid"}},
		"secrets":     {`{"from":"+14155550100"}`, map[string]string{"account_sid": "nope", "auth_token": "s3cret!value"}, []string{"account_sid", "auth_token"}},
		"missing":     {`{"from":"+14155550100"}`, nil, []string{"account_sid", "auth_token"}},
	}
	for name, tc := range cases {
		err := p.Configure(context.Background(), sdk.InstanceConfig{ChannelID: "x", Config: json.RawMessage(tc.cfg), Secrets: tc.secrets})
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: want a ConfigError, got %v", name, err)
		}
		for _, f := range tc.fields {
			if ce.Fields[f] == "" {
				t.Errorf("%s: field %s not reported in %v", name, f, err)
			}
		}
		if strings.Contains(err.Error(), "s3cret!value") {
			t.Errorf("%s: error echoes a secret", name)
		}
	}
}

func TestSenderPacedAtMPSBetweenParts(t *testing.T) {
	h := setup(t, twiliofake.Options{PerSender: -1}, map[string]any{"mps": 1})
	// With one message per second, part 2 is due a second after part 1: a
	// deadline well inside that second stops the send before part 2
	// instead of letting it go out early.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	text := strings.TrimSpace(strings.Repeat("sixsix ", 300)) // 2 parts
	res, err := h.plugin.Send(ctx, []sdk.Outbound{{ChannelID: channelID, IdempotencyKey: "paced", Recipient: user, Content: message.Text(text)}})
	if err != nil {
		t.Fatal(err)
	}
	if sdk.KindOf(res[0].Err) != sdk.KindTransient {
		t.Fatalf("want a transient failure before part 2, got %v", res[0].Err)
	}
	if n := len(h.fake.Messages()); n != 1 {
		t.Fatalf("want only part 1 sent, got %d messages", n)
	}
}

func TestEdgeErrorPageIsTransient(t *testing.T) {
	h := setup(t, twiliofake.Options{}, nil)
	h.fake.FailNext(twiliofake.Failure{Status: http.StatusBadGateway, HTML: true})
	r := h.send(t, sdk.Outbound{Content: message.Text("hi")})
	var se *sdk.SendError
	if !errors.As(r[0].Err, &se) || se.Kind != sdk.KindTransient || se.Code != "http_502" {
		t.Fatalf("an HTML 502 page: got %v, want transient (http_502)", r[0].Err)
	}
}
