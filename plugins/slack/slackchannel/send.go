package slackchannel

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Send posts each message with chat.postMessage, in order. ProviderID is
// "<channel>:<ts>", the pair that identifies a Slack message.
func (c *Channel) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	return chankit.SendOrdered(ctx, batch, c.sendOne), nil
}

func (c *Channel) sendOne(ctx context.Context, out sdk.Outbound) (string, error) {
	in, err := c.instances.Get(out.ChannelID)
	if err != nil {
		return "", sdk.Transient("not_configured", err.Error())
	}
	if out.Content.Type == message.TypeTyping {
		return "", nil // bots have no typing indicator in the Web API
	}
	channel, user, err := in.destination(ctx, out)
	if err != nil {
		return "", err
	}
	// text is the notification and accessibility fallback when there are
	// blocks, and the whole message otherwise.
	opts := []slack.MsgOption{slack.MsgOptionText(out.Content.TextFallback(), true)}
	if b := blocks(out.Content); len(b) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(b...))
	}
	ch, ts, err := in.api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		se := classify(err)
		if user != "" && se.Code == "channel_not_found" {
			in.dms.Delete(user) // the DM is gone; a later message opens it again
			return "", unknownUser(se)
		}
		return "", se
	}
	return ch + ":" + ts, nil
}

// destination is where to post: ReplyTo (the conversation the user wrote
// in) when set, else the recipient. A user id (U…, W…) is not a channel, so
// its DM is opened with conversations.open first, once per user; user is
// then that user id.
func (in *instance) destination(ctx context.Context, out sdk.Outbound) (channel, user string, err error) {
	to := out.ReplyTo
	if to == "" {
		to = out.Recipient
	}
	if !strings.HasPrefix(to, "U") && !strings.HasPrefix(to, "W") {
		return to, "", nil
	}
	if ch, ok := in.dms.Load(to); ok {
		return ch.(string), to, nil
	}
	ch, _, _, err := in.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{to}})
	if err != nil {
		se := classify(err)
		if unknownUserErrors[se.Code] {
			return "", "", unknownUser(se)
		}
		return "", "", se
	}
	in.dms.Store(to, ch.ID)
	return ch.ID, to, nil
}

// unknownUserErrors are Slack's answers to conversations.open for a user
// the bot cannot write to: deleted, deactivated or invisible to the app.
var unknownUserErrors = map[string]bool{"user_not_found": true, "user_disabled": true, "user_not_visible": true}

// unknownUser reports a user Slack cannot reach by DM with the gateway's
// reason code, so the gateway says the user is unreachable rather than
// that Slack rejected the message; Slack's own code stays in the message.
func unknownUser(se *sdk.SendError) *sdk.SendError {
	return sdk.Permanent("unknown_user", "Slack: "+se.Code)
}

// defaultRetryAfter is used for a 429 that names no wait: Slack's limits
// are per second.
const defaultRetryAfter = time.Second

// Slack error codes (ok:false) by what the gateway should do about them.
var (
	authErrors = map[string]bool{
		"invalid_auth": true, "not_authed": true, "token_revoked": true, "token_expired": true,
		"account_inactive_token": true, "missing_scope": true, "no_permission": true, "not_allowed_token_type": true,
	}
	transientErrors = map[string]bool{
		"ratelimited": true, "internal_error": true, "fatal_error": true,
		"service_unavailable": true, "request_timeout": true,
	}
)

// classify turns a slack-go error into a typed send error. Any ok:false code
// that is neither an auth nor a known transient problem is permanent
// (channel_not_found, not_in_channel, is_archived, account_inactive,
// msg_too_long, invalid_blocks, …): retrying the same request cannot help.
func classify(err error) *sdk.SendError {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		return sdk.RateLimited(rl.RetryAfter, "ratelimited", "HTTP 429 from Slack")
	case errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests:
		// A 429 without Retry-After: wait the shortest window Slack uses.
		return sdk.RateLimited(defaultRetryAfter, "ratelimited", "HTTP 429 from Slack without Retry-After")
	case errors.As(err, &sc) && sc.Code >= 500:
		return sdk.Transient("http_"+strconv.Itoa(sc.Code), sc.Status)
	case errors.As(err, &sc):
		return sdk.Permanent("http_"+strconv.Itoa(sc.Code), sc.Status)
	case errors.As(err, &se) && authErrors[se.Err]:
		return sdk.AuthError(se.Err, "Slack refused the bot token")
	case errors.As(err, &se) && transientErrors[se.Err]:
		return sdk.Transient(se.Err, "Slack reported a temporary failure")
	case errors.As(err, &se):
		return sdk.Permanent(se.Err, "Slack refused the message")
	default:
		return sdk.Transient("network", err.Error())
	}
}
