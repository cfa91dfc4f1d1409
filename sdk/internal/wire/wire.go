// Package wire holds the facts both ends of the plugin connection must agree
// on: the go-plugin handshake cookie, the name the channel plugin is served
// under and the gRPC message size limit. Both sdk.Serve (plugin side) and
// sdk/grpcplugin (gateway side) read them from here, so they cannot drift.
package wire

import (
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is the go-plugin handshake. The cookie must never change: it is
// how a plugin binary recognises that a Switchboard gateway started it (and
// prints a notice instead of hanging when someone runs it by hand). The
// protocol version is not set here: both ends negotiate it from
// VersionedPlugins, keyed by sdk.ProtocolVersion.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "SWITCHBOARD_CHANNEL_PLUGIN",
	MagicCookieValue: "c3f1e0a2-7b1d-4f7e-9a55-2d6c0b8e91d4",
}

// PluginName is the key of the channel plugin in the go-plugin PluginSet.
const PluginName = "channel"

// MaxMessageSize bounds every gRPC message in both directions. gRPC's 4 MB
// default is too tight for a large Send batch; media travels by URL, so
// 16 MB (Grafana's choice) leaves ample room without inviting abuse.
const MaxMessageSize = 16 << 20

// ServerOptions are the gRPC server options a plugin serves with.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
	}
}

// DialOptions are the gRPC dial options a gateway connects with.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize),
			grpc.MaxCallSendMsgSize(MaxMessageSize),
		),
	}
}
