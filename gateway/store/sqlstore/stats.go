package sqlstore

import (
	"context"
	"database/sql"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// QueueStats counts pending and running jobs by kind, through the partial
// indexes that hold only those rows.
func (s *Store) QueueStats(ctx context.Context) ([]store.QueueStat, error) {
	return list(ctx, s, "queue stats", func(r scanner) (store.QueueStat, error) {
		var q store.QueueStat
		var oldest sql.NullInt64
		err := r.Scan(&q.Kind, &q.Pending, &q.Running, &oldest)
		q.OldestDue = fromMicros(oldest.Int64)
		return q, err
	}, `SELECT kind,
			SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),
			SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END),
			MIN(CASE WHEN status = 'pending' THEN run_at END)
		FROM jobs WHERE status IN ('pending', 'running') GROUP BY kind ORDER BY kind`)
}

// OutboxStats counts pending deliveries by channel and status.
func (s *Store) OutboxStats(ctx context.Context) ([]store.OutboxStat, error) {
	return list(ctx, s, "outbox stats", func(r scanner) (store.OutboxStat, error) {
		var o store.OutboxStat
		var status string
		err := r.Scan(&o.ChannelID, &status, &o.Count)
		o.Status = store.DeliveryStatus(status)
		return o, err
	}, `SELECT channel_id, status, COUNT(*) FROM deliveries WHERE pending = 1
		GROUP BY channel_id, status ORDER BY channel_id, status`)
}
