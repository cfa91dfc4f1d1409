package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
)

func newPlugins(g *globals) *cobra.Command {
	plugins := &cobra.Command{Use: "plugins", Short: "Inspect channel plugins"}
	plugins.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Discover, verify and start each plugin once, and list it with its version and status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			h := pluginhost.New(pluginhost.Config{
				Dir:          cfg.Plugins.Dir,
				Env:          app.PluginEnv(cfg),
				StartTimeout: cfg.Plugins.StartTimeout,
				Logger:       newLogger(cfg, g.stderr),
			})
			if err := h.Start(cmd.Context()); err != nil {
				return err
			}
			statuses := h.Status()
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Second)
			defer cancel()
			h.Stop(stopCtx)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTATUS\tERROR")
			for _, p := range statuses {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Version, p.State, p.LastError)
			}
			return tw.Flush()
		},
	})
	return plugins
}
