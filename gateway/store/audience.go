package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/sdk/message"
)

// ErrInvalidFilter is wrapped by errors about a filter the store cannot
// evaluate: an empty node, an unknown operator, a segment cycle.
var ErrInvalidFilter = errors.New("invalid filter")

// FilterTooLargeError is returned for a filter that, with the segments it
// names expanded, has more conditions or nests deeper than allowed: the
// SQL it would compile to is refused before it is built. Callers branch
// with errors.As; it also wraps ErrInvalidFilter.
type FilterTooLargeError struct {
	// Segment is the segment whose expansion is too large, 0 for the
	// filter as a whole.
	Segment int64
	// Levels reports depth (levels of and, or, not and segments) instead
	// of conditions (attribute conditions and manual segments).
	Levels bool
	// Got is the size; with AtLeast, counting stopped there.
	Got     int64
	AtLeast bool
	Limit   int64
}

func (e *FilterTooLargeError) Error() string {
	who := "the filter"
	if e.Segment > 0 {
		who = fmt.Sprintf("segment %d", e.Segment)
	}
	more := ""
	if e.AtLeast {
		more = "more than "
	}
	if e.Levels {
		return fmt.Sprintf("%s nests %s%s levels deep with its segments expanded; the limit is %s",
			who, more, thousands(e.Got), thousands(e.Limit))
	}
	return fmt.Sprintf("%s expands to %s%s conditions; the limit is %s", who, more, thousands(e.Got), thousands(e.Limit))
}

func (e *FilterTooLargeError) Unwrap() error { return ErrInvalidFilter }

// thousands formats n with comma separators (29,970), as limits are
// written in messages.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Filter is an audience filter in the shape of Customer.io's trigger
// "recipients": exactly one field is set. And and Or hold sub-filters, Not
// one, Segment and Attribute are leaves. The JSON tags are the wire shape,
// so a Filter decodes straight from an API body (package audience checks it).
type Filter struct {
	And       []Filter       `json:"and,omitempty"`
	Or        []Filter       `json:"or,omitempty"`
	Not       *Filter        `json:"not,omitempty"`
	Segment   *SegmentRef    `json:"segment,omitempty"`
	Attribute *AttributeCond `json:"attribute,omitempty"`
}

// SegmentRef names a segment by its numeric id.
type SegmentRef struct {
	ID int64 `json:"id"`
}

// Attribute operators.
const (
	OpEq     = "eq"
	OpExists = "exists"
)

// AttributeCond matches people by one attribute. Eq compares JSON scalars
// by value and type: true matches only true, 1 matches 1 and 1.0, "1"
// matches only the string. Exists matches any non-null value.
type AttributeCond struct {
	Field    string          `json:"field"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value,omitempty"`
}

// Segment is a group of people: manual (members added one by one) when
// Filter is nil, otherwise everyone matching the stored filter.
type Segment struct {
	ID          int64
	WorkspaceID string
	Name        string
	Description string
	Filter      *Filter
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Broadcast action types.
const (
	ActionMessage    = "message"    // send a templated message on a channel
	ActionFlow       = "flow"       // trigger a bot flow on a channel
	ActionAttributes = "attributes" // update the person's attributes
)

// BroadcastAction is one thing a broadcast does for each recipient; all of
// a broadcast's actions are performed together.
type BroadcastAction struct {
	Type string `json:"type"`
	// Channel is the channel id (message and flow).
	Channel string `json:"channel,omitempty"`
	// To is a Liquid template over customer.* and trigger.* that renders
	// the recipient's address on Channel (message and flow). Empty: the
	// person's identity there, else the channel type's default (see
	// package audience, address.go).
	To string `json:"to,omitempty"`
	// Message is the content sent by a message action; its strings are
	// Liquid templates.
	Message *message.Content `json:"message,omitempty"`
	// Flow, Step and CloseFlows describe a flow action (flow_trigger
	// semantics).
	Flow       string `json:"flow,omitempty"`
	Step       string `json:"step,omitempty"`
	CloseFlows bool   `json:"close_flows,omitempty"`
	// Attributes are set on the person by an attributes action; string
	// values are Liquid templates, null deletes.
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Goal types.
const (
	GoalReply = "reply" // the person writes on the channel
	GoalFlow  = "flow"  // the person's conversation reaches a flow
	GoalEvent = "event" // the person performs a tracked event
)

// Goal is what counts as a conversion after a broadcast reached someone.
type Goal struct {
	Type  string `json:"type"`
	Flow  string `json:"flow,omitempty"`
	Event string `json:"event,omitempty"`
	// Within is a Go duration ("72h"): how long after the message a
	// conversion counts.
	Within string `json:"within"`
}

// Broadcast is an API-triggered broadcast (a Customer.io "campaign").
type Broadcast struct {
	ID          int64
	WorkspaceID string
	Name        string
	Description string
	Active      bool
	// Recipients is the default audience, used by triggers that name
	// none; nil means there is none.
	Recipients *Filter
	Actions    []BroadcastAction
	Goal       *Goal
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TriggerState is where a trigger stands. Queued and running triggers count
// towards the workspace's queue limit.
type TriggerState string

// Trigger states.
const (
	TriggerQueued    TriggerState = "queued"
	TriggerRunning   TriggerState = "running"   // fanning out
	TriggerProcessed TriggerState = "processed" // every recipient's deliveries are written
	TriggerFailed    TriggerState = "failed"
)

// Trigger is one call of a broadcast: its request, the broadcast as it was
// then, and the fan-out's progress.
type Trigger struct {
	ID          int64
	WorkspaceID string
	BroadcastID int64
	State       TriggerState
	// Request is the validated trigger body, opaque to the store.
	Request json.RawMessage
	// Broadcast is the broadcast when it was triggered: later edits do
	// not change a trigger.
	Broadcast Broadcast
	// Cursor is where the fan-out resumes, opaque to the store.
	Cursor string
	// Steps counts committed fan-out steps; AdvanceTrigger compares it so
	// that two workers can never both commit the same step.
	Steps int64
	// Matched counts recipients processed so far; Flows the flows
	// triggered.
	Matched int64
	Flows   int64
	// Actions counts, per action index, what no delivery records.
	Actions []ActionTally
	Error   string
	// Errors counts the trigger's error lines.
	Errors      int64
	CreatedAt   time.Time
	ProcessedAt *time.Time
}

// TriggerLimits bound how often triggers are created. Zero disables a
// limit.
type TriggerLimits struct {
	// Interval is the least time between two triggers of a broadcast.
	Interval time.Duration
	// MaxOpen caps queued and running triggers per workspace.
	MaxOpen int
	Now     time.Time
}

// TriggerLimitError is returned by CreateTrigger when a limit refuses the
// trigger. Callers branch with errors.As.
type TriggerLimitError struct {
	// Limit is "interval" or "queue".
	Limit      string
	RetryAfter time.Duration // interval only
	Max        int           // queue only
}

func (e *TriggerLimitError) Error() string {
	if e.Limit == "interval" {
		return fmt.Sprintf("broadcast triggered too recently; retry after %s", e.RetryAfter)
	}
	return fmt.Sprintf("%d triggers are already queued or running in the workspace", e.Max)
}

// TriggerStep is one committed step of a fan-out.
type TriggerStep struct {
	TriggerID int64
	// Steps is the trigger's step count the step started from.
	Steps   int64
	Cursor  string
	Matched int64 // added
	Flows   int64 // added
	// Actions is added per action index (it may be shorter than the
	// broadcast's actions).
	Actions []ActionTally
	Errors  []string
	// Done finishes the fan-out (state processed) at At.
	Done bool
	At   time.Time
}

// ActionTally is what one action of a trigger did that leaves no delivery:
// the flows a flow action triggered, the people an attributes action
// updated.
type ActionTally struct {
	Flows   int64 `json:"flows,omitempty"`
	Updated int64 `json:"updated,omitempty"`
}

// AddTallies adds b to a index by index, growing a as needed.
func AddTallies(a, b []ActionTally) []ActionTally {
	for len(a) < len(b) {
		a = append(a, ActionTally{})
	}
	for i, t := range b {
		a[i].Flows += t.Flows
		a[i].Updated += t.Updated
	}
	return a
}

// RecipientQuery selects one page of recipients in a workspace. IDs or
// Emails, when set, select those people (no paging: at most a batch);
// otherwise Filter (nil: everyone) selects people with ids after After,
// in id order, at most Limit.
type RecipientQuery struct {
	WorkspaceID string
	Filter      *Filter
	IDs         []string
	Emails      []string
	After       string
	Limit       int
	// Channels lists channel ids whose address each recipient carries.
	Channels []string
}

// Recipient is a person with their addresses on the queried channels
// (Addresses[i] belongs to Channels[i]; "" when none).
type Recipient struct {
	Person    Person
	Addresses []string
}

// DeliveryCount is a number of deliveries of one trigger and action in one
// status (and reason).
type DeliveryCount struct {
	TriggerID int64
	Action    int // index in the broadcast's actions; -1 if unknown
	Status    DeliveryStatus
	Reason    string
	N         int64
}

// PersonEvent is an event a person performed (Track API), kept for goals.
type PersonEvent struct {
	WorkspaceID string
	PersonID    string
	Name        string
	Data        map[string]any
	At          time.Time
}

// Conversion is a number of people who met a broadcast's goal after one of
// its actions reached them.
type Conversion struct {
	Action int
	N      int64
}

// Audience stores segments, broadcasts, triggers and person events, and
// resolves audiences.
type Audience interface {
	// CreateSegment stores a new segment and fills in ID and times. A
	// name in use in the workspace is ErrConflict.
	CreateSegment(ctx context.Context, s *Segment) error
	UpdateSegment(ctx context.Context, s Segment) error
	GetSegment(ctx context.Context, workspaceID string, id int64) (Segment, error)
	GetSegmentByName(ctx context.Context, workspaceID, name string) (Segment, error)
	ListSegments(ctx context.Context, workspaceID string) ([]Segment, error)
	DeleteSegment(ctx context.Context, workspaceID string, id int64) error
	// AddSegmentMembers adds existing people to a manual segment; unknown
	// ids are returned, not added.
	AddSegmentMembers(ctx context.Context, workspaceID string, segmentID int64, personIDs []string) (missing []string, err error)
	RemoveSegmentMembers(ctx context.Context, workspaceID string, segmentID int64, personIDs []string) error

	// CreateBroadcast stores a new broadcast and fills in ID and times.
	CreateBroadcast(ctx context.Context, b *Broadcast) error
	UpdateBroadcast(ctx context.Context, b *Broadcast) error
	GetBroadcast(ctx context.Context, workspaceID string, id int64) (Broadcast, error)
	// GetBroadcastByID finds a broadcast in any workspace (ids are
	// global).
	GetBroadcastByID(ctx context.Context, id int64) (Broadcast, error)
	GetBroadcastByName(ctx context.Context, workspaceID, name string) (Broadcast, error)
	ListBroadcasts(ctx context.Context, workspaceID string) ([]Broadcast, error)

	// CreateTrigger stores a queued trigger unless a limit refuses it
	// (*TriggerLimitError); the check and the insert are atomic.
	CreateTrigger(ctx context.Context, t *Trigger, lim TriggerLimits) error
	GetTrigger(ctx context.Context, workspaceID string, id int64) (Trigger, error)
	// ListTriggers lists a broadcast's triggers (broadcastID 0: every
	// broadcast's) newest first, with ids below before (0: from the
	// newest), at most limit.
	ListTriggers(ctx context.Context, workspaceID string, broadcastID int64, before int64, limit int) ([]Trigger, error)
	// AdvanceTrigger commits a fan-out step: it fails with ErrConflict
	// unless the trigger's Steps still equals step.Steps and it is
	// running or queued.
	AdvanceTrigger(ctx context.Context, step TriggerStep) error
	// FailTrigger ends a queued or running trigger as failed.
	FailTrigger(ctx context.Context, id int64, reason string, errs []string, at time.Time) error
	// ListTriggerErrors returns error lines from offset start, at most
	// limit, and the offset of the next page (0 at the end).
	ListTriggerErrors(ctx context.Context, triggerID int64, start, limit int) ([]string, int, error)
	// ListTriggerFailures returns a trigger's failed deliveries, except
	// those failed with reason except, in the order they failed (then by
	// id): from offset start, at most limit.
	ListTriggerFailures(ctx context.Context, triggerID int64, except string, start, limit int) ([]Delivery, error)
	// CountTriggerDeliveries counts the deliveries of triggers by action,
	// status and reason; actions is the number of actions of the
	// broadcast, whose deliveries are told apart by idempotency key.
	CountTriggerDeliveries(ctx context.Context, triggerIDs []int64, actions int) ([]DeliveryCount, error)
	// CountConversions counts, per action, the people a trigger's
	// delivery reached (sent or delivered) who met goal within its
	// window after.
	CountConversions(ctx context.Context, workspaceID string, triggerIDs []int64, actions int, goal Goal, window time.Duration) ([]Conversion, error)

	// ListRecipients returns one page of recipients.
	ListRecipients(ctx context.Context, q RecipientQuery) ([]Recipient, error)
	// CountRecipients counts the people a filter matches (nil: everyone).
	CountRecipients(ctx context.Context, workspaceID string, f *Filter) (int64, error)

	RecordPersonEvent(ctx context.Context, e PersonEvent) error
}

// TriggerDeliveryKey is the idempotency key of the delivery a trigger's
// action produces for a person. The trigger and action lead so the store can count per action by prefix.
func TriggerDeliveryKey(triggerID int64, action int, personID string) string {
	return fmt.Sprintf("%s%s", TriggerKeyPrefix(triggerID, action), personID)
}

// TriggerKeyPrefix is the prefix of every idempotency key (and flow event
// key) of one trigger's action.
func TriggerKeyPrefix(triggerID int64, action int) string {
	return fmt.Sprintf("trigger:%d:%d:", triggerID, action)
}
