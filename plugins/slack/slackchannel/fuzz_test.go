package slackchannel_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/slack/slackfake"
	"github.com/switchboard-gw/switchboard/sdk"
)

// slackSignature is Slack's v0 signature, computed here from Slack's
// documentation rather than with the plugin's verifier or the fake's signer.
func slackSignature(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// FuzzHandleHTTP: random bodies, content types, timestamps and signatures
// never panic, and a request answered with events carries a signature
// valid for its body and a timestamp within Slack's five minutes.
func FuzzHandleHTTP(f *testing.F) {
	h := setup(f)
	for _, w := range []*slackfake.Webhook{
		h.driver.Message(slackfake.Message{User: "U1", Channel: "D1", Text: "hello"}),
		h.driver.BlockActions(slackfake.Action{User: "U1", Channel: "D1", ActionID: "a", Value: "YES", Text: "Yes"}),
		h.driver.URLVerification("challenge"),
	} {
		f.Add(w.Body, w.ContentType, true, "", int16(0))
		f.Add(w.Body, w.ContentType, false, "v0=00", int16(-400))
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, sign bool, sig string, skew int16) {
		now := time.Now()
		ts := strconv.FormatInt(now.Unix()+int64(skew), 10)
		if sign {
			sig = slackSignature(signingSecret, ts, body)
		}
		hdr := http.Header{"Content-Type": {contentType}, "X-Slack-Request-Timestamp": {ts}, "X-Slack-Signature": {sig}}
		resp, err := h.plugin.HandleHTTP(t.Context(), &sdk.HTTPRequest{
			ChannelID: channelID, Method: http.MethodPost, URL: h.ingress.WebhookURL(), Header: hdr, Body: body, Received: now,
		})
		if err != nil || resp == nil {
			t.Fatalf("HandleHTTP: %v, %v", resp, err)
		}
		if len(resp.Events) == 0 {
			return
		}
		if !hmac.Equal([]byte(sig), []byte(slackSignature(signingSecret, ts, body))) {
			t.Fatalf("events from a request whose signature %q is not valid for its body", sig)
		}
		if skew > 5*60+1 || skew < -5*60-1 {
			t.Fatalf("events from a request signed %d s off", skew)
		}
	})
}
