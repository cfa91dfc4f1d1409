package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/webchat"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
)

// ChannelValidator checks channel configurations with the plugins of a
// host before apply writes them: `switchboard apply` starts one for the
// run, a node's admin API uses its own running plugins.
type ChannelValidator struct {
	host *pluginhost.Host
	cfg  *config.Config
}

// NewChannelValidator validates with host's plugins, giving them the
// instance configuration this gateway would (instanceConfig).
func NewChannelValidator(host *pluginhost.Host, cfg *config.Config) *ChannelValidator {
	return &ChannelValidator{host: host, cfg: cfg}
}

// ValidateChannel implements apply.ChannelValidator with the instance
// configuration the gateway would give the plugin (app.instanceConfig).
func (v *ChannelValidator) ValidateChannel(ctx context.Context, ch store.Channel, secrets map[string]string) error {
	c, err := v.host.Channel(ch.Type)
	if errors.Is(err, pluginhost.ErrUnknownPlugin) {
		return fmt.Errorf("%w: there is no %s plugin in %s", apply.ErrNotValidated, ch.Type, v.cfg.Plugins.Dir)
	}
	if err != nil {
		return fmt.Errorf("%w: the %s plugin does not run: %v", apply.ErrNotValidated, ch.Type, err)
	}
	id := ch.ID
	if id == "" {
		id = ch.Name // the id is generated when the channel is written
	}
	if d, ok := v.host.Describe(ch.Type); ok && d.Capabilities.Websocket {
		secrets = webchat.WithSessionKey(v.cfg.SecretKey, id, secrets)
	}
	err = c.(sdk.ConfigValidator).ValidateConfig(ctx, sdk.InstanceConfig{ChannelID: id,
		WebhookURL: v.cfg.PublicURL + "/channels/" + id + "/webhook", Config: ch.Config, Secrets: secrets})
	if errors.Is(err, grpcplugin.ErrCannotValidate) {
		return fmt.Errorf("%w: the %s plugin cannot check it (built with an older sdk)", apply.ErrNotValidated, ch.Type)
	}
	return err
}
