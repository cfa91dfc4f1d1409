package telegramchannel_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
	"github.com/switchboard-gw/switchboard/plugins/telegram/telegramchannel"
	"github.com/switchboard-gw/switchboard/plugins/telegram/telegramfake"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

const (
	channelID = "ch-telegram"
	secret    = "s3cr3t-Token_value"
)

type harness struct {
	fake    *telegramfake.Server
	clock   *fakekit.ManualClock
	plugin  *telegramchannel.Channel
	ingress *fakekit.Ingress
	driver  *telegramfake.Driver
}

func setup(t testing.TB, opts telegramfake.Options) *harness {
	t.Helper()
	clock := fakekit.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts.Clock = clock.Now
	fake := telegramfake.New(opts)
	t.Cleanup(fake.Close)
	plugin := telegramchannel.New(nil)
	ingress := fakekit.NewIngress(plugin, channelID)
	t.Cleanup(ingress.Close)
	if err := plugin.Configure(context.Background(), instanceConfig(fake, ingress, true)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return &harness{fake: fake, clock: clock, plugin: plugin, ingress: ingress,
		driver: &telegramfake.Driver{URL: ingress.WebhookURL(), SecretToken: secret}}
}

func instanceConfig(fake *telegramfake.Server, ingress *fakekit.Ingress, setWebhook bool) sdk.InstanceConfig {
	cfg, _ := json.Marshal(map[string]any{"api_url": fake.URL(), "set_webhook": setWebhook})
	return sdk.InstanceConfig{
		ChannelID: channelID, WebhookURL: ingress.WebhookURL(), Config: cfg,
		Secrets: map[string]string{"bot_token": fake.Token(), "secret_token": secret},
	}
}

func (h *harness) post(t *testing.T, u *telegramfake.Update) *fakekit.Response {
	t.Helper()
	resp, err := h.driver.Post(context.Background(), u)
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
			outs[i].IdempotencyKey = "key-" + outs[i].Recipient + "-" + string(rune('a'+i))
		}
	}
	res, err := h.plugin.Send(context.Background(), outs)
	if err != nil || len(res) != len(outs) {
		t.Fatalf("Send: %d results, %v", len(res), err)
	}
	return res
}

func TestConfigureSetsWebhook(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	wh := h.fake.Webhook()
	if wh == nil || wh.URL != h.ingress.WebhookURL() || wh.SecretToken != secret ||
		strings.Join(wh.AllowedUpdates, ",") != "message,callback_query" {
		t.Fatalf("webhook registration: %+v", wh)
	}
}

func TestMessageUpdateAndReplay(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	u := h.driver.Message(4242, "hello bot")
	for range 2 { // the second delivery is Telegram redelivering the same update
		if resp := h.post(t, u); resp.Status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
	}
	ev := h.ingress.Events()
	if len(ev) != 2 {
		t.Fatalf("want 2 events, got %d", len(ev))
	}
	for _, e := range ev {
		if e.Type != sdk.EventMessage || e.ID != "700000001" || e.UserID != "4242" || e.Content.Text != "hello bot" ||
			e.Profile["username"] != "ada" {
			t.Fatalf("unexpected event %+v", e)
		}
	}
}

func TestSecretTokenRefused(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	for name, u := range map[string]*telegramfake.Update{
		"wrong":         h.driver.Message(1, "x").WithSecret("s3cr3t-Token_valuf"),
		"missing":       h.driver.Message(1, "x").WithoutSecret(),
		"prefix":        h.driver.Message(1, "x").WithSecret(secret[:5]),
		"callback":      h.driver.CallbackQuery(1, "x").WithSecret("nope"),
		"wrong, longer": h.driver.Message(1, "x").WithSecret(secret + "x"),
	} {
		if resp := h.post(t, u); resp.Status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.Status)
		}
	}
	if ev := h.ingress.Events(); len(ev) != 0 {
		t.Fatalf("refused updates produced events: %+v", ev)
	}
	if calls := h.fake.Calls("answerCallbackQuery"); len(calls) != 0 {
		t.Fatalf("a refused callback was answered: %+v", calls)
	}
}

func TestMalformedUpdateIs400(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	if resp := h.post(t, &telegramfake.Update{Body: []byte(`{"update_id":`)}); resp.Status != http.StatusBadRequest {
		t.Fatalf("status %d", resp.Status)
	}
}

func TestCallbackQueryAnsweredAndEmitted(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	u := h.driver.CallbackQuery(4242, "choice-2")
	if resp := h.post(t, u); resp.Status != http.StatusOK {
		t.Fatalf("status %d", resp.Status)
	}
	ev := h.ingress.Events()
	if len(ev) != 1 || ev[0].Type != sdk.EventButton || ev[0].Content.Payload != "choice-2" || ev[0].UserID != "4242" {
		t.Fatalf("events %+v", ev)
	}
	answers := h.fake.Calls("answerCallbackQuery")
	if len(answers) != 1 || answers[0].Params.Get("callback_query_id") != "cq700000001" {
		t.Fatalf("answerCallbackQuery calls: %+v", answers)
	}
}

func TestCallbackEventSurvivesFailedAnswer(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	h.fake.FailNext("answerCallbackQuery", telegramfake.Failure{Status: 400, Description: "Bad Request: query is too old and response timeout expired or query ID is invalid"})
	h.post(t, h.driver.CallbackQuery(4242, "late"))
	if ev := h.ingress.Events(); len(ev) != 1 || ev[0].Content.Payload != "late" {
		t.Fatalf("events %+v", ev)
	}
}

func lastMarkup(t *testing.T, s telegramfake.Sent) map[string]any {
	t.Helper()
	var m map[string]any
	if len(s.ReplyMarkup) > 0 {
		if err := json.Unmarshal(s.ReplyMarkup, &m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestSendRendersEachContentType(t *testing.T) {
	h := setup(t, telegramfake.Options{PerChat: -1})
	long := strings.Repeat("x", 65)
	cards := []message.Card{
		{Title: "Tea", Subtitle: "hot", ImageURL: "https://example.com/tea.png", Buttons: []message.Button{{Title: "Buy", Payload: "buy-tea"}}},
		{Title: "Coffee", Buttons: []message.Button{{Title: "Buy", Payload: "buy-coffee"}, {Title: "Site", URL: "https://example.com"}}},
	}
	contents := map[string]message.Content{
		"1": message.Text("plain"),
		"2": {Type: message.TypeButtons, Text: "Pick", Buttons: []message.Button{{Title: "Yes", Payload: "y"}, {Title: "Docs", URL: "https://example.com/d"}}},
		"3": {Type: message.TypeButtons, Text: "Pick", Buttons: []message.Button{{Title: "Long", Payload: long}, {Title: "Docs", URL: "https://example.com/d"}}},
		"4": {Type: message.TypeImage, Text: "a cat", Media: &message.Media{URL: "https://example.com/cat.png"}},
		"5": {Type: message.TypeImage, Text: strings.Repeat("c", 1025), Media: &message.Media{URL: "https://example.com/cat.png"}},
		"6": {Type: message.TypeFile, Text: "report", Media: &message.Media{URL: "https://example.com/r.pdf"}},
		"7": {Type: message.TypeCarousel, Text: "Menu", Cards: cards},
		"8": {Type: message.TypeTyping, DurationMS: 300},
	}
	for chat, c := range contents {
		if r := h.send(t, sdk.Outbound{Recipient: chat, Content: c}); r[0].Err != nil {
			t.Fatalf("%s: %v", c.Type, r[0].Err)
		}
	}
	byChat := map[string][]telegramfake.Sent{}
	for _, s := range h.fake.Sent() {
		byChat[s.ChatID] = append(byChat[s.ChatID], s)
	}
	if s := byChat["1"]; len(s) != 1 || s[0].Text != "plain" || s[0].ReplyMarkup != nil {
		t.Errorf("text: %+v", s)
	}
	if s := byChat["2"]; len(s) != 1 || !strings.Contains(string(s[0].ReplyMarkup), `"callback_data":"y"`) ||
		!strings.Contains(string(s[0].ReplyMarkup), `"url":"https://example.com/d"`) {
		t.Errorf("buttons: %+v", s)
	}
	if s := byChat["3"]; len(s) != 1 || s[0].Text != "Pick\n1. Long\n2. Docs: https://example.com/d" ||
		lastMarkup(t, s[0])["one_time_keyboard"] != true || strings.Contains(string(s[0].ReplyMarkup), "Docs") {
		t.Errorf("over-long payload must downgrade to fallback text + reply keyboard: %+v", s)
	}
	if s := byChat["4"]; len(s) != 1 || s[0].Method != "sendPhoto" || s[0].Text != "a cat" || s[0].Media != "https://example.com/cat.png" {
		t.Errorf("image: %+v", s)
	}
	if s := byChat["5"]; len(s) != 2 || s[0].Method != "sendPhoto" || s[0].Text != "" || s[1].Method != "sendMessage" {
		t.Errorf("image with long caption: %+v", s)
	}
	if s := byChat["6"]; len(s) != 1 || s[0].Method != "sendDocument" || s[0].Media != "https://example.com/r.pdf" {
		t.Errorf("file: %+v", s)
	}
	if s := byChat["7"]; len(s) != 1 || s[0].Text != contents["7"].TextFallback() || s[0].ReplyMarkup != nil {
		t.Errorf("carousel must be its TextFallback: %+v", s)
	}
	card := message.Content{Type: message.TypeCard, Text: "Today", Cards: cards[:1]}
	if r := h.send(t, sdk.Outbound{Recipient: "9", Content: card}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	byChat = map[string][]telegramfake.Sent{}
	for _, s := range h.fake.Sent() {
		byChat[s.ChatID] = append(byChat[s.ChatID], s)
	}
	if s := byChat["9"]; len(s) != 2 || s[0].Text != "Today" || s[1].Method != "sendPhoto" || s[1].Text != "Tea\nhot" ||
		!strings.Contains(string(s[1].ReplyMarkup), `"callback_data":"buy-tea"`) {
		t.Errorf("card: %+v", s)
	}
	if calls := h.fake.Calls("sendChatAction"); len(calls) != 1 || calls[0].Params.Get("chat_id") != "8" || calls[0].Params.Get("action") != "typing" {
		t.Errorf("typing: %+v", calls)
	}
}

func TestLongTextSplitAndResumedAfterRateLimit(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	text := strings.Repeat("word ", 1000) + "\n" + strings.Repeat("more ", 200) // 6,000 characters
	out := sdk.Outbound{Recipient: "77", IdempotencyKey: "long-1", Content: message.Text(text)}
	res := h.send(t, out)
	var se *sdk.SendError
	if !errors.As(res[0].Err, &se) || se.Kind != sdk.KindRateLimited || se.RetryAfter != time.Second {
		t.Fatalf("the second part must be rate limited by the 1/s chat limit, got %v", res[0].Err)
	}
	h.clock.Advance(se.RetryAfter)
	res = h.send(t, out) // the gateway's retry
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	sent := h.fake.Sent()
	if len(sent) != 2 {
		t.Fatalf("want the 2 parts once each, got %d messages", len(sent))
	}
	if got := sent[0].Text + " " + sent[1].Text; strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(text), " ") {
		t.Fatal("the parts do not add up to the text")
	}
	if res[0].ProviderID != "77:1" {
		t.Fatalf("ProviderID %q, want the first part's", res[0].ProviderID)
	}
	if early := h.fake.EarlyRetries(); len(early) != 0 {
		t.Fatalf("retried before retry_after: %+v", early)
	}
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name   string
		script func(*telegramfake.Server)
		kind   sdk.ErrorKind
		code   string
		retry  time.Duration
	}{
		{"429", func(f *telegramfake.Server) {
			f.FailNext("sendMessage", telegramfake.Failure{Status: 429, Description: "Too Many Requests: retry after 7", RetryAfter: 7})
		}, sdk.KindRateLimited, "too_many_requests", 7 * time.Second},
		{"blocked", func(f *telegramfake.Server) { f.BlockChat("5") }, sdk.KindPermanent, "bot_blocked", 0},
		{"chat not found", func(f *telegramfake.Server) {
			f.FailNext("sendMessage", telegramfake.Failure{Status: 400, Description: "Bad Request: chat not found"})
		}, sdk.KindPermanent, "unknown_user", 0},
		{"never started", func(f *telegramfake.Server) {
			f.FailNext("sendMessage", telegramfake.Failure{Status: 403, Description: "Forbidden: bot can't initiate conversation with a user"})
		}, sdk.KindPermanent, "not_connected", 0},
		{"revoked", func(f *telegramfake.Server) { f.RevokeToken() }, sdk.KindAuth, "unauthorized", 0},
		{"500", func(f *telegramfake.Server) {
			f.FailNext("sendMessage", telegramfake.Failure{Status: 500, Description: "Internal Server Error"})
		}, sdk.KindTransient, "http_500", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t, telegramfake.Options{})
			tc.script(h.fake)
			res := h.send(t, sdk.Outbound{Recipient: "5", Content: message.Text("hi")})
			var se *sdk.SendError
			if !errors.As(res[0].Err, &se) || se.Kind != tc.kind || se.Code != tc.code || se.RetryAfter != tc.retry {
				t.Fatalf("got %v, want %s (%s)", res[0].Err, tc.kind, tc.code)
			}
		})
	}
}

func TestMigratedGroupIsRetriedAtNewID(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	h.fake.MigrateChat("-4001", -1004001)
	res := h.send(t, sdk.Outbound{Recipient: "-4001", Content: message.Text("hi group")})
	if res[0].Err != nil || !strings.HasPrefix(res[0].ProviderID, "-1004001:") {
		t.Fatalf("result %+v", res[0])
	}
	if sent := h.fake.Sent(); len(sent) != 1 || sent[0].ChatID != "-1004001" {
		t.Fatalf("sent %+v", sent)
	}
}

func TestCheckHealth(t *testing.T) {
	h := setup(t, telegramfake.Options{})
	ctx := context.Background()
	if got, err := h.plugin.CheckHealth(ctx, channelID); err != nil || !got.OK {
		t.Fatalf("healthy: %+v, %v", got, err)
	}
	h.fake.RevokeToken()
	if got, err := h.plugin.CheckHealth(ctx, channelID); err != nil || got.OK || got.Reason != "Unauthorized" {
		t.Fatalf("revoked: %+v, %v", got, err)
	}
}

func TestConfigureErrors(t *testing.T) {
	fake := telegramfake.New(telegramfake.Options{})
	defer fake.Close()
	ingress := fakekit.NewIngress(telegramchannel.New(nil), channelID)
	defer ingress.Close()
	p := telegramchannel.New(nil)
	ctx := context.Background()

	ic := instanceConfig(fake, ingress, false)
	ic.Secrets = map[string]string{"bot_token": "not-a-token", "secret_token": "has spaces"}
	var ce *sdk.ConfigError
	if err := p.Configure(ctx, ic); !errors.As(err, &ce) || ce.Fields["bot_token"] == "" || ce.Fields["secret_token"] == "" {
		t.Fatalf("bad secrets: %v", err)
	}
	if strings.Contains(ce.Error(), "has spaces") || strings.Contains(ce.Error(), "not-a-token") {
		t.Fatal("error echoes a secret")
	}

	ic = instanceConfig(fake, ingress, true)
	ic.Secrets["bot_token"] = "999:wrong"
	if err := p.Configure(ctx, ic); !errors.As(err, &ce) || ce.Fields["bot_token"] == "" {
		t.Fatalf("a token Telegram refuses at setWebhook: %v", err)
	}

	fake.Close() // unreachable API: the error must not leak the token from the URL
	ic = instanceConfig(fake, ingress, true)
	err := p.Configure(ctx, ic)
	if err == nil || strings.Contains(err.Error(), fake.Token()) || strings.Contains(err.Error(), "FAKE-token") {
		t.Fatalf("unreachable API: %v", err)
	}
}
