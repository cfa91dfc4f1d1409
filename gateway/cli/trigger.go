package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// newBroadcastTrigger is `switchboard broadcast trigger`: what POST
// /v1/campaigns/{id}/triggers does, from the command line.
func newBroadcastTrigger(g *globals) *cobra.Command {
	var (
		broadcastID          int64
		recipientsFile, data string
		wait, dryRun         bool
		timeout              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "trigger --broadcast ID [--recipients FILE] [--data JSON] [--wait]",
		Short: "Trigger a group broadcast (what POST /v1/campaigns/{id}/triggers does)",
		Long: `Trigger an active broadcast, exactly as the Customer.io-compatible
POST /v1/campaigns/{id}/triggers does: the same validation and limits, then
the running gateway (on the same database) fans it out.

--recipients FILE holds either an audience filter ({"and": [...]}, {"segment":
{"id": 3}}, ...) or an object with one recipient source and its flags
({"ids": [...]}, {"emails": [...], "email_ignore_missing": true},
{"per_user_data": [...]}, {"data_file_url": "..."}). Without it the broadcast's
default recipients get it. --data is the trigger data ({{trigger.x}}).

With --wait a progress bar follows the trigger (matched, sent, failed) until
every delivery is final.`,
		Args: cobra.NoArgs,
	}
	workspace := workspaceFlag(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		ctx := cmd.Context()
		body, err := triggerBody(recipientsFile, data, dryRun)
		if err != nil {
			return err
		}
		return g.withSession(cmd, func(s *session) error {
			ws, err := s.workspace(*workspace)
			if !s.remote {
				// Broadcast ids are global: on the database the
				// broadcast names its workspace.
				b, err := s.st.GetBroadcastByID(ctx, broadcastID)
				if err != nil {
					return fmt.Errorf("broadcast %d: %w", broadcastID, err)
				}
				ws = b.WorkspaceID
			} else if err != nil {
				return err
			}
			res, err := s.TriggerBroadcast(ctx, ws, broadcastID, body)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if res.DryRun != nil {
				return writeJSON(out, res.DryRun)
			}
			if *output == "json" && !wait {
				return writeJSON(out, res)
			}
			if *output == "json" {
				out = g.stderr // the final trigger is the JSON on stdout
			}
			fmt.Fprintf(out, "trigger %d queued for broadcast %d\n", res.ID, broadcastID)
			if !wait {
				return nil
			}
			return followTrigger(ctx, s, ws, res.ID, timeout, g, *output)
		})
	}
	f := cmd.Flags()
	f.Int64Var(&broadcastID, "broadcast", 0, "broadcast id (required)")
	f.StringVar(&recipientsFile, "recipients", "", "JSON file: an audience filter, or one recipient source with its flags")
	f.StringVar(&data, "data", "", "trigger data, a JSON object ({{trigger.x}})")
	f.BoolVar(&dryRun, "dry-run", false, "print what the trigger would do, without sending")
	f.BoolVar(&wait, "wait", false, "show progress until every delivery is final")
	f.DurationVar(&timeout, "timeout", time.Hour, "with --wait, give up after this long")
	_ = cmd.MarkFlagRequired("broadcast")
	return cmd
}

// recipientSources are the body keys a recipients file may set besides a
// filter.
var recipientSources = []string{"ids", "emails", "per_user_data", "data_file_url",
	"id_ignore_missing", "email_ignore_missing", "email_add_duplicates"}

// triggerBody builds a trigger body from the flags.
func triggerBody(recipientsFile, data string, dryRun bool) ([]byte, error) {
	body := map[string]json.RawMessage{}
	if data != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(data), &obj); err != nil {
			return nil, fmt.Errorf("--data must be a JSON object: %w", err)
		}
		body["data"] = json.RawMessage(data)
	}
	if recipientsFile != "" {
		raw, err := os.ReadFile(recipientsFile)
		if err != nil {
			return nil, err
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("%s: must hold a JSON object: %w", recipientsFile, err)
		}
		source := false
		for _, k := range recipientSources {
			if v, ok := obj[k]; ok {
				body[k], source = v, true
			}
		}
		if !source {
			body["recipients"] = raw
		}
	}
	if dryRun {
		body["dry_run"] = json.RawMessage("true")
	}
	return json.Marshal(body)
}

// audienceService builds the trigger service on a store, as the gateway
// does; the running gateway's queue picks the job up at its next poll.
func audienceService(st *sqlstore.Store, cfg *config.Config) *audience.Service {
	c := cfg.Audience
	filter := audience.FilterLimits{MaxDepth: c.MaxFilterDepth, MaxLeaves: c.MaxFilterLeaves, MaxExpandedDepth: c.MaxFilterExpandedDepth}
	engine := audience.NewEngine(st, audience.EngineOptions{
		BatchSize:    c.BatchSize,
		FileTimeout:  c.DataFileTimeout,
		MaxFileLines: c.DataFileMaxLines,
		Filter:       filter,
		Net:          netguard.Options{AllowHTTP: true, AllowPrivate: cfg.Security.AllowInternalFetch},
	})
	return audience.New(audience.Options{
		Store:  st,
		Engine: engine,
		Bots:   bot.NewCache(st, bot.CacheOptions{}),
		Limits: audience.Limits{MaxDataBytes: c.MaxDataBytes, MaxListItems: c.MaxListItems,
			Filter: filter},
		TriggerInterval: c.TriggerInterval,
		MaxOpenTriggers: c.MaxOpenTriggers,
	})
}

// followTrigger shows a progress bar of a trigger until it is done: the
// bar's total is the recipients matched so far, its count the deliveries
// that are final.
func followTrigger(ctx context.Context, s *session, ws string, id int64, timeout time.Duration, g *globals, output string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(g.stderr), progressbar.OptionSetDescription("queued"),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(false), progressbar.OptionClearOnFinish())
	for {
		v, err := s.GetTrigger(ctx, ws, id)
		if err != nil {
			return err
		}
		c := v.Counts
		final := c.Sent + c.Failed + c.Skipped
		if total := max(c.Matched*int64(max(len(v.Actions), 1)), final+c.Pending); total > 0 && total != bar.GetMax64() {
			bar.ChangeMax64(total)
		}
		_ = bar.Set64(final)
		bar.Describe(fmt.Sprintf("%s: matched %d · sent %d · failed %d · skipped %d", v.Status, c.Matched, c.Sent, c.Failed, c.Skipped))
		if v.Done {
			_ = bar.Finish()
			if output == "json" {
				if err := writeJSON(g.stdout, v); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "trigger %d %s: matched %d, sent %d (delivered %d), failed %d, skipped %d, errors %d\n",
					id, v.Status, c.Matched, c.Sent, c.Delivered, c.Failed, c.Skipped, v.Errors)
			}
			if v.Status == string(store.TriggerFailed) {
				return fmt.Errorf("trigger %d failed: %s", id, v.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("trigger %d still %s after %s (is a gateway running on this database?)", id, v.Status, timeout)
			}
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
