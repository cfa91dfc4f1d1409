package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

func newKeys(g *globals) *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage API keys"}
	var (
		workspace, channel, name string
		app, track, admin        bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print it once",
		Long: `Create an API key of one scope and print it. Only a hash is stored: the key
cannot be shown again.

  --channel C   CSML-compatible bot APIs of channel C (id or name)
  --app         Customer.io-compatible App API of the workspace
  --track       Customer.io-compatible Track API of the workspace
  --admin       native admin API of the workspace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scopes := 0
			scope := store.ScopeChannel
			for _, s := range []struct {
				on    bool
				scope store.Scope
			}{{channel != "", store.ScopeChannel}, {app, store.ScopeApp}, {track, store.ScopeTrack}, {admin, store.ScopeAdmin}} {
				if s.on {
					scopes++
					scope = s.scope
				}
			}
			if scopes != 1 {
				return errors.New("give exactly one of --channel, --app, --track, --admin")
			}
			ctx := cmd.Context()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			st, err := g.openStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.GetWorkspace(ctx, workspace); err != nil {
				return fmt.Errorf("workspace %q: %w", workspace, err)
			}
			channelID := ""
			if scope == store.ScopeChannel {
				ch, err := findChannel(ctx, st, workspace, channel)
				if err != nil {
					return err
				}
				channelID = ch.ID
			}
			raw, key, err := auth.NewKey(workspace, scope, channelID, name, time.Now())
			if err != nil {
				return err
			}
			if err := st.CreateAPIKey(ctx, key); err != nil {
				return fmt.Errorf("store key: %w", err)
			}
			fmt.Fprintln(g.stderr, "New", scope, "key (shown once; only its hash is stored):")
			fmt.Fprintln(cmd.OutOrStdout(), raw)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&workspace, "workspace", "", "workspace id (required)")
	f.StringVar(&channel, "channel", "", "channel id or name, for a channel key")
	f.BoolVar(&app, "app", false, "App API key")
	f.BoolVar(&track, "track", false, "Track API key")
	f.BoolVar(&admin, "admin", false, "admin key")
	f.StringVar(&name, "name", "", "a label to recognize the key by")
	_ = create.MarkFlagRequired("workspace")
	keys.AddCommand(create)
	return keys
}
