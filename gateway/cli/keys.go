package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
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
	keys.AddCommand(create, newKeysList(g), newKeysRevoke(g), newKeysRotate(g))
	return keys
}

// keyView is how the keys commands show a key: never the key or its hash.
type keyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Workspace  string     `json:"workspace_id"`
	Scope      string     `json:"scope"`
	ChannelID  string     `json:"channel_id,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

func viewKey(k store.APIKey) keyView {
	return keyView{ID: k.ID, Name: k.Name, Workspace: k.WorkspaceID, Scope: string(k.Scope), ChannelID: k.ChannelID,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt, ExpiresAt: k.ExpiresAt}
}

// status is the key's state in words, judged at now.
func (v keyView) status(now time.Time) string {
	switch {
	case v.RevokedAt != nil:
		return "revoked " + v.RevokedAt.Format(time.RFC3339)
	case v.ExpiresAt != nil && !now.Before(*v.ExpiresAt):
		return "expired " + v.ExpiresAt.Format(time.RFC3339)
	case v.ExpiresAt != nil:
		return "expires " + v.ExpiresAt.Format(time.RFC3339)
	}
	return "active"
}

// outputFlag adds -o/--output (table or json) to cmd.
func outputFlag(cmd *cobra.Command) *string {
	var o string
	cmd.Flags().StringVarP(&o, "output", "o", "table", "output format: table or json")
	return &o
}

func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return fmt.Errorf("--output %q: want table or json", o)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withStore runs fn on the configured store.
func (g *globals) withStore(cmd *cobra.Command, fn func(st *sqlstore.Store) error) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	st, err := g.openStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

func newKeysList(g *globals) *cobra.Command {
	var workspace string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a workspace's API keys (never the keys themselves)",
		Args:  cobra.NoArgs,
	}
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		return g.withStore(cmd, func(st *sqlstore.Store) error {
			ctx := cmd.Context()
			if _, err := st.GetWorkspace(ctx, workspace); err != nil {
				return fmt.Errorf("workspace %q: %w", workspace, err)
			}
			keys, err := st.ListAPIKeys(ctx, workspace)
			if err != nil {
				return err
			}
			views := make([]keyView, 0, len(keys))
			for _, k := range keys {
				views = append(views, viewKey(k))
			}
			if *output == "json" {
				return writeJSON(cmd.OutOrStdout(), views)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCHANNEL\tCREATED\tLAST USED\tSTATUS")
			for _, v := range views {
				used := "never"
				if v.LastUsedAt != nil {
					used = v.LastUsedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Scope, v.ChannelID,
					v.CreatedAt.Format(time.RFC3339), used, v.status(now))
			}
			return tw.Flush()
		})
	}
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace id (required)")
	_ = cmd.MarkFlagRequired("workspace")
	return cmd
}

// getKey finds a key by id for the keys commands.
func getKey(ctx context.Context, st store.Tenancy, id string) (store.APIKey, error) {
	k, err := st.GetAPIKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return k, fmt.Errorf("no API key %q (see keys list --workspace W)", id)
	}
	return k, err
}

func newKeysRevoke(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key: every node refuses it from the next request on",
		Args:  cobra.ExactArgs(1),
	}
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		return g.withStore(cmd, func(st *sqlstore.Store) error {
			ctx := cmd.Context()
			k, err := getKey(ctx, st, args[0])
			if err != nil {
				return err
			}
			if err := st.RevokeAPIKey(ctx, k.WorkspaceID, k.ID); err != nil {
				return err
			}
			if k, err = st.GetAPIKey(ctx, k.ID); err != nil {
				return err
			}
			if *output == "json" {
				return writeJSON(cmd.OutOrStdout(), viewKey(k))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s key %s (%s) at %s\n", k.Scope, k.ID, k.Name, k.RevokedAt.Format(time.RFC3339))
			return nil
		})
	}
	return cmd
}

// DefaultKeyGrace is how long a rotated key keeps working by default: time
// to deploy the new key everywhere the old one is used.
const DefaultKeyGrace = 24 * time.Hour

func newKeysRotate(g *globals) *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "rotate ID",
		Short: "Replace an API key: print a new key of the same scope; the old one keeps working for --grace",
		Long: `Create a new key with the old key's workspace, scope, channel and name, print
it once, and make the old key stop working after the grace period (default
24h; 0 stops it at once). An earlier expiry of the old key is kept.`,
		Args: cobra.ExactArgs(1),
	}
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if grace < 0 {
			return fmt.Errorf("--grace %s: must not be negative", grace)
		}
		return g.withStore(cmd, func(st *sqlstore.Store) error {
			ctx := cmd.Context()
			var raw string
			var old, fresh store.APIKey
			err := st.WithTx(ctx, func(tx store.Store) error {
				var err error
				now := time.Now()
				if old, err = getKey(ctx, tx, args[0]); err != nil {
					return err
				}
				if old.RevokedAt != nil {
					return fmt.Errorf("key %s is revoked; make a new one with keys create", old.ID)
				}
				if old.ExpiresAt != nil && !now.Before(*old.ExpiresAt) {
					return fmt.Errorf("key %s expired at %s; make a new one with keys create", old.ID, old.ExpiresAt.Format(time.RFC3339))
				}
				if raw, fresh, err = auth.NewKey(old.WorkspaceID, old.Scope, old.ChannelID, old.Name, now); err != nil {
					return err
				}
				if err := tx.CreateAPIKey(ctx, fresh); err != nil {
					return fmt.Errorf("store key: %w", err)
				}
				if err := tx.ExpireAPIKey(ctx, old.WorkspaceID, old.ID, now.Add(grace)); err != nil {
					return err
				}
				old, err = tx.GetAPIKey(ctx, old.ID)
				return err
			})
			if err != nil {
				return err
			}
			if *output == "json" {
				return writeJSON(cmd.OutOrStdout(), struct {
					Key    string  `json:"key"`
					New    keyView `json:"new"`
					Old    keyView `json:"old"`
					Notice string  `json:"notice"`
				}{raw, viewKey(fresh), viewKey(old), "the key is shown once; only its hash is stored"})
			}
			fmt.Fprintf(g.stderr, "New %s key %s (shown once; only its hash is stored). The old key %s works until %s.\n",
				fresh.Scope, fresh.ID, old.ID, old.ExpiresAt.Format(time.RFC3339))
			fmt.Fprintln(cmd.OutOrStdout(), raw)
			return nil
		})
	}
	cmd.Flags().DurationVar(&grace, "grace", DefaultKeyGrace, "how long the old key keeps working")
	return cmd
}
