package webhook_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-gw/switchboard/plugins/webhook/webhook"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/message"
	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

// binary is the built plugin, compiled once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "webhook-plugin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "webhook")
	code := 1
	if err := channeltest.BuildPlugin("github.com/switchboard-gw/switchboard/plugins/webhook", binary); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func secret(seed byte) string {
	key := make([]byte, 32)
	for i := range key {
		key[i] = seed + byte(i)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

var testSecret = secret(1)

// local is the plugin as the tests run it: their receivers listen on
// loopback, which only AllowInternal lets a channel reach.
var local = webhook.Options{AllowInternal: true}

func validConfig(channelID, url string) sdk.InstanceConfig {
	return sdk.InstanceConfig{
		ChannelID: channelID,
		Config:    json.RawMessage(`{"url": "` + url + `", "timeout": "5s"}`),
		Secrets:   map[string]string{"signing_secret": testSecret},
	}
}

// signedRequest is what a Standard Webhooks sender POSTs. The test secrets
// are well-formed, so signing cannot fail.
func signedRequest(channelID, secret, id string, ts int64, body []byte) *sdk.HTTPRequest {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		panic(err)
	}
	sig, _ := wh.Sign(id, time.Unix(ts, 0), body)
	return &sdk.HTTPRequest{
		ChannelID: channelID,
		Method:    http.MethodPost,
		URL:       "https://gw.example.com/channels/" + channelID + "/webhook",
		Header: http.Header{
			"Content-Type":      {"application/json"},
			"Webhook-Id":        {id},
			"Webhook-Timestamp": {strconv.FormatInt(ts, 10)},
			"Webhook-Signature": {sig},
		},
		Body: body,
	}
}

// outboundMessage is the receiver's view of a bot message.
type outboundMessage struct {
	ChannelID      string          `json:"channel_id"`
	UserID         string          `json:"user_id"`
	IdempotencyKey string          `json:"idempotency_key"`
	Attempt        int             `json:"attempt"`
	Message        message.Content `json:"message"`
	Text           string          `json:"text"`
}

// receive verifies and decodes one outbound POST, as a receiver would.
func receive(r *http.Request, body []byte, secret string) (outboundMessage, error) {
	var m outboundMessage
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return m, err
	}
	if err := wh.Verify(body, r.Header); err != nil {
		return m, fmt.Errorf("signature: %w", err)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, err
	}
	if id := r.Header.Get("webhook-id"); id != m.IdempotencyKey {
		return m, fmt.Errorf("webhook-id %q is not the idempotency key %q", id, m.IdempotencyKey)
	}
	return m, nil
}

func harness(ch sdk.Channel) channeltest.Harness {
	return channeltest.Harness{
		Channel: ch,
		Config:  validConfig,
		InvalidConfigs: []channeltest.InvalidConfig{
			{Name: "empty", Fields: []string{"url", "signing_secret"}},
			{
				Name: "bad values",
				Config: sdk.InstanceConfig{
					Config: json.RawMessage(`{"url": "ftp://example.com", "timeout": "1h"}`),
					Secrets: map[string]string{
						"signing_secret":          "not-a-secret",
						"outbound_signing_secret": "whsec_c2hvcnQ=",
					},
				},
				Fields: []string{"url", "timeout", "signing_secret", "outbound_signing_secret"},
			},
			{
				Name:   "unknown field",
				Config: sdk.InstanceConfig{Config: json.RawMessage(`{"uri": "https://example.com"}`), Secrets: map[string]string{"signing_secret": testSecret}},
				Fields: []string{"config"},
			},
		},
		Inbound: func(cfg sdk.InstanceConfig, msg channeltest.InboundMessage) *sdk.HTTPRequest {
			body, _ := json.Marshal(map[string]string{"user_id": msg.UserID, "text": msg.Text})
			return signedRequest(cfg.ChannelID, cfg.Secrets["signing_secret"], msg.ID, msg.Time.Unix(), body)
		},
		Tamper:      func(req *sdk.HTTPRequest) { req.Body = append(req.Body, ' ') },
		Timestamped: true,
		Decode: func(r *http.Request, body []byte) (channeltest.Delivery, error) {
			m, err := receive(r, body, testSecret)
			return channeltest.Delivery{Recipient: m.UserID, Type: m.Message.Type, Text: m.Message.Text}, err
		},
		Respond: func(w http.ResponseWriter, _ *http.Request, o channeltest.Outcome) {
			switch o.Kind {
			case channeltest.OK:
				w.WriteHeader(http.StatusOK)
			case channeltest.RateLimited:
				w.Header().Set("Retry-After", strconv.Itoa(int(o.RetryAfter.Seconds())))
				w.WriteHeader(http.StatusTooManyRequests)
			case channeltest.Permanent:
				w.WriteHeader(http.StatusGone)
			case channeltest.Transient:
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		},
	}
}

func TestConformanceInProcess(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, harness(webhook.New(local)))
}

func TestConformanceOverGRPC(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, harness(channeltest.Serve(t, webhook.New(local))))
}

func TestConformanceBuiltBinary(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, harness(channeltest.Launch(t, binary, netguard.EnvAllowInternal+"=true")))
}
