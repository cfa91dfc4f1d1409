package telegramchannel

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// secretHeader carries the secret_token given to setWebhook.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

type user struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Username     string `json:"username"`
	LanguageCode string `json:"language_code"`
}

type tgMessage struct {
	MessageID int64 `json:"message_id"`
	From      *user `json:"from"`
	Chat      struct {
		ID   chatID `json:"id"`
		Type string `json:"type"`
	} `json:"chat"`
	Date    int64  `json:"date"`
	Text    string `json:"text"`
	Caption string `json:"caption"`
}

type update struct {
	UpdateID      int64      `json:"update_id"`
	Message       *tgMessage `json:"message"`
	CallbackQuery *struct {
		ID      string     `json:"id"`
		From    user       `json:"from"`
		Message *tgMessage `json:"message"`
		Data    string     `json:"data"`
	} `json:"callback_query"`
}

// HandleHTTP checks the secret token in constant time (Telegram's only
// authentication: no HMAC, no timestamp), then translates the update:
//
//   - message with text or a caption → message event;
//   - callback_query → button event, after answering the query so the
//     user's button stops spinning. The answer is best effort: a failure
//     (an expired or replayed query) does not lose the click.
//
// Other update types are acknowledged and ignored. Event.ID is the
// update_id, which a redelivery keeps.
func (c *Channel) HandleHTTP(ctx context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	in, err := c.instances.Get(req.ChannelID)
	if err != nil {
		return nil, err
	}
	got := req.Header.Get(secretHeader)
	if subtle.ConstantTimeCompare([]byte(got), []byte(in.secretToken)) != 1 {
		return reply(http.StatusUnauthorized, "invalid secret token"), nil
	}
	var u update
	if err := json.Unmarshal(req.Body, &u); err != nil || u.UpdateID == 0 {
		return reply(http.StatusBadRequest, "malformed update"), nil
	}
	resp := reply(http.StatusOK, "")
	id := strconv.FormatInt(u.UpdateID, 10)
	switch {
	case u.Message != nil:
		if ev, ok := messageEvent(id, u.Message); ok {
			resp.Events = []sdk.Event{ev}
		}
	case u.CallbackQuery != nil:
		q := u.CallbackQuery
		_ = in.api.call(ctx, "answerCallbackQuery", map[string]any{"callback_query_id": q.ID}, nil)
		chat := chatID(strconv.FormatInt(q.From.ID, 10)) // an inline-mode message has no chat; the user is the chat
		if q.Message != nil {
			chat = q.Message.Chat.ID
		}
		resp.Events = []sdk.Event{{
			Type:    sdk.EventButton,
			ID:      id,
			UserID:  string(chat),
			Content: message.Content{Type: message.TypeText, Payload: q.Data},
			Profile: profile(&q.From),
		}}
	}
	return resp, nil
}

// messageEvent translates a message. UserID is the chat id, the address
// that Send needs; in a group every member shares it, and the sender is in
// Profile["from_id"]. Messages without text or caption (stickers, joins)
// carry nothing a flow can read and are dropped.
func messageEvent(id string, m *tgMessage) (sdk.Event, bool) {
	text := m.Text
	if text == "" {
		text = m.Caption
	}
	if strings.TrimSpace(text) == "" || (m.From != nil && m.From.IsBot) {
		return sdk.Event{}, false
	}
	content := message.Text(text)
	content.Metadata = message.Metadata{"message_id": strconv.FormatInt(m.MessageID, 10), "chat_type": m.Chat.Type}
	return sdk.Event{
		Type:    sdk.EventMessage,
		ID:      id,
		UserID:  string(m.Chat.ID),
		Content: content,
		Profile: profile(m.From),
		Time:    time.Unix(m.Date, 0),
	}, true
}

// chatID keeps a chat id as the decimal text Telegram sent, which is what
// Send passes back as chat_id: no integer or float conversion can round it.
// A string id (the form chat_id also takes, e.g. "@channelname") is kept as
// is.
type chatID string

func (c *chatID) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*c = chatID(s)
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return fmt.Errorf("chat id %s: %w", b, err)
	}
	*c = chatID(b)
	return nil
}

func profile(u *user) map[string]string {
	if u == nil {
		return nil
	}
	p := map[string]string{"from_id": strconv.FormatInt(u.ID, 10)}
	for k, v := range map[string]string{
		"first_name": u.FirstName, "last_name": u.LastName, "username": u.Username, "language_code": u.LanguageCode,
	} {
		if v != "" {
			p[k] = v
		}
	}
	return p
}

func reply(status int, body string) *sdk.HTTPResponse {
	return &sdk.HTTPResponse{
		Status: status,
		Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:   []byte(body),
	}
}
