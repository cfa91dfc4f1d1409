package telegramchannel

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Send delivers each message as the Bot API calls of its plan, in order.
// ProviderID is "<chat id>:<message_id>" of the first message sent.
//
// A message that takes several calls (long text, a carousel) and fails
// halfway resumes after the parts already sent when the gateway retries it
// (see chankit.Progress).
//
// A group that became a supergroup answers 400 with migrate_to_chat_id: the
// message is sent again, at once, to the new chat id. The gateway keeps the
// old id as the user's address, so later messages to it take the same extra
// round trip; they still arrive.
func (c *Channel) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	return chankit.SendOrdered(ctx, batch, c.sendOne), nil
}

func (c *Channel) sendOne(ctx context.Context, out sdk.Outbound) (string, error) {
	in, err := c.instances.Get(out.ChannelID)
	if err != nil {
		return "", sdk.Transient("not_configured", err.Error())
	}
	chat := out.ReplyTo
	if chat == "" {
		chat = out.Recipient
	}
	calls := plan(out.Content)
	key := out.ChannelID + "\x00" + out.IdempotencyKey
	ids, err := c.progress.SendParts(ctx, key, len(calls), func(ctx context.Context, i int) (string, error) {
		return in.send(ctx, chat, calls[i])
	})
	var ae *apiError
	if errors.As(err, &ae) && ae.MigrateTo != 0 {
		chat = strconv.FormatInt(ae.MigrateTo, 10)
		ids, err = c.progress.SendParts(ctx, key, len(calls), func(ctx context.Context, i int) (string, error) {
			return in.send(ctx, chat, calls[i])
		})
	}
	if err != nil {
		return "", classify(err)
	}
	return ids[0], nil
}

type sentMessage struct {
	MessageID int64 `json:"message_id"`
}

// send makes one call to chat and returns "<chat>:<message_id>" ("" for a
// chat action, which creates no message).
func (in *instance) send(ctx context.Context, chat string, cl call) (string, error) {
	params := make(map[string]any, len(cl.params)+1)
	for k, v := range cl.params {
		params[k] = v
	}
	params["chat_id"] = chat
	if cl.method == "sendChatAction" {
		return "", in.api.call(ctx, cl.method, params, nil)
	}
	var m sentMessage
	if err := in.api.call(ctx, cl.method, params, &m); err != nil {
		return "", err
	}
	return chat + ":" + strconv.FormatInt(m.MessageID, 10), nil
}

// classify maps Bot API failures to typed send errors:
//
//	429                      rate_limited after parameters.retry_after
//	401, 404 (token in path) auth
//	403 blocked/kicked/...   permanent: bot_blocked, unknown_user, bot_kicked, not_connected, forbidden
//	400                      permanent: unknown_user, message_too_long, cant_parse_entities, bad_request
//	5xx, network             transient
//
// bot_blocked, unknown_user and not_connected are the gateway's reasons for
// a user it cannot reach (a broadcast result says unreachable, not that
// Telegram rejected the message); Telegram's description stays in the
// message.
func classify(err error) *sdk.SendError {
	var ae *apiError
	if !errors.As(err, &ae) {
		return sdk.Transient("network", err.Error())
	}
	switch {
	case ae.Status == http.StatusTooManyRequests:
		wait := time.Duration(ae.RetryAfter) * time.Second
		if wait <= 0 {
			wait = time.Second
		}
		return sdk.RateLimited(wait, "too_many_requests", ae.Description)
	case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusNotFound:
		return sdk.AuthError("unauthorized", ae.Description)
	case ae.Status == http.StatusForbidden:
		return sdk.Permanent(codeFor(ae.Description, forbiddenCodes, "forbidden"), ae.Description)
	case ae.Status >= 500:
		return sdk.Transient("http_"+strconv.Itoa(ae.Status), ae.Description)
	case ae.Status >= 400:
		return sdk.Permanent(codeFor(ae.Description, badRequestCodes, "bad_request"), ae.Description)
	default:
		return sdk.Transient("http_"+strconv.Itoa(ae.Status), ae.Description)
	}
}

// Telegram's descriptions are its only error detail (vrumger/telegram-errors).
var (
	forbiddenCodes = [][2]string{
		{"bot was blocked by the user", "bot_blocked"},
		{"user is deactivated", "unknown_user"}, // the account was deleted
		{"bot was kicked", "bot_kicked"},
		{"bot is not a member", "bot_kicked"},
		{"can't initiate conversation", "not_connected"}, // the user never started the bot
	}
	badRequestCodes = [][2]string{
		{"chat not found", "unknown_user"},
		{"message is too long", "message_too_long"},
		{"caption is too long", "message_too_long"},
		{"can't parse entities", "cant_parse_entities"},
		{"wrong file identifier", "bad_media"},
		{"failed to get http url content", "bad_media"},
	}
)

func codeFor(description string, table [][2]string, fallback string) string {
	d := strings.ToLower(description)
	for _, e := range table {
		if strings.Contains(d, e[0]) {
			return e[1]
		}
	}
	return fallback
}
