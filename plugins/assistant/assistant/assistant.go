package assistant

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Name is the plugin's name; Version its version.
const (
	Name    = "assistant"
	Version = "1.0.0"
)

// Options configure the plugin process.
type Options struct {
	// Now is the clock for frames without a receive time. Defaults to
	// time.Now.
	Now func() time.Time
}

// Channel is the web chat channel. Create it with New.
type Channel struct {
	opts Options

	mu        sync.RWMutex
	instances map[string]*instance
}

var (
	_ sdk.Channel       = (*Channel)(nil)
	_ sdk.SocketChannel = (*Channel)(nil)
)

// New returns a Channel with no instances configured.
func New(opts Options) *Channel {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Channel{opts: opts, instances: map[string]*instance{}}
}

// Describe implements sdk.Channel. The widget renders every content type;
// deliveries are confirmed by the client's acks.
func (c *Channel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:            Name,
		Version:         Version,
		ProtocolVersion: sdk.ProtocolVersion,
		Capabilities: sdk.Capabilities{
			Buttons:          true,
			QuickReplies:     true,
			Images:           true,
			Files:            true,
			Cards:            true,
			Carousel:         true,
			Typing:           true,
			MaxTextLength:    message.MaxTextBytes,
			DeliveryReceipts: true,
			Websocket:        true,
		},
		ConfigSchema: []byte(configSchema),
	}, nil
}

// Configure implements sdk.Channel.
func (c *Channel) Configure(_ context.Context, cfg sdk.InstanceConfig) error {
	in, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.instances[cfg.ChannelID] = in
	c.mu.Unlock()
	return nil
}

// ValidateConfig implements sdk.ConfigValidator: Configure's checks,
// nothing installed.
func (c *Channel) ValidateConfig(_ context.Context, cfg sdk.InstanceConfig) error {
	_, err := parseConfig(cfg)
	return err
}

func (c *Channel) instance(channelID string) (*instance, error) {
	c.mu.RLock()
	in, ok := c.instances[channelID]
	c.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("assistant: channel %q is not configured", channelID)
	}
	return in, nil
}

// HandleHTTP implements sdk.Channel. Web chat has no platform calling a
// webhook: clients connect to the websocket instead.
func (c *Channel) HandleHTTP(_ context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	return &sdk.HTTPResponse{
		Status: http.StatusNotFound,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body: encode(map[string]any{"errors": []map[string]string{{"status": "404", "code": "no_webhook",
			"detail": "the assistant channel has no webhook; clients connect to /channels/" + req.ChannelID + "/ws"}}}),
	}, nil
}

// Send implements sdk.Channel. The gateway writes web chat messages to its
// websockets after RenderOutbound and never calls Send for them; a gateway
// that cannot (no websocket support) gets a permanent error rather than a
// silent drop.
func (c *Channel) Send(_ context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	out := make([]sdk.SendResult, len(batch))
	for i, m := range batch {
		out[i] = sdk.SendResult{IdempotencyKey: m.IdempotencyKey,
			Err: sdk.Permanent("websocket_only", "assistant messages are delivered over the gateway's websocket")}
	}
	return out, nil
}
