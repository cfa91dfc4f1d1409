package slackchannel_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
	"github.com/switchboard-gw/switchboard/plugins/slack/slackchannel"
	"github.com/switchboard-gw/switchboard/plugins/slack/slackfake"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

const (
	channelID     = "ch-slack"
	signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
)

type harness struct {
	fake    *slackfake.Server
	clock   *fakekit.ManualClock
	plugin  *slackchannel.Channel
	ingress *fakekit.Ingress
	driver  *slackfake.Driver
}

func setup(t testing.TB) *harness {
	t.Helper()
	clock := fakekit.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	fake := slackfake.New(slackfake.Options{Clock: clock.Now})
	t.Cleanup(fake.Close)
	plugin := slackchannel.New(nil)
	ingress := fakekit.NewIngress(plugin, channelID)
	t.Cleanup(ingress.Close)
	err := plugin.Configure(context.Background(), sdk.InstanceConfig{
		ChannelID:  channelID,
		WebhookURL: ingress.WebhookURL(),
		Config:     json.RawMessage(`{"api_url":` + quote(strings.TrimSuffix(fake.URL(), "/")) + `}`),
		Secrets:    map[string]string{"bot_token": fake.Token(), "signing_secret": signingSecret},
	})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return &harness{
		fake: fake, clock: clock, plugin: plugin, ingress: ingress,
		driver: &slackfake.Driver{URL: ingress.WebhookURL(), SigningSecret: signingSecret, BotUserID: fake.BotUserID()},
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func (h *harness) post(t *testing.T, w *slackfake.Webhook) *fakekit.Response {
	t.Helper()
	resp, err := h.driver.Post(context.Background(), w)
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
			outs[i].IdempotencyKey = "k" + string(rune('a'+i))
		}
	}
	res, err := h.plugin.Send(context.Background(), outs)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(res) != len(outs) {
		t.Fatalf("Send returned %d results for %d messages", len(res), len(outs))
	}
	return res
}

func TestURLVerificationAnswersChallenge(t *testing.T) {
	h := setup(t)
	resp := h.post(t, h.driver.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"))
	if resp.Status != http.StatusOK || string(resp.Body) != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("got %d %q", resp.Status, resp.Body)
	}
	if ev := h.ingress.Events(); len(ev) != 0 {
		t.Fatalf("url_verification produced events: %+v", ev)
	}
}

func TestMessageEventAndRetriesShareEventID(t *testing.T) {
	h := setup(t)
	w := h.driver.Message(slackfake.Message{User: "U123", Channel: "D123", Text: "hello"})
	for _, variant := range []*slackfake.Webhook{w, w.Retry(1, "http_timeout"), w.Retry(2, "http_error"), w} {
		if resp := h.post(t, variant); resp.Status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
	}
	events := h.ingress.Events()
	if len(events) != 4 {
		t.Fatalf("want 4 events (the gateway dedupes), got %d", len(events))
	}
	for _, ev := range events {
		if ev.Type != sdk.EventMessage || ev.ID != w.EventID || ev.UserID != "U123" || ev.ReplyTo != "D123" ||
			ev.Content.Text != "hello" || ev.Content.Type != message.TypeText {
			t.Fatalf("unexpected event %+v", ev)
		}
	}
}

func TestSignatureRefused(t *testing.T) {
	h := setup(t)
	w := h.driver.Message(slackfake.Message{User: "U123", Channel: "D123", Text: "hello"})
	cases := map[string]*slackfake.Webhook{
		"bad signature":   w.BadSignature(),
		"unsigned":        w.Unsigned(),
		"stale timestamp": w.SignedAt(time.Now().Add(-301 * time.Second)),
		"future":          w.SignedAt(time.Now().Add(301 * time.Second)),
		"bad form":        h.driver.BlockActions(slackfake.Action{User: "U1", Value: "v"}).BadSignature(),
	}
	for name, variant := range cases {
		if resp := h.post(t, variant); resp.Status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.Status)
		}
	}
	if ev := h.ingress.Events(); len(ev) != 0 {
		t.Fatalf("refused requests produced events: %+v", ev)
	}
	if resp := h.post(t, w.SignedAt(time.Now().Add(-4*time.Minute))); resp.Status != http.StatusOK {
		t.Fatalf("a 4-minute-old signature is inside the window, got %d", resp.Status)
	}
}

func TestBotSelfAndSubtypeMessagesDropped(t *testing.T) {
	h := setup(t)
	for _, m := range []slackfake.Message{
		{User: "U123", Channel: "D123", Text: "from a bot", BotID: "B999"},
		{User: h.fake.BotUserID(), Channel: "D123", Text: "my own post"},
		{User: "U123", Channel: "D123", Text: "edited", Subtype: "message_changed"},
		{Channel: "D123", Text: "no user", Subtype: "bot_message", BotID: "B1"},
	} {
		if resp := h.post(t, h.driver.Message(m)); resp.Status != http.StatusOK {
			t.Fatalf("status %d", resp.Status)
		}
	}
	if ev := h.ingress.Events(); len(ev) != 0 {
		t.Fatalf("dropped messages produced events: %+v", ev)
	}
}

func TestChannelMessageRepliesInChannel(t *testing.T) {
	h := setup(t)
	h.post(t, h.driver.Message(slackfake.Message{User: "U123", Channel: "C777", ChannelType: "channel", Text: "hi all"}))
	ev := h.ingress.Events()
	if len(ev) != 1 || ev[0].UserID != "U123" || ev[0].ReplyTo != "C777" {
		t.Fatalf("got %+v", ev)
	}
}

func TestBlockActionsBecomeButtonEvents(t *testing.T) {
	h := setup(t)
	w := h.driver.BlockActions(slackfake.Action{User: "U123", Channel: "D123", ActionID: "sb-b-0", Value: "yes-please", Text: "Yes", TriggerID: "13345224609.738474920.8088930838d88f008e0"})
	if resp := h.post(t, w); resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	h.post(t, w) // a replay carries the same id
	ev := h.ingress.Events()
	if len(ev) != 2 {
		t.Fatalf("want 2 events, got %+v", ev)
	}
	for _, e := range ev {
		if e.Type != sdk.EventButton || e.Content.Payload != "yes-please" || e.UserID != "U123" || e.ReplyTo != "D123" ||
			e.ID != "13345224609.738474920.8088930838d88f008e0" {
			t.Fatalf("unexpected event %+v", e)
		}
	}
}

func TestMalformedSignedBodyIs400(t *testing.T) {
	h := setup(t)
	w := &slackfake.Webhook{ContentType: "application/json", Body: []byte(`{"type":`)}
	if resp := h.post(t, w); resp.Status != http.StatusBadRequest {
		t.Fatalf("status %d", resp.Status)
	}
}

func TestSendRendersEachContentType(t *testing.T) {
	h := setup(t)
	buttons := []message.Button{{Title: "Yes", Payload: "y"}, {Title: "Docs", URL: "https://example.com/docs"}}
	cards := []message.Card{
		{Title: "Tea", Subtitle: "hot", ImageURL: "https://example.com/tea.png", Buttons: []message.Button{{Title: "Buy", Payload: "buy-tea"}}},
		{Title: "Coffee", Buttons: []message.Button{{Title: "Buy", Payload: "buy-coffee"}}},
	}
	contents := []message.Content{
		message.Text("plain <b>&"),
		{Type: message.TypeButtons, Text: "Pick one", Buttons: buttons},
		{Type: message.TypeImage, Text: "a cat", Media: &message.Media{URL: "https://example.com/cat.png"}},
		{Type: message.TypeFile, Text: "the report", Media: &message.Media{URL: "https://example.com/r.pdf"}},
		{Type: message.TypeCard, Cards: cards[:1]},
		{Type: message.TypeCarousel, Text: "Menu", Cards: cards},
		{Type: message.TypeTyping, DurationMS: 500},
	}
	var outs []sdk.Outbound
	for i, c := range contents {
		// one channel each, so the per-channel limit does not interfere
		outs = append(outs, sdk.Outbound{Recipient: "C" + string(rune('A'+i)), Content: c})
	}
	for i, r := range h.send(t, outs...) {
		if r.Err != nil {
			t.Fatalf("%s: %v", contents[i].Type, r.Err)
		}
	}
	posts := h.fake.Posts()
	if len(posts) != 6 {
		t.Fatalf("want 6 posts (typing sends nothing), got %d", len(posts))
	}
	byChannel := map[string]slackfake.Post{}
	for _, p := range posts {
		byChannel[p.Channel] = p
	}
	check := func(ch string, wantText string, wantInBlocks ...string) {
		t.Helper()
		p := byChannel[ch]
		if p.Text != wantText {
			t.Errorf("%s: text %q, want %q", ch, p.Text, wantText)
		}
		for _, s := range wantInBlocks {
			if !strings.Contains(string(p.Blocks), s) {
				t.Errorf("%s: blocks %s lack %s", ch, p.Blocks, s)
			}
		}
		if len(wantInBlocks) == 0 && p.Blocks != nil {
			t.Errorf("%s: unexpected blocks %s", ch, p.Blocks)
		}
	}
	check("CA", "plain &lt;b&gt;&amp;")
	check("CB", "Pick one\n1. Yes\n2. Docs: https://example.com/docs", `"type":"actions"`, `"value":"y"`, `"url":"https://example.com/docs"`)
	check("CC", "a cat\nhttps://example.com/cat.png", `"type":"image"`, `"image_url":"https://example.com/cat.png"`)
	check("CD", "the report\nhttps://example.com/r.pdf")
	check("CE", "Tea\nhot\nhttps://example.com/tea.png\n1. Buy", `"*Tea*\nhot"`, `"value":"buy-tea"`, `"accessory"`)
	check("CF", (message.Content{Type: message.TypeCarousel, Text: "Menu", Cards: cards}).TextFallback(), `"type":"divider"`, `"value":"buy-coffee"`)
}

func TestProactiveSendOpensDMOnce(t *testing.T) {
	h := setup(t)
	for range 2 {
		res := h.send(t, sdk.Outbound{Recipient: "U42", Content: message.Text("ping")})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		if want := slackfake.DMChannel("U42") + ":"; !strings.HasPrefix(res[0].ProviderID, want) {
			t.Fatalf("ProviderID %q, want prefix %q", res[0].ProviderID, want)
		}
		h.clock.Advance(time.Second)
	}
	if opens := h.fake.Calls("conversations.open"); len(opens) != 1 || opens[0].Args.Get("users") != "U42" {
		t.Fatalf("conversations.open calls: %+v", opens)
	}
	if posts := h.fake.Posts(); len(posts) != 2 || posts[1].Channel != slackfake.DMChannel("U42") {
		t.Fatalf("posts: %+v", posts)
	}
}

func TestRateLimitedWithRetryAfterAndOrderKept(t *testing.T) {
	h := setup(t)
	res := h.send(t,
		sdk.Outbound{Recipient: "C1", Content: message.Text("one")},
		sdk.Outbound{Recipient: "C1", Content: message.Text("two")},
		sdk.Outbound{Recipient: "C1", Content: message.Text("three")},
		sdk.Outbound{Recipient: "C2", Content: message.Text("other channel")},
	)
	var se *sdk.SendError
	if res[0].Err != nil || !errors.As(res[1].Err, &se) || se.Kind != sdk.KindRateLimited || se.RetryAfter != time.Second {
		t.Fatalf("results: %+v", res)
	}
	if res[2].Err != res[1].Err {
		t.Fatalf("a later message to the same channel must wait behind the throttled one, got %v", res[2].Err)
	}
	if res[3].Err != nil {
		t.Fatalf("another channel is not throttled: %v", res[3].Err)
	}
	if n := len(h.fake.Calls("chat.postMessage")); n != 3 {
		t.Fatalf("want 3 postMessage calls (the third C1 message is held back), got %d", n)
	}
	h.clock.Advance(se.RetryAfter)
	if res := h.send(t, sdk.Outbound{Recipient: "C1", Content: message.Text("two")}); res[0].Err != nil {
		t.Fatalf("retry after the hint: %v", res[0].Err)
	}
	if early := h.fake.EarlyRetries(); len(early) != 0 {
		t.Fatalf("retried before Retry-After: %+v", early)
	}
}

func TestFakeNoticesEarlyRetry(t *testing.T) {
	h := setup(t)
	h.send(t, sdk.Outbound{Recipient: "C1", Content: message.Text("one")}, sdk.Outbound{Recipient: "C1", Content: message.Text("two")})
	h.send(t, sdk.Outbound{Recipient: "C1", Content: message.Text("two")}) // no wait
	if early := h.fake.EarlyRetries(); len(early) != 1 || early[0].Key != "C1" {
		t.Fatalf("the fake must record a retry that ignored Retry-After, got %+v", early)
	}
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name   string
		script func(*slackfake.Server)
		kind   sdk.ErrorKind
		code   string
	}{
		{"channel_not_found", func(f *slackfake.Server) { f.SetTargetError("C1", "channel_not_found") }, sdk.KindPermanent, "channel_not_found"},
		{"is_archived", func(f *slackfake.Server) { f.FailNext("chat.postMessage", slackfake.Failure{Error: "is_archived"}) }, sdk.KindPermanent, "is_archived"},
		{"invalid_auth", func(f *slackfake.Server) { f.FailNext("chat.postMessage", slackfake.Failure{Error: "invalid_auth"}) }, sdk.KindAuth, "invalid_auth"},
		{"missing_scope", func(f *slackfake.Server) { f.FailNext("chat.postMessage", slackfake.Failure{Error: "missing_scope"}) }, sdk.KindAuth, "missing_scope"},
		{"token_revoked", func(f *slackfake.Server) { f.RevokeToken() }, sdk.KindAuth, "token_revoked"},
		{"internal_error", func(f *slackfake.Server) { f.FailNext("chat.postMessage", slackfake.Failure{Error: "internal_error"}) }, sdk.KindTransient, "internal_error"},
		{"ratelimited body", func(f *slackfake.Server) { f.FailNext("chat.postMessage", slackfake.Failure{Error: "ratelimited"}) }, sdk.KindTransient, "ratelimited"},
		{"503", func(f *slackfake.Server) { f.FailNext("chat.postMessage", slackfake.Failure{Status: 503}) }, sdk.KindTransient, "http_503"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t)
			tc.script(h.fake)
			res := h.send(t, sdk.Outbound{Recipient: "C1", Content: message.Text("hi")})
			var se *sdk.SendError
			if !errors.As(res[0].Err, &se) || se.Kind != tc.kind || se.Code != tc.code {
				t.Fatalf("got %v, want %s (%s)", res[0].Err, tc.kind, tc.code)
			}
		})
	}
}

func TestProactiveSendToUnknownUserIsPermanent(t *testing.T) {
	h := setup(t)
	h.fake.SetTargetError("U404", "user_not_found")
	res := h.send(t, sdk.Outbound{Recipient: "U404", Content: message.Text("hi")})
	var se *sdk.SendError
	if !errors.As(res[0].Err, &se) || se.Kind != sdk.KindPermanent || se.Code != "unknown_user" || !strings.Contains(se.Message, "user_not_found") {
		t.Fatalf("got %v, want permanent unknown_user naming Slack's user_not_found", res[0].Err)
	}
	// A DM that disappeared after it was opened: the user is unreachable,
	// and the next message opens the DM again.
	h.send(t, sdk.Outbound{Recipient: "U2", Content: message.Text("hi")})
	h.fake.SetTargetError(slackfake.DMChannel("U2"), "channel_not_found")
	res = h.send(t, sdk.Outbound{Recipient: "U2", Content: message.Text("again")})
	if !errors.As(res[0].Err, &se) || se.Code != "unknown_user" {
		t.Fatalf("post to a vanished DM: %v, want unknown_user", res[0].Err)
	}
	h.fake.SetTargetError(slackfake.DMChannel("U2"), "")
	h.clock.Advance(time.Second)
	if res = h.send(t, sdk.Outbound{Recipient: "U2", Content: message.Text("back")}); res[0].Err != nil {
		t.Fatalf("after the DM is back: %v", res[0].Err)
	}
	if n := len(h.fake.Calls("conversations.open")); n != 3 {
		t.Fatalf("conversations.open called %d times, want 3 (the vanished DM is opened again)", n)
	}
}

func TestCheckHealth(t *testing.T) {
	h := setup(t)
	ctx := context.Background()
	if got, err := h.plugin.CheckHealth(ctx, channelID); err != nil || !got.OK {
		t.Fatalf("healthy channel: %+v, %v", got, err)
	}
	h.fake.RevokeToken()
	if got, err := h.plugin.CheckHealth(ctx, channelID); err != nil || got.OK || got.Reason != "token_revoked" {
		t.Fatalf("revoked token: %+v, %v", got, err)
	}
}

func TestConfigureReportsFieldsWithoutSecrets(t *testing.T) {
	p := slackchannel.New(nil)
	err := p.Configure(context.Background(), sdk.InstanceConfig{
		ChannelID: "x",
		Config:    json.RawMessage(`{"api_url":"not a url","colour":"red"}`),
		Secrets:   map[string]string{"bot_token": "xoxb-very-secret"},
	})
	var ce *sdk.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want *sdk.ConfigError, got %v", err)
	}
	for _, f := range []string{"colour", "signing_secret"} {
		if _, ok := ce.Fields[f]; !ok {
			t.Errorf("field %s not reported: %v", f, err)
		}
	}
	if strings.Contains(err.Error(), "xoxb-very-secret") {
		t.Fatal("error echoes a secret")
	}
	err = p.Configure(context.Background(), sdk.InstanceConfig{ChannelID: "x", Config: json.RawMessage(`{"api_url":"ftp://x"}`),
		Secrets: map[string]string{"bot_token": "t", "signing_secret": "s"}})
	if !errors.As(err, &ce) || ce.Fields["api_url"] == "" {
		t.Fatalf("bad api_url not reported: %v", err)
	}
}

func TestUnknownChannel(t *testing.T) {
	p := slackchannel.New(nil)
	if _, err := p.HandleHTTP(context.Background(), &sdk.HTTPRequest{ChannelID: "nope"}); err == nil {
		t.Fatal("HandleHTTP for an unconfigured channel must fail")
	}
	res, err := p.Send(context.Background(), []sdk.Outbound{{ChannelID: "nope", Recipient: "C1", Content: message.Text("x")}})
	if err != nil || sdk.KindOf(res[0].Err) != sdk.KindTransient {
		t.Fatalf("got %+v, %v", res, err)
	}
}
