package telegramchannel_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/telegram/telegramfake"
	"github.com/switchboard-gw/switchboard/sdk"
)

// FuzzHandleHTTP: random updates and secret tokens never panic, and an
// update answered with events carried the channel's exact secret token
// (Telegram's only proof of origin).
func FuzzHandleHTTP(f *testing.F) {
	h := setup(f, telegramfake.Options{})
	for _, body := range []string{
		`{"update_id":1,"message":{"message_id":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"first_name":"Ann"},"text":"hi"}}`,
		`{"update_id":2,"callback_query":{"id":"q1","from":{"id":42,"first_name":"Ann"},"data":"YES","message":{"message_id":2,"chat":{"id":42,"type":"private"}}}}`,
		`{"update_id":3,"message":{"message_id":3,"chat":{"id":-5,"type":"group"},"caption":"pic","photo":[{"file_id":"f"}]}}`,
		`{"update_id":0}`, `[]`, ``,
	} {
		f.Add([]byte(body), secret)
		f.Add([]byte(body), secret+"x")
		f.Add([]byte(body), "")
	}
	f.Fuzz(func(t *testing.T, body []byte, token string) {
		resp, err := h.plugin.HandleHTTP(t.Context(), &sdk.HTTPRequest{
			ChannelID: channelID, Method: http.MethodPost, URL: h.ingress.WebhookURL(),
			Header: http.Header{"Content-Type": {"application/json"}, "X-Telegram-Bot-Api-Secret-Token": {token}},
			Body:   body, Received: time.Now(),
		})
		if err != nil || resp == nil {
			t.Fatalf("HandleHTTP: %v, %v", resp, err)
		}
		if len(resp.Events) > 0 && token != secret {
			t.Fatalf("events from an update with secret token %q", token)
		}
	})
}
