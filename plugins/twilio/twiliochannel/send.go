package twiliochannel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// maxBody is the Messages API's Body limit, in characters.
const maxBody = 1600

// Send creates one Messages API message per part, in order, each with the
// channel's StatusCallback. ProviderID is the first part's MessageSid; the
// receipts of later parts carry their own sids.
func (c *Channel) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	return chankit.SendOrdered(ctx, batch, c.sendOne), nil
}

func (c *Channel) sendOne(ctx context.Context, out sdk.Outbound) (string, error) {
	in, err := c.instances.Get(out.ChannelID)
	if err != nil {
		return "", sdk.Transient("not_configured", err.Error())
	}
	if out.Content.Type == message.TypeTyping {
		return "", nil // SMS has no typing indicator
	}
	to := out.ReplyTo
	if to == "" {
		to = out.Recipient
	}
	body, media := in.render(out.Content)
	parts := Parts(body)
	if len(parts) == 0 {
		parts = []string{""} // media only
	}
	ids, err := c.progress.SendParts(ctx, out.ChannelID+"\x00"+out.IdempotencyKey, len(parts),
		func(ctx context.Context, i int) (string, error) {
			if i > 0 {
				return in.create(ctx, c.http, to, parts[i], nil) // the image goes with the first part
			}
			return in.create(ctx, c.http, to, parts[i], media)
		})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// render returns the body and media of c. With mms, an image is sent as
// media with its caption as body; everything else is its TextFallback, in
// which buttons are numbered options and images are links.
func (in *instance) render(c message.Content) (string, []string) {
	if in.mms && c.Type == message.TypeImage {
		return c.Text, []string{c.Media.URL}
	}
	return c.TextFallback(), nil
}

// Parts applies the splitting rule for bodies over 1,600 characters
// (counted in UTF-16 units, as Twilio does): the text is cut at line breaks,
// else at spaces, else inside a word, into parts that each start with
// "(k/n) " and stay within 1,600 characters including that prefix. A body
// that fits is sent as is, without a prefix.
func Parts(body string) []string {
	if chankit.Len(body) <= maxBody {
		if strings.TrimSpace(body) == "" {
			return nil
		}
		return []string{body}
	}
	// The prefix length depends on the number of parts; grow the reserve
	// until the count fits the digits it was computed for.
	for digits, limit := 1, 10; ; digits, limit = digits+1, limit*10 {
		reserve := len("(/) ") + 2*digits
		parts := chankit.Split(body, maxBody-reserve)
		if len(parts) < limit {
			for i, p := range parts {
				parts[i] = fmt.Sprintf("(%d/%d) %s", i+1, len(parts), p)
			}
			return parts
		}
	}
}

// create sends one message after waiting for the sender's pace.
func (in *instance) create(ctx context.Context, hc *http.Client, to, body string, media []string) (string, error) {
	if err := in.pacer.Wait(ctx); err != nil {
		return "", sdk.Transient("canceled", err.Error())
	}
	api, tr := in.api(ctx, hc)
	params := &openapi.CreateMessageParams{}
	params.SetTo(to)
	if in.statusCallback != "" {
		params.SetStatusCallback(in.statusCallback)
	}
	if in.serviceSID != "" {
		params.SetMessagingServiceSid(in.serviceSID)
	}
	if in.from != "" {
		params.SetFrom(in.from)
	}
	if body != "" {
		params.SetBody(body)
	}
	if len(media) > 0 {
		params.SetMediaUrl(media)
	}
	msg, err := api.CreateMessage(params)
	if err != nil {
		return "", classify(err, tr)
	}
	if msg.Sid == nil {
		return "", sdk.Transient("no_sid", "Twilio answered without a message sid")
	}
	return *msg.Sid, nil
}

// queueFullBackoff is how long to hold a sender whose Twilio queue is full
// (21611): the queue drains at the sender's MPS, so give it a while.
const queueFullBackoff = 30 * time.Second

// permanentCodes are create errors that no retry can fix.
var permanentCodes = map[int]bool{
	21408: true, // no permission to send to this region
	21606: true, // From cannot send to this destination
	21612: true, // cannot route to this number
	21617: true, // body too long
	21602: true, // body required
	21603: true, // From required
	21660: true, // From does not belong to the account
}

// unreachableCodes are create errors that mean the number cannot be reached,
// with the gateway's reason for them: a broadcast result then says
// unreachable rather than that Twilio rejected the message.
var unreachableCodes = map[int]string{
	21610: "bot_blocked",  // the recipient replied STOP
	21211: "unknown_user", // not a valid phone number
	21614: "unknown_user", // not a mobile number
}

// classify turns a twilio-go error into a typed send error. twilio-go hides
// the HTTP response, so its status and Retry-After come from the transport.
// An answer that is not Twilio's JSON (an edge proxy's HTML page) is
// transient, like a network failure.
func classify(err error, tr *transport) *sdk.SendError {
	var te *client.TwilioRestError
	switch {
	case errors.As(err, &te):
	case tr.status != 0:
		return sdk.Transient("http_"+strconv.Itoa(tr.status), err.Error())
	default:
		return sdk.Transient("network", err.Error())
	}
	code := strconv.Itoa(te.Code)
	switch {
	case te.Status == http.StatusTooManyRequests || te.Code == 20429:
		retryAfter := tr.retryAfter
		if retryAfter <= 0 {
			retryAfter = time.Second
		}
		return sdk.RateLimited(retryAfter, code, te.Message)
	case te.Code == 21611:
		return sdk.RateLimited(queueFullBackoff, code, te.Message)
	case te.Code == 20003 || te.Status == http.StatusUnauthorized:
		return sdk.AuthError(code, te.Message)
	case te.Status >= 500:
		return sdk.Transient(code, te.Message)
	case unreachableCodes[te.Code] != "":
		return sdk.Permanent(unreachableCodes[te.Code], code+": "+te.Message)
	case permanentCodes[te.Code] || te.Status >= 400:
		return sdk.Permanent(code, te.Message)
	default:
		return sdk.Transient(code, te.Message)
	}
}
