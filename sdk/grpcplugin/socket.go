package grpcplugin

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/internal/convert"
	channelv1 "github.com/switchboard-gw/switchboard/sdk/proto/channel/v1"
)

var (
	_ sdk.SocketChannel  = (*Client)(nil)
	_ sdk.ResumeResetter = (*Client)(nil)
)

// notSupported marks an Unimplemented answer as sdk.ErrNotSupported,
// keeping the gRPC status for status.Code.
func notSupported(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("%w: %w", sdk.ErrNotSupported, err)
	}
	return err
}

// HandleFrame implements sdk.SocketChannel. A plugin without a websocket
// protocol fails with an error wrapping sdk.ErrNotSupported.
func (c *Client) HandleFrame(ctx context.Context, f *sdk.Frame) (*sdk.FrameResult, error) {
	resp, err := c.rpc.HandleFrame(ctx, &channelv1.HandleFrameRequest{
		ChannelId: f.ChannelID,
		UserId:    f.UserID,
		Frame:     f.Data,
		Received:  convert.TimeToProto(f.Received),
	})
	if err != nil {
		return nil, fmt.Errorf("handle frame for %s: %w", f.ChannelID, notSupported(err))
	}
	out := &sdk.FrameResult{Replies: resp.GetReplies(), AckSeq: resp.GetAckSeq()}
	for _, ev := range resp.GetEvents() {
		out.Events = append(out.Events, eventFromProto(ev))
	}
	if st := resp.GetStart(); st != nil {
		out.Start = &sdk.SessionStart{
			UserID:      st.GetUserId(),
			ResumeAfter: st.GetResumeAfter(),
			FlowID:      st.GetFlowId(),
			StepID:      st.GetStepId(),
			Metadata:    st.GetMetadata(),
			StartID:     st.GetStartId(),
			Profile:     st.GetProfile(),
		}
	}
	if cl := resp.GetClose(); cl != nil {
		out.Close = &sdk.SocketClose{Code: int(cl.GetCode()), Reason: cl.GetReason()}
	}
	return out, nil
}

// RenderOutbound implements sdk.SocketChannel. Like Send, a plugin that
// answers with a different number of frames than messages fails the whole
// batch.
func (c *Client) RenderOutbound(ctx context.Context, batch []sdk.SequencedOutbound) ([]sdk.RenderedFrame, error) {
	req := &channelv1.RenderOutboundRequest{Messages: make([]*channelv1.SequencedOutbound, len(batch))}
	for i, m := range batch {
		req.Messages[i] = &channelv1.SequencedOutbound{Message: outboundToProto(m.Outbound), Seq: m.Seq}
	}
	resp, err := c.rpc.RenderOutbound(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("render outbound: %w", notSupported(err))
	}
	if got := len(resp.GetFrames()); got != len(batch) {
		return nil, fmt.Errorf("render outbound: plugin returned %d frames for %d messages", got, len(batch))
	}
	out := make([]sdk.RenderedFrame, len(batch))
	for i, f := range resp.GetFrames() {
		out[i] = sdk.RenderedFrame{Frame: f.GetFrame(), Err: sendErrorFromProto(f.GetError())}
	}
	return out, nil
}

// RenderResumeReset implements sdk.ResumeResetter. A plugin that renders no
// resume reset (one built against an earlier sdk) fails with an error
// wrapping sdk.ErrNotSupported.
func (c *Client) RenderResumeReset(ctx context.Context, r sdk.ResumeReset) ([]byte, error) {
	resp, err := c.rpc.RenderResumeReset(ctx, &channelv1.RenderResumeResetRequest{
		ChannelId: r.ChannelID, UserId: r.UserID, Requested: r.Requested, LastSeq: r.LastSeq,
	})
	if err != nil {
		return nil, fmt.Errorf("render resume reset for %s: %w", r.ChannelID, notSupported(err))
	}
	return resp.GetFrame(), nil
}
