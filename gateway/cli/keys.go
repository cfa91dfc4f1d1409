package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/auth"
)

func newKeys(g *globals) *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage API keys (on the database, or a gateway with --url)"}
	var (
		channel, name               string
		app, track, admin, operator bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print it once",
		Long: `Create an API key of one scope and print it. Only a hash is stored: the key
cannot be shown again.

  --channel C   CSML-compatible bot APIs of channel C (id or name)
  --app         Customer.io-compatible App API of the workspace
  --track       Customer.io-compatible Track API of the workspace
  --admin       admin API (/admin/v1/) of the workspace
  --operator    instance-wide operator key: creates workspaces, acts in any.
                Not stored anywhere: add the printed SHA-256 digest to
                admin.operator_keys in every node's config.`,
		Args: cobra.NoArgs,
	}
	workspace := workspaceFlag(create)
	output := outputFlag(create)
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		req := adminapi.KeyRequest{Channel: channel, Name: name}
		scopes := 0
		for _, s := range []struct {
			on    bool
			scope string
		}{{channel != "", "channel"}, {app, "app"}, {track, "track"}, {admin, "admin"}, {operator, "operator"}} {
			if s.on {
				scopes++
				req.Scope = s.scope
			}
		}
		if scopes != 1 {
			return errors.New("give exactly one of --channel, --app, --track, --admin, --operator")
		}
		if operator {
			return createOperatorKey(cmd, g, *output)
		}
		return g.withSession(cmd, func(s *session) error {
			ws, err := s.workspace(*workspace)
			if err != nil {
				return err
			}
			k, err := s.CreateKey(cmd.Context(), ws, req)
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), *output, k, func() error {
				fmt.Fprintln(g.stderr, "New", k.Info.Scope, "key", k.Info.ID, "of workspace", k.Info.WorkspaceID, "(shown once; only its hash is stored):")
				fmt.Fprintln(cmd.OutOrStdout(), k.Key)
				return nil
			})
		})
	}
	f := create.Flags()
	f.StringVar(&channel, "channel", "", "channel id or name, for a channel key")
	f.BoolVar(&app, "app", false, "App API key")
	f.BoolVar(&track, "track", false, "Track API key")
	f.BoolVar(&admin, "admin", false, "admin API key")
	f.BoolVar(&operator, "operator", false, "instance-wide operator key (its digest goes into admin.operator_keys)")
	f.StringVar(&name, "name", "", "a label to recognize the key by")
	keys.AddCommand(create, newKeysList(g), newKeysRevoke(g), newKeysRotate(g))
	return keys
}

// createOperatorKey prints a new operator key and the digest the config
// lists; it touches neither the database nor a gateway.
func createOperatorKey(cmd *cobra.Command, g *globals, output string) error {
	raw, digest, err := auth.NewOperatorKey()
	if err != nil {
		return err
	}
	v := struct {
		Key    string `json:"key"`
		Digest string `json:"sha256"`
		Notice string `json:"notice"`
	}{raw, digest, "add sha256 to admin.operator_keys in the gateway config of every node; the key is shown once and stored nowhere"}
	return printOut(cmd.OutOrStdout(), output, v, func() error {
		fmt.Fprintf(g.stderr, "New operator key (shown once, stored nowhere). Add its digest to every node's config:\n  admin:\n    operator_keys: [%s]\n", digest)
		fmt.Fprintln(cmd.OutOrStdout(), raw)
		return nil
	})
}

// keyStatus is the key's state in words, judged at now.
func keyStatus(k adminapi.Key, now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked " + k.RevokedAt.Format(time.RFC3339)
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired " + k.ExpiresAt.Format(time.RFC3339)
	case k.ExpiresAt != nil:
		return "expires " + k.ExpiresAt.Format(time.RFC3339)
	}
	return "active"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newKeysList(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a workspace's API keys (never the keys themselves)",
		Args:  cobra.NoArgs,
	}
	workspace := workspaceFlag(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		return g.withSession(cmd, func(s *session) error {
			ws, err := s.workspace(*workspace)
			if err != nil {
				return err
			}
			keys, err := allPages(func(o adminapi.ListOptions) (adminapi.Page[adminapi.Key], error) {
				return s.ListKeys(cmd.Context(), ws, o)
			})
			if err != nil {
				return err
			}
			if keys == nil {
				keys = []adminapi.Key{}
			}
			return printOut(cmd.OutOrStdout(), *output, keys, func() error {
				now := time.Now()
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCHANNEL\tCREATED\tLAST USED\tSTATUS")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Scope, k.ChannelID,
						k.CreatedAt.Format(time.RFC3339), timeOr(k.LastUsedAt, "never"), keyStatus(k, now))
				}
				return tw.Flush()
			})
		})
	}
	return cmd
}

func newKeysRevoke(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key: every node refuses it from the next request on",
		Args:  cobra.ExactArgs(1),
	}
	workspace := workspaceFlag(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		return g.withSession(cmd, func(s *session) error {
			// On the database a key id alone names the key.
			k, err := s.RevokeKey(cmd.Context(), *workspace, args[0])
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), *output, k, func() error {
				fmt.Fprintf(cmd.OutOrStdout(), "revoked %s key %s (%s) at %s\n", k.Scope, k.ID, k.Name, timeOr(k.RevokedAt, "?"))
				return nil
			})
		})
	}
	return cmd
}

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
	workspace := workspaceFlag(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if grace < 0 {
			return fmt.Errorf("--grace %s: must not be negative", grace)
		}
		return g.withSession(cmd, func(s *session) error {
			r, err := s.RotateKey(cmd.Context(), *workspace, args[0], grace)
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), *output, r, func() error {
				fmt.Fprintf(g.stderr, "New %s key %s (shown once; only its hash is stored). The old key %s works until %s.\n",
					r.New.Scope, r.New.ID, r.Old.ID, timeOr(r.Old.ExpiresAt, "?"))
				fmt.Fprintln(cmd.OutOrStdout(), r.Key)
				return nil
			})
		})
	}
	cmd.Flags().DurationVar(&grace, "grace", adminapi.DefaultKeyGrace, "how long the old key keeps working")
	return cmd
}
