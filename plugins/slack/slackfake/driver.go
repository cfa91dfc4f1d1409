package slackfake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
)

// Driver plays Slack's side of the Events API and interactivity: it builds
// requests and delivers them, signed with the app's signing secret, to a
// webhook URL.
type Driver struct {
	URL           string // the channel's public webhook URL
	SigningSecret string
	TeamID        string // default "T0001"
	BotUserID     string // listed in authorizations, default "UBOT"
	Client        *http.Client
	// Clock signs requests; nil is the wall clock, which the plugin's
	// verifier (slack-go) compares against, so only stale-signature tests
	// should change it.
	Clock fakekit.Clock

	seq atomic.Int64
}

// Webhook is one request as Slack would send it. Its variants (Retry,
// BadSignature, Unsigned, SignedAt) share the body, so delivering a variant
// of the same Webhook is a retry or replay of the same event.
type Webhook struct {
	ContentType string
	Body        []byte
	EventID     string // for event callbacks

	retryNum    int
	retryReason string
	signedAt    time.Time // zero: now
	signature   string    // "": compute; "-": omit the signature headers
}

// Retry is the same event redelivered as Slack's retry number n (1..3).
func (w Webhook) Retry(n int, reason string) *Webhook {
	w.retryNum, w.retryReason = n, reason
	return &w
}

// BadSignature is the same request with a signature made with a wrong secret.
func (w Webhook) BadSignature() *Webhook {
	mac := hmac.New(sha256.New, []byte("not-the-signing-secret"))
	mac.Write(w.Body)
	w.signature = "v0=" + hex.EncodeToString(mac.Sum(nil))
	return &w
}

// Unsigned is the same request without signature headers.
func (w Webhook) Unsigned() *Webhook {
	w.signature = "-"
	return &w
}

// SignedAt is the same request, correctly signed, with timestamp t (for
// example more than five minutes ago).
func (w Webhook) SignedAt(t time.Time) *Webhook {
	w.signedAt = t
	return &w
}

// Message is a user (or bot) message event.
type Message struct {
	EventID     string // default: a fresh "Ev…" id
	User        string
	Channel     string
	ChannelType string // im (default), channel, group, mpim
	Text        string
	BotID       string // set for a bot-authored message
	Subtype     string // e.g. bot_message, message_changed
}

// Action is a click on a Block Kit button.
type Action struct {
	User, Channel string
	ActionID      string
	Value         string
	Text          string // the button's label
	TriggerID     string // default: a fresh id
}

// URLVerification is the challenge Slack sends when the request URL is set.
func (d *Driver) URLVerification(challenge string) *Webhook {
	return d.jsonHook("", map[string]any{"token": "deprecated", "challenge": challenge, "type": "url_verification"})
}

// Message builds an event_callback carrying a message event.
func (d *Driver) Message(m Message) *Webhook {
	n := d.seq.Add(1)
	if m.EventID == "" {
		m.EventID = fmt.Sprintf("Ev%08d", n)
	}
	if m.ChannelType == "" {
		m.ChannelType = "im"
	}
	ts := fmt.Sprintf("%d.%06d", d.Clock.Now().Unix(), n)
	ev := map[string]any{
		"type": "message", "channel": m.Channel, "channel_type": m.ChannelType, "user": m.User,
		"text": m.Text, "ts": ts, "event_ts": ts,
	}
	if m.BotID != "" {
		ev["bot_id"] = m.BotID
	}
	if m.Subtype != "" {
		ev["subtype"] = m.Subtype
	}
	return d.jsonHook(m.EventID, map[string]any{
		"token": "deprecated", "team_id": d.teamID(), "api_app_id": "A0001", "type": "event_callback",
		"event_id": m.EventID, "event_time": d.Clock.Now().Unix(), "event": ev,
		"authorizations": []map[string]any{{"team_id": d.teamID(), "user_id": d.botUserID(), "is_bot": true}},
	})
}

// BlockActions builds the interactivity form Slack posts for a button click:
// one field, payload, holding the JSON.
func (d *Driver) BlockActions(a Action) *Webhook {
	n := d.seq.Add(1)
	if a.TriggerID == "" {
		a.TriggerID = fmt.Sprintf("%d.%d.fake", n, d.Clock.Now().UnixNano())
	}
	actionTS := fmt.Sprintf("%d.%06d", d.Clock.Now().Unix(), n)
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "trigger_id": a.TriggerID, "api_app_id": "A0001", "token": "deprecated",
		"team":         map[string]any{"id": d.teamID()},
		"user":         map[string]any{"id": a.User, "team_id": d.teamID()},
		"channel":      map[string]any{"id": a.Channel},
		"container":    map[string]any{"type": "message", "channel_id": a.Channel, "message_ts": actionTS},
		"response_url": "https://hooks.slack.com/actions/fake",
		"actions": []map[string]any{{
			"type": "button", "action_id": a.ActionID, "block_id": "sb-b", "value": a.Value,
			"text": map[string]any{"type": "plain_text", "text": a.Text}, "action_ts": actionTS,
		}},
	})
	return &Webhook{
		ContentType: "application/x-www-form-urlencoded",
		Body:        []byte(url.Values{"payload": {string(payload)}}.Encode()),
	}
}

// Post delivers w to the driver's URL, signing it at delivery time.
func (d *Driver) Post(ctx context.Context, w *Webhook) (*fakekit.Response, error) {
	return fakekit.Post(ctx, d.Client, d.URL, d.Headers(w), w.Body)
}

// Headers returns the headers Slack sends with w, signed as of the driver's
// clock unless w says otherwise.
func (d *Driver) Headers(w *Webhook) http.Header {
	h := http.Header{"Content-Type": {w.ContentType}, "User-Agent": {"Slackbot 1.0 (+https://api.slack.com/robots)"}}
	if w.signature != "-" {
		at := w.signedAt
		if at.IsZero() {
			at = d.Clock.Now()
		}
		ts := strconv.FormatInt(at.Unix(), 10)
		sig := w.signature
		if sig == "" {
			sig = Sign(d.SigningSecret, ts, w.Body)
		}
		h.Set("X-Slack-Request-Timestamp", ts)
		h.Set("X-Slack-Signature", sig)
	}
	if w.retryNum > 0 {
		h.Set("X-Slack-Retry-Num", strconv.Itoa(w.retryNum))
		h.Set("X-Slack-Retry-Reason", w.retryReason)
	}
	return h
}

// Sign computes Slack's v0 signature of body sent at timestamp ts.
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func (d *Driver) jsonHook(eventID string, v any) *Webhook {
	body, _ := json.Marshal(v)
	return &Webhook{ContentType: "application/json", Body: body, EventID: eventID}
}

func (d *Driver) teamID() string {
	if d.TeamID == "" {
		return "T0001"
	}
	return d.TeamID
}

func (d *Driver) botUserID() string {
	if d.BotUserID == "" {
		return "UBOT"
	}
	return d.BotUserID
}
