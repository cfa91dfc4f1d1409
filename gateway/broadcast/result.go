package broadcast

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Status is a request's overall outcome.
type Status string

// Request outcomes, from the request and its deliveries.
const (
	StatusQueued Status = "queued" // accepted; the flow has not run yet
	// StatusSending: the flow ran; messages are being sent, or, Reason
	// awaiting_ack, are written to a web chat user's connection that has
	// not acknowledged them yet.
	StatusSending Status = "sending"
	// StatusRetrying: a message failed transiently and will be retried;
	// Reason says why (rate_limited, plugin_down, transient_error, …).
	StatusRetrying Status = "retrying"
	// StatusPendingConnection: the user is offline on a web chat channel;
	// the messages wait for their next connection.
	StatusPendingConnection Status = "pending_connection"
	StatusDelivered         Status = "delivered" // every message was accepted by the platform
	StatusCompleted         Status = "completed" // the flow ran and sent nothing
	// StatusUnreachable: the channel cannot reach the user (unknown_user,
	// not_connected, bot_blocked). As in CSML, this is no API error.
	StatusUnreachable Status = "unreachable"
	StatusFailed      Status = "failed" // Reason: flow_error, channel_rejected, retries_exhausted, …
)

// unreachable are the failure reasons that mean "cannot reach this user".
var unreachable = map[string]bool{"unknown_user": true, "not_connected": true, "bot_blocked": true}

// Result is a request with its outcome.
type Result struct {
	Trigger  store.FlowTrigger
	Status   Status
	Reason   string
	Messages []store.Delivery
	// DeliveredAt is when the last message was accepted: the latest of
	// the messages' delivered_at, or sent_at for one the platform does
	// not confirm.
	DeliveredAt *time.Time
}

// Result returns the outcome of one of a channel's requests: an unknown
// id is store.ErrNotFound, or *ExpiredError when it is older than the
// retention.
func (s *Service) Result(ctx context.Context, channelID, requestID string) (Result, error) {
	ft, err := s.Store.GetFlowTrigger(ctx, channelID, requestID)
	if errors.Is(err, store.ErrNotFound) {
		// Another channel's expired id says expired too: its time is in
		// the id, nothing else is told.
		if at, ok := requestTime(requestID); ok && s.Retention > 0 && at.Before(s.now().Add(-s.Retention)) {
			return Result{}, &ExpiredError{RequestID: requestID, AcceptedAt: at, Retention: s.Retention}
		}
	}
	if err != nil {
		return Result{}, err
	}
	r := Result{Trigger: ft}
	switch ft.Status {
	case store.FlowTriggerQueued:
		r.Status = StatusQueued
		return r, nil
	case store.FlowTriggerFailed:
		r.Status, r.Reason = StatusFailed, ft.Reason
		return r, nil
	}
	if r.Messages, err = s.Store.ListDeliveriesBySource(ctx, SourceKind, requestID); err != nil {
		return Result{}, err
	}
	r.Status, r.Reason, r.DeliveredAt = summarize(r.Messages)
	return r, nil
}

// summarize folds deliveries into one status: the worst final outcome
// wins, then anything still pending; all accepted is delivered.
func summarize(ds []store.Delivery) (Status, string, *time.Time) {
	if len(ds) == 0 {
		return StatusCompleted, "", nil
	}
	var pending, unacked, retrying, waiting, failed *store.Delivery
	var last *time.Time
	for i := range ds {
		d := &ds[i]
		switch d.Status {
		case store.DeliveryFailed:
			if failed == nil || (unreachable[d.Reason] && !unreachable[failed.Reason]) {
				failed = d
			}
		case store.DeliveryRetrying:
			switch d.Reason {
			case "pending_connection":
				waiting = d
			case "throttled": // paced under the channel's limits: not a failure
				pending = d
			default:
				retrying = d
			}
		case store.DeliveryQueued, store.DeliverySending:
			if d.Reason == "pending_connection" {
				waiting = d
			} else {
				pending = d
			}
		case store.DeliverySent, store.DeliveryDelivered, store.DeliverySkipped:
			// Web chat: in the outbox until a client's ack makes it
			// delivered; the user offline until the next connection, or
			// the message written to a connection.
			switch {
			case d.Status == store.DeliverySent && d.Reason == store.ReasonPendingConnection:
				waiting = d
				continue
			case d.Status == store.DeliverySent && d.Reason == store.ReasonAwaitingAck:
				unacked = d
				continue
			}
			if at := acceptedAt(d); at != nil && (last == nil || at.After(*last)) {
				last = at
			}
		}
	}
	switch {
	case failed != nil && unreachable[failed.Reason]:
		return StatusUnreachable, failed.Reason, nil
	case failed != nil:
		return StatusFailed, failed.Reason, nil
	case retrying != nil:
		return StatusRetrying, retrying.Reason, nil
	case waiting != nil:
		return StatusPendingConnection, "not_connected", nil
	case pending != nil:
		return StatusSending, "", nil
	case unacked != nil:
		return StatusSending, store.ReasonAwaitingAck, nil
	}
	return StatusDelivered, "", last
}

// acceptedAt is when a message reached its user as far as the gateway
// knows: a confirmed delivery (a web chat ack) is later than its send.
func acceptedAt(d *store.Delivery) *time.Time {
	if d.DeliveredAt != nil {
		return d.DeliveredAt
	}
	return d.SentAt
}
