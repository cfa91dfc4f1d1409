package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
)

// listFlags are `list`'s paging and filters; each kind takes the filters
// its resource has.
type listFlags struct {
	limit                                 int
	cursor                                string
	all                                   bool
	channel, user, status, reason, person string
	since, until                          string
	broadcast                             int64
	// Parsed and derived from the above.
	sinceT, untilT time.Time
	listOpts       adminapi.ListOptions
	output         string
	stdout         io.Writer
}

// kind is one resource `get` and `list` know.
type kind struct {
	names   []string // plural first
	filters []string // list filters it takes
	list    func(ctx context.Context, s *session, ws string, f *listFlags) error
	get     func(ctx context.Context, s *session, ws, id string, output string, w io.Writer) error
}

// listOf makes a kind's list: one page (or --all), as a table or the page
// as JSON.
func listOf[T any](fetch func(ctx context.Context, s *session, ws string, f *listFlags, o adminapi.ListOptions) (adminapi.Page[T], error),
	header string, row func(T) string) func(ctx context.Context, s *session, ws string, f *listFlags) error {
	return func(ctx context.Context, s *session, ws string, f *listFlags) error {
		var page adminapi.Page[T]
		if f.all {
			items, err := allPages(func(o adminapi.ListOptions) (adminapi.Page[T], error) { return fetch(ctx, s, ws, f, o) })
			if err != nil {
				return err
			}
			page.Data = items
		} else {
			var err error
			if page, err = fetch(ctx, s, ws, f, f.listOpts); err != nil {
				return err
			}
		}
		if page.Data == nil {
			page.Data = []T{}
		}
		return printOut(f.stdout, f.output, page, func() error {
			tw := tabwriter.NewWriter(f.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, header)
			for _, v := range page.Data {
				fmt.Fprintln(tw, row(v))
			}
			if page.Next != "" {
				fmt.Fprintf(tw, "(more: --cursor %s, or --all)\n", page.Next)
			}
			return tw.Flush()
		})
	}
}

// getOf makes a kind's get: the object as JSON, or detail as text.
func getOf[T any](fetch func(ctx context.Context, s *session, ws, id string) (T, error), detail func(io.Writer, T)) func(ctx context.Context, s *session, ws, id, output string, w io.Writer) error {
	return func(ctx context.Context, s *session, ws, id, output string, w io.Writer) error {
		v, err := fetch(ctx, s, ws, id)
		if err != nil {
			return err
		}
		return printOut(w, output, v, func() error { detail(w, v); return nil })
	}
}

func parseID(kind, id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s id %q: want a positive integer", kind, id)
	}
	return n, nil
}

func tabs(fields ...string) string { return strings.Join(fields, "\t") }

func kinds() []kind {
	return []kind{
		{names: []string{"workspaces", "workspace", "ws"},
			list: listOf(func(ctx context.Context, s *session, _ string, _ *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Workspace], error) {
				return s.ListWorkspaces(ctx, o)
			}, "ID\tNAME\tCREATED", func(w adminapi.Workspace) string {
				return tabs(w.ID, w.Name, w.CreatedAt.Format(time.RFC3339))
			})},
		{names: []string{"bots", "bot"},
			list: listOf(func(ctx context.Context, s *session, ws string, _ *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Bot], error) {
				return s.ListBots(ctx, ws, o)
			}, "ID\tNAME\tFLOWS\tUPDATED", botRow),
			get: getOf(func(ctx context.Context, s *session, ws, id string) (adminapi.Bot, error) {
				return s.GetBot(ctx, ws, id)
			},
				func(w io.Writer, b adminapi.Bot) { fmt.Fprintln(w, botRow(b)) })},
		{names: []string{"channels", "channel", "ch"},
			list: listOf(func(ctx context.Context, s *session, ws string, _ *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Channel], error) {
				return s.ListChannels(ctx, ws, o)
			}, "ID\tNAME\tTYPE\tENABLED\tHEALTH", channelRow),
			get: getOf(func(ctx context.Context, s *session, ws, id string) (adminapi.Channel, error) {
				return s.GetChannel(ctx, ws, id)
			},
				func(w io.Writer, c adminapi.Channel) {
					fmt.Fprintf(w, "channel %s (%s), type %s, bot %s, enabled %t\nhealth: %s\nconfig: %s\n",
						c.ID, c.Name, c.Type, c.BotID, c.Enabled, healthWords(c.Health), c.Config)
				})},
		{names: []string{"people", "person"},
			list: listOf(func(ctx context.Context, s *session, ws string, _ *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Person], error) {
				return s.ListPeople(ctx, ws, o)
			}, "ID\tEMAIL\tATTRIBUTES\tUPDATED", func(p adminapi.Person) string {
				return tabs(p.ID, p.Email, strconv.Itoa(len(p.Attributes)), p.UpdatedAt.Format(time.RFC3339))
			}),
			get: getOf(func(ctx context.Context, s *session, ws, id string) (adminapi.Person, error) {
				return s.GetPerson(ctx, ws, id)
			},
				func(w io.Writer, p adminapi.Person) {
					fmt.Fprintf(w, "person %s <%s>, updated %s\n", p.ID, p.Email, p.UpdatedAt.Format(time.RFC3339))
					keys := make([]string, 0, len(p.Attributes))
					for k := range p.Attributes {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						fmt.Fprintf(w, "  %s: %v\n", k, p.Attributes[k])
					}
					for _, i := range p.Identities {
						fmt.Fprintf(w, "  on %s: %s\n", i.ChannelID, i.Address)
					}
				})},
		{names: []string{"conversations", "conversation", "conv"}, filters: []string{"channel", "user", "status"},
			list: listOf(func(ctx context.Context, s *session, ws string, f *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Conversation], error) {
				return s.ListConversations(ctx, ws, adminapi.ConversationQuery{ListOptions: o, ChannelID: f.channel, UserID: f.user, Status: f.status})
			}, "ID\tCHANNEL\tUSER\tSTATUS\tFLOW\tSTEP\tLAST INTERACTION", conversationRow),
			get: getOf(func(ctx context.Context, s *session, ws, id string) (adminapi.Conversation, error) {
				return s.GetConversation(ctx, ws, id)
			}, func(w io.Writer, c adminapi.Conversation) {
				fmt.Fprintf(w, "conversation %s: %s, channel %s, user %s, at %s/%s\n", c.ID, c.Status, c.ChannelID, c.UserID, c.FlowID, c.StepID)
				for _, m := range c.Messages {
					line := fmt.Sprintf("  %s %-3s %s", m.CreatedAt.Format(time.RFC3339), m.Direction, m.Content.Text)
					if d := m.Delivery; d != nil {
						line += fmt.Sprintf("  [delivery %d %s", d.ID, d.Status)
						if d.Reason != "" {
							line += " (" + d.Reason + ")"
						}
						line += "]"
					}
					fmt.Fprintln(w, line)
				}
			})},
		{names: []string{"deliveries", "delivery"}, filters: []string{"channel", "person", "status", "reason", "since", "until"},
			list: listOf(func(ctx context.Context, s *session, ws string, f *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Delivery], error) {
				return s.ListDeliveries(ctx, ws, adminapi.DeliveryQuery{ListOptions: o, Status: f.status, Reason: f.reason,
					ChannelID: f.channel, PersonID: f.person, Since: f.sinceT, Until: f.untilT})
			}, deliveryHeader, deliveryRow),
			get: getOf(func(ctx context.Context, s *session, ws, id string) (adminapi.Delivery, error) {
				n, err := parseID("delivery", id)
				if err != nil {
					return adminapi.Delivery{}, err
				}
				return s.GetDelivery(ctx, ws, n)
			}, func(w io.Writer, d adminapi.Delivery) {
				fmt.Fprintf(w, "delivery %d to %s on %s: %s", d.ID, d.Recipient, d.ChannelID, d.Status)
				if d.Reason != "" {
					fmt.Fprintf(w, " (%s)", d.Reason)
				}
				fmt.Fprintf(w, "\n  attempts %d, next attempt %s, sent %s, delivered %s\n  from %s %s, created %s\n",
					d.Attempts, d.NextAttemptAt.Format(time.RFC3339), timeOr(d.SentAt, "-"), timeOr(d.DeliveredAt, "-"),
					d.SourceKind, d.SourceID, d.CreatedAt.Format(time.RFC3339))
				if d.LastError != "" {
					fmt.Fprintf(w, "  last error: %s\n", d.LastError)
				}
				if d.Content != nil {
					fmt.Fprintf(w, "  text: %s\n", d.Content.Text)
				}
			})},
		{names: []string{"triggers", "trigger"}, filters: []string{"broadcast"},
			list: listOf(func(ctx context.Context, s *session, ws string, f *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Trigger], error) {
				return s.ListTriggers(ctx, ws, adminapi.TriggerQuery{ListOptions: o, BroadcastID: f.broadcast})
			}, "ID\tBROADCAST\tSTATUS\tMATCHED\tSENT\tDELIVERED\tFAILED\tSKIPPED\tCREATED", triggerRow),
			get: getOf(func(ctx context.Context, s *session, ws, id string) (adminapi.Trigger, error) {
				n, err := parseID("trigger", id)
				if err != nil {
					return adminapi.Trigger{}, err
				}
				return s.GetTrigger(ctx, ws, n)
			}, printTrigger)},
		{names: []string{"keys", "key"},
			list: listOf(func(ctx context.Context, s *session, ws string, _ *listFlags, o adminapi.ListOptions) (adminapi.Page[adminapi.Key], error) {
				return s.ListKeys(ctx, ws, o)
			}, "ID\tNAME\tSCOPE\tCHANNEL\tLAST USED\tSTATUS", func(k adminapi.Key) string {
				return tabs(k.ID, k.Name, k.Scope, k.ChannelID, timeOr(k.LastUsedAt, "never"), keyStatus(k, time.Now()))
			})},
	}
}

func botRow(b adminapi.Bot) string {
	return tabs(b.ID, b.Name, strings.Join(b.Flows, ","), b.UpdatedAt.Format(time.RFC3339))
}

func channelRow(c adminapi.Channel) string {
	return tabs(c.ID, c.Name, c.Type, strconv.FormatBool(c.Enabled), healthWords(c.Health))
}

func conversationRow(c adminapi.Conversation) string {
	return tabs(c.ID, c.ChannelID, c.UserID, c.Status, c.FlowID, c.StepID, c.LastInteractionAt.Format(time.RFC3339))
}

const deliveryHeader = "ID\tCHANNEL\tRECIPIENT\tSTATUS\tREASON\tATTEMPTS\tSOURCE\tUPDATED"

func deliveryRow(d adminapi.Delivery) string {
	return tabs(strconv.FormatInt(d.ID, 10), d.ChannelID, d.Recipient, d.Status, d.Reason, strconv.Itoa(d.Attempts),
		d.SourceKind+":"+d.SourceID, d.UpdatedAt.Format(time.RFC3339))
}

func triggerRow(t adminapi.Trigger) string {
	c := t.Counts
	return tabs(strconv.FormatInt(t.ID, 10), fmt.Sprintf("%d (%s)", t.BroadcastID, t.BroadcastName), t.Status,
		strconv.FormatInt(c.Matched, 10), strconv.FormatInt(c.Sent, 10), strconv.FormatInt(c.Delivered, 10),
		strconv.FormatInt(c.Failed, 10), strconv.FormatInt(c.Skipped, 10), time.Unix(t.CreatedAt, 0).UTC().Format(time.RFC3339))
}

// printTrigger is a trigger's funnel, per action, and its first errors.
func printTrigger(w io.Writer, t adminapi.Trigger) {
	c := t.Counts
	fmt.Fprintf(w, "trigger %d of broadcast %d (%s): %s", t.ID, t.BroadcastID, t.BroadcastName, t.Status)
	if t.Done {
		fmt.Fprint(w, ", done")
	}
	if t.Error != "" {
		fmt.Fprintf(w, ": %s", t.Error)
	}
	fmt.Fprintf(w, "\n  matched %d → sent %d → delivered %d; pending %d, failed %d, skipped %d", c.Matched, c.Sent, c.Delivered, c.Pending, c.Failed, c.Skipped)
	if c.Converted != nil {
		fmt.Fprintf(w, ", converted %d", *c.Converted)
	}
	fmt.Fprintln(w)
	for _, by := range []struct {
		what string
		m    map[string]int64
	}{{"failed", c.FailedBy}, {"skipped", c.SkippedBy}} {
		reasons := make([]string, 0, len(by.m))
		for r := range by.m {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			fmt.Fprintf(w, "  %s %s: %d\n", by.what, r, by.m[r])
		}
	}
	for _, a := range t.Actions {
		fmt.Fprintf(w, "  action %d %s %s: sent %d, delivered %d, failed %d, skipped %d\n", a.Index, a.Type, a.Channel, a.Sent, a.Delivered, a.Failed, a.Skipped)
	}
	if len(t.ErrorLines) > 0 {
		fmt.Fprintf(w, "  errors (%d):\n", t.Errors)
		for _, e := range t.ErrorLines {
			fmt.Fprintf(w, "    %s\n", e)
		}
	}
}

func findKind(name string) (kind, error) {
	var known []string
	for _, k := range kinds() {
		if slices.Contains(k.names, name) {
			return k, nil
		}
		known = append(known, k.names[0])
	}
	return kind{}, fmt.Errorf("unknown kind %q: want one of %s", name, strings.Join(known, ", "))
}

func newList(g *globals) *cobra.Command {
	f := &listFlags{}
	cmd := &cobra.Command{
		Use:   "list KIND",
		Short: "List workspaces, keys, bots, channels, people, conversations, deliveries or triggers",
		Long: `List one kind of resource of the workspace, one page at a time (--limit,
--cursor from the previous page, or --all). Filters:

  conversations  --channel ID --user ID --status open|closed
  deliveries     --channel ID --person ID --status S --reason R
                 --since T --until T (RFC 3339 or unix seconds)
  triggers       --broadcast ID (default: every broadcast's)

-o json prints the page: {"data": [...], "next": "CURSOR"}.`,
		Args: cobra.ExactArgs(1),
	}
	workspace := workspaceFlag(cmd)
	output := outputFlag(cmd)
	fl := cmd.Flags()
	fl.IntVar(&f.limit, "limit", 0, "page size (1–500; default 100)")
	fl.StringVar(&f.cursor, "cursor", "", "continue after a previous page (its next cursor)")
	fl.BoolVar(&f.all, "all", false, "every page")
	fl.StringVar(&f.channel, "channel", "", "filter: channel id")
	fl.StringVar(&f.user, "user", "", "filter: the user's address on the channel")
	fl.StringVar(&f.status, "status", "", "filter: status")
	fl.StringVar(&f.reason, "reason", "", "filter: failure or skip reason")
	fl.StringVar(&f.person, "person", "", "filter: person id")
	fl.StringVar(&f.since, "since", "", "filter: created at or after (RFC 3339 or unix seconds)")
	fl.StringVar(&f.until, "until", "", "filter: created before (RFC 3339 or unix seconds)")
	fl.Int64Var(&f.broadcast, "broadcast", 0, "filter: broadcast id")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		k, err := findKind(args[0])
		if err != nil {
			return err
		}
		for _, name := range []string{"channel", "user", "status", "reason", "person", "since", "until", "broadcast"} {
			if cmd.Flags().Changed(name) && !slices.Contains(k.filters, name) {
				if len(k.filters) == 0 {
					return fmt.Errorf("list %s takes no filters (--%s)", k.names[0], name)
				}
				return fmt.Errorf("list %s takes no --%s; its filters: --%s", k.names[0], name, strings.Join(k.filters, ", --"))
			}
		}
		if f.sinceT, err = parseTime("--since", f.since); err != nil {
			return err
		}
		if f.untilT, err = parseTime("--until", f.until); err != nil {
			return err
		}
		f.output, f.stdout = *output, cmd.OutOrStdout()
		f.listOpts = adminapi.ListOptions{Cursor: f.cursor, Limit: f.limit}
		return g.withSession(cmd, func(s *session) error {
			ws := *workspace
			if k.names[0] != "workspaces" {
				if ws, err = s.workspace(ws); err != nil {
					return err
				}
			}
			return k.list(cmd.Context(), s, ws, f)
		})
	}
	return cmd
}

func parseTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or unix seconds", flag, v)
}

func newGet(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get KIND ID",
		Short: "Show one bot, channel, person, conversation (with messages), delivery or trigger",
		Args:  cobra.ExactArgs(2),
	}
	workspace := workspaceFlag(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		k, err := findKind(args[0])
		if err != nil {
			return err
		}
		if k.get == nil {
			return fmt.Errorf("get %s: not a kind get shows; use list %s", args[0], k.names[0])
		}
		return g.withSession(cmd, func(s *session) error {
			ws, err := s.workspace(*workspace)
			if err != nil {
				return err
			}
			return k.get(cmd.Context(), s, ws, args[1], *output, cmd.OutOrStdout())
		})
	}
	return cmd
}
