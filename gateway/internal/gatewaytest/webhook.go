package gatewaytest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Demo secrets for webhook channels in tests.
const (
	InboundSecret  = "whsec_aW5ib3VuZC10ZXN0LXNlY3JldC0zMi1ieXRlcyE="
	OutboundSecret = "whsec_b3V0Ym91bmQtdGVzdC1zZWNyZXQtMzItYnl0ZXM="
)

// PostWebhook sends body to a webhook channel signed with secret under
// webhook-id id, and returns the response.
func PostWebhook(t testing.TB, url, secret, id string, body any) *http.Response {
	t.Helper()
	req, err := SignedWebhook(url, secret, id, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// SignedWebhook is the request PostWebhook sends (for callers off the
// test's goroutine, which must not call t.Fatal).
func SignedWebhook(url, secret, id string, body any) (*http.Request, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret == "" {
		return req, nil
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	sig, err := wh.Sign(id, now, raw)
	if err != nil {
		return nil, err
	}
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	return req, nil
}
