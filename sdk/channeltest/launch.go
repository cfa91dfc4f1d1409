package channeltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
)

// Serve serves ch with sdk.Serve inside the test process and returns a
// channel that reaches it through go-plugin and gRPC, exactly as the
// gateway would (handshake cookie and process aside). Everything stops when
// the test ends.
func Serve(tb testing.TB, ch sdk.Channel) sdk.Channel {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go sdk.Serve(ch, sdk.WithDebug(ctx, reattach, closed))
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-closed:
		cancel()
		tb.Fatalf("sdk.Serve stopped before serving")
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: grpcplugin.Handshake,
		// With Reattach there is no version negotiation, so go-plugin needs
		// the plugin set itself (hashicorp/go-plugin#310).
		Plugins:          grpcplugin.VersionedPlugins()[sdk.ProtocolVersion],
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  grpcplugin.DialOptions(),
		Logger:           testLogger(tb),
	})
	tb.Cleanup(func() {
		client.Kill()
		cancel()
		<-closed
	})
	return dispense(tb, client)
}

// Launch starts the plugin binary at path as the gateway would (gRPC only,
// automatic mutual TLS, an environment of only env) and returns a channel
// that reaches it. The process is killed when the test ends.
func Launch(tb testing.TB, path string, env ...string) sdk.Channel {
	tb.Helper()
	cmd := exec.Command(path)
	cmd.Env = env
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  grpcplugin.Handshake,
		VersionedPlugins: grpcplugin.VersionedPlugins(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  grpcplugin.DialOptions(),
		AutoMTLS:         true,
		Logger:           testLogger(tb),
	})
	tb.Cleanup(client.Kill)
	return dispense(tb, client)
}

func dispense(tb testing.TB, client *plugin.Client) sdk.Channel {
	tb.Helper()
	rpc, err := client.Client()
	if err != nil {
		tb.Fatalf("connect to plugin: %v", err)
	}
	raw, err := rpc.Dispense(grpcplugin.PluginName)
	if err != nil {
		tb.Fatalf("dispense channel: %v", err)
	}
	return raw.(*grpcplugin.Client)
}

// testLogger sends go-plugin's and the plugin's logs to the test log at
// Info and above, so they show up only for failing tests.
func testLogger(tb testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Info, Output: tbWriter{tb}})
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Logf("%s", p)
	return len(p), nil
}

// BuildPlugin compiles the plugin main package pkg (an import path, e.g.
// "github.com/switchboard-gw/switchboard/plugins/webhook") to out. It takes
// no testing.TB so a TestMain can build once for all its tests.
func BuildPlugin(pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}
