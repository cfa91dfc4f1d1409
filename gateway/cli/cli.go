// Package cli implements the switchboard command: serve, migrate, apply,
// keys, secrets, plugins, broadcast, status, get, list, deliveries,
// triggers and version. Commands that read or change state open the
// database, or with --url act through a running gateway's admin API.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/buildinfo"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "switchboard:", err)
		return 1
	}
	return 0
}

// globals are the flags every command shares.
type globals struct {
	configPath string
	database   string
	// url and key select a running gateway's admin API instead of the
	// database (remote.go).
	url    string
	key    string
	stdout io.Writer
	stderr io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "Switchboard: a plugin-based chatbot channel gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", "configs/gateway.yaml", "gateway configuration file")
	root.PersistentFlags().StringVar(&g.database, "database", "", "database URL (sqlite://PATH or postgres://…); overrides the config")
	root.PersistentFlags().StringVar(&g.url, "url", "", "a running gateway's URL: act through its admin API, not the database (env "+EnvURL+")")
	root.PersistentFlags().StringVar(&g.key, "key", "", "admin or operator key for --url (env "+EnvAdminKey+")")
	root.AddCommand(
		newServe(g),
		newMigrate(g),
		newApply(g),
		newKeys(g),
		newSecrets(g),
		newPlugins(g),
		newBroadcast(g),
		newDev(g),
		newStatus(g),
		newGet(g),
		newList(g),
		newDeliveries(g),
		newTriggers(g),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "switchboard", buildinfo.Version)
			},
		},
	)
	return root
}

// loadConfig reads the config file and applies the --database flag.
func (g *globals) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return nil, err
	}
	if g.database != "" {
		cfg.Database = g.database
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// openStore opens and migrates the configured store, with the gateway's
// secret keys (see app.OpenStore).
func (g *globals) openStore(ctx context.Context, cfg *config.Config) (*sqlstore.Store, error) {
	return app.OpenStore(ctx, cfg, newLogger(cfg, g.stderr))
}

// newLogger builds the process logger from the config.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
