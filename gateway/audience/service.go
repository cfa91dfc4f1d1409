package audience

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
)

// ServiceStore is what the Service reads and writes.
type ServiceStore interface {
	store.Audience
	store.People
	ReviewStore
	FanoutStore
	SecretStore
}

// Options configure a Service. Zero values take Customer.io's limits.
type Options struct {
	Store     ServiceStore
	Engine    *Engine
	Bots      Bots
	Templates *template.Engine
	Limits    Limits
	// TriggerInterval is the least time between two triggers of one
	// broadcast (default 10s; negative disables).
	TriggerInterval time.Duration
	// MaxOpenTriggers caps queued and running triggers per workspace
	// (default 5; negative disables).
	MaxOpenTriggers int
	// Jobs is woken after a trigger is queued.
	Jobs Notifier
	Now  func() time.Time
}

// Service is the domain behind the Customer.io-compatible APIs and the CLI.
type Service struct {
	o Options
}

// New returns a Service.
func New(o Options) *Service {
	o.Limits.defaults()
	if o.TriggerInterval == 0 {
		o.TriggerInterval = 10 * time.Second
	}
	if o.MaxOpenTriggers == 0 {
		o.MaxOpenTriggers = 5
	}
	if o.Templates == nil {
		o.Templates = template.New(template.Options{})
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}
}

// NeedsFixing is returned when a broadcast's review finds problems.
type NeedsFixing struct {
	Problems []*FieldError
}

func (e *NeedsFixing) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "needs fixing: " + strings.Join(msgs, "; ")
}

// RecipientsError is returned when recipients named by a trigger could not
// be resolved: the trigger exists (failed), with its error lines.
type RecipientsError struct {
	TriggerID int64
	Pointer   string
	Count     int
}

func (e *RecipientsError) Error() string {
	return fmt.Sprintf("%d recipient(s) could not be resolved; more detail available from the errors endpoint for trigger %d",
		e.Count, e.TriggerID)
}

// TriggerResult is the outcome of a trigger call: a queued trigger, or
// what a dry run would do.
type TriggerResult struct {
	Trigger *store.Trigger
	DryRun  *DryRun
}

// Trigger validates a trigger body for a broadcast and queues its fan-out
// (or dry-runs it). Unknown recipients named by ids, emails or
// per_user_data are checked now: unless ignored, they fail the trigger
// before anyone is messaged.
func (s *Service) Trigger(ctx context.Context, workspaceID string, broadcastID int64, body io.Reader) (*TriggerResult, error) {
	b, err := s.o.Store.GetBroadcast(ctx, workspaceID, broadcastID)
	if err != nil {
		return nil, err
	}
	req, err := ParseTriggerRequest(body, s.o.Limits)
	if err != nil {
		return nil, err
	}
	if !b.Active {
		return nil, &FieldError{Status: http.StatusUnprocessableEntity, Code: "broadcast_inactive",
			Detail: fmt.Sprintf("broadcast %d is not active: activate it before triggering it", b.ID)}
	}
	listed := len(req.IDs) > 0 || len(req.Emails) > 0 || len(req.PerUserData) > 0
	if !listed && req.DataFileURL == "" {
		filter := req.Recipients
		if filter == nil {
			filter = b.Recipients
		}
		if filter == nil {
			return nil, &FieldError{Status: http.StatusUnprocessableEntity, Code: "no_recipients", Pointer: "/recipients",
				Detail: "no recipients source: the trigger names no recipients and the broadcast has no default recipients; " +
					"name them (recipients, ids, emails, per_user_data or data_file_url) or set the broadcast's recipients"}
		}
		pointer := "/recipients"
		if req.Recipients == nil {
			pointer = "" // the broadcast's recipients
		}
		if err := CheckFilter(ctx, s.o.Store, workspaceID, filter, pointer, s.o.Limits.Filter); err != nil {
			return nil, err
		}
	}
	if req.DryRun {
		dr, err := s.o.Engine.DryRun(ctx, b, req)
		if err != nil {
			return nil, err
		}
		return &TriggerResult{DryRun: dr}, nil
	}
	var unresolved []string
	if listed {
		if unresolved, err = s.unresolved(ctx, b, req); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	t := store.Trigger{WorkspaceID: workspaceID, BroadcastID: b.ID, Request: raw, Broadcast: b}
	lim := store.TriggerLimits{Interval: max(s.o.TriggerInterval, 0), MaxOpen: max(s.o.MaxOpenTriggers, 0), Now: s.o.Now()}
	err = s.o.Store.WithTx(ctx, func(tx store.Store) error {
		if err := tx.CreateTrigger(ctx, &t, lim); err != nil {
			return err
		}
		if len(unresolved) > 0 {
			return tx.FailTrigger(ctx, t.ID, "recipients could not be resolved", unresolved, s.o.Now())
		}
		return Enqueue(ctx, tx, t)
	})
	if err != nil {
		return nil, err
	}
	if len(unresolved) > 0 {
		return nil, &RecipientsError{TriggerID: t.ID, Pointer: "/" + listField(req), Count: len(unresolved)}
	}
	if s.o.Jobs != nil {
		s.o.Jobs.Notify()
	}
	return &TriggerResult{Trigger: &t}, nil
}

// unresolved lists the error lines of a listed trigger's recipients.
func (s *Service) unresolved(ctx context.Context, b store.Broadcast, req *TriggerRequest) ([]string, error) {
	src, err := newListSource(resolver{st: s.o.Store, ws: b.WorkspaceID, req: req}, req, "", 1000)
	if err != nil {
		return nil, err
	}
	var errs []string
	for {
		bt, err := src.next(ctx)
		if err != nil {
			return nil, err
		}
		errs = append(errs, bt.errs...)
		if bt.done {
			return errs, nil
		}
	}
}

func listField(req *TriggerRequest) string {
	switch {
	case len(req.IDs) > 0:
		return "ids"
	case len(req.Emails) > 0:
		return "emails"
	}
	return "per_user_data"
}

// CreateBroadcast stores a new, inactive broadcast from an API body.
func (s *Service) CreateBroadcast(ctx context.Context, workspaceID string, body []byte) (store.Broadcast, error) {
	b := store.Broadcast{WorkspaceID: workspaceID}
	if err := ParseBroadcast(body, s.o.Limits.Filter, &b); err != nil {
		return b, err
	}
	if err := s.checkBroadcast(ctx, &b); err != nil {
		return b, err
	}
	if err := s.o.Store.CreateBroadcast(ctx, &b); err != nil {
		return b, nameConflict(err, b.Name)
	}
	return b, nil
}

// UpdateBroadcast replaces a broadcast's definition. An active broadcast
// stays active, so it must pass review; triggers already made keep the
// broadcast as it was.
func (s *Service) UpdateBroadcast(ctx context.Context, workspaceID string, id int64, body []byte) (store.Broadcast, error) {
	b, err := s.o.Store.GetBroadcast(ctx, workspaceID, id)
	if err != nil {
		return b, err
	}
	if err := ParseBroadcast(body, s.o.Limits.Filter, &b); err != nil {
		return b, err
	}
	if err := s.checkBroadcast(ctx, &b); err != nil {
		return b, err
	}
	if b.Active {
		if err := s.review(ctx, b); err != nil {
			return b, err
		}
	}
	if err := s.o.Store.UpdateBroadcast(ctx, &b); err != nil {
		return b, nameConflict(err, b.Name)
	}
	return b, nil
}

// checkBroadcast resolves a parsed broadcast's channels and checks its
// recipients with their segments expanded.
func (s *Service) checkBroadcast(ctx context.Context, b *store.Broadcast) error {
	if err := ResolveChannels(ctx, s.o.Store, b); err != nil {
		return err
	}
	if b.Recipients == nil {
		return nil
	}
	err := CheckFilter(ctx, s.o.Store, b.WorkspaceID, b.Recipients, "/recipients", s.o.Limits.Filter)
	if fe := (*FieldError)(nil); errors.As(err, &fe) && fe.Code == "unknown_segment" {
		return nil // an inactive broadcast may name one; Review reports it at activation
	}
	return err
}

func nameConflict(err error, name string) error {
	if errors.Is(err, store.ErrConflict) {
		return &FieldError{Status: http.StatusConflict, Code: "name_taken", Pointer: "/name",
			Detail: fmt.Sprintf("a broadcast named %q exists already", name)}
	}
	return err
}

func (s *Service) review(ctx context.Context, b store.Broadcast) error {
	probs, err := Review(ctx, s.o.Store, s.o.Bots, s.o.Templates, b)
	if err != nil {
		return err
	}
	if len(probs) > 0 {
		return &NeedsFixing{Problems: probs}
	}
	return nil
}

// SetActive activates a broadcast after its review passes, or deactivates
// it.
func (s *Service) SetActive(ctx context.Context, workspaceID string, id int64, active bool) (store.Broadcast, error) {
	b, err := s.o.Store.GetBroadcast(ctx, workspaceID, id)
	if err != nil {
		return b, err
	}
	if active {
		if err := s.review(ctx, b); err != nil {
			return b, err
		}
	}
	b.Active = active
	return b, s.o.Store.UpdateBroadcast(ctx, &b)
}

// Duplicate copies a broadcast into a new inactive one named "[COPY]
// <name>" (with a number when that name is taken).
func (s *Service) Duplicate(ctx context.Context, workspaceID string, id int64) (store.Broadcast, error) {
	b, err := s.o.Store.GetBroadcast(ctx, workspaceID, id)
	if err != nil {
		return b, err
	}
	base := "[COPY] " + b.Name
	b.ID, b.Active = 0, false
	for n := 1; ; n++ {
		b.Name = base
		if n > 1 {
			b.Name = fmt.Sprintf("%s (%d)", base, n)
		}
		err := s.o.Store.CreateBroadcast(ctx, &b)
		if !errors.Is(err, store.ErrConflict) || n == 100 {
			return b, err
		}
	}
}
