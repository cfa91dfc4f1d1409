package cli

import (
	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/app"
)

func newServe(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Listen = listen
			}
			log := newLogger(cfg, g.stderr)
			a, err := app.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return a.Run(cmd.Context(), nil)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "listen address; overrides the config")
	return cmd
}
