package pluginhost

import (
	"context"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
)

// The channel Host.Channel returns also forwards the websocket calls, so web
// chat survives plugin restarts like every other call. A plugin without a
// websocket protocol answers them with sdk.ErrNotSupported.
var (
	_ sdk.SocketChannel  = (*channel)(nil)
	_ sdk.ResumeResetter = (*channel)(nil)
)

func (c *channel) HandleFrame(ctx context.Context, f *sdk.Frame) (*sdk.FrameResult, error) {
	return call(ctx, c, func(ch *grpcplugin.Client) (*sdk.FrameResult, error) { return ch.HandleFrame(ctx, f) })
}

func (c *channel) RenderOutbound(ctx context.Context, batch []sdk.SequencedOutbound) ([]sdk.RenderedFrame, error) {
	return call(ctx, c, func(ch *grpcplugin.Client) ([]sdk.RenderedFrame, error) { return ch.RenderOutbound(ctx, batch) })
}

func (c *channel) RenderResumeReset(ctx context.Context, r sdk.ResumeReset) ([]byte, error) {
	return call(ctx, c, func(ch *grpcplugin.Client) ([]byte, error) { return ch.RenderResumeReset(ctx, r) })
}
