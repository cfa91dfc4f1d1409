package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// StartNode takes node id's lease and releases what an earlier process
// under that id held, in one transaction: a restarted node gets its own
// work back at once instead of after its old lease.
func (s *Store) StartNode(ctx context.Context, id string, now time.Time, lease time.Duration) (store.Released, error) {
	var rel store.Released
	err := s.tx(ctx, func(tx *Store) error {
		if _, err := tx.exec(ctx, `INSERT INTO nodes (id, lease_until, started_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until, started_at = excluded.started_at`,
			id, micros(now.Add(lease)), micros(now)); err != nil {
			return err
		}
		var err error
		rel, err = tx.release(ctx, []string{id}, now, "its node restarted while it ran")
		return err
	})
	if err != nil {
		return store.Released{}, fmt.Errorf("start node %s: %w", id, err)
	}
	return rel, nil
}

// RenewNode extends node id's lease. The update and a rescuer's delete of
// an expired lease touch the same row, so they serialize: either the
// renewal lands first and the rescuer no longer sees the lease expired, or
// the rescue lands first and the renewal finds no row (ErrClaimLost).
func (s *Store) RenewNode(ctx context.Context, id string, now time.Time, lease time.Duration) error {
	n, err := s.execCount(ctx, `UPDATE nodes SET lease_until = ? WHERE id = ?`, micros(now.Add(lease)), id)
	return lostIfNone(n, err, "renew node "+id)
}

// RescueExpiredNodes forgets the nodes whose lease ran out and releases
// their claims, in one transaction.
func (s *Store) RescueExpiredNodes(ctx context.Context, self string, now time.Time) (store.Released, error) {
	var rel store.Released
	err := s.tx(ctx, func(tx *Store) error {
		rows, err := tx.queryWrite(ctx, false, `DELETE FROM nodes WHERE lease_until < ? AND id <> ? RETURNING id`, micros(now), self)
		if err != nil {
			return err
		}
		ids, err := collect(rows, func(r scanner) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		rel, err = tx.release(ctx, ids, now, "its node stopped renewing its lease while it ran")
		rel.Nodes = ids
		return err
	})
	if err != nil {
		return store.Released{}, fmt.Errorf("rescue expired nodes: %w", err)
	}
	return rel, nil
}

// StopNode releases the node's claims and forgets its lease.
func (s *Store) StopNode(ctx context.Context, id string) (store.Released, error) {
	var rel store.Released
	err := s.tx(ctx, func(tx *Store) error {
		if _, err := tx.exec(ctx, `DELETE FROM nodes WHERE id = ?`, id); err != nil {
			return err
		}
		var err error
		rel, err = tx.release(ctx, []string{id}, s.now(), "its node stopped while it ran")
		return err
	})
	if err != nil {
		return store.Released{}, fmt.Errorf("stop node %s: %w", id, err)
	}
	return rel, nil
}

// ReleaseOrphans releases node's claims made before before.
func (s *Store) ReleaseOrphans(ctx context.Context, node string, before time.Time, jobs, deliveries bool) (store.Released, error) {
	var rel store.Released
	err := s.tx(ctx, func(tx *Store) error {
		var err error
		rel, err = tx.releaseWhere(ctx, node, s.now(), "its claim's answer was lost", micros(before), jobs, deliveries)
		return err
	})
	if err != nil {
		return store.Released{}, fmt.Errorf("release orphaned claims of %s: %w", node, err)
	}
	return rel, nil
}

// release makes the jobs and deliveries held by nodes claimable again, due
// now. A released job keeps the attempt it used (so a job that keeps
// killing its node runs out of attempts); a released delivery does not
// count one, since its send may never have started.
func (s *Store) release(ctx context.Context, nodes []string, now time.Time, why string) (store.Released, error) {
	var rel store.Released
	for _, id := range nodes {
		r, err := s.releaseWhere(ctx, id, now, why, math.MaxInt64, true, true)
		if err != nil {
			return rel, err
		}
		rel.Jobs += r.Jobs
		rel.Deliveries += r.Deliveries
	}
	return rel, nil
}

// releaseWhere releases node's jobs and deliveries claimed before before
// (micros; a claimed row's run_at or next_attempt_at is its claim time).
func (s *Store) releaseWhere(ctx context.Context, node string, now time.Time, why string, before int64, jobs, deliveries bool) (store.Released, error) {
	var rel store.Released
	if jobs {
		n, err := s.execCount(ctx, `UPDATE jobs SET status = 'pending', claimed_by = '', run_at = ?,
			last_error = ? WHERE status = 'running' AND claimed_by = ? AND run_at < ?`, micros(now), why, node, before)
		if err != nil {
			return rel, err
		}
		rel.Jobs = n
	}
	if deliveries {
		n, err := s.execCount(ctx, `UPDATE deliveries SET
			status = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'queued' END,
			claimed_by = '', next_attempt_at = ?, updated_at = ?
			WHERE pending = 1 AND status = 'sending' AND claimed_by = ? AND next_attempt_at < ?`, micros(now), micros(now), node, before)
		if err != nil {
			return rel, err
		}
		rel.Deliveries = n
	}
	return rel, nil
}

// ListNodes lists the nodes table.
func (s *Store) ListNodes(ctx context.Context) ([]store.Node, error) {
	return list(ctx, s, "list nodes", func(r scanner) (store.Node, error) {
		var n store.Node
		var until, started int64
		err := r.Scan(&n.ID, &until, &started)
		n.LeaseUntil, n.StartedAt = fromMicros(until), fromMicros(started)
		return n, err
	}, `SELECT id, lease_until, started_at FROM nodes ORDER BY id`)
}
