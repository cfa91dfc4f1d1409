package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

var _ store.Retention = (*Store)(nil)

// pruneQueries are the deletes of Prune: each picks the oldest rows of its
// kind through an index that holds only rows it may delete (migration
// 00009, and seen_events_at), so a batch reads what it deletes and no
// more; {limit} is replaced by the batch size, as a literal (see
// claimLimit).
var pruneQueries = map[store.RetentionKind]string{
	store.RetainFailedJobs: `DELETE FROM jobs WHERE id IN (
		SELECT id FROM jobs WHERE status = 'failed' AND run_at < ? ORDER BY run_at`,
	store.RetainSeenEvents: `DELETE FROM seen_events WHERE (channel_id, event_id) IN (
		SELECT channel_id, event_id FROM seen_events WHERE seen_at < ? ORDER BY seen_at`,
	store.RetainSentDeliveries: `DELETE FROM deliveries WHERE id IN (
		SELECT id FROM deliveries WHERE pending = 0 AND updated_at < ? AND status <> 'failed' ORDER BY updated_at`,
	// Sent deliveries are kept for less time than failed ones, so the
	// oldest final rows are failed ones: the walk skips few others.
	store.RetainFailedDeliveries: `DELETE FROM deliveries WHERE id IN (
		SELECT id FROM deliveries WHERE pending = 0 AND updated_at < ? AND status = 'failed' ORDER BY updated_at`,
	store.RetainMessages: `DELETE FROM messages WHERE id IN (
		SELECT id FROM messages WHERE created_at < ? ORDER BY created_at`,
	// Their messages go with them (ON DELETE CASCADE); most are pruned
	// already by age.
	store.RetainClosedConversations: `DELETE FROM conversations WHERE id IN (
		SELECT id FROM conversations WHERE status = 'closed' AND closed_at < ? ORDER BY closed_at`,
	// Their error lines go with them (ON DELETE CASCADE).
	store.RetainTriggers: `DELETE FROM triggers WHERE id IN (
		SELECT id FROM triggers WHERE state IN ('processed', 'failed') AND processed_at < ? ORDER BY processed_at`,
	store.RetainFlowTriggers: `DELETE FROM flow_triggers WHERE request_id IN (
		SELECT request_id FROM flow_triggers WHERE status <> 'queued' AND created_at < ? ORDER BY created_at`,
}

// Prune deletes up to limit of the oldest records of kind older than
// before, in one statement: on SQLite it joins a group commit like any
// other write, and holds the writer for one batch only.
func (s *Store) Prune(ctx context.Context, kind store.RetentionKind, before time.Time, limit int) (int, error) {
	q, ok := pruneQueries[kind]
	if !ok {
		return 0, fmt.Errorf("prune: unknown kind %q", kind)
	}
	if limit <= 0 {
		return 0, fmt.Errorf("prune %s: limit must be positive, got %d", kind, limit)
	}
	n, err := s.execCount(ctx, q+` LIMIT `+strconv.Itoa(limit)+`)`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune %s: %w", kind, err)
	}
	return n, nil
}

// cleanerLease is the name of the cleaner's row in cleaner_leases.
const cleanerLease = "cleaner"

// TakeCleanerLease takes or renews the cleaner's lease: the row is written
// when it is new, holder's own, or run out; otherwise nothing changes and
// another node is the cleaner. On PostgreSQL a concurrent taker waits for
// the row and then tests the committed lease, so two nodes never both
// win.
func (s *Store) TakeCleanerLease(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error) {
	n, err := s.execCount(ctx, `INSERT INTO cleaner_leases (name, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
		WHERE cleaner_leases.holder = excluded.holder OR cleaner_leases.until <= ?`,
		cleanerLease, holder, micros(now.Add(lease)), micros(now))
	if err != nil {
		return false, fmt.Errorf("take cleaner lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseCleanerLease ends holder's lease, so another node may clean at
// once.
func (s *Store) ReleaseCleanerLease(ctx context.Context, holder string) error {
	if _, err := s.exec(ctx, `DELETE FROM cleaner_leases WHERE name = ? AND holder = ?`, cleanerLease, holder); err != nil {
		return fmt.Errorf("release cleaner lease: %w", err)
	}
	return nil
}
