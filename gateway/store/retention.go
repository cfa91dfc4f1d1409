package store

import (
	"context"
	"time"
)

// RetentionKind names a kind of record the cleaner deletes when it is
// older than its retention.
type RetentionKind string

// What the cleaner deletes, and from when each record's age counts.
const (
	// RetainFailedJobs: jobs that gave up (completed jobs are deleted when
	// they complete), from their last run.
	RetainFailedJobs RetentionKind = "failed_jobs"
	// RetainSeenEvents: platform event ids kept to drop platform retries,
	// from when the event arrived.
	RetainSeenEvents RetentionKind = "seen_events"
	// RetainSentDeliveries: final deliveries other than failed ones (sent,
	// delivered, skipped), from their last update.
	RetainSentDeliveries RetentionKind = "sent_deliveries"
	// RetainFailedDeliveries: failed deliveries, from their last update.
	RetainFailedDeliveries RetentionKind = "failed_deliveries"
	// RetainMessages: conversation messages (of open conversations too),
	// from when they were stored.
	RetainMessages RetentionKind = "messages"
	// RetainClosedConversations: closed conversations with their memory
	// and remaining messages, from when they closed.
	RetainClosedConversations RetentionKind = "closed_conversations"
	// RetainTriggers: processed or failed group triggers with their error
	// lines, from when they finished.
	RetainTriggers RetentionKind = "triggers"
	// RetainFlowTriggers: flow_trigger requests whose flow ran or failed,
	// from when they were accepted.
	RetainFlowTriggers RetentionKind = "flow_triggers"
)

// RetentionKinds lists every kind, in the order a cleaner prunes them
// (messages before the conversations that cascade to them).
var RetentionKinds = []RetentionKind{
	RetainFailedJobs, RetainSeenEvents, RetainSentDeliveries, RetainFailedDeliveries,
	RetainMessages, RetainClosedConversations, RetainTriggers, RetainFlowTriggers,
}

// Retention deletes old records, for the cleaner.
type Retention interface {
	// Prune deletes up to limit records of kind older than before, oldest
	// first, in one short transaction, and returns how many it deleted.
	// Records still in use (pending deliveries and jobs, open
	// conversations, queued or running triggers and requests) are never
	// deleted. Fewer than limit means none older is left.
	Prune(ctx context.Context, kind RetentionKind, before time.Time, limit int) (int, error)
	// TakeCleanerLease makes holder the one cleaner of the database until
	// now+lease, and reports whether it is: false while another holder's
	// lease runs. The holder renews it by taking it again.
	TakeCleanerLease(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error)
	// ReleaseCleanerLease ends holder's lease, if it holds it.
	ReleaseCleanerLease(ctx context.Context, holder string) error
}
