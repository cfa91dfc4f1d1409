package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/webchat"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
)

func newApply(g *globals) *cobra.Command {
	var files []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [-f FILE…]",
		Short: "Create or update workspaces, bots, channels and people from resource files",
		Long: `Create or update the resources described in YAML files (docs/CONFIGURATION.md).
Every file is validated first and every problem reported with its line; then
all of them are written in one transaction, or nothing is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("give at least one resources file with -f")
			}
			parsed, err := apply.ReadFiles(files)
			if err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			st, err := g.openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			opts := apply.Options{Bots: bot.CompileNode, DryRun: dryRun, Out: cmd.OutOrStdout()}
			if hasChannels(parsed) {
				// Without the plugins (say, apply run from a machine
				// that has only the binary) channels are stored
				// unchecked, as the gateway's own check comes later.
				v, stop, err := startValidator(cmd.Context(), cfg, newLogger(cfg, g.stderr))
				if err != nil {
					fmt.Fprintf(g.stderr, "channel configurations are not checked: %v\n", err)
				} else {
					defer stop()
					opts.Channels = v
				}
			}
			return apply.Apply(cmd.Context(), st, parsed, opts)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "resources file (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate only; write nothing")
	return cmd
}

func hasChannels(files []apply.File) bool {
	for _, f := range files {
		if len(f.Doc.Channels) > 0 {
			return true
		}
	}
	return false
}

// pluginValidator checks channel configurations with the plugins of
// plugins.dir, started for one apply and stopped after it.
type pluginValidator struct {
	host *pluginhost.Host
	cfg  *config.Config
}

func startValidator(ctx context.Context, cfg *config.Config, log *slog.Logger) (*pluginValidator, func(), error) {
	h := pluginhost.New(pluginhost.Config{Dir: cfg.Plugins.Dir, Env: app.PluginEnv(cfg), StartTimeout: cfg.Plugins.StartTimeout, Logger: log})
	if err := h.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start the plugins to check channel configurations: %w", err)
	}
	stop := func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		h.Stop(stopCtx)
	}
	return &pluginValidator{host: h, cfg: cfg}, stop, nil
}

// ValidateChannel implements apply.ChannelValidator with the instance
// configuration the gateway would give the plugin (app.instanceConfig).
func (v *pluginValidator) ValidateChannel(ctx context.Context, ch store.Channel, secrets map[string]string) error {
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
