package telegramchannel_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
	"github.com/switchboard-gw/switchboard/plugins/telegram/telegramchannel"
	"github.com/switchboard-gw/switchboard/plugins/telegram/telegramfake"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// binary is the built plugin, compiled once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(fakekit.BuildAndRun(m, "github.com/switchboard-gw/switchboard/plugins/telegram", &binary))
}

const conformanceToken = "4242:conformance-token"

func conformance(ch sdk.Channel) channeltest.Harness {
	valid := map[string]string{"bot_token": conformanceToken, "secret_token": secret}
	return channeltest.Harness{
		Channel: ch,
		Config: func(id, platformURL string) sdk.InstanceConfig {
			return sdk.InstanceConfig{
				ChannelID:  id,
				WebhookURL: "https://gw.example.com/channels/" + id + "/webhook",
				Config:     json.RawMessage(`{"api_url":"` + platformURL + `"}`),
				Secrets:    valid,
			}
		},
		InvalidConfigs: []channeltest.InvalidConfig{
			{Name: "no secrets", Fields: []string{"bot_token", "secret_token"}},
			{Name: "malformed secrets", Config: sdk.InstanceConfig{
				Secrets: map[string]string{"bot_token": "nocolon", "secret_token": "no spaces allowed"}}, Fields: []string{"bot_token", "secret_token"}},
			{Name: "set_webhook without URL", Config: sdk.InstanceConfig{
				Config: json.RawMessage(`{"set_webhook":true}`), Secrets: valid}, Fields: []string{"set_webhook"}},
			{Name: "unknown option", Config: sdk.InstanceConfig{
				Config: json.RawMessage(`{"webhook":true}`), Secrets: valid}, Fields: []string{"webhook"}},
		},
		Inbound: func(cfg sdk.InstanceConfig, msg channeltest.InboundMessage) *sdk.HTTPRequest {
			// update_id is numeric: derive it from the event id, so a
			// redelivery keeps it.
			h := fnv.New32a()
			h.Write([]byte(msg.ID))
			body, _ := json.Marshal(map[string]any{
				"update_id": int64(h.Sum32()) + 1,
				"message": map[string]any{
					"message_id": 1, "date": msg.Time.Unix(), "text": msg.Text,
					"from": map[string]any{"id": 1, "is_bot": false, "first_name": "Ada"},
					"chat": map[string]any{"id": msg.UserID, "type": "private"},
				},
			})
			return &sdk.HTTPRequest{
				ChannelID: cfg.ChannelID, Method: http.MethodPost, URL: cfg.WebhookURL, Body: body,
				Header: http.Header{"Content-Type": {"application/json"}, "X-Telegram-Bot-Api-Secret-Token": {cfg.Secrets["secret_token"]}},
			}
		},
		Tamper: func(req *sdk.HTTPRequest) {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", req.Header.Get("X-Telegram-Bot-Api-Secret-Token")+"x")
		},
		Decode: decodeCall,
		Respond: func(w http.ResponseWriter, _ *http.Request, o channeltest.Outcome) {
			w.Header().Set("Content-Type", "application/json")
			switch o.Kind {
			case channeltest.OK:
				fmt.Fprint(w, `{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":1,"type":"private"}}}`)
			case channeltest.RateLimited:
				s := int(o.RetryAfter.Seconds())
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprintf(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after %d","parameters":{"retry_after":%d}}`, s, s)
			case channeltest.Permanent:
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`)
			case channeltest.Transient:
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprint(w, "<html>502 Bad Gateway</html>")
			}
		},
	}
}

// decodeCall reads a Bot API call as Telegram would and tells what it shows.
func decodeCall(r *http.Request, body []byte) (channeltest.Delivery, error) {
	token, method, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bot"), "/")
	if token != conformanceToken {
		return channeltest.Delivery{}, errors.New("404 Not Found: wrong token")
	}
	var p struct {
		ChatID      string          `json:"chat_id"`
		Text        string          `json:"text"`
		Caption     string          `json:"caption"`
		Action      string          `json:"action"`
		ReplyMarkup json.RawMessage `json:"reply_markup"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return channeltest.Delivery{}, fmt.Errorf("can't parse JSON object: %w", err)
	}
	if err := telegramfake.ValidateMarkup(string(p.ReplyMarkup)); err != nil {
		return channeltest.Delivery{}, err
	}
	inline := strings.Contains(string(p.ReplyMarkup), "inline_keyboard")
	d := channeltest.Delivery{Recipient: p.ChatID, Text: p.Text}
	switch {
	case method == "sendMessage" && inline:
		d.Type = message.TypeButtons
	case method == "sendMessage":
		d.Type = message.TypeText
	case method == "sendPhoto" && inline:
		d.Type, d.Text = message.TypeCard, p.Caption
	case method == "sendPhoto":
		d.Type, d.Text = message.TypeImage, p.Caption
	case method == "sendDocument":
		d.Type, d.Text = message.TypeFile, p.Caption
	case method == "sendChatAction" && p.Action == "typing":
		d.Type = message.TypeTyping
	default:
		return d, fmt.Errorf("unexpected call %s", method)
	}
	return d, nil
}

func TestConformanceInProcess(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(telegramchannel.New(nil)))
}

func TestConformanceOverGRPC(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(channeltest.Serve(t, telegramchannel.New(nil))))
}

func TestConformanceBuiltBinary(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(channeltest.Launch(t, binary)))
}
