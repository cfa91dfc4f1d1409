package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Job rows are pending, running (run_at is then the lease deadline) or
// failed; a completed job is deleted.

const jobCols = `id, kind, key, payload, attempts, run_at, last_error, created_at`

func scanJob(r scanner) (store.Job, error) {
	var j store.Job
	var payload jsonCol
	var runAt, created int64
	err := r.Scan(&j.ID, &j.Kind, &j.Key, &payload, &j.Attempts, &runAt, &j.LastError, &created)
	j.Payload = []byte(payload)
	j.RunAt, j.CreatedAt = fromMicros(runAt), fromMicros(created)
	return j, err
}

// EnqueueJob stores a pending job and fills in ID, CreatedAt and a zero
// RunAt (now).
func (s *Store) EnqueueJob(ctx context.Context, j *store.Job) error {
	payload, err := rawJSON(j.Payload)
	if err != nil {
		return fmt.Errorf("enqueue job %s: %w", j.Kind, err)
	}
	now := s.now()
	if j.RunAt.IsZero() {
		j.RunAt = now
	}
	j.CreatedAt, j.Attempts, j.LastError = now, 0, ""
	err = s.writer.QueryRowContext(ctx, s.d.rebind(`INSERT INTO jobs
		(kind, key, payload, status, attempts, run_at, last_error, created_at)
		VALUES (?, ?, ?, 'pending', 0, ?, '', ?) RETURNING id`),
		j.Kind, j.Key, payload, micros(j.RunAt), micros(now)).Scan(&j.ID)
	if err != nil {
		return fmt.Errorf("enqueue job %s: %w", j.Kind, s.d.mapErr(err))
	}
	return nil
}

// ClaimJobs leases up to limit due jobs (earliest due first) and returns
// them in id order, with Attempts counting this run and RunAt set to the
// lease deadline. A job whose lease ran out is due again. A keyed job waits
// while an older job with its key is pending or running.
func (s *Store) ClaimJobs(ctx context.Context, limit int, lease time.Duration, now time.Time) ([]store.Job, error) {
	if lease <= 0 {
		lease = time.Minute
	}
	if now.IsZero() {
		now = s.now()
	}
	rows, err := s.queryWrite(ctx, true, `WITH picked AS MATERIALIZED (
			SELECT j.id FROM jobs j
			WHERE j.status IN ('pending', 'running') AND j.run_at <= ?
			AND (j.key = '' OR NOT EXISTS (
				SELECT 1 FROM jobs o
				WHERE o.key = j.key AND o.status IN ('pending', 'running') AND o.key <> '' AND o.id < j.id))
			ORDER BY j.run_at, j.id`+claimLimit(limit)+s.d.lockSkipLocked()+`)
		UPDATE jobs SET status = 'running', run_at = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM picked)
		RETURNING `+jobCols,
		micros(now), micros(now.Add(lease)))
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	js, err := collect(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	slices.SortFunc(js, func(a, b store.Job) int { return cmp.Compare(a.ID, b.ID) })
	return js, nil
}

// CompleteJob deletes the finished job.
func (s *Store) CompleteJob(ctx context.Context, id int64) error {
	n, err := s.execCount(ctx, `DELETE FROM jobs WHERE id = ?`, id)
	return notFoundIfNone(n, err, fmt.Sprintf("complete job %d", id))
}

// RetryJob makes the job pending again at runAt.
func (s *Store) RetryJob(ctx context.Context, id int64, errText string, runAt time.Time) error {
	n, err := s.execCount(ctx, `UPDATE jobs SET status = 'pending', run_at = ?, last_error = ? WHERE id = ?`,
		micros(runAt), errText, id)
	return notFoundIfNone(n, err, fmt.Sprintf("retry job %d", id))
}

// FailJob keeps the job as failed, which also releases its key.
func (s *Store) FailJob(ctx context.Context, id int64, errText string) error {
	n, err := s.execCount(ctx, `UPDATE jobs SET status = 'failed', last_error = ? WHERE id = ?`, errText, id)
	return notFoundIfNone(n, err, fmt.Sprintf("fail job %d", id))
}
