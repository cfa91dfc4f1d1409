package slackchannel_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
	"github.com/switchboard-gw/switchboard/plugins/slack/slackchannel"
	"github.com/switchboard-gw/switchboard/plugins/slack/slackfake"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// binary is the built plugin, compiled once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(fakekit.BuildAndRun(m, "github.com/switchboard-gw/switchboard/plugins/slack", &binary))
}

const conformanceToken = "xoxb-conformance"

func conformance(ch sdk.Channel) channeltest.Harness {
	return channeltest.Harness{
		Channel: ch,
		Config: func(id, platformURL string) sdk.InstanceConfig {
			return sdk.InstanceConfig{
				ChannelID:  id,
				WebhookURL: "https://gw.example.com/channels/" + id + "/webhook",
				Config:     json.RawMessage(`{"api_url":"` + platformURL + `/api/"}`),
				Secrets:    map[string]string{"bot_token": conformanceToken, "signing_secret": signingSecret},
			}
		},
		InvalidConfigs: []channeltest.InvalidConfig{
			{Name: "no secrets", Fields: []string{"bot_token", "signing_secret"}},
			{Name: "bad api_url", Config: sdk.InstanceConfig{Config: json.RawMessage(`{"api_url":"ftp://slack"}`),
				Secrets: map[string]string{"bot_token": "t", "signing_secret": "s"}}, Fields: []string{"api_url"}},
			{Name: "unknown option", Config: sdk.InstanceConfig{Config: json.RawMessage(`{"apiurl":"https://slack.com/api/"}`),
				Secrets: map[string]string{"bot_token": "t", "signing_secret": "s"}}, Fields: []string{"apiurl"}},
		},
		Inbound: func(cfg sdk.InstanceConfig, msg channeltest.InboundMessage) *sdk.HTTPRequest {
			d := &slackfake.Driver{SigningSecret: cfg.Secrets["signing_secret"], Clock: func() time.Time { return msg.Time }}
			w := d.Message(slackfake.Message{EventID: msg.ID, User: msg.UserID, Channel: "D0001", Text: msg.Text})
			return &sdk.HTTPRequest{ChannelID: cfg.ChannelID, Method: http.MethodPost, URL: cfg.WebhookURL, Header: d.Headers(w), Body: w.Body}
		},
		Tamper:      func(req *sdk.HTTPRequest) { req.Body = append(req.Body, ' ') },
		Timestamped: true,
		Decode:      decodePost,
		Respond: func(w http.ResponseWriter, r *http.Request, o channeltest.Outcome) {
			w.Header().Set("Content-Type", "application/json")
			switch o.Kind {
			case channeltest.OK:
				fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.000100"}`, r.PostFormValue("channel"))
			case channeltest.RateLimited:
				w.Header().Set("Retry-After", strconv.Itoa(int(o.RetryAfter.Seconds())))
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"ok":false,"error":"ratelimited"}`)
			case channeltest.Permanent:
				fmt.Fprint(w, `{"ok":false,"error":"channel_not_found"}`)
			case channeltest.Transient:
				fmt.Fprint(w, `{"ok":false,"error":"internal_error"}`)
			}
		},
	}
}

// decodePost reads chat.postMessage as Slack would and tells what it shows.
func decodePost(r *http.Request, body []byte) (channeltest.Delivery, error) {
	if r.URL.Path != "/api/chat.postMessage" {
		return channeltest.Delivery{}, fmt.Errorf("unexpected call %s", r.URL.Path)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return channeltest.Delivery{}, err
	}
	if form.Get("token") != conformanceToken && r.Header.Get("Authorization") != "Bearer "+conformanceToken {
		return channeltest.Delivery{}, errors.New("invalid_auth")
	}
	d := channeltest.Delivery{Recipient: form.Get("channel"), Type: message.TypeText, Text: html.UnescapeString(form.Get("text"))}
	if raw := form.Get("blocks"); raw != "" {
		if err := slackfake.ValidateBlocks(raw); err != nil {
			return d, fmt.Errorf("invalid_blocks: %w", err)
		}
		var blocks []struct {
			Type      string          `json:"type"`
			Accessory json.RawMessage `json:"accessory"`
		}
		_ = json.Unmarshal([]byte(raw), &blocks) // validated above
		kinds := map[string]bool{}
		for _, b := range blocks {
			kinds[b.Type] = true
			if b.Accessory != nil {
				kinds["card"] = true
			}
		}
		switch {
		case kinds["divider"]:
			d.Type = message.TypeCarousel
		case kinds["card"]:
			d.Type = message.TypeCard
		case kinds["image"]:
			d.Type = message.TypeImage
		case kinds["actions"]:
			d.Type = message.TypeButtons
		}
	}
	return d, nil
}

func TestConformanceInProcess(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(slackchannel.New(nil)))
}

func TestConformanceOverGRPC(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(channeltest.Serve(t, slackchannel.New(nil))))
}

func TestConformanceBuiltBinary(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(channeltest.Launch(t, binary)))
}
