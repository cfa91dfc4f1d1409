package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/broadcast"
)

func newBroadcast(g *globals) *cobra.Command {
	b := &cobra.Command{Use: "broadcast", Short: "Send proactive messages"}
	b.AddCommand(newBroadcastSend(g))
	b.AddCommand(newBroadcastTrigger(g))
	return b
}

// noWake stands in for the queue's wake-up: the command writes the job to
// the store, and the running gateway picks it up at its next poll.
type noWake struct{}

func (noWake) Notify() {}

func newBroadcastSend(g *globals) *cobra.Command {
	var (
		channel, flow, user, step, metadata, idemKey string
		keepOpen, wait                               bool
		timeout                                      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "send --channel C --flow F --user U",
		Short: "Trigger a flow for one user (what POST /v1/api/broadcasts does)",
		Long: `Trigger a bot flow for one user of a channel, exactly as the CSML-compatible
POST /v1/api/broadcasts does: the request is validated against the channel's
bot, stored durably, and run by the gateway (which must be running against the
same database). With --wait, the command follows the request until its
messages are delivered or it fails.`,
		Args: cobra.NoArgs,
	}
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if err := g.databaseOnly(cmd, "remotely, POST /v1/api/broadcasts with the channel's key does the same"); err != nil {
			return err
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
		ch, err := findChannel(ctx, st, "", channel)
		if err != nil {
			return err
		}
		meta := json.RawMessage("{}")
		if metadata != "" {
			var obj map[string]any
			if err := json.Unmarshal([]byte(metadata), &obj); err != nil {
				return fmt.Errorf("--metadata must be a JSON object: %w", err)
			}
			meta = json.RawMessage(metadata)
		}
		svc := &broadcast.Service{Store: st, Bots: bot.NewCache(st, bot.CacheOptions{}), Queue: noWake{}}
		ft, replayed, err := svc.Trigger(ctx, broadcast.Request{
			Channel: ch, UserID: user, FlowID: flow, StepID: step, CloseFlows: !keepOpen,
			Metadata: meta, IdempotencyKey: idemKey, BodyHash: []byte(flow + "\x00" + user + "\x00" + step + "\x00" + metadata),
		})
		if err != nil {
			return err
		}
		if *output == "json" && !wait {
			return writeJSON(cmd.OutOrStdout(), map[string]any{"request_id": ft.RequestID, "channel_id": ch.ID, "replayed": replayed})
		}
		verb := "queued"
		if replayed {
			verb = "already queued (same idempotency key)"
		}
		progress := cmd.OutOrStdout()
		if *output == "json" {
			progress = g.stderr // the result is the JSON on stdout
		}
		fmt.Fprintf(progress, "request %s %s: flow %s for user %s on channel %s\n", ft.RequestID, verb, flow, user, ch.ID)
		if !wait {
			return nil
		}
		res, err := waitResult(ctx, progress, svc, ch.ID, ft.RequestID, timeout)
		if *output == "json" && res != nil {
			if werr := writeJSON(cmd.OutOrStdout(), map[string]any{"request_id": ft.RequestID, "channel_id": ch.ID,
				"status": res.Status, "reason": res.Reason, "delivered_at": res.DeliveredAt}); werr != nil {
				return werr
			}
		}
		return err
	}
	f := cmd.Flags()
	f.StringVar(&channel, "channel", "", "channel id or name (required)")
	f.StringVar(&flow, "flow", "", "flow id or name (required)")
	f.StringVar(&user, "user", "", "the user's id on the channel (required)")
	f.StringVar(&step, "step", "", "start at this step of the flow")
	f.StringVar(&metadata, "metadata", "", "JSON object available to the flow as metadata.*")
	f.BoolVar(&keepOpen, "no-close-flows", false, "re-point the user's open conversation instead of closing it (close_flows: false)")
	f.StringVar(&idemKey, "idempotency-key", "", "make retries of this command safe")
	f.BoolVar(&wait, "wait", false, "follow the request until delivered or failed")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "with --wait, give up after this long")
	for _, r := range []string{"channel", "flow", "user"} {
		_ = cmd.MarkFlagRequired(r)
	}
	return cmd
}

// waitResult follows a request until it is final, printing each status
// to w; it returns the last result read.
func waitResult(ctx context.Context, w io.Writer, svc *broadcast.Service, channelID, requestID string, timeout time.Duration) (*broadcast.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := broadcast.Status("")
	for {
		res, err := svc.Result(ctx, channelID, requestID)
		if err != nil {
			return nil, err
		}
		if res.Status != last {
			last = res.Status
			line := string(res.Status)
			if res.Reason != "" {
				line += " (" + res.Reason + ")"
			}
			fmt.Fprintln(w, line)
		}
		switch res.Status {
		case broadcast.StatusDelivered, broadcast.StatusCompleted:
			return &res, nil
		case broadcast.StatusFailed, broadcast.StatusUnreachable:
			return &res, fmt.Errorf("request %s %s: %s", requestID, res.Status, res.Reason)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &res, fmt.Errorf("request %s still %s after %s (is the gateway running on this database?)", requestID, res.Status, timeout)
			}
			return &res, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
