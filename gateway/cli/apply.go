package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
)

func newApply(g *globals) *cobra.Command {
	var files []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [-f FILE…]",
		Short: "Create or update workspaces, bots, channels and people from resource files",
		Long: `Create or update the resources described in YAML files (docs/CONFIGURATION.md).
Every file is validated first and every problem reported with its line; then
all of them are written in one transaction, or nothing is.

With --url the files go to the gateway's admin API (POST /admin/v1/apply),
with the values of the ${VAR} references they make taken from this
environment; they must all describe the key's workspace.`,
		Args: cobra.NoArgs,
	}
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("give at least one resources file with -f")
		}
		parsed, err := apply.ReadFiles(files)
		if err != nil {
			return err
		}
		if g.remoteURL() == "" {
			// On the database apply writes every workspace the files
			// describe, printing each change as it is made.
			return g.withSession(cmd, func(s *session) error {
				var out strings.Builder
				opts := apply.Options{Bots: bot.CompileNode, DryRun: dryRun, Out: cmd.OutOrStdout()}
				if *output == "json" {
					opts.Out = &out
				}
				if hasChannels(parsed) {
					// Without the plugins (say, apply run from a machine
					// that has only the binary) channels are stored
					// unchecked, as the gateway's own check comes later.
					v, stop, err := startValidator(cmd.Context(), s.cfg, newLogger(s.cfg, g.stderr))
					if err != nil {
						fmt.Fprintf(g.stderr, "channel configurations are not checked: %v\n", err)
					} else {
						defer stop()
						opts.Channels = v
					}
				}
				if err := apply.Apply(cmd.Context(), s.st, parsed, opts); err != nil || *output == "table" {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), adminapi.ApplyResult{Changes: adminapi.Changes(out.String()), DryRun: dryRun})
			})
		}
		ws := parsed[0].Doc.Workspace.ID
		req := adminapi.ApplyRequest{Env: map[string]string{}}
		for i, f := range parsed {
			if f.Doc.Workspace.ID != ws {
				return fmt.Errorf("%s describes workspace %q and %s %q: with --url apply one workspace per run", files[0], ws, f.Name, f.Doc.Workspace.ID)
			}
			raw, err := os.ReadFile(files[i])
			if err != nil {
				return err
			}
			for _, name := range apply.EnvRefs(raw) {
				if v, ok := os.LookupEnv(name); ok {
					req.Env[name] = v
				}
			}
			req.Documents = append(req.Documents, adminapi.ApplyDocument{Name: f.Name, Content: string(raw)})
		}
		return g.withSession(cmd, func(s *session) error {
			res, err := s.Apply(cmd.Context(), ws, req, dryRun)
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), *output, res, func() error {
				for _, c := range res.Changes {
					fmt.Fprintln(cmd.OutOrStdout(), c)
				}
				if res.DryRun {
					fmt.Fprintln(cmd.OutOrStdout(), apply.DryRunNotice)
				}
				return nil
			})
		})
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

// startValidator starts the plugins of plugins.dir to check channel
// configurations for one apply; stop stops them.
func startValidator(ctx context.Context, cfg *config.Config, log *slog.Logger) (apply.ChannelValidator, func(), error) {
	h := pluginhost.New(pluginhost.Config{Dir: cfg.Plugins.Dir, Env: app.PluginEnv(cfg), StartTimeout: cfg.Plugins.StartTimeout, Logger: log})
	if err := h.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start the plugins to check channel configurations: %w", err)
	}
	stop := func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		h.Stop(stopCtx)
	}
	return app.NewChannelValidator(h, cfg), stop, nil
}
