package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
)

func newDeliveries(g *globals) *cobra.Command {
	d := &cobra.Command{Use: "deliveries", Short: "Follow deliveries (list and get: see list deliveries, get delivery)"}
	d.AddCommand(newDeliveriesTail(g))
	return d
}

func newTriggers(g *globals) *cobra.Command {
	t := &cobra.Command{Use: "triggers", Short: "Inspect broadcast triggers (list: see list triggers)"}
	var (
		wait    bool
		timeout time.Duration
	)
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a trigger's funnel (matched, sent, delivered, failed and skipped by reason), per action, and its errors",
		Args:  cobra.ExactArgs(1),
	}
	workspace := workspaceFlag(show)
	output := outputFlag(show)
	show.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		id, err := parseID("trigger", args[0])
		if err != nil {
			return err
		}
		return g.withSession(cmd, func(s *session) error {
			ws, err := s.workspace(*workspace)
			if err != nil {
				return err
			}
			if wait {
				if err := followTrigger(cmd.Context(), s, ws, id, timeout, &globals{stdout: io.Discard, stderr: g.stderr}, "table"); err != nil {
					return err
				}
			}
			tr, err := s.GetTrigger(cmd.Context(), ws, id)
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), *output, tr, func() error { printTrigger(cmd.OutOrStdout(), tr); return nil })
		})
	}
	show.Flags().BoolVar(&wait, "wait", false, "show progress until every delivery is final, then the trigger")
	show.Flags().DurationVar(&timeout, "timeout", time.Hour, "with --wait, give up after this long")
	t.AddCommand(show)
	return t
}

// tailPages bounds one poll's reading: a delivery pending for so long that
// more than this many pages came after it stops being followed.
const tailPages = 5

// final reports whether a delivery status can no longer change (sent may
// still become delivered or failed on a platform receipt).
func final(status string) bool {
	return status == "delivered" || status == "failed" || status == "skipped"
}

func newDeliveriesTail(g *globals) *cobra.Command {
	var (
		channel, person string
		from            int64
		interval        time.Duration
		maxOutcomes     int
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow deliveries as they are made and their outcomes come in (polling)",
		Long: `Print each delivery made from now on (or after delivery --from), then a line
each time its status changes — retrying, sent, delivered, failed (with the
reason), skipped — until it is final. Polls every --interval; stops after
--max outcomes (sent, delivered, failed or skipped lines) when given, or on
Ctrl-C. -o json prints one JSON object per line.`,
		Args: cobra.NoArgs,
	}
	workspace := workspaceFlag(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if interval <= 0 {
			return fmt.Errorf("--interval %s: must be positive", interval)
		}
		ctx := cmd.Context()
		return g.withSession(cmd, func(s *session) error {
			ws, err := s.workspace(*workspace)
			if err != nil {
				return err
			}
			q := adminapi.DeliveryQuery{ChannelID: channel, PersonID: person, ListOptions: adminapi.ListOptions{Limit: 500}}
			floor := from
			if floor == 0 {
				newest, err := s.ListDeliveries(ctx, ws, adminapi.DeliveryQuery{ChannelID: channel, PersonID: person, ListOptions: adminapi.ListOptions{Limit: 1}})
				if err != nil {
					return err
				}
				if len(newest.Data) > 0 {
					floor = newest.Data[0].ID
				}
			}
			t := &tail{out: cmd.OutOrStdout(), json: *output == "json", seen: map[int64]string{}, max: maxOutcomes}
			if !t.json {
				fmt.Fprintf(g.stderr, "following deliveries after %d of workspace %s (Ctrl-C to stop)\n", floor, orKeys(ws))
			}
			for {
				if floor, err = t.poll(ctx, s, ws, q, floor); err != nil {
					return err
				}
				if t.done() {
					return nil
				}
				select {
				case <-ctx.Done():
					if errors.Is(ctx.Err(), context.Canceled) {
						return nil
					}
					return ctx.Err()
				case <-time.After(interval):
				}
			}
		})
	}
	f := cmd.Flags()
	f.StringVar(&channel, "channel", "", "only this channel's deliveries (id)")
	f.StringVar(&person, "person", "", "only this person's deliveries")
	f.Int64Var(&from, "from", 0, "follow deliveries after this id (default: the newest now)")
	f.DurationVar(&interval, "interval", time.Second, "how often to poll")
	f.IntVar(&maxOutcomes, "max", 0, "stop after this many outcomes (0: never)")
	return cmd
}

func orKeys(ws string) string {
	if ws == "" {
		return "(the key's)"
	}
	return ws
}

// tail remembers what it printed of each delivery it follows.
type tail struct {
	out  io.Writer
	json bool
	// seen is the status last printed of each delivery above the floor:
	// a final one is skipped when read again, a pending one printed when
	// it changes.
	seen     map[int64]string
	outcomes int
	max      int
}

func (t *tail) done() bool { return t.max > 0 && t.outcomes >= t.max }

// poll reads the deliveries after floor and prints what changed; it
// returns the next floor: just below the oldest delivery still followed.
func (t *tail) poll(ctx context.Context, s *session, ws string, q adminapi.DeliveryQuery, floor int64) (int64, error) {
	q.After = floor
	last, firstPage, more := floor, floor, false
	for i := range tailPages {
		p, err := s.ListDeliveries(ctx, ws, q)
		if err != nil {
			return floor, err
		}
		for _, d := range p.Data {
			last = d.ID
			if before, ok := t.seen[d.ID]; ok && before == d.Status {
				continue
			}
			if err := t.print(d); err != nil {
				return floor, err
			}
			if t.done() {
				return last, nil
			}
		}
		if i == 0 {
			firstPage = last
		}
		if more = p.Next != ""; !more {
			break
		}
		q.Cursor = p.Next
	}
	next := last
	for id, status := range t.seen {
		switch {
		case final(status), id > last:
		case more && id <= firstPage:
			// So many deliveries came after it that following it would
			// stall the tail: let it go.
			delete(t.seen, id)
		default:
			next = min(next, id-1)
		}
	}
	// What is at or below the next floor is never read again.
	for id := range t.seen {
		if id <= next {
			delete(t.seen, id)
		}
	}
	return next, nil
}

func (t *tail) print(d adminapi.Delivery) error {
	t.seen[d.ID] = d.Status
	if final(d.Status) || d.Status == "sent" {
		t.outcomes++
	}
	if t.json {
		return writeJSONLine(t.out, d)
	}
	line := fmt.Sprintf("%s  delivery %d  %s → %s  %s", d.UpdatedAt.Format(time.RFC3339), d.ID, d.ChannelID, d.Recipient, d.Status)
	if d.Reason != "" {
		line += " (" + d.Reason + ")"
	}
	if d.Status == "retrying" && d.LastError != "" {
		line += ": " + d.LastError + ", attempt " + strconv.Itoa(d.Attempts)
	}
	_, err := fmt.Fprintln(t.out, line)
	return err
}
