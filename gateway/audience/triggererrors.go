package audience

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// SecretStore gives a channel's secrets, which error lines must never
// show.
type SecretStore interface {
	GetChannelSecrets(ctx context.Context, channelID string) (map[string]string, error)
}

// TriggerErrors pages through a trigger's error lines: first the
// fan-out's (bad data file lines, unknown recipients, render errors), then,
// once the fan-out has finished, one line per delivery that failed in the
// delivery pipeline, in the order they failed. Offsets never move: the
// fan-out's lines are all written when it finishes, and later failures are
// appended. next is the offset of the next page, 0 at the end.
func (s *Service) TriggerErrors(ctx context.Context, workspaceID string, broadcastID, triggerID int64, start, limit int) ([]string, int, error) {
	t, err := s.o.Store.GetTrigger(ctx, workspaceID, triggerID)
	if err != nil {
		return nil, 0, err
	}
	if t.BroadcastID != broadcastID {
		return nil, 0, store.ErrNotFound
	}
	if limit <= 0 {
		limit = defaultErrorPage
	}
	fanout := int(t.Errors) // the lines written when t was read
	var lines []string
	if start < fanout {
		// Bounded by what t counted: lines a running fan-out writes now
		// are for the next call.
		if lines, _, err = s.o.Store.ListTriggerErrors(ctx, triggerID, start, min(limit, fanout-start)); err != nil {
			return nil, 0, err
		}
	}
	end := start + len(lines)
	if t.State == store.TriggerQueued || t.State == store.TriggerRunning {
		if end < fanout {
			return lines, end, nil
		}
		return lines, 0, nil
	}
	room := limit - len(lines)
	// One more than fits tells whether a next page exists.
	failed, err := s.o.Store.ListTriggerFailures(ctx, triggerID, ReasonRenderError, max(start-fanout, 0), room+1)
	if err != nil {
		return nil, 0, err
	}
	more := end < fanout || len(failed) > room
	failed = failed[:min(len(failed), room)]
	secrets := map[string][]string{}
	for _, d := range failed {
		if _, ok := secrets[d.ChannelID]; !ok {
			if secrets[d.ChannelID], err = s.channelSecrets(ctx, d.ChannelID); err != nil {
				return nil, 0, err
			}
		}
		lines = append(lines, failureLine(t, d, secrets[d.ChannelID]))
	}
	if !more {
		return lines, 0, nil
	}
	return lines, start + len(lines), nil
}

// defaultErrorPage is the page size of the errors endpoint.
const defaultErrorPage = 100

// minSecretLen keeps short values (a flag, a region) from blanking out
// ordinary words of a message.
const minSecretLen = 8

// channelSecrets lists the values to redact from a channel's errors.
func (s *Service) channelSecrets(ctx context.Context, channelID string) ([]string, error) {
	m, err := s.o.Store.GetChannelSecrets(ctx, channelID)
	if err != nil {
		return nil, fmt.Errorf("secrets of channel %s: %w", channelID, err)
	}
	var out []string
	for _, v := range m {
		if len(v) >= minSecretLen {
			out = append(out, v)
		}
	}
	return out, nil
}

// failureLine says who a failed delivery was for, which action made it,
// and why: the reason code and the platform's message, with the channel's
// secrets redacted (a plugin should never echo them; this makes sure).
func failureLine(t store.Trigger, d store.Delivery, secrets []string) string {
	who := "person " + d.PersonID
	if d.PersonID == "" {
		who = fmt.Sprintf("address %q on channel %s", d.Recipient, d.ChannelID)
	}
	what := "action ?"
	if i, ok := deliveryAction(t.ID, d.IdempotencyKey); ok {
		what = "action " + strconv.Itoa(i)
		if i < len(t.Broadcast.Actions) {
			what += " (" + t.Broadcast.Actions[i].Type + ")"
		}
	}
	msg := d.LastError
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	line := fmt.Sprintf("%s: %s: delivery failed: %s", who, what, reasonOrUnknown(d.Reason))
	if msg != "" {
		line += ": " + msg
	}
	return line
}

// deliveryAction reads the action index from the idempotency key of a
// trigger's delivery: the fan-out's key, or the conversation engine's key
// derived from a flow action's event key (see store.TriggerKeyPrefix).
func deliveryAction(triggerID int64, key string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(key, "conversation:"), fmt.Sprintf("trigger:%d:", triggerID))
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, ":")
	i, err := strconv.Atoi(n)
	return i, err == nil && i >= 0
}
