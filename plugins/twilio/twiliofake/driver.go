package twiliofake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
)

// Driver plays Twilio calling a webhook: inbound messages to the number's
// webhook URL and StatusCallbacks, signed with the auth token over the exact
// URL it posts to.
type Driver struct {
	URL        string // the channel's public webhook URL
	AuthToken  string
	AccountSID string // default "AC" + 32 zeros
	Client     *http.Client
}

// Request is one webhook as Twilio would send it. Posting the same Request
// again is a replay: same MessageSid.
type Request struct {
	URL  string // where it is posted
	Form url.Values

	signedURL string     // "" = URL; a different value signs for another URL
	signedAs  url.Values // nil = Form; a different value is a tampered body
	token     string     // "" = the driver's token
	unsigned  bool
}

// BadSignature is the same request signed with another auth token.
func (r Request) BadSignature() *Request {
	r.token = "0123456789abcdef0123456789abcdef"
	return &r
}

// Unsigned is the same request without X-Twilio-Signature.
func (r Request) Unsigned() *Request {
	r.unsigned = true
	return &r
}

// SignedFor is the same request signed over otherURL, as when a receiver
// rebuilds the URL from its Host header (http instead of https, another
// host) instead of using the public URL.
func (r Request) SignedFor(otherURL string) *Request {
	r.signedURL = otherURL
	return &r
}

// Tampered is the same signature over a body changed after signing.
func (r Request) Tampered(key, value string) *Request {
	r.signedAs = r.Form
	r.Form = cloneValues(r.Form)
	r.Form.Set(key, value)
	return &r
}

// Inbound builds the form Twilio posts for an SMS from a user.
func (d *Driver) Inbound(from, to, body string) *Request {
	sid := NewSID("SM")
	return &Request{URL: d.URL, Form: url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {d.accountSID()},
		"From": {from}, "To": {to}, "Body": {body}, "NumMedia": {"0"}, "NumSegments": {"1"},
		"SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}, "FromCountry": {"US"}, "ToCountry": {"US"},
	}}
}

// StatusCallback builds the form Twilio posts to callbackURL when message
// sid changes state (errorCode 0 means none).
func (d *Driver) StatusCallback(callbackURL, sid, status string, errorCode int, from, to string) *Request {
	f := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
		"AccountSid": {d.accountSID()}, "From": {from}, "To": {to}, "ApiVersion": {"2010-04-01"},
	}
	if errorCode != 0 {
		f.Set("ErrorCode", itoa(errorCode))
	}
	return &Request{URL: callbackURL, Form: f}
}

// Post delivers r.
func (d *Driver) Post(ctx context.Context, r *Request) (*fakekit.Response, error) {
	return fakekit.Post(ctx, d.Client, r.URL, d.Headers(r), []byte(r.Form.Encode()))
}

// Headers returns the headers Twilio sends with r, X-Twilio-Signature
// included unless r is unsigned. The body is r.Form.Encode().
func (d *Driver) Headers(r *Request) http.Header {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "User-Agent": {"TwilioProxy/1.1"}}
	if r.unsigned {
		return h
	}
	token, signedURL, signedAs := d.AuthToken, r.URL, r.Form
	if r.token != "" {
		token = r.token
	}
	if r.signedURL != "" {
		signedURL = r.signedURL
	}
	if r.signedAs != nil {
		signedAs = r.signedAs
	}
	h.Set("X-Twilio-Signature", Sign(token, signedURL, signedAs))
	return h
}

func (d *Driver) accountSID() string {
	if d.AccountSID == "" {
		return "AC00000000000000000000000000000000"
	}
	return d.AccountSID
}

// NewSID returns a random Twilio-style sid with the given prefix (SM, MM, AC…).
func NewSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
