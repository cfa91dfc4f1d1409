package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Job rows are pending, running (claimed_by names the node running it,
// run_at is when it was claimed) or failed; a completed job is deleted.

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

// ClaimJobs claims up to o.Limit due pending jobs for o.Node (earliest due
// first) and returns them in id order, with Attempts counting this run and
// RunAt the claim time. A keyed job waits while an older job with its key
// is pending or running.
//
// The key check is a probe for the oldest live job of the key (one index
// descent on jobs_key per candidate), not an anti-join: a planner without
// statistics cannot turn it into a scan of every pending job per
// candidate.
func (s *Store) ClaimJobs(ctx context.Context, o store.JobClaimOptions) ([]store.Job, error) {
	if o.Now.IsZero() {
		o.Now = s.now()
	}
	js, err := claimRows(ctx, s, scanJob, `WITH picked AS MATERIALIZED (
			SELECT j.id FROM jobs j
			WHERE j.status = 'pending' AND j.run_at <= ?
			AND (j.key = '' OR j.id = (
				SELECT k.id FROM jobs k
				WHERE k.key = j.key AND k.status IN ('pending', 'running') AND k.key <> ''
				ORDER BY k.key, k.id LIMIT 1))
			ORDER BY j.run_at, j.id`+claimLimit(o.Limit)+s.d.lockSkipLocked()+`)
		UPDATE jobs SET status = 'running', run_at = ?, attempts = attempts + 1, claimed_by = ?
		WHERE id IN (SELECT id FROM picked)
		RETURNING `+jobCols,
		micros(o.Now), micros(o.Now), o.Node)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	slices.SortFunc(js, func(a, b store.Job) int { return cmp.Compare(a.ID, b.ID) })
	return js, nil
}

// runningJob is the fence of every change to a claimed job: the attempt
// that ran it must still be the job's latest claim.
const runningJob = ` WHERE id = ? AND attempts = ? AND status = 'running'`

// CompleteJob deletes the finished job.
func (s *Store) CompleteJob(ctx context.Context, id int64, attempt int) error {
	n, err := s.execCount(ctx, `DELETE FROM jobs`+runningJob, id, attempt)
	return lostIfNone(n, err, fmt.Sprintf("complete job %d attempt %d", id, attempt))
}

// RetryJob makes the job pending again at runAt.
func (s *Store) RetryJob(ctx context.Context, id int64, attempt int, errText string, runAt time.Time) error {
	n, err := s.execCount(ctx, `UPDATE jobs SET status = 'pending', claimed_by = '', run_at = ?, last_error = ?`+runningJob,
		micros(runAt), errText, id, attempt)
	return lostIfNone(n, err, fmt.Sprintf("retry job %d attempt %d", id, attempt))
}

// FailJob keeps the job as failed, which also releases its key.
func (s *Store) FailJob(ctx context.Context, id int64, attempt int, errText string) error {
	n, err := s.execCount(ctx, `UPDATE jobs SET status = 'failed', claimed_by = '', last_error = ?`+runningJob,
		errText, id, attempt)
	return lostIfNone(n, err, fmt.Sprintf("fail job %d attempt %d", id, attempt))
}

// lostIfNone turns "no row affected" into store.ErrClaimLost.
func lostIfNone(n int, err error, what string) error { return noneIs(store.ErrClaimLost, n, err, what) }
