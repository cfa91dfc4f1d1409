// Package grpcplugin is the gateway's end of the channel plugin protocol:
// the go-plugin glue (Handshake, ChannelPlugin, VersionedPlugins) and Client,
// an sdk.Channel that forwards every call over gRPC to a plugin process.
//
// Plugin authors do not need this package: they implement sdk.Channel and
// call sdk.Serve. It is public only because the gateway (and
// sdk/channeltest, when it drives a built plugin binary) must reach it, and
// Go's internal/ directories cannot be imported from outside sdk/. It is not
// covered by the SDK's compatibility promise; the protocol
// (sdk/proto/channel/v1) is.
//
// A host launches a plugin like this (gateway/pluginhost adds checksums,
// supervision and restarts):
//
//	client := plugin.NewClient(&plugin.ClientConfig{
//		HandshakeConfig:  grpcplugin.Handshake,
//		VersionedPlugins: grpcplugin.VersionedPlugins(),
//		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
//		GRPCDialOptions:  grpcplugin.DialOptions(),
//		AutoMTLS:         true,
//		Cmd:              exec.Command(path),
//	})
//	rpc, err := client.Client()
//	...
//	raw, err := rpc.Dispense(grpcplugin.PluginName)
//	ch := raw.(*grpcplugin.Client)
package grpcplugin
