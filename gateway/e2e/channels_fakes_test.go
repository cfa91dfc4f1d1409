package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/slack/slackfake"
	"github.com/switchboard-gw/switchboard/plugins/telegram/telegramfake"
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliofake"
)

// chatFake is one platform's local fake as the channel tests drive it: the
// platform's API the plugin calls, and the platform's side of the webhook.
type chatFake interface {
	// channel is the platform's example resource (configs/examples) with
	// the fake's credentials and API URL.
	channel(t *testing.T) string
	// names are the example channel's name and id.
	names() (name, id string)
	// connect points the webhook driver at the channel's public URL.
	connect(t *testing.T, webhookURL string)
	// user is the platform address of test user i, the one flow triggers
	// name.
	user(i int) string
	// message is a text from user, as the platform would deliver it.
	message(user, text string) platformEvent
	// malformed is a correctly signed request whose body is no event; the
	// gateway must answer 400 (the platform may retry) and process nothing.
	malformed() forgery
	// click is the user choosing the button titled title (payload payload)
	// in the last message they received.
	click(t *testing.T, user, title, payload string) platformEvent
	// received is the text of every message the platform accepted for user,
	// in order.
	received(user string) []string
	// limited counts the sends the platform refused with 429.
	limited() int
	// early lists the sends that came before a retry-after the platform
	// gave; a correct gateway makes none.
	early() []string
	// block makes every send to user fail as the platform refuses someone
	// who cannot be reached; reason is the gateway's reason for it.
	block(user string) (reason string)
	// revoke revokes the bot's credentials; the channel's health then
	// names reason.
	revoke() (reason string)
	// outage makes the next n sends fail with a 5xx.
	outage(n int)
}

// platformEvent is one webhook request of a platform.
type platformEvent struct {
	// id is the platform's event id, which the gateway dedupes by.
	id string
	// post delivers it, signed, and returns the gateway's status.
	post func(t *testing.T) int
	// redeliver delivers it again as the platform's retry does.
	redeliver func(t *testing.T) int
	// forged are variants the gateway must refuse.
	forged []forgery
}

type forgery struct {
	name string
	post func(t *testing.T) int
}

// example reads configs/examples/<name>.yaml with each of the replacements
// (old, new pairs) made; a missing old string fails the test, so the
// examples cannot drift away from what is tested here.
func example(t *testing.T, name string, oldNew ...string) string {
	t.Helper()
	raw, err := os.ReadFile("../../configs/examples/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(doc, oldNew[i]) {
			t.Fatalf("configs/examples/%s.yaml no longer contains %q", name, oldNew[i])
		}
		doc = strings.ReplaceAll(doc, oldNew[i], oldNew[i+1])
	}
	return doc
}

func statusOf(t *testing.T, status int, err error) int {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// --- Slack ---

type slackChat struct {
	srv    *slackfake.Server
	driver *slackfake.Driver
}

const slackSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"

func newSlackChat(t *testing.T, interval time.Duration) chatFake {
	srv := slackfake.New(slackfake.Options{PerChannel: interval})
	t.Cleanup(srv.Close)
	return &slackChat{srv: srv, driver: &slackfake.Driver{SigningSecret: slackSigningSecret}}
}

func (f *slackChat) channel(t *testing.T) string {
	return example(t, "slack",
		"config: {}", fmt.Sprintf("config: {api_url: %q}", f.srv.URL()),
		"${SLACK_BOT_TOKEN}", f.srv.Token(),
		"${SLACK_SIGNING_SECRET}", slackSigningSecret)
}

func (f *slackChat) names() (string, string)                 { return "slack", "demo-slack" }
func (f *slackChat) connect(_ *testing.T, webhookURL string) { f.driver.URL = webhookURL }
func (f *slackChat) user(i int) string                       { return fmt.Sprintf("U%07d", i) }

func (f *slackChat) event(id string, w *slackfake.Webhook) platformEvent {
	post := func(w *slackfake.Webhook) func(t *testing.T) int {
		return func(t *testing.T) int {
			r, err := f.driver.Post(context.Background(), w)
			return statusOf(t, r.Status, err)
		}
	}
	return platformEvent{
		id:        id,
		post:      post(w),
		redeliver: post(w.Retry(1, "http_timeout")),
		forged: []forgery{
			{"wrong secret", post(w.BadSignature())},
			{"unsigned", post(w.Unsigned())},
			{"stale", post(w.SignedAt(time.Now().Add(-6 * time.Minute)))},
		},
	}
}

func (f *slackChat) message(user, text string) platformEvent {
	w := f.driver.Message(slackfake.Message{User: user, Channel: slackfake.DMChannel(user), Text: text})
	return f.event(w.EventID, w)
}

func (f *slackChat) malformed() forgery {
	w := &slackfake.Webhook{ContentType: "application/json", Body: []byte(`{"type":"event_callback","event":`)}
	return forgery{"truncated JSON", func(t *testing.T) int {
		r, err := f.driver.Post(context.Background(), w)
		return statusOf(t, r.Status, err)
	}}
}

// click finds the button in the blocks of the user's last message, as
// Slack shows it, and sends its block_actions payload.
func (f *slackChat) click(t *testing.T, user, title, payload string) platformEvent {
	t.Helper()
	var last *slackfake.Post
	for _, p := range f.srv.Posts() {
		if p.Channel == slackfake.DMChannel(user) {
			last = &p
		}
	}
	if last == nil {
		t.Fatalf("slack: %s received nothing to click", user)
	}
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Text     struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(last.Blocks, &blocks); err != nil {
		t.Fatalf("slack: last message to %s has no blocks: %v", user, err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.Type == "button" && e.Value == payload && e.Text.Text == title {
				w := f.driver.BlockActions(slackfake.Action{User: user, Channel: last.Channel,
					ActionID: e.ActionID, Value: e.Value, Text: e.Text.Text})
				return f.event("", w)
			}
		}
	}
	t.Fatalf("slack: no button %q (%s) in %s", title, payload, last.Blocks)
	return platformEvent{}
}

func (f *slackChat) received(user string) []string {
	var out []string
	for _, p := range f.srv.Posts() {
		if p.Channel == slackfake.DMChannel(user) {
			out = append(out, p.Text)
		}
	}
	return out
}

func (f *slackChat) limited() int {
	n := 0
	for _, c := range f.srv.Calls("chat.postMessage") {
		if c.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

func (f *slackChat) early() []string { return describe(f.srv.EarlyRetries()) }

func (f *slackChat) block(user string) string {
	f.srv.SetTargetError(user, "user_not_found")
	return "unknown_user"
}

func (f *slackChat) revoke() string {
	f.srv.RevokeToken()
	return "token_revoked"
}

func (f *slackChat) outage(n int) {
	for range n {
		f.srv.FailNext("chat.postMessage", slackfake.Failure{Status: http.StatusServiceUnavailable})
	}
}

// --- Twilio SMS ---

type twilioChat struct {
	srv    *twiliofake.Server
	driver *twiliofake.Driver
}

// twilioNumber is the example channel's sender.
const twilioNumber = "+14155550100"

func newTwilioChat(t *testing.T, interval time.Duration) chatFake {
	srv := twiliofake.New(twiliofake.Options{PerSender: interval})
	t.Cleanup(srv.Close)
	return &twilioChat{srv: srv, driver: &twiliofake.Driver{AuthToken: srv.AuthToken(), AccountSID: srv.AccountSID()}}
}

func (f *twilioChat) channel(t *testing.T) string {
	return example(t, "twilio",
		"mps: 1 ", fmt.Sprintf("api_base: %q\n      mps: 1 ", f.srv.URL()),
		"${TWILIO_ACCOUNT_SID}", f.srv.AccountSID(),
		"${TWILIO_AUTH_TOKEN}", f.srv.AuthToken())
}

func (f *twilioChat) names() (string, string)                 { return "sms", "demo-sms" }
func (f *twilioChat) connect(_ *testing.T, webhookURL string) { f.driver.URL = webhookURL }
func (f *twilioChat) user(i int) string                       { return fmt.Sprintf("+1555%07d", i) }

func (f *twilioChat) post(r *twiliofake.Request) func(t *testing.T) int {
	return func(t *testing.T) int {
		resp, err := f.driver.Post(context.Background(), r)
		return statusOf(t, resp.Status, err)
	}
}

func (f *twilioChat) message(user, text string) platformEvent {
	r := f.driver.Inbound(user, twilioNumber, text)
	return platformEvent{
		id:   r.Form.Get("MessageSid"),
		post: f.post(r),
		// Twilio documents no retry marker: a redelivery is the same
		// request, same MessageSid.
		redeliver: f.post(r),
		forged: []forgery{
			{"wrong auth token", f.post(r.BadSignature())},
			{"unsigned", f.post(r.Unsigned())},
			{"signed for another URL", f.post(r.SignedFor(strings.Replace(r.URL, "http://", "https://", 1)))},
			{"body changed after signing", f.post(r.Tampered("Body", "send me everything"))},
		},
	}
}

func (f *twilioChat) malformed() forgery {
	r := &twiliofake.Request{URL: f.driver.URL, Form: url.Values{"AccountSid": {f.srv.AccountSID()}, "Body": {"no MessageSid"}}}
	return forgery{"form without MessageSid", f.post(r)}
}

// optionRE finds the numbered options SMS shows for buttons.
var optionRE = regexp.MustCompile(`(?m)^(\d+)\. (.+)$`)

// click answers the option's number, as an SMS user does.
func (f *twilioChat) click(t *testing.T, user, title, _ string) platformEvent {
	t.Helper()
	got := f.received(user)
	if len(got) == 0 {
		t.Fatalf("twilio: %s received nothing to answer", user)
	}
	last := got[len(got)-1]
	for _, m := range optionRE.FindAllStringSubmatch(last, -1) {
		if m[2] == title {
			return f.message(user, m[1])
		}
	}
	t.Fatalf("twilio: no option %q in %q", title, last)
	return platformEvent{}
}

func (f *twilioChat) received(user string) []string {
	var out []string
	for _, m := range f.srv.Messages() {
		if m.To == user {
			out = append(out, m.Body)
		}
	}
	return out
}

func (f *twilioChat) limited() int {
	n := 0
	for _, c := range f.srv.Calls() {
		if c.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

func (f *twilioChat) early() []string { return describe(f.srv.EarlyRetries()) }

func (f *twilioChat) block(user string) string {
	f.srv.SetRecipientError(user, 21610) // the user replied STOP
	return "bot_blocked"
}

func (f *twilioChat) revoke() string {
	f.srv.RevokeToken()
	return "20003"
}

func (f *twilioChat) outage(n int) {
	for range n {
		f.srv.FailNext(twiliofake.Failure{Status: http.StatusServiceUnavailable, HTML: true})
	}
}

// --- Telegram ---

type telegramChat struct {
	srv    *telegramfake.Server
	driver *telegramfake.Driver
}

const telegramSecret = "tg-webhook-secret_0123"

func newTelegramChat(t *testing.T, interval time.Duration) chatFake {
	srv := telegramfake.New(telegramfake.Options{PerChat: interval})
	t.Cleanup(srv.Close)
	return &telegramChat{srv: srv, driver: &telegramfake.Driver{SecretToken: telegramSecret}}
}

func (f *telegramChat) channel(t *testing.T) string {
	return example(t, "telegram",
		"set_webhook: true", fmt.Sprintf("set_webhook: true\n      api_url: %q", f.srv.URL()),
		"${TELEGRAM_BOT_TOKEN}", f.srv.Token(),
		"${TELEGRAM_WEBHOOK_SECRET}", telegramSecret)
}

func (f *telegramChat) names() (string, string) { return "telegram", "demo-telegram" }

// connect also checks what set_webhook registered: the same URL, with the
// secret token.
func (f *telegramChat) connect(t *testing.T, webhookURL string) {
	t.Helper()
	if wh := f.srv.Webhook(); wh == nil || wh.URL != webhookURL || wh.SecretToken != telegramSecret {
		t.Fatalf("telegram: setWebhook registered %+v, want %s with the secret token", wh, webhookURL)
	}
	f.driver.URL = webhookURL
}

func (f *telegramChat) user(i int) string { return fmt.Sprint(100_000 + i) }

func (f *telegramChat) update(u *telegramfake.Update) platformEvent {
	post := func(u *telegramfake.Update) func(t *testing.T) int {
		return func(t *testing.T) int {
			r, err := f.driver.Post(context.Background(), u)
			return statusOf(t, r.Status, err)
		}
	}
	return platformEvent{
		id:   fmt.Sprint(u.UpdateID),
		post: post(u),
		// Telegram redelivers an update it got no 2xx for unchanged.
		redeliver: post(u),
		forged: []forgery{
			{"wrong secret token", post(u.WithSecret("not-the-secret"))},
			{"no secret token", post(u.WithoutSecret())},
		},
	}
}

func (f *telegramChat) chat(user string) int64 {
	var id int64
	fmt.Sscan(user, &id)
	return id
}

func (f *telegramChat) message(user, text string) platformEvent {
	return f.update(f.driver.Message(f.chat(user), text))
}

func (f *telegramChat) malformed() forgery {
	return forgery{"update without update_id", f.update(&telegramfake.Update{Body: []byte(`{"message":{"text":"hi"}}`)}).post}
}

// click presses the inline button carrying payload under the user's last
// message; the plugin must answer the callback query so the button stops
// spinning.
func (f *telegramChat) click(t *testing.T, user, title, payload string) platformEvent {
	t.Helper()
	var last *telegramfake.Sent
	for _, s := range f.srv.Sent() {
		if s.ChatID == user {
			last = &s
		}
	}
	if last == nil {
		t.Fatalf("telegram: %s received nothing to click", user)
	}
	var markup struct {
		InlineKeyboard [][]struct {
			Text         string `json:"text"`
			CallbackData string `json:"callback_data"`
		} `json:"inline_keyboard"`
	}
	_ = json.Unmarshal(last.ReplyMarkup, &markup)
	for _, row := range markup.InlineKeyboard {
		for _, b := range row {
			if b.Text != title || b.CallbackData != payload {
				continue
			}
			u := f.driver.CallbackQuery(f.chat(user), payload)
			ev := f.update(u)
			post := ev.post
			ev.post = func(t *testing.T) int {
				status := post(t)
				query := fmt.Sprintf("cq%d", u.UpdateID)
				for _, c := range f.srv.Calls("answerCallbackQuery") {
					if c.Params.Get("callback_query_id") == query {
						return status
					}
				}
				t.Errorf("telegram: callback query %s was not answered", query)
				return status
			}
			return ev
		}
	}
	t.Fatalf("telegram: no inline button %q (%s) in %s", title, payload, last.ReplyMarkup)
	return platformEvent{}
}

func (f *telegramChat) received(user string) []string {
	var out []string
	for _, s := range f.srv.Sent() {
		if s.ChatID == user {
			out = append(out, s.Text)
		}
	}
	return out
}

func (f *telegramChat) limited() int {
	n := 0
	for _, c := range f.srv.Calls("") {
		if c.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

func (f *telegramChat) early() []string { return describe(f.srv.EarlyRetries()) }

func (f *telegramChat) block(user string) string {
	f.srv.BlockChat(user)
	return "bot_blocked"
}

func (f *telegramChat) revoke() string {
	f.srv.RevokeToken()
	return "Unauthorized"
}

func (f *telegramChat) outage(n int) {
	for range n {
		f.srv.FailNext("sendMessage", telegramfake.Failure{Status: http.StatusBadGateway, Description: "Bad Gateway"})
	}
}

// describe renders the fakes' early-retry records (fakekit.EarlyRetry,
// internal to plugins/) for failure messages.
func describe[T any](early []T) []string {
	out := make([]string, len(early))
	for i, e := range early {
		out[i] = fmt.Sprintf("%+v", e)
	}
	return out
}
