package grpcplugin

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/internal/convert"
	channelv1 "github.com/switchboard-gw/switchboard/sdk/proto/channel/v1"
)

// Client is an sdk.Channel whose calls run in a plugin process. It is safe
// for concurrent use. Errors from the transport (the plugin died, the call
// was cancelled) keep their gRPC status, so status.Code(err) tells
// codes.Unavailable from a plugin's own failure.
type Client struct {
	rpc channelv1.ChannelServiceClient
	// noHealth is set once the plugin answered CheckHealth with
	// Unimplemented; later checks answer locally.
	noHealth atomic.Bool
}

var (
	_ sdk.Channel         = (*Client)(nil)
	_ sdk.HealthChecker   = (*Client)(nil)
	_ sdk.ConfigValidator = (*Client)(nil)
)

// ErrCannotValidate is returned by ValidateConfig for a plugin that has
// no ValidateConfig (one built against an sdk without it): its
// configuration can only be checked by installing it.
var ErrCannotValidate = errors.New("the plugin cannot validate configuration without installing it")

// NewClient wraps a connection to a plugin serving the channel protocol.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: channelv1.NewChannelServiceClient(conn)}
}

// Describe implements sdk.Channel.
func (c *Client) Describe(ctx context.Context) (sdk.Description, error) {
	resp, err := c.rpc.Describe(ctx, &channelv1.DescribeRequest{})
	if err != nil {
		return sdk.Description{}, fmt.Errorf("describe: %w", err)
	}
	caps := resp.GetCapabilities()
	return sdk.Description{
		Name:            resp.GetName(),
		Version:         resp.GetVersion(),
		ProtocolVersion: int(resp.GetProtocolVersion()),
		Capabilities: sdk.Capabilities{
			Buttons:          caps.GetButtons(),
			QuickReplies:     caps.GetQuickReplies(),
			Images:           caps.GetImages(),
			Files:            caps.GetFiles(),
			Cards:            caps.GetCards(),
			Carousel:         caps.GetCarousel(),
			Typing:           caps.GetTyping(),
			MaxTextLength:    int(caps.GetMaxTextLength()),
			DeliveryReceipts: caps.GetDeliveryReceipts(),
			Websocket:        caps.GetWebsocket(),
		},
		RateLimits: sdk.RateLimits{
			Global:       rateFromProto(resp.GetRateLimits().GetGlobal()),
			PerRecipient: rateFromProto(resp.GetRateLimits().GetPerRecipient()),
		},
		ConfigSchema: resp.GetConfigSchema(),
		MaxBatch:     int(resp.GetMaxBatch()),
	}, nil
}

func rateFromProto(r *channelv1.Rate) sdk.Rate {
	return sdk.Rate{Count: int(r.GetCount()), Per: convert.DurationFromProto(r.GetPer()), Burst: int(r.GetBurst())}
}

// Configure implements sdk.Channel. Field errors reported by the plugin come
// back as a *sdk.ConfigError.
func (c *Client) Configure(ctx context.Context, cfg sdk.InstanceConfig) error {
	resp, err := c.rpc.Configure(ctx, &channelv1.ConfigureRequest{Config: instanceToProto(cfg)})
	if err != nil {
		return fmt.Errorf("configure %s: %w", cfg.ChannelID, err)
	}
	if fe := resp.GetFieldErrors(); len(fe) > 0 {
		return &sdk.ConfigError{Fields: fe}
	}
	return nil
}

func instanceToProto(cfg sdk.InstanceConfig) *channelv1.InstanceConfig {
	return &channelv1.InstanceConfig{ChannelId: cfg.ChannelID, WebhookUrl: cfg.WebhookURL, Config: cfg.Config, Secrets: cfg.Secrets}
}

// ValidateConfig implements sdk.ConfigValidator. Field errors come back as
// a *sdk.ConfigError; a plugin without the RPC answers ErrCannotValidate,
// which callers treat as "accept unchecked".
func (c *Client) ValidateConfig(ctx context.Context, cfg sdk.InstanceConfig) error {
	resp, err := c.rpc.ValidateConfig(ctx, &channelv1.ValidateConfigRequest{Config: instanceToProto(cfg)})
	if status.Code(err) == codes.Unimplemented {
		return ErrCannotValidate
	}
	if err != nil {
		return fmt.Errorf("validate config of %s: %w", cfg.ChannelID, err)
	}
	if fe := resp.GetFieldErrors(); len(fe) > 0 {
		return &sdk.ConfigError{Fields: fe}
	}
	return nil
}

// HandleHTTP implements sdk.Channel.
func (c *Client) HandleHTTP(ctx context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	resp, err := c.rpc.HandleHTTP(ctx, &channelv1.HandleHTTPRequest{
		ChannelId: req.ChannelID,
		Method:    req.Method,
		Url:       req.URL,
		Header:    convert.HeaderToProto(req.Header),
		Body:      req.Body,
		Received:  convert.TimeToProto(req.Received),
	})
	if err != nil {
		return nil, fmt.Errorf("handle http for %s: %w", req.ChannelID, err)
	}
	out := &sdk.HTTPResponse{
		Status: int(resp.GetStatus()),
		Header: convert.HeaderFromProto(resp.GetHeader()),
		Body:   resp.GetBody(),
	}
	if n := len(resp.GetEvents()); n > 0 {
		out.Events = make([]sdk.Event, n)
		for i, ev := range resp.GetEvents() {
			out.Events[i] = eventFromProto(ev)
		}
	}
	return out, nil
}

func eventFromProto(pe *channelv1.Event) sdk.Event {
	ev := sdk.Event{
		Type:    sdk.EventType(pe.GetType()),
		ID:      pe.GetId(),
		UserID:  pe.GetUserId(),
		ReplyTo: pe.GetReplyTo(),
		Content: convert.ContentFromProto(pe.GetContent()),
		Profile: pe.GetProfile(),
		Time:    convert.TimeFromProto(pe.GetTime()),
	}
	if st := pe.GetStatus(); st != nil {
		ev.Status = &sdk.DeliveryStatus{
			ProviderID: st.GetProviderId(),
			State:      sdk.DeliveryState(st.GetState()),
			ErrorCode:  st.GetErrorCode(),
			Reason:     st.GetReason(),
		}
	}
	return ev
}

// Send implements sdk.Channel. A plugin that answers with a different
// number of results than messages breaks the contract; the batch then fails
// as a whole (transient), because results could not be matched to messages.
func (c *Client) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	req := &channelv1.SendRequest{Messages: make([]*channelv1.Outbound, len(batch))}
	for i, m := range batch {
		req.Messages[i] = outboundToProto(m)
	}
	resp, err := c.rpc.Send(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	if got := len(resp.GetResults()); got != len(batch) {
		return nil, fmt.Errorf("send: plugin returned %d results for %d messages", got, len(batch))
	}
	results := make([]sdk.SendResult, len(batch))
	for i, r := range resp.GetResults() {
		results[i] = sdk.SendResult{
			IdempotencyKey: r.GetIdempotencyKey(),
			ProviderID:     r.GetProviderId(),
			Err:            sendErrorFromProto(r.GetError()),
		}
	}
	return results, nil
}

func outboundToProto(m sdk.Outbound) *channelv1.Outbound {
	return &channelv1.Outbound{
		ChannelId:      m.ChannelID,
		IdempotencyKey: m.IdempotencyKey,
		Recipient:      m.Recipient,
		ReplyTo:        m.ReplyTo,
		Content:        convert.ContentToProto(m.Content),
		Attempt:        int32(m.Attempt),
	}
}

// sendErrorFromProto decodes pe. It returns error, not *sdk.SendError, so
// that success is a nil interface rather than a typed nil.
func sendErrorFromProto(pe *channelv1.SendError) error {
	if pe == nil {
		return nil
	}
	kind, ok := errorKindFromProto[pe.GetKind()]
	if !ok {
		kind = sdk.KindTransient
	}
	return &sdk.SendError{
		Kind:       kind,
		Code:       pe.GetCode(),
		Message:    pe.GetMessage(),
		RetryAfter: convert.DurationFromProto(pe.GetRetryAfter()),
	}
}

var errorKindFromProto = map[channelv1.ErrorKind]sdk.ErrorKind{
	channelv1.ErrorKind_ERROR_KIND_TRANSIENT:    sdk.KindTransient,
	channelv1.ErrorKind_ERROR_KIND_RATE_LIMITED: sdk.KindRateLimited,
	channelv1.ErrorKind_ERROR_KIND_PERMANENT:    sdk.KindPermanent,
	channelv1.ErrorKind_ERROR_KIND_AUTH:         sdk.KindAuth,
}

// CheckHealth implements sdk.HealthChecker. A plugin without a health check
// is healthy while it runs (see sdk.HealthChecker), so Unimplemented answers
// OK, and later calls do not cross the wire.
func (c *Client) CheckHealth(ctx context.Context, channelID string) (sdk.Health, error) {
	if c.noHealth.Load() {
		return sdk.Health{OK: true}, nil
	}
	resp, err := c.rpc.CheckHealth(ctx, &channelv1.CheckHealthRequest{ChannelId: channelID})
	if status.Code(err) == codes.Unimplemented {
		c.noHealth.Store(true)
		return sdk.Health{OK: true}, nil
	}
	if err != nil {
		return sdk.Health{}, fmt.Errorf("check health of %s: %w", channelID, err)
	}
	return sdk.Health{OK: resp.GetOk(), Reason: resp.GetReason()}, nil
}
