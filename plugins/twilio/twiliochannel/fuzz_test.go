package twiliochannel_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliofake"
	"github.com/switchboard-gw/switchboard/sdk"
)

// FuzzHandleHTTP: random form bodies and signatures never panic, and a
// request answered with events carries the signature the fake's signer
// (Twilio's documented algorithm, not the plugin's validator) computes
// for its URL and form: the URL as given or with its default port, which
// Twilio's validators also accept.
func FuzzHandleHTTP(f *testing.F) {
	h := setup(f, twiliofake.Options{}, nil)
	for _, body := range []string{
		"MessageSid=SM1&From=%2B15550001&To=%2B15550002&Body=hello&NumMedia=0",
		"MessageSid=SM2&From=%2B15550001&NumMedia=1&MediaUrl0=https%3A%2F%2Fx%2Fa.png&MediaContentType0=image%2Fpng",
		"MessageSid=SM3&MessageStatus=delivered&To=%2B15550001",
		"MessageSid=SM4&MessageStatus=undelivered&ErrorCode=30003",
		"Body=hi&Body=evil&MessageSid=SM5&From=x", "%zz", "",
	} {
		f.Add([]byte(body), true, "", false)
		f.Add([]byte(body), true, "", true)
		f.Add([]byte(body), false, "bm90IGEgc2lnbmF0dXJl", false)
	}
	f.Fuzz(func(t *testing.T, body []byte, sign bool, sig string, status bool) {
		target := h.ingress.WebhookURL()
		if status {
			target += "?sb_event=status"
		}
		form, formErr := url.ParseQuery(string(body))
		if sign && formErr == nil {
			sig = twiliofake.Sign(h.fake.AuthToken(), target, form)
		}
		resp, err := h.plugin.HandleHTTP(t.Context(), &sdk.HTTPRequest{
			ChannelID: channelID, Method: http.MethodPost, URL: target,
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Signature": {sig}},
			Body:   body, Received: time.Now(),
		})
		if err != nil || resp == nil {
			t.Fatalf("HandleHTTP: %v, %v", resp, err)
		}
		if len(resp.Events) == 0 {
			return
		}
		if formErr != nil {
			t.Fatalf("events from a body that is not a form: %v", formErr)
		}
		if sig != twiliofake.Sign(h.fake.AuthToken(), target, form) && sig != twiliofake.Sign(h.fake.AuthToken(), withDefaultPort(t, target), form) {
			t.Fatalf("events from a request whose signature %q is not valid for its URL and form", sig)
		}
	})
}

func withDefaultPort(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		u.Host += ":" + port
	}
	return u.String()
}
