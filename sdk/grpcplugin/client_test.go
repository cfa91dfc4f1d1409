package grpcplugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// stub is an sdk.Channel whose methods are fields, so each test sets only
// what it exercises.
type stub struct {
	describe   func() (sdk.Description, error)
	configure  func(sdk.InstanceConfig) error
	handleHTTP func(*sdk.HTTPRequest) (*sdk.HTTPResponse, error)
	send       func([]sdk.Outbound) ([]sdk.SendResult, error)
}

func (s stub) Describe(context.Context) (sdk.Description, error) { return s.describe() }
func (s stub) Configure(_ context.Context, c sdk.InstanceConfig) error {
	return s.configure(c)
}
func (s stub) HandleHTTP(_ context.Context, r *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	return s.handleHTTP(r)
}
func (s stub) Send(_ context.Context, b []sdk.Outbound) ([]sdk.SendResult, error) { return s.send(b) }

type healthyStub struct {
	stub
	calls int
}

func (h *healthyStub) CheckHealth(_ context.Context, id string) (sdk.Health, error) {
	h.calls++
	return sdk.Health{OK: id == "ok", Reason: "checked " + id}, nil
}

func rich() message.Content {
	return message.Content{
		Type: message.TypeCarousel, Text: "pick", QuickReplies: true,
		Buttons: []message.Button{{Title: "A", Payload: "a"}},
		Media:   &message.Media{URL: "https://x/y.png", Name: "y.png", MimeType: "image/png"},
		Cards: []message.Card{{Title: "T", Subtitle: "S", ImageURL: "https://x/t.png",
			Buttons: []message.Button{{Title: "Go", URL: "https://x"}}}},
		DurationMS: 300, Payload: "p", Metadata: message.Metadata{"k": "v"},
	}
}

// Every field survives the wire in both directions.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	desc := sdk.Description{
		Name: "n", Version: "v", ProtocolVersion: 1, MaxBatch: 50,
		Capabilities: sdk.Capabilities{Buttons: true, QuickReplies: true, Images: true, Files: true, Cards: true,
			Carousel: true, Typing: true, MaxTextLength: 4096, DeliveryReceipts: true, Websocket: true},
		RateLimits: sdk.RateLimits{
			Global:       sdk.Rate{Count: 30, Per: time.Second, Burst: 5},
			PerRecipient: sdk.Rate{Count: 1, Per: time.Second},
		},
		ConfigSchema: json.RawMessage(`{"type":"object"}`),
	}
	received := time.Unix(1700000000, 5).UTC()
	req := &sdk.HTTPRequest{
		ChannelID: "c", Method: "POST", URL: "https://gw/channels/c/webhook",
		Header: http.Header{"X-Multi": {"1", "2"}}, Body: []byte("raw"), Received: received,
	}
	resp := &sdk.HTTPResponse{
		Status: 202, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("ok"),
		Events: []sdk.Event{
			{Type: sdk.EventMessage, ID: "e1", UserID: "u", ReplyTo: "r", Content: rich(),
				Profile: map[string]string{"name": "Ann"}, Time: received},
			{Type: sdk.EventDeliveryStatus, ID: "e2", Status: &sdk.DeliveryStatus{ProviderID: "p", State: sdk.StateFailed, ErrorCode: "30003", Reason: "unreachable"}},
		},
	}
	batch := []sdk.Outbound{{ChannelID: "c", IdempotencyKey: "k", Recipient: "u", ReplyTo: "r", Content: rich(), Attempt: 3}}
	results := []sdk.SendResult{{IdempotencyKey: "k", ProviderID: "m1", Err: sdk.RateLimited(2*time.Second, "429", "slow down")}}
	var gotReq *sdk.HTTPRequest
	var gotBatch []sdk.Outbound
	var gotCfg sdk.InstanceConfig
	cfg := sdk.InstanceConfig{ChannelID: "c", WebhookURL: "https://gw/channels/c/webhook", Config: json.RawMessage(`{"a":1}`), Secrets: map[string]string{"token": "t"}}

	ch := channeltest.Serve(t, stub{
		describe:   func() (sdk.Description, error) { return desc, nil },
		configure:  func(c sdk.InstanceConfig) error { gotCfg = c; return nil },
		handleHTTP: func(r *sdk.HTTPRequest) (*sdk.HTTPResponse, error) { gotReq = r; return resp, nil },
		send:       func(b []sdk.Outbound) ([]sdk.SendResult, error) { gotBatch = b; return results, nil },
	})
	ctx := t.Context()
	if d, err := ch.Describe(ctx); err != nil || !reflect.DeepEqual(d, desc) {
		t.Errorf("Describe = %+v, %v\nwant %+v", d, err, desc)
	}
	if err := ch.Configure(ctx, cfg); err != nil || !reflect.DeepEqual(gotCfg, cfg) {
		t.Errorf("Configure sent %+v, %v\nwant %+v", gotCfg, err, cfg)
	}
	r, err := ch.HandleHTTP(ctx, req)
	if err != nil || !reflect.DeepEqual(gotReq, req) || !reflect.DeepEqual(r, resp) {
		t.Errorf("HandleHTTP: plugin got %+v\nhost got %+v, %v", gotReq, r, err)
	}
	res, err := ch.Send(ctx, batch)
	if err != nil || !reflect.DeepEqual(gotBatch, batch) || !reflect.DeepEqual(res, results) {
		t.Errorf("Send: plugin got %+v\nhost got %+v, %v", gotBatch, res, err)
	}
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	var reply []sdk.SendResult
	ch := channeltest.Serve(t, stub{send: func([]sdk.Outbound) ([]sdk.SendResult, error) { return reply, nil }})
	batch := []sdk.Outbound{{IdempotencyKey: "a"}, {IdempotencyKey: "b"}}

	reply = []sdk.SendResult{{IdempotencyKey: "a"}, {IdempotencyKey: "b", Err: errors.New("socket closed")}}
	res, err := ch.Send(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil {
		t.Errorf("success decoded as %#v, want a nil error", res[0].Err)
	}
	if sdk.KindOf(res[1].Err) != sdk.KindTransient || !strings.Contains(res[1].Err.Error(), "socket closed") {
		t.Errorf("plain error decoded as %v, want transient with its message", res[1].Err)
	}

	reply = reply[:1]
	if _, err := ch.Send(t.Context(), batch); err == nil || !strings.Contains(err.Error(), "1 results for 2 messages") {
		t.Errorf("short reply: %v, want a batch error", err)
	}
}

func TestConfigureErrors(t *testing.T) {
	t.Parallel()
	var fail error
	ch := channeltest.Serve(t, stub{configure: func(sdk.InstanceConfig) error { return fail }})

	fail = fmt.Errorf("wrapped: %w", &sdk.ConfigError{Fields: map[string]string{"token": "is required"}})
	var ce *sdk.ConfigError
	if err := ch.Configure(t.Context(), sdk.InstanceConfig{}); !errors.As(err, &ce) || ce.Fields["token"] != "is required" {
		t.Errorf("field error came back as %v", err)
	}
	fail = errors.New("disk full")
	if err := ch.Configure(t.Context(), sdk.InstanceConfig{}); errors.As(err, &ce) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("other error came back as %v", err)
	}
}

func TestCheckHealth(t *testing.T) {
	t.Parallel()
	plain := channeltest.Serve(t, stub{})
	for range 2 {
		h, err := plain.(sdk.HealthChecker).CheckHealth(t.Context(), "c")
		if err != nil || !h.OK {
			t.Errorf("channel without a health check: %+v, %v; want healthy", h, err)
		}
	}
	hs := &healthyStub{}
	checked := channeltest.Serve(t, hs)
	if h, err := checked.(sdk.HealthChecker).CheckHealth(t.Context(), "bad"); err != nil || h.OK || h.Reason != "checked bad" {
		t.Errorf("CheckHealth = %+v, %v", h, err)
	}
}

func TestPanicBecomesError(t *testing.T) {
	t.Parallel()
	ch := channeltest.Serve(t, stub{describe: func() (sdk.Description, error) { panic("boom") }})
	_, err := ch.Describe(t.Context())
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic came back as %v, want codes.Internal", err)
	}
	// The plugin is still serving.
	if _, err := ch.Describe(t.Context()); status.Code(err) != codes.Internal {
		t.Errorf("second call: %v", err)
	}
}

// validatingStub validates without installing.
type validatingStub struct{ stub }

func (v *validatingStub) ValidateConfig(_ context.Context, c sdk.InstanceConfig) error {
	if len(c.Secrets["token"]) == 0 {
		return &sdk.ConfigError{Fields: map[string]string{"token": "is required"}}
	}
	return nil
}

// TestValidateConfig: the optional ValidateConfig RPC carries field errors
// from a plugin that has it, and a plugin without it (one built against an
// sdk before it, which the stub is) answers ErrCannotValidate, which the
// gateway treats as "accept unchecked".
func TestValidateConfig(t *testing.T) {
	t.Parallel()
	old := channeltest.Serve(t, stub{})
	if err := old.(sdk.ConfigValidator).ValidateConfig(t.Context(), sdk.InstanceConfig{}); !errors.Is(err, grpcplugin.ErrCannotValidate) {
		t.Errorf("plugin without ValidateConfig: %v, want ErrCannotValidate", err)
	}
	v := &validatingStub{stub: stub{configure: func(sdk.InstanceConfig) error { return errors.New("must not be called") }}}
	ch := channeltest.Serve(t, v).(sdk.ConfigValidator)
	var ce *sdk.ConfigError
	if err := ch.ValidateConfig(t.Context(), sdk.InstanceConfig{ChannelID: "c"}); !errors.As(err, &ce) || ce.Fields["token"] != "is required" {
		t.Errorf("invalid config: %v", err)
	}
	if err := ch.ValidateConfig(t.Context(), sdk.InstanceConfig{ChannelID: "c", Secrets: map[string]string{"token": "t"}}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
