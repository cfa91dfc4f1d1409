package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-gw/switchboard/sdk/internal/convert"
	channelv1 "github.com/switchboard-gw/switchboard/sdk/proto/channel/v1"
)

// servePlugin is the plugin-side half of the go-plugin glue: it registers a
// Channel as the ChannelService. The gateway-side half is
// grpcplugin.ChannelPlugin; they are separate types because this package
// cannot import grpcplugin (which imports it).
type servePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Channel
}

func (p *servePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	channelv1.RegisterChannelServiceServer(s, &channelServer{impl: p.impl})
	return nil
}

func (p *servePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the plugin side has no client; the gateway uses sdk/grpcplugin")
}

var _ plugin.GRPCPlugin = (*servePlugin)(nil)

// channelServer adapts a Channel to the generated service: it decodes
// requests, calls the author's code and encodes the answers.
type channelServer struct {
	channelv1.UnimplementedChannelServiceServer
	impl Channel
}

var _ channelv1.ChannelServiceServer = (*channelServer)(nil)

func (s *channelServer) Describe(ctx context.Context, _ *channelv1.DescribeRequest) (*channelv1.DescribeResponse, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, err
	}
	caps := d.Capabilities
	return &channelv1.DescribeResponse{
		Name:            d.Name,
		Version:         d.Version,
		ProtocolVersion: int32(d.ProtocolVersion),
		Capabilities: &channelv1.Capabilities{
			Buttons:          caps.Buttons,
			QuickReplies:     caps.QuickReplies,
			Images:           caps.Images,
			Files:            caps.Files,
			Cards:            caps.Cards,
			Carousel:         caps.Carousel,
			Typing:           caps.Typing,
			MaxTextLength:    int32(caps.MaxTextLength),
			DeliveryReceipts: caps.DeliveryReceipts,
			Websocket:        caps.Websocket,
		},
		RateLimits: &channelv1.RateLimits{
			Global:       rateToProto(d.RateLimits.Global),
			PerRecipient: rateToProto(d.RateLimits.PerRecipient),
		},
		ConfigSchema: d.ConfigSchema,
		MaxBatch:     int32(d.MaxBatch),
	}, nil
}

func rateToProto(r Rate) *channelv1.Rate {
	return &channelv1.Rate{Count: int32(r.Count), Per: convert.DurationToProto(r.Per), Burst: int32(r.Burst)}
}

func (s *channelServer) Configure(ctx context.Context, req *channelv1.ConfigureRequest) (*channelv1.ConfigureResponse, error) {
	err := s.impl.Configure(ctx, instanceFromProto(req.GetConfig()))
	var ce *ConfigError
	switch {
	case err == nil:
		return &channelv1.ConfigureResponse{}, nil
	case errors.As(err, &ce) && len(ce.Fields) > 0:
		return &channelv1.ConfigureResponse{FieldErrors: ce.Fields}, nil
	default:
		return nil, err
	}
}

func instanceFromProto(pc *channelv1.InstanceConfig) InstanceConfig {
	return InstanceConfig{ChannelID: pc.GetChannelId(), WebhookURL: pc.GetWebhookUrl(), Config: pc.GetConfig(), Secrets: pc.GetSecrets()}
}

func (s *channelServer) ValidateConfig(ctx context.Context, req *channelv1.ValidateConfigRequest) (*channelv1.ValidateConfigResponse, error) {
	v, ok := s.impl.(ConfigValidator)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "channel cannot validate configuration")
	}
	err := v.ValidateConfig(ctx, instanceFromProto(req.GetConfig()))
	var ce *ConfigError
	switch {
	case err == nil:
		return &channelv1.ValidateConfigResponse{}, nil
	case errors.As(err, &ce) && len(ce.Fields) > 0:
		return &channelv1.ValidateConfigResponse{FieldErrors: ce.Fields}, nil
	default:
		return nil, err
	}
}

func (s *channelServer) HandleHTTP(ctx context.Context, req *channelv1.HandleHTTPRequest) (*channelv1.HandleHTTPResponse, error) {
	resp, err := s.impl.HandleHTTP(ctx, &HTTPRequest{
		ChannelID: req.GetChannelId(),
		Method:    req.GetMethod(),
		URL:       req.GetUrl(),
		Header:    convert.HeaderFromProto(req.GetHeader()),
		Body:      req.GetBody(),
		Received:  convert.TimeFromProto(req.GetReceived()),
	})
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errors.New("channel returned no HTTP response")
	}
	out := &channelv1.HandleHTTPResponse{
		Status: int32(resp.Status),
		Header: convert.HeaderToProto(resp.Header),
		Body:   resp.Body,
		Events: make([]*channelv1.Event, len(resp.Events)),
	}
	for i, ev := range resp.Events {
		out.Events[i] = eventToProto(ev)
	}
	return out, nil
}

func eventToProto(ev Event) *channelv1.Event {
	pe := &channelv1.Event{
		Type:    string(ev.Type),
		Id:      ev.ID,
		UserId:  ev.UserID,
		ReplyTo: ev.ReplyTo,
		Content: convert.ContentToProto(ev.Content),
		Profile: ev.Profile,
		Time:    convert.TimeToProto(ev.Time),
	}
	if st := ev.Status; st != nil {
		pe.Status = &channelv1.DeliveryStatus{
			ProviderId: st.ProviderID,
			State:      string(st.State),
			ErrorCode:  st.ErrorCode,
			Reason:     st.Reason,
		}
	}
	return pe
}

func (s *channelServer) Send(ctx context.Context, req *channelv1.SendRequest) (*channelv1.SendResponse, error) {
	batch := make([]Outbound, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		batch[i] = outboundFromProto(m)
	}
	results, err := s.impl.Send(ctx, batch)
	if err != nil {
		return nil, err
	}
	// Results are passed on as returned, even when their number is wrong:
	// the gateway side rejects a mismatched batch, and channeltest must be
	// able to see the plugin's real answer.
	out := &channelv1.SendResponse{Results: make([]*channelv1.SendResult, len(results))}
	for i, r := range results {
		out.Results[i] = &channelv1.SendResult{
			IdempotencyKey: r.IdempotencyKey,
			ProviderId:     r.ProviderID,
			Error:          sendErrorToProto(r.Err),
		}
	}
	return out, nil
}

func outboundFromProto(m *channelv1.Outbound) Outbound {
	return Outbound{
		ChannelID:      m.GetChannelId(),
		IdempotencyKey: m.GetIdempotencyKey(),
		Recipient:      m.GetRecipient(),
		ReplyTo:        m.GetReplyTo(),
		Content:        convert.ContentFromProto(m.GetContent()),
		Attempt:        int(m.GetAttempt()),
	}
}

// sendErrorToProto encodes err; errors that are not a *SendError are
// transient, as KindOf says.
func sendErrorToProto(err error) *channelv1.SendError {
	if err == nil {
		return nil
	}
	var se *SendError
	if !errors.As(err, &se) {
		return &channelv1.SendError{Kind: channelv1.ErrorKind_ERROR_KIND_TRANSIENT, Message: err.Error()}
	}
	return &channelv1.SendError{
		Kind:       errorKindToProto[se.Kind],
		Code:       se.Code,
		Message:    se.Message,
		RetryAfter: convert.DurationToProto(se.RetryAfter),
	}
}

// errorKindToProto maps every kind; a kind missing here encodes as
// UNSPECIFIED, which the gateway reads as transient.
var errorKindToProto = map[ErrorKind]channelv1.ErrorKind{
	KindTransient:   channelv1.ErrorKind_ERROR_KIND_TRANSIENT,
	KindRateLimited: channelv1.ErrorKind_ERROR_KIND_RATE_LIMITED,
	KindPermanent:   channelv1.ErrorKind_ERROR_KIND_PERMANENT,
	KindAuth:        channelv1.ErrorKind_ERROR_KIND_AUTH,
}

func (s *channelServer) CheckHealth(ctx context.Context, req *channelv1.CheckHealthRequest) (*channelv1.CheckHealthResponse, error) {
	hc, ok := s.impl.(HealthChecker)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "channel has no health check")
	}
	h, err := hc.CheckHealth(ctx, req.GetChannelId())
	if err != nil {
		return nil, err
	}
	return &channelv1.CheckHealthResponse{Ok: h.OK, Reason: h.Reason}, nil
}

// recoverUnary turns a panic in a handler into a codes.Internal error, so one
// bad message fails one call instead of killing the process (and every
// channel instance it serves). The stack goes to the log.
func recoverUnary(logger hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in plugin call", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "plugin panicked in %s: %v", info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streaming calls (go-plugin's own stdio
// and broker services are streams).
func recoverStream(logger hclog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in plugin stream", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "plugin panicked in %s: %v", info.FullMethod, r)
			}
		}()
		return handler(srv, ss)
	}
}
