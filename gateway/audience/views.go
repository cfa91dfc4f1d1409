package audience

import (
	"context"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Counts are a trigger's (or a broadcast's) recipients and deliveries.
// Sent counts every delivery that went out (sent or delivered);
// Delivered those a platform confirmed; Pending those not final yet.
// Updated counts the people attributes actions updated.
type Counts struct {
	Matched   int64            `json:"matched"`
	Flows     int64            `json:"flows_triggered"`
	Updated   int64            `json:"attributes_updated"`
	Pending   int64            `json:"pending"`
	Sent      int64            `json:"sent"`
	Delivered int64            `json:"delivered"`
	Failed    int64            `json:"failed"`
	Skipped   int64            `json:"skipped"`
	FailedBy  map[string]int64 `json:"failed_by_reason"`
	SkippedBy map[string]int64 `json:"skipped_by_reason"`
	Converted *int64           `json:"converted,omitempty"`
}

func newCounts() Counts {
	return Counts{FailedBy: map[string]int64{}, SkippedBy: map[string]int64{}}
}

func (c *Counts) add(d store.DeliveryCount) {
	switch d.Status {
	case store.DeliveryQueued, store.DeliveryRetrying, store.DeliverySending:
		c.Pending += d.N
	case store.DeliverySent:
		c.Sent += d.N
	case store.DeliveryDelivered:
		c.Sent += d.N
		c.Delivered += d.N
	case store.DeliveryFailed:
		c.Failed += d.N
		c.FailedBy[reasonOrUnknown(d.Reason)] += d.N
	case store.DeliverySkipped:
		c.Skipped += d.N
		c.SkippedBy[reasonOrUnknown(d.Reason)] += d.N
	}
}

// addTrigger adds what a trigger's fan-out counted to top and to each of
// actions the trigger's broadcast had: every action is performed for every
// recipient, so each matched them all.
func addTrigger(top *Counts, actions []ActionCounts, t store.Trigger) {
	top.Matched += t.Matched
	top.Flows += t.Flows
	for _, a := range t.Actions {
		top.Updated += a.Updated
	}
	for i := range min(len(actions), len(t.Broadcast.Actions)) {
		actions[i].Matched += t.Matched
		if i < len(t.Actions) {
			actions[i].Flows += t.Actions[i].Flows
			actions[i].Updated += t.Actions[i].Updated
		}
	}
}

func reasonOrUnknown(r string) string {
	if r == "" {
		return "unknown"
	}
	return r
}

// ActionCounts are the counts of one action of a broadcast.
type ActionCounts struct {
	Index   int    `json:"index"`
	Type    string `json:"type"`
	Channel string `json:"channel,omitempty"`
	Counts
}

// TriggerView is a trigger as the API shows it: Customer.io's fields (times
// in Unix seconds) plus state and counts.
type TriggerView struct {
	ID          int64          `json:"id"`
	BroadcastID int64          `json:"broadcast_id"`
	CreatedAt   int64          `json:"created_at"`
	ProcessedAt *int64         `json:"processed_at"`
	Status      string         `json:"status"`
	Error       string         `json:"error,omitempty"`
	Errors      int64          `json:"error_count"`
	Done        bool           `json:"done"`
	Counts      Counts         `json:"counts"`
	Actions     []ActionCounts `json:"actions"`
}

// TriggerViews shows triggers with their counts (one query for all).
func (s *Service) TriggerViews(ctx context.Context, ts []store.Trigger) ([]TriggerView, error) {
	ids := make([]int64, len(ts))
	actions := 0
	for i, t := range ts {
		ids[i] = t.ID
		actions = max(actions, len(t.Broadcast.Actions))
	}
	counts, err := s.o.Store.CountTriggerDeliveries(ctx, ids, actions)
	if err != nil {
		return nil, err
	}
	views := make([]TriggerView, len(ts))
	index := map[int64]int{}
	for i, t := range ts {
		index[t.ID] = i
		v := TriggerView{ID: t.ID, BroadcastID: t.BroadcastID, CreatedAt: t.CreatedAt.Unix(), Status: string(t.State),
			Error: t.Error, Errors: t.Errors, Counts: newCounts()}
		if t.ProcessedAt != nil {
			at := t.ProcessedAt.Unix()
			v.ProcessedAt = &at
		}
		v.Actions = actionCounts(t.Broadcast)
		addTrigger(&v.Counts, v.Actions, t)
		views[i] = v
	}
	for _, c := range counts {
		v := &views[index[c.TriggerID]]
		v.Counts.add(c)
		if c.Action >= 0 && c.Action < len(v.Actions) {
			v.Actions[c.Action].add(c)
		}
	}
	for i := range views {
		v := &views[i]
		finished := v.Status == string(store.TriggerFailed) || v.Status == string(store.TriggerProcessed)
		v.Done = v.Status == string(store.TriggerFailed) || (finished && v.Counts.Pending == 0)
		if finished {
			// What the errors endpoint lists after the fan-out's lines.
			v.Errors += v.Counts.Failed - v.Counts.FailedBy[ReasonRenderError]
		}
	}
	return views, nil
}

func actionCounts(b store.Broadcast) []ActionCounts {
	out := make([]ActionCounts, len(b.Actions))
	for i, a := range b.Actions {
		out[i] = ActionCounts{Index: i, Type: a.Type, Channel: a.Channel, Counts: newCounts()}
	}
	return out
}

// TriggerStatus returns one trigger of a broadcast with its counts.
func (s *Service) TriggerStatus(ctx context.Context, workspaceID string, broadcastID, triggerID int64) (TriggerView, error) {
	t, err := s.o.Store.GetTrigger(ctx, workspaceID, triggerID)
	if err != nil {
		return TriggerView{}, err
	}
	if t.BroadcastID != broadcastID {
		return TriggerView{}, store.ErrNotFound
	}
	vs, err := s.TriggerViews(ctx, []store.Trigger{t})
	if err != nil {
		return TriggerView{}, err
	}
	return vs[0], nil
}

// History lists a broadcast's triggers, newest first, with counts.
func (s *Service) History(ctx context.Context, workspaceID string, broadcastID, before int64, limit int) ([]TriggerView, error) {
	if _, err := s.o.Store.GetBroadcast(ctx, workspaceID, broadcastID); err != nil {
		return nil, err
	}
	ts, err := s.o.Store.ListTriggers(ctx, workspaceID, broadcastID, before, limit)
	if err != nil {
		return nil, err
	}
	return s.TriggerViews(ctx, ts)
}

// Metrics are a broadcast's counts over all its triggers, in all and per
// action, with conversions when it has a goal.
type Metrics struct {
	BroadcastID int64          `json:"broadcast_id"`
	Triggers    int            `json:"triggers"`
	Counts      Counts         `json:"counts"`
	Actions     []ActionCounts `json:"actions"`
}

// maxMetricTriggers bounds how many of a broadcast's latest triggers
// metrics cover.
const maxMetricTriggers = 1000

// Metrics counts a broadcast's deliveries and conversions.
func (s *Service) Metrics(ctx context.Context, workspaceID string, broadcastID int64) (Metrics, error) {
	b, err := s.o.Store.GetBroadcast(ctx, workspaceID, broadcastID)
	if err != nil {
		return Metrics{}, err
	}
	ts, err := s.o.Store.ListTriggers(ctx, workspaceID, broadcastID, 0, maxMetricTriggers)
	if err != nil {
		return Metrics{}, err
	}
	m := Metrics{BroadcastID: b.ID, Triggers: len(ts), Counts: newCounts(), Actions: actionCounts(b)}
	ids := make([]int64, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
		addTrigger(&m.Counts, m.Actions, t)
	}
	counts, err := s.o.Store.CountTriggerDeliveries(ctx, ids, len(b.Actions))
	if err != nil {
		return Metrics{}, err
	}
	for _, c := range counts {
		m.Counts.add(c)
		if c.Action >= 0 && c.Action < len(m.Actions) {
			m.Actions[c.Action].add(c)
		}
	}
	if b.Goal != nil {
		window, err := time.ParseDuration(b.Goal.Within)
		if err != nil {
			return Metrics{}, err
		}
		conv, err := s.o.Store.CountConversions(ctx, workspaceID, ids, len(b.Actions), *b.Goal, window)
		if err != nil {
			return Metrics{}, err
		}
		zero := int64(0)
		m.Counts.Converted = &zero
		for i := range m.Actions {
			z := int64(0)
			m.Actions[i].Converted = &z
		}
		for i, c := range conv {
			n := c.N
			switch {
			case i == 0:
				m.Counts.Converted = &n
			case c.Action >= 0 && c.Action < len(m.Actions):
				m.Actions[c.Action].Converted = &n
			}
		}
	}
	return m, nil
}

// BroadcastView is a broadcast as the API shows it.
type BroadcastView struct {
	ID          int64                   `json:"id"`
	Name        string                  `json:"name"`
	Description string                  `json:"description"`
	Active      bool                    `json:"active"`
	Type        string                  `json:"type"`
	Recipients  *store.Filter           `json:"recipients"`
	Actions     []store.BroadcastAction `json:"actions"`
	Goal        *store.Goal             `json:"goal"`
	Created     int64                   `json:"created"`
	Updated     int64                   `json:"updated"`
}

// ViewBroadcast shows a broadcast.
func ViewBroadcast(b store.Broadcast) BroadcastView {
	actions := b.Actions
	if actions == nil {
		actions = []store.BroadcastAction{}
	}
	return BroadcastView{ID: b.ID, Name: b.Name, Description: b.Description, Active: b.Active, Type: "triggered_broadcast",
		Recipients: b.Recipients, Actions: actions, Goal: b.Goal, Created: b.CreatedAt.Unix(), Updated: b.UpdatedAt.Unix()}
}

// SegmentView is a segment as the API shows it.
type SegmentView struct {
	ID          int64         `json:"id"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Type        string        `json:"type"`
	Filter      *store.Filter `json:"filter,omitempty"`
	Created     int64         `json:"created"`
	Updated     int64         `json:"updated"`
}

// ViewSegment shows a segment.
func ViewSegment(sg store.Segment) SegmentView {
	kind := "manual"
	if sg.Filter != nil {
		kind = "dynamic"
	}
	return SegmentView{ID: sg.ID, Name: sg.Name, Description: sg.Description, Type: kind, Filter: sg.Filter,
		Created: sg.CreatedAt.Unix(), Updated: sg.UpdatedAt.Unix()}
}
