package grpcplugin

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/internal/wire"
)

// Handshake is the go-plugin handshake every Switchboard channel plugin
// answers. Its cookie never changes.
var Handshake = wire.Handshake

// PluginName is what to Dispense to get a *Client.
const PluginName = wire.PluginName

// ChannelPlugin is the gateway-side go-plugin Plugin: its GRPCClient returns
// a *Client. The plugin side is registered by sdk.Serve.
type ChannelPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

var _ plugin.GRPCPlugin = ChannelPlugin{}

// GRPCClient implements plugin.GRPCPlugin.
func (ChannelPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn), nil
}

// GRPCServer implements plugin.GRPCPlugin. The gateway never serves a
// channel; plugins serve with sdk.Serve.
func (ChannelPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("grpcplugin: channels are served with sdk.Serve")
}

// VersionedPlugins is the plugin set per protocol version the gateway
// offers. A future breaking protocol adds its version beside
// sdk.ProtocolVersion here, and go-plugin picks the highest both ends know.
func VersionedPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		sdk.ProtocolVersion: {PluginName: ChannelPlugin{}},
	}
}

// DialOptions are the gRPC options to connect with (message size limits
// matching the plugin side). Pass them as ClientConfig.GRPCDialOptions.
func DialOptions() []grpc.DialOption { return wire.DialOptions() }
