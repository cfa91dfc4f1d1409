package sdk

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/switchboard-gw/switchboard/sdk/internal/wire"
)

// logger is built when the package initialises, before Serve replaces
// os.Stdout and os.Stderr with pipes that go-plugin forwards elsewhere: it
// keeps the process's real stderr, which the gateway reads line by line and
// re-emits, at the original level, in its own log under the plugin's name.
var logger = hclog.New(&hclog.LoggerOptions{
	Output:     os.Stderr,
	JSONFormat: true,
	Level:      hclog.Debug,
})

// Logger returns the plugin's logger. Use it, not fmt or the log package:
// it writes hclog JSON to the process's real stderr, which is the only
// output the gateway reads. Never write to stdout: before the handshake it
// breaks start-up, after it the text is lost.
func Logger() hclog.Logger { return logger }

// ServeOption changes how Serve runs.
type ServeOption func(*serveOptions)

type serveOptions struct {
	debug *plugin.ServeTestConfig
}

// parentPoll is how often the watchdog checks for a dead gateway.
const parentPoll = time.Second

// WithDebug serves in-process for tests and debuggers instead of talking to
// a gateway that launched the process: Serve sends the connection details on
// reattach, returns when ctx ends and then closes closed (if not nil). The
// handshake cookie is not checked and the parent watchdog is off. Connect
// with go-plugin's ClientConfig.Reattach (sdk/channeltest does).
func WithDebug(ctx context.Context, reattach chan<- *plugin.ReattachConfig, closed chan<- struct{}) ServeOption {
	return func(o *serveOptions) {
		o.debug = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	}
}

// Serve runs ch as a channel plugin until the gateway stops it. Call it from
// main and do nothing else there that writes to stdout:
//
//	func main() { sdk.Serve(mychannel.New()) }
//
// Serve speaks protocol version ProtocolVersion over gRPC. A panic inside a
// call fails that call with an error instead of crashing the process. If the
// gateway dies without stopping the plugin (kill -9), Serve notices that the
// parent process changed and exits, so no orphan is left behind.
func Serve(ch Channel, opts ...ServeOption) {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.debug == nil {
		go watchParent(os.Getppid(), os.Getppid, parentPoll, func() {
			logger.Error("gateway process is gone; exiting")
			os.Exit(1)
		})
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {wire.PluginName: &servePlugin{impl: ch}},
		},
		GRPCServer: func(base []grpc.ServerOption) *grpc.Server {
			opts := append(base, wire.ServerOptions()...)
			opts = append(opts,
				grpc.ChainUnaryInterceptor(recoverUnary(logger)),
				grpc.ChainStreamInterceptor(recoverStream(logger)),
			)
			return grpc.NewServer(opts...)
		},
		Logger: logger,
		Test:   o.debug,
	})
}

// watchParent calls gone once getppid stops returning parent, the process's
// parent at start: the gateway died and the process was re-parented (to
// init or a subreaper). The gateway also sets Pdeathsig, but that is
// Linux-only and tied to the thread that forked, so this poll is the
// portable backstop.
func watchParent(parent int, getppid func() int, every time.Duration, gone func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if getppid() != parent {
			gone()
			return
		}
	}
}
