package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

func newSecrets(g *globals) *cobra.Command {
	sec := &cobra.Command{Use: "secrets", Short: "Manage the sealing of secrets at rest"}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Seal every channel and bot secret again under the current secret key",
		Long: `Seal every channel secret and bot call secret under the current secret key
(SWITCHBOARD_SECRET_KEY or secret_key), in one transaction, and print what
was re-sealed. Values sealed under an earlier key open when that key is
given in SWITCHBOARD_SECRET_KEY_PREVIOUS or secret_keys_previous; plaintext
from before sealing is sealed too. When it succeeds, the previous keys are
no longer needed. See docs/CONFIGURATION.md for the whole procedure.`,
		Args: cobra.NoArgs,
	}
	output := outputFlag(rotate)
	rotate.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		return g.withStore(cmd, func(st *sqlstore.Store) error {
			rep, err := st.ResealSecrets(cmd.Context(), false)
			if err != nil {
				return err
			}
			if *output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{
					"key_id": st.SecretKeyID(), "channel_secrets": rep.ChannelSecrets, "bot_secrets": rep.BotSecrets,
					"plaintext": rep.Plaintext, "already_current": rep.Current,
				})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-sealed under key %s: %d channel secrets, %d bot call secrets (%d of them were plaintext); %d already under it\n",
				st.SecretKeyID(), rep.ChannelSecrets, rep.BotSecrets, rep.Plaintext, rep.Current)
			return nil
		})
	}
	sec.AddCommand(rotate)
	return sec
}
