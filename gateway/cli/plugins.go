package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
)

func newPlugins(g *globals) *cobra.Command {
	plugins := &cobra.Command{Use: "plugins", Short: "Inspect channel plugins"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List plugins with version and status",
		Long: `Without --url: discover, verify and start each plugin of the configured
plugins directory once, and list it. With --url: list the plugins as the
gateway node that answers runs them.`,
		Args: cobra.NoArgs,
	}
	workspace := workspaceFlag(list)
	output := outputFlag(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		var plugins []adminapi.Plugin
		if g.remoteURL() != "" {
			err := g.withSession(cmd, func(s *session) error {
				ws, err := s.workspace(*workspace)
				if err != nil {
					return err
				}
				st, err := s.Status(cmd.Context(), ws)
				plugins = st.Plugins
				return err
			})
			if err != nil {
				return err
			}
		} else {
			var err error
			if plugins, err = g.startPlugins(cmd.Context()); err != nil {
				return err
			}
		}
		return printOut(cmd.OutOrStdout(), *output, plugins, func() error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTATUS\tERROR")
			for _, p := range plugins {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Version, p.State, p.Error)
			}
			return tw.Flush()
		})
	}
	plugins.AddCommand(list)
	return plugins
}

// startPlugins starts the configured plugins once and reports them.
func (g *globals) startPlugins(ctx context.Context) ([]adminapi.Plugin, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	h := pluginhost.New(pluginhost.Config{
		Dir:          cfg.Plugins.Dir,
		Env:          app.PluginEnv(cfg),
		StartTimeout: cfg.Plugins.StartTimeout,
		Logger:       newLogger(cfg, g.stderr),
	})
	if err := h.Start(ctx); err != nil {
		return nil, err
	}
	statuses := h.Status()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	h.Stop(stopCtx)
	out := []adminapi.Plugin{}
	for _, p := range statuses {
		out = append(out, adminapi.Plugin{Name: p.Name, Version: p.Version, State: string(p.State), Error: p.LastError, Restarts: p.Restarts})
	}
	return out, nil
}
