package twiliochannel

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Twilio posts inbound messages to the webhook URL as configured on the
// number or messaging service, and delivery receipts to the StatusCallback
// each send names: the webhook URL plus this query marker. The signature
// covers the URL, so the marker cannot be forged.
const (
	markerParam = "sb_event"
	markerValue = "status"
)

func statusCallbackURL(webhookURL string) (string, error) {
	if webhookURL == "" {
		return "", nil // no public URL: send without receipts
	}
	u, err := url.Parse(webhookURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(markerParam, markerValue)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// emptyTwiML acknowledges without replying by TwiML: replies are sent
// through the Messages API, so they get receipts and retries.
var emptyTwiML = []byte(`<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)

// HandleHTTP verifies X-Twilio-Signature over the exact public URL and the
// form parameters (twilio-go's RequestValidator), then translates an inbound
// SMS or a StatusCallback. Unverified requests get 401 and no events.
func (c *Channel) HandleHTTP(_ context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	in, err := c.instances.Get(req.ChannelID)
	if err != nil {
		return nil, err
	}
	sig := req.Header.Get("X-Twilio-Signature")
	if sig == "" || !in.validator.ValidateBody(req.URL, req.Body, sig) {
		return &sdk.HTTPResponse{Status: http.StatusUnauthorized, Body: []byte("invalid signature")}, nil
	}
	form, err := url.ParseQuery(string(req.Body))
	if err != nil || form.Get("MessageSid") == "" {
		return &sdk.HTTPResponse{Status: http.StatusBadRequest, Body: []byte("not a Twilio message webhook")}, nil
	}
	resp := &sdk.HTTPResponse{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/xml"}}, Body: emptyTwiML}
	u, _ := url.Parse(req.URL) // parsed by the validator already
	var ev sdk.Event
	var ok bool
	if u.Query().Get(markerParam) == markerValue {
		ev, ok = statusEvent(form)
	} else {
		ev, ok = messageEvent(form)
	}
	if ok {
		resp.Events = []sdk.Event{ev}
	}
	return resp, nil
}

// messageEvent translates an inbound SMS/MMS: ID = MessageSid, UserID =
// From. The first media item, if any, becomes the content's media.
func messageEvent(f url.Values) (sdk.Event, bool) {
	content := message.Text(f.Get("Body"))
	if n, _ := strconv.Atoi(f.Get("NumMedia")); n > 0 && f.Get("MediaUrl0") != "" {
		typ := f.Get("MediaContentType0")
		content.Type = message.TypeFile
		if strings.HasPrefix(typ, "image/") {
			content.Type = message.TypeImage
		}
		content.Media = &message.Media{URL: f.Get("MediaUrl0"), MimeType: typ}
	}
	if strings.TrimSpace(content.Text) == "" && content.Media == nil {
		return sdk.Event{}, false
	}
	content.Metadata = message.Metadata{}
	for _, k := range []string{"NumSegments", "OptOutType"} {
		if v := f.Get(k); v != "" {
			content.Metadata[k] = v
		}
	}
	profile := map[string]string{"to": f.Get("To")}
	for _, k := range []string{"FromCountry", "FromState", "FromCity"} {
		if v := f.Get(k); v != "" {
			profile[k] = v
		}
	}
	return sdk.Event{
		Type: sdk.EventMessage, ID: f.Get("MessageSid"), UserID: f.Get("From"),
		Content: content, Profile: profile,
	}, true
}

// deliveryStates maps Twilio's MessageStatus to receipts. queued,
// accepted, scheduled and sending precede sending and are not reported: Send
// already returned the message as queued, and the SDK has no such state.
var deliveryStates = map[string]sdk.DeliveryState{
	"sent":        sdk.StateSent,
	"delivered":   sdk.StateDelivered,
	"read":        sdk.StateRead,
	"undelivered": sdk.StateUndelivered,
	"failed":      sdk.StateFailed,
	"canceled":    sdk.StateFailed,
}

// errorReasons names the usual asynchronous delivery errors.
var errorReasons = map[string]string{
	"30001": "queue overflow",
	"30003": "unreachable destination handset",
	"30004": "message blocked",
	"30005": "unknown destination handset",
	"30006": "landline or unreachable carrier",
	"30007": "carrier filtering",
	"30008": "unknown error",
	"30036": "validity period expired",
}

// statusEvent translates a StatusCallback. Twilio sends one per state
// change, possibly twice or out of order, so the event id is the message
// sid plus the state: each state is processed once, and the gateway orders
// states.
func statusEvent(f url.Values) (sdk.Event, bool) {
	status := f.Get("MessageStatus")
	state, ok := deliveryStates[status]
	if !ok {
		return sdk.Event{}, false
	}
	code := f.Get("ErrorCode")
	if code == "0" {
		code = ""
	}
	return sdk.Event{
		Type:   sdk.EventDeliveryStatus,
		ID:     f.Get("MessageSid") + ":" + status,
		UserID: f.Get("To"),
		Status: &sdk.DeliveryStatus{ProviderID: f.Get("MessageSid"), State: state, ErrorCode: code, Reason: errorReasons[code]},
	}, true
}
