package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/bot"
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
			return apply.Apply(cmd.Context(), st, parsed, apply.Options{
				Bots:   CompileBot,
				DryRun: dryRun,
				Out:    cmd.OutOrStdout(),
			})
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "resources file (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate only; write nothing")
	return cmd
}

// CompileBot is apply's bot compiler: package bot decodes the node strictly
// (keeping the file's line numbers), validates and compiles it, and the
// definition is stored as JSON.
func CompileBot(node *yaml.Node) (string, json.RawMessage, error) {
	var b bot.Bot
	if err := node.Decode(&b); err != nil {
		return "", nil, err
	}
	if err := b.Compile(bot.Options{}); err != nil {
		return "", nil, err
	}
	def, err := json.Marshal(&b)
	if err != nil {
		return "", nil, fmt.Errorf("encode bot %s: %w", b.Name, err)
	}
	return b.Name, def, nil
}
