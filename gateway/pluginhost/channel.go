package pluginhost

import (
	"bytes"
	"context"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
)

// channel is the sdk.Channel Host.Channel returns: each call goes to the
// process running at that moment.
type channel struct {
	s *supervisor
}

var (
	_ sdk.Channel         = (*channel)(nil)
	_ sdk.HealthChecker   = (*channel)(nil)
	_ sdk.ConfigValidator = (*channel)(nil)
)

// call runs fn against the running plugin. A call cut off because the
// process died (codes.Unavailable) is reported like a plugin that was
// already down, so callers branch on ErrPluginDown alone.
func call[T any](ctx context.Context, c *channel, fn func(*grpcplugin.Client) (T, error)) (T, error) {
	ch, err := c.s.current()
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := fn(ch)
	return v, pluginDown(ctx, c.s.name, err)
}

// pluginDown turns a call's error into an *UnavailableError (ErrPluginDown)
// when it says the process went away rather than what the plugin answered:
// the connection is unavailable, or it was closed under a call its caller
// did not cancel (the host closes the client of a process that exited).
func pluginDown(ctx context.Context, plugin string, err error) error {
	switch status.Code(err) {
	case codes.Unavailable:
	case codes.Canceled:
		if ctx.Err() != nil {
			return err
		}
	default:
		return err
	}
	return &UnavailableError{Plugin: plugin, State: StateRestarting, Reason: err.Error()}
}

func (c *channel) Describe(ctx context.Context) (sdk.Description, error) {
	return call(ctx, c, func(ch *grpcplugin.Client) (sdk.Description, error) { return ch.Describe(ctx) })
}

func (c *channel) Configure(ctx context.Context, cfg sdk.InstanceConfig) error {
	_, err := call(ctx, c, func(ch *grpcplugin.Client) (struct{}, error) {
		err := ch.Configure(ctx, cfg)
		c.s.setInstance(cfg.ChannelID, err)
		return struct{}{}, err
	})
	return err
}

// ValidateConfig checks cfg without installing it; a plugin built
// against an sdk without the RPC answers grpcplugin.ErrCannotValidate.
func (c *channel) ValidateConfig(ctx context.Context, cfg sdk.InstanceConfig) error {
	_, err := call(ctx, c, func(ch *grpcplugin.Client) (struct{}, error) { return struct{}{}, ch.ValidateConfig(ctx, cfg) })
	return err
}

func (c *channel) HandleHTTP(ctx context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	return call(ctx, c, func(ch *grpcplugin.Client) (*sdk.HTTPResponse, error) { return ch.HandleHTTP(ctx, req) })
}

func (c *channel) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	return call(ctx, c, func(ch *grpcplugin.Client) ([]sdk.SendResult, error) { return ch.Send(ctx, batch) })
}

func (c *channel) CheckHealth(ctx context.Context, channelID string) (sdk.Health, error) {
	return call(ctx, c, func(ch *grpcplugin.Client) (sdk.Health, error) { return ch.CheckHealth(ctx, channelID) })
}

// maxLogLine matches go-plugin's stderr line buffer.
const maxLogLine = 64 << 10

// lineLogger logs each line written to it. go-plugin forwards a plugin's
// post-handshake stdout and stderr in arbitrary chunks, so partial lines are
// kept until their newline arrives.
type lineLogger struct {
	log   *slog.Logger
	level slog.Level
	msg   string

	mu      sync.Mutex
	partial []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimSpace(l.partial[:i]); len(line) > 0 {
			l.log.Log(context.Background(), l.level, l.msg, "line", string(line))
		}
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > maxLogLine { // a runaway line without newline
		l.log.Log(context.Background(), l.level, l.msg, "line", string(l.partial))
		l.partial = nil
	}
	return len(p), nil
}
