package slackchannel

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// HandleHTTP verifies the v0 signature of every request (events,
// url_verification and interactivity alike), then translates it. It never
// calls Slack, so it answers well within Slack's 3 s deadline; the gateway
// writes the answer before it processes the events.
func (c *Channel) HandleHTTP(_ context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	in, err := c.instances.Get(req.ChannelID)
	if err != nil {
		return nil, err
	}
	if err := in.verify(req); err != nil {
		return reply(http.StatusUnauthorized, "invalid request signature"), nil
	}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		return interaction(req.Body), nil
	}
	return eventsAPI(req.Body), nil
}

// verify checks X-Slack-Signature over the raw body, refusing timestamps more
// than five minutes from now (slack-go hard-codes the window and the clock).
func (in *instance) verify(req *sdk.HTTPRequest) error {
	sv, err := slack.NewSecretsVerifier(req.Header, in.signingSecret)
	if err != nil {
		return fmt.Errorf("slack signature: %w", err)
	}
	if _, err := sv.Write(req.Body); err != nil {
		return fmt.Errorf("slack signature: %w", err)
	}
	if err := sv.Ensure(); err != nil {
		return fmt.Errorf("slack signature: %w", err)
	}
	return nil
}

// envelope is the part of an Events API request the plugin reads. It is
// decoded directly rather than with slackevents.ParseEvent, which fails on
// inner event types it does not know and hides authorizations.
type envelope struct {
	Type           string `json:"type"`
	Challenge      string `json:"challenge"`
	TeamID         string `json:"team_id"`
	EventID        string `json:"event_id"`
	EventTime      int64  `json:"event_time"`
	Authorizations []struct {
		UserID string `json:"user_id"`
		IsBot  bool   `json:"is_bot"`
	} `json:"authorizations"`
	Event struct {
		Type        string `json:"type"`
		Channel     string `json:"channel"`
		ChannelType string `json:"channel_type"`
		User        string `json:"user"`
		Text        string `json:"text"`
		TS          string `json:"ts"`
		ThreadTS    string `json:"thread_ts"`
		Subtype     string `json:"subtype"`
		BotID       string `json:"bot_id"`
	} `json:"event"`
}

func eventsAPI(body []byte) *sdk.HTTPResponse {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return reply(http.StatusBadRequest, "malformed JSON")
	}
	switch env.Type {
	case "url_verification":
		return reply(http.StatusOK, env.Challenge)
	case "event_callback":
		resp := reply(http.StatusOK, "")
		if ev, ok := env.message(); ok {
			resp.Events = []sdk.Event{ev}
		}
		return resp
	default: // app_rate_limited and future types: acknowledge, nothing to do
		return reply(http.StatusOK, "")
	}
}

// message translates a user's message in a DM or a channel. Bot messages
// (including the bot's own posts, which come back as message.im), edits,
// deletions and other subtypes are dropped, or the bot would answer itself.
func (env *envelope) message() (sdk.Event, bool) {
	e := env.Event
	if e.Type != "message" || e.BotID != "" || e.Subtype != "" || e.User == "" || env.isSelf(e.User) {
		return sdk.Event{}, false
	}
	if strings.TrimSpace(e.Text) == "" {
		return sdk.Event{}, false
	}
	meta := message.Metadata{"ts": e.TS, "channel_type": e.ChannelType}
	if e.ThreadTS != "" {
		meta["thread_ts"] = e.ThreadTS
	}
	content := message.Text(e.Text)
	content.Metadata = meta
	return sdk.Event{
		Type:    sdk.EventMessage,
		ID:      env.EventID,
		UserID:  e.User,
		ReplyTo: e.Channel,
		Content: content,
		Profile: map[string]string{"team_id": env.TeamID},
		Time:    time.Unix(env.EventTime, 0),
	}, true
}

func (env *envelope) isSelf(user string) bool {
	for _, a := range env.Authorizations {
		if a.IsBot && a.UserID == user {
			return true
		}
	}
	return false
}

// interaction translates a block_actions form. slack.InteractionCallbackParse
// would consume an http.Request body, so the raw bytes are parsed here.
func interaction(body []byte) *sdk.HTTPResponse {
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		return reply(http.StatusBadRequest, "malformed interaction form")
	}
	var ic slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &ic); err != nil {
		return reply(http.StatusBadRequest, "malformed interaction payload")
	}
	resp := reply(http.StatusOK, "")
	if ic.Type != slack.InteractionTypeBlockActions {
		return resp
	}
	for i, a := range ic.ActionCallback.BlockActions {
		if a.Value == "" { // a link button: Slack opened the URL, nothing to route
			continue
		}
		id := ic.TriggerID
		if id == "" {
			id = a.ActionTs + ":" + ic.User.ID
		}
		if i > 0 {
			id += ":" + strconv.Itoa(i)
		}
		resp.Events = append(resp.Events, sdk.Event{
			Type:    sdk.EventButton,
			ID:      id,
			UserID:  ic.User.ID,
			ReplyTo: ic.Channel.ID,
			Content: message.Content{Type: message.TypeText, Text: a.Text.Text, Payload: a.Value},
			Time:    slackTime(a.ActionTs),
		})
	}
	return resp
}

// slackTime parses a Slack timestamp ("1700000000.000100"); zero if invalid.
func slackTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return time.Unix(s, us*1000)
}

func reply(status int, body string) *sdk.HTTPResponse {
	return &sdk.HTTPResponse{
		Status: status,
		Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:   []byte(body),
	}
}
