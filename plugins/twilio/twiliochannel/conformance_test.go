package twiliochannel_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliochannel"
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliofake"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// binary is the built plugin, compiled once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(fakekit.BuildAndRun(m, "github.com/switchboard-gw/switchboard/plugins/twilio", &binary))
}

var (
	conformanceSID   = "AC" + strings.Repeat("c", 32)
	conformanceToken = strings.Repeat("d", 32)
)

func conformance(ch sdk.Channel) channeltest.Harness {
	valid := map[string]string{"account_sid": conformanceSID, "auth_token": conformanceToken}
	return channeltest.Harness{
		Channel: ch,
		Config: func(id, platformURL string) sdk.InstanceConfig {
			// mps is high so the plugin's own pacing never waits here.
			return sdk.InstanceConfig{
				ChannelID:  id,
				WebhookURL: "https://gw.example.com/channels/" + id + "/webhook",
				Config:     json.RawMessage(`{"from":"` + from + `","mps":1000,"api_base":"` + platformURL + `"}`),
				Secrets:    valid,
			}
		},
		InvalidConfigs: []channeltest.InvalidConfig{
			{Name: "empty", Fields: []string{"from", "account_sid", "auth_token"}},
			{Name: "bad values", Config: sdk.InstanceConfig{
				Config: json.RawMessage(`{"from":"0100","mps":-1,"api_base":"twilio"}`), Secrets: valid},
				Fields: []string{"from", "mps", "api_base"}},
			{Name: "unknown option", Config: sdk.InstanceConfig{
				Config: json.RawMessage(`{"from":"` + from + `","sender":"x"}`), Secrets: valid}, Fields: []string{"sender"}},
		},
		Inbound: func(cfg sdk.InstanceConfig, msg channeltest.InboundMessage) *sdk.HTTPRequest {
			d := &twiliofake.Driver{URL: cfg.WebhookURL, AuthToken: cfg.Secrets["auth_token"], AccountSID: conformanceSID}
			r := d.Inbound(msg.UserID, from, msg.Text)
			r.Form.Set("MessageSid", "SM"+msg.ID) // the same on every delivery of the event
			return &sdk.HTTPRequest{ChannelID: cfg.ChannelID, Method: http.MethodPost, URL: cfg.WebhookURL,
				Header: d.Headers(r), Body: []byte(r.Form.Encode())}
		},
		Tamper: func(req *sdk.HTTPRequest) { req.Body = append(req.Body, "&Extra=1"...) },
		Decode: decodeCreate,
		Respond: func(w http.ResponseWriter, r *http.Request, o channeltest.Outcome) {
			w.Header().Set("Content-Type", "application/json")
			fail := func(status, code int) {
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"code":%d,"message":"error %d","more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, code, code, status)
			}
			switch o.Kind {
			case channeltest.OK:
				w.WriteHeader(http.StatusCreated)
				fmt.Fprintf(w, `{"sid":%q,"status":"queued","to":%q,"num_segments":"1"}`, twiliofake.NewSID("SM"), r.PostFormValue("To"))
			case channeltest.RateLimited:
				w.Header().Set("Retry-After", strconv.Itoa(int(o.RetryAfter.Seconds())))
				fail(http.StatusTooManyRequests, 20429)
			case channeltest.Permanent:
				fail(http.StatusBadRequest, 21610)
			case channeltest.Transient:
				fail(http.StatusServiceUnavailable, 20503)
			}
		},
	}
}

// decodeCreate reads a Messages API create as Twilio would.
func decodeCreate(r *http.Request, body []byte) (channeltest.Delivery, error) {
	if r.URL.Path != "/2010-04-01/Accounts/"+conformanceSID+"/Messages.json" {
		return channeltest.Delivery{}, fmt.Errorf("unexpected call %s", r.URL.Path)
	}
	if u, p, ok := r.BasicAuth(); !ok || u != conformanceSID || p != conformanceToken {
		return channeltest.Delivery{}, errors.New("20003 Authenticate")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return channeltest.Delivery{}, err
	}
	switch {
	case form.Get("From") == "" && form.Get("MessagingServiceSid") == "":
		return channeltest.Delivery{}, errors.New("21603 From required")
	case form.Get("Body") == "":
		return channeltest.Delivery{}, errors.New("21602 Body required")
	case len([]rune(form.Get("Body"))) > 1600:
		return channeltest.Delivery{}, errors.New("21617 Body too long")
	}
	return channeltest.Delivery{Recipient: form.Get("To"), Type: message.TypeText, Text: form.Get("Body")}, nil
}

func TestConformanceInProcess(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(twiliochannel.New(nil)))
}

func TestConformanceOverGRPC(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(channeltest.Serve(t, twiliochannel.New(nil))))
}

func TestConformanceBuiltBinary(t *testing.T) {
	t.Parallel()
	channeltest.Run(t, conformance(channeltest.Launch(t, binary)))
}
