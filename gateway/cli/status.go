package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
)

func newStatus(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show nodes, plugins, channel health and outbox depth",
		Long: `Show the gateway nodes sharing the database (with whether their lease is
live), the plugins and channel health as the answering node sees them (with
--url; on the database no plugins run), and the workspace's pending
deliveries by channel and status with the age of the oldest.`,
		Args: cobra.NoArgs,
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
			st, err := s.Status(cmd.Context(), ws)
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), *output, st, func() error { return printStatus(cmd.OutOrStdout(), st) })
		})
	}
	return cmd
}

func printStatus(w io.Writer, st adminapi.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTARTED\tLEASE UNTIL\tSTATE")
	for _, n := range st.Nodes {
		state := "live"
		if !n.Live {
			state = "expired (its claims go to the other nodes)"
		}
		if n.ID == st.Node {
			state += ", answered this"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.ID, n.StartedAt.Format(time.RFC3339), n.LeaseUntil.Format(time.RFC3339), state)
	}
	fmt.Fprintln(tw)
	if st.Node == "" {
		fmt.Fprintln(tw, "PLUGINS\t(none run here: give --url to see a node's)")
	} else {
		fmt.Fprintf(tw, "PLUGIN (on %s)\tVERSION\tSTATE\tRESTARTS\tERROR\n", st.Node)
		for _, p := range st.Plugins {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.Name, p.Version, p.State, p.Restarts, p.Error)
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CHANNEL\tNAME\tTYPE\tENABLED\tHEALTH")
	for _, c := range st.Channels {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", c.ID, c.Name, c.Type, c.Enabled, healthWords(c.Health))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "QUEUE CHANNEL\tSTATUS\tCOUNT\tOLDEST AGE")
	if len(st.Queue) == 0 {
		fmt.Fprintln(tw, "(empty)\t\t\t")
	}
	for _, q := range st.Queue {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", q.ChannelID, q.Status, q.Count, (time.Duration(q.AgeSeconds) * time.Second).String())
	}
	return tw.Flush()
}

func healthWords(h *adminapi.ChannelHealth) string {
	switch {
	case h == nil:
		return "unknown (no plugins run here)"
	case h.Healthy:
		return "healthy (" + h.PluginState + ")"
	case h.Reason != "":
		return "unhealthy (" + h.PluginState + "): " + h.Reason
	}
	return "unhealthy (" + h.PluginState + ")"
}
