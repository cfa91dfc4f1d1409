package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
)

// standardSignature is a Standard Webhooks v1 signature, computed here from
// the specification rather than with the library the plugin verifies with.
func standardSignature(secret, id, ts string, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// FuzzHandleHTTP: random bodies, ids, timestamps and signatures never
// panic, and a request answered with events carries a webhook-signature
// entry valid for its id, timestamp and body, with a timestamp within the
// five minutes Standard Webhooks allows.
func FuzzHandleHTTP(f *testing.F) {
	ch := configured(f, "https://example.com/hook", nil)
	for _, body := range []string{
		`{"user_id":"u1","text":"hello"}`,
		`{"user_id":"u1","button":{"payload":"YES","title":"Yes"}}`,
		`{"user_id":"u1","message":{"type":"image","media":{"url":"https://x/cat.png"}}}`,
		`{"user_id":"u1","text":"hi","reply_to":"r","profile":{"a":"b"}}`,
		`{"user_id":"","text":"x"}`, `{}`, `[`,
	} {
		f.Add([]byte(body), "msg_1", true, "", int16(0))
		f.Add([]byte(body), "msg_1", false, "v1,AAAA v2,BBBB", int16(-301))
	}
	f.Fuzz(func(t *testing.T, body []byte, id string, sign bool, sig string, skew int16) {
		now := time.Now()
		ts := strconv.FormatInt(now.Unix()+int64(skew), 10)
		if sign {
			sig = standardSignature(testSecret, id, ts, body)
		}
		resp, err := ch.HandleHTTP(t.Context(), &sdk.HTTPRequest{
			ChannelID: "wh", Method: http.MethodPost, URL: "https://gw.example/channels/wh/webhook",
			Header: http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}},
			Body:   body, Received: now,
		})
		if err != nil || resp == nil {
			t.Fatalf("HandleHTTP: %v, %v", resp, err)
		}
		if len(resp.Events) == 0 {
			return
		}
		want := standardSignature(testSecret, id, ts, body)
		valid := false
		for _, s := range strings.Fields(sig) {
			valid = valid || hmac.Equal([]byte(s), []byte(want))
		}
		if !valid {
			t.Fatalf("events from a request whose signature %q is not valid for its body", sig)
		}
		if skew > 5*60+1 || skew < -5*60-1 {
			t.Fatalf("events from a request signed %d s off", skew)
		}
		if resp.Events[0].ID != id {
			t.Fatalf("event id %q, want the webhook-id %q", resp.Events[0].ID, id)
		}
	})
}
