package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// nullJSON encodes an optional document; nil is NULL.
func nullJSON[T any](v *T) (sql.NullString, error) {
	if v == nil {
		return sql.NullString{}, nil
	}
	s, err := toJSON(v)
	return sql.NullString{String: s, Valid: true}, err
}

// fromNullJSON decodes an optional document; NULL is nil.
func fromNullJSON[T any](j jsonCol) (*T, error) {
	if len(j) == 0 {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(j, v); err != nil {
		return nil, err
	}
	return v, nil
}

// --- segments ---

const segmentCols = `id, workspace_id, name, description, filter, created_at, updated_at`

func scanSegment(r scanner) (store.Segment, error) {
	var sg store.Segment
	var filter jsonCol
	var created, updated int64
	if err := r.Scan(&sg.ID, &sg.WorkspaceID, &sg.Name, &sg.Description, &filter, &created, &updated); err != nil {
		return sg, err
	}
	sg.CreatedAt, sg.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	sg.Filter, err = fromNullJSON[store.Filter](filter)
	return sg, err
}

// CreateSegment stores a new segment.
func (s *Store) CreateSegment(ctx context.Context, sg *store.Segment) error {
	filter, err := nullJSON(sg.Filter)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	now := s.now()
	err = s.writer.QueryRowContext(ctx, s.d.rebind(`INSERT INTO segments
		(workspace_id, name, description, filter, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		sg.WorkspaceID, sg.Name, sg.Description, filter, micros(now), micros(now)).Scan(&sg.ID)
	if err != nil {
		return fmt.Errorf("create segment %q: %w", sg.Name, s.d.mapErr(err))
	}
	sg.CreatedAt, sg.UpdatedAt = now, now
	return nil
}

// UpdateSegment replaces a segment's name, description and filter.
func (s *Store) UpdateSegment(ctx context.Context, sg store.Segment) error {
	filter, err := nullJSON(sg.Filter)
	if err != nil {
		return fmt.Errorf("update segment: %w", err)
	}
	n, err := s.execCount(ctx, `UPDATE segments SET name = ?, description = ?, filter = ?, updated_at = ?
		WHERE workspace_id = ? AND id = ?`, sg.Name, sg.Description, filter, micros(s.now()), sg.WorkspaceID, sg.ID)
	return notFoundIfNone(n, err, fmt.Sprintf("update segment %d", sg.ID))
}

// GetSegment returns one segment of the workspace.
func (s *Store) GetSegment(ctx context.Context, workspaceID string, id int64) (store.Segment, error) {
	return getOne(ctx, s, fmt.Sprintf("get segment %d", id), scanSegment,
		`SELECT `+segmentCols+` FROM segments WHERE workspace_id = ? AND id = ?`, workspaceID, id)
}

// GetSegmentByName returns the workspace's segment of that name.
func (s *Store) GetSegmentByName(ctx context.Context, workspaceID, name string) (store.Segment, error) {
	return getOne(ctx, s, fmt.Sprintf("get segment %q", name), scanSegment,
		`SELECT `+segmentCols+` FROM segments WHERE workspace_id = ? AND name = ?`, workspaceID, name)
}

// ListSegments lists the workspace's segments by id.
func (s *Store) ListSegments(ctx context.Context, workspaceID string) ([]store.Segment, error) {
	return list(ctx, s, "list segments", scanSegment,
		`SELECT `+segmentCols+` FROM segments WHERE workspace_id = ? ORDER BY id`, workspaceID)
}

// DeleteSegment deletes a segment and its memberships.
func (s *Store) DeleteSegment(ctx context.Context, workspaceID string, id int64) error {
	n, err := s.execCount(ctx, `DELETE FROM segments WHERE workspace_id = ? AND id = ?`, workspaceID, id)
	return notFoundIfNone(n, err, fmt.Sprintf("delete segment %d", id))
}

// AddSegmentMembers adds people to a manual segment in batches; ids of
// people that do not exist are returned instead.
func (s *Store) AddSegmentMembers(ctx context.Context, workspaceID string, segmentID int64, personIDs []string) ([]string, error) {
	var missing []string
	err := s.tx(ctx, func(tx *Store) error {
		sg, err := tx.GetSegment(ctx, workspaceID, segmentID)
		if err != nil {
			return err
		}
		if sg.Filter != nil {
			return fmt.Errorf("segment %d is defined by a filter: %w", segmentID, store.ErrConflict)
		}
		for start := 0; start < len(personIDs); start += batchRows {
			chunk := personIDs[start:min(start+batchRows, len(personIDs))]
			args := []any{segmentID}
			for _, id := range chunk {
				args = append(args, id)
			}
			args = append(args, workspaceID)
			// Selecting from people skips unknown ids instead of failing
			// the batch on the foreign key.
			rows, err := tx.queryWrite(ctx, false, `INSERT INTO segment_members (segment_id, workspace_id, person_id)
				SELECT CAST(? AS BIGINT), p.workspace_id, p.id FROM people p
				WHERE p.id IN (`+params(len(chunk))+`) AND p.workspace_id = ?
				ON CONFLICT (segment_id, person_id) DO NOTHING RETURNING person_id`, args...)
			if err != nil {
				return err
			}
			added, err := collect(rows, scanString)
			if err != nil {
				return err
			}
			// Already-members are not returned by RETURNING either.
			if len(added) < len(chunk) {
				m, err := tx.missingPeople(ctx, workspaceID, chunk)
				if err != nil {
					return err
				}
				missing = append(missing, m...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add segment members: %w", err)
	}
	return missing, nil
}

// missingPeople returns the ids among ids with no person.
func (s *Store) missingPeople(ctx context.Context, workspaceID string, ids []string) ([]string, error) {
	args := []any{workspaceID}
	for _, id := range ids {
		args = append(args, id)
	}
	found, err := list(ctx, s, "find people", scanString,
		`SELECT id FROM people WHERE workspace_id = ? AND id IN (`+params(len(ids))+`)`, args...)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(found))
	for _, id := range found {
		have[id] = true
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// RemoveSegmentMembers removes people from a manual segment.
func (s *Store) RemoveSegmentMembers(ctx context.Context, workspaceID string, segmentID int64, personIDs []string) error {
	err := s.tx(ctx, func(tx *Store) error {
		if _, err := tx.GetSegment(ctx, workspaceID, segmentID); err != nil {
			return err
		}
		for start := 0; start < len(personIDs); start += batchRows {
			chunk := personIDs[start:min(start+batchRows, len(personIDs))]
			args := []any{segmentID}
			for _, id := range chunk {
				args = append(args, id)
			}
			if _, err := tx.exec(ctx, `DELETE FROM segment_members WHERE segment_id = ? AND person_id IN (`+
				params(len(chunk))+`)`, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove segment members: %w", err)
	}
	return nil
}

// --- broadcasts ---

const broadcastCols = `id, workspace_id, name, description, active, recipients, actions, goal, created_at, updated_at`

func scanBroadcast(r scanner) (store.Broadcast, error) {
	var b store.Broadcast
	var recipients, actions, goal jsonCol
	var created, updated int64
	if err := r.Scan(&b.ID, &b.WorkspaceID, &b.Name, &b.Description, &b.Active, &recipients, &actions, &goal,
		&created, &updated); err != nil {
		return b, err
	}
	b.CreatedAt, b.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	if b.Recipients, err = fromNullJSON[store.Filter](recipients); err != nil {
		return b, err
	}
	if b.Goal, err = fromNullJSON[store.Goal](goal); err != nil {
		return b, err
	}
	return b, actions.into(&b.Actions)
}

// broadcastDocs encodes a broadcast's JSON columns.
func broadcastDocs(b *store.Broadcast) (recipients sql.NullString, actions string, goal sql.NullString, err error) {
	if recipients, err = nullJSON(b.Recipients); err != nil {
		return
	}
	if goal, err = nullJSON(b.Goal); err != nil {
		return
	}
	acts := b.Actions
	if acts == nil {
		acts = []store.BroadcastAction{}
	}
	actions, err = toJSON(acts)
	return
}

// CreateBroadcast stores a new broadcast.
func (s *Store) CreateBroadcast(ctx context.Context, b *store.Broadcast) error {
	recipients, actions, goal, err := broadcastDocs(b)
	if err != nil {
		return fmt.Errorf("create broadcast: %w", err)
	}
	now := s.now()
	err = s.writer.QueryRowContext(ctx, s.d.rebind(`INSERT INTO broadcasts
		(workspace_id, name, description, active, recipients, actions, goal, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		b.WorkspaceID, b.Name, b.Description, b.Active, recipients, actions, goal, micros(now), micros(now)).Scan(&b.ID)
	if err != nil {
		return fmt.Errorf("create broadcast %q: %w", b.Name, s.d.mapErr(err))
	}
	b.CreatedAt, b.UpdatedAt = now, now
	return nil
}

// UpdateBroadcast replaces everything but the id, workspace and creation
// time, and fills in UpdatedAt.
func (s *Store) UpdateBroadcast(ctx context.Context, b *store.Broadcast) error {
	recipients, actions, goal, err := broadcastDocs(b)
	if err != nil {
		return fmt.Errorf("update broadcast: %w", err)
	}
	now := s.now()
	n, err := s.execCount(ctx, `UPDATE broadcasts SET name = ?, description = ?, active = ?, recipients = ?,
		actions = ?, goal = ?, updated_at = ? WHERE workspace_id = ? AND id = ?`,
		b.Name, b.Description, b.Active, recipients, actions, goal, micros(now), b.WorkspaceID, b.ID)
	if err := notFoundIfNone(n, err, fmt.Sprintf("update broadcast %d", b.ID)); err != nil {
		return err
	}
	b.UpdatedAt = now
	return nil
}

// GetBroadcast returns one broadcast of the workspace.
func (s *Store) GetBroadcast(ctx context.Context, workspaceID string, id int64) (store.Broadcast, error) {
	return getOne(ctx, s, fmt.Sprintf("get broadcast %d", id), scanBroadcast,
		`SELECT `+broadcastCols+` FROM broadcasts WHERE workspace_id = ? AND id = ?`, workspaceID, id)
}

// GetBroadcastByID returns a broadcast of any workspace.
func (s *Store) GetBroadcastByID(ctx context.Context, id int64) (store.Broadcast, error) {
	return getOne(ctx, s, fmt.Sprintf("get broadcast %d", id), scanBroadcast,
		`SELECT `+broadcastCols+` FROM broadcasts WHERE id = ?`, id)
}

// GetBroadcastByName returns the workspace's broadcast of that name.
func (s *Store) GetBroadcastByName(ctx context.Context, workspaceID, name string) (store.Broadcast, error) {
	return getOne(ctx, s, fmt.Sprintf("get broadcast %q", name), scanBroadcast,
		`SELECT `+broadcastCols+` FROM broadcasts WHERE workspace_id = ? AND name = ?`, workspaceID, name)
}

// ListBroadcasts lists the workspace's broadcasts by id.
func (s *Store) ListBroadcasts(ctx context.Context, workspaceID string) ([]store.Broadcast, error) {
	return list(ctx, s, "list broadcasts", scanBroadcast,
		`SELECT `+broadcastCols+` FROM broadcasts WHERE workspace_id = ? ORDER BY id`, workspaceID)
}

// --- triggers ---

const triggerCols = `id, workspace_id, broadcast_id, state, request, broadcast, cursor, steps, matched, flows,
	action_counts, errors, error, created_at, processed_at`

func scanTrigger(r scanner) (store.Trigger, error) {
	var t store.Trigger
	var state string
	var request, snapshot, tallies jsonCol
	var created int64
	var processed sql.NullInt64
	if err := r.Scan(&t.ID, &t.WorkspaceID, &t.BroadcastID, &state, &request, &snapshot, &t.Cursor, &t.Steps,
		&t.Matched, &t.Flows, &tallies, &t.Errors, &t.Error, &created, &processed); err != nil {
		return t, err
	}
	t.State = store.TriggerState(state)
	t.Request = json.RawMessage(request)
	t.CreatedAt, t.ProcessedAt = fromMicros(created), fromNullMicros(processed)
	if err := tallies.into(&t.Actions); err != nil {
		return t, err
	}
	return t, snapshot.into(&t.Broadcast)
}

// CreateTrigger stores a queued trigger after checking the limits in the
// same transaction. On PostgreSQL the workspace row is locked first, so
// concurrent triggers of one workspace check the limits one at a time;
// SQLite's single writer serializes them anyway.
func (s *Store) CreateTrigger(ctx context.Context, t *store.Trigger, lim store.TriggerLimits) error {
	request, err := rawJSON(t.Request)
	if err != nil {
		return fmt.Errorf("create trigger: %w", err)
	}
	snapshot, err := toJSON(t.Broadcast)
	if err != nil {
		return fmt.Errorf("create trigger: %w", err)
	}
	now := lim.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.UTC().Truncate(time.Microsecond)
	err = s.tx(ctx, func(tx *Store) error {
		if _, err := getOne(ctx, tx, "workspace "+t.WorkspaceID, scanString,
			`SELECT id FROM workspaces WHERE id = ?`+tx.d.lockForUpdate(), t.WorkspaceID); err != nil {
			return err
		}
		if lim.Interval > 0 {
			var last sql.NullInt64
			if err := tx.reader.QueryRowContext(ctx, tx.d.rebind(`SELECT MAX(created_at) FROM triggers WHERE broadcast_id = ?`),
				t.BroadcastID).Scan(&last); err != nil {
				return tx.d.mapErr(err)
			}
			if last.Valid {
				if wait := fromMicros(last.Int64).Add(lim.Interval).Sub(now); wait > 0 {
					return &store.TriggerLimitError{Limit: "interval", RetryAfter: wait}
				}
			}
		}
		if lim.MaxOpen > 0 {
			var open int
			if err := tx.reader.QueryRowContext(ctx, tx.d.rebind(`SELECT COUNT(*) FROM triggers
				WHERE workspace_id = ? AND state IN ('queued', 'running')`), t.WorkspaceID).Scan(&open); err != nil {
				return tx.d.mapErr(err)
			}
			if open >= lim.MaxOpen {
				return &store.TriggerLimitError{Limit: "queue", Max: lim.MaxOpen}
			}
		}
		return tx.writer.QueryRowContext(ctx, tx.d.rebind(`INSERT INTO triggers
			(workspace_id, broadcast_id, state, request, broadcast, cursor, steps, matched, flows, errors, error,
			created_at) VALUES (?, ?, 'queued', ?, ?, '', 0, 0, 0, 0, '', ?) RETURNING id`),
			t.WorkspaceID, t.BroadcastID, request, snapshot, micros(now)).Scan(&t.ID)
	})
	if err != nil {
		var le *store.TriggerLimitError
		if errors.As(err, &le) {
			return err
		}
		return fmt.Errorf("create trigger: %w", s.d.mapErr(err))
	}
	t.State, t.CreatedAt, t.Cursor, t.Steps, t.Matched, t.Flows, t.Errors = store.TriggerQueued, now, "", 0, 0, 0, 0
	return nil
}

// GetTrigger returns one trigger of the workspace.
func (s *Store) GetTrigger(ctx context.Context, workspaceID string, id int64) (store.Trigger, error) {
	return getOne(ctx, s, fmt.Sprintf("get trigger %d", id), scanTrigger,
		`SELECT `+triggerCols+` FROM triggers WHERE workspace_id = ? AND id = ?`, workspaceID, id)
}

// ListTriggers lists a broadcast's triggers, or with broadcastID 0 the
// workspace's, newest first.
func (s *Store) ListTriggers(ctx context.Context, workspaceID string, broadcastID, before int64, limit int) ([]store.Trigger, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	if broadcastID == 0 {
		return list(ctx, s, "list triggers", scanTrigger, `SELECT `+triggerCols+` FROM triggers
			WHERE workspace_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
			workspaceID, before, limitOrDefault(limit))
	}
	return list(ctx, s, "list triggers", scanTrigger, `SELECT `+triggerCols+` FROM triggers
		WHERE workspace_id = ? AND broadcast_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
		workspaceID, broadcastID, before, limitOrDefault(limit))
}

// AdvanceTrigger commits one fan-out step and its error lines.
func (s *Store) AdvanceTrigger(ctx context.Context, st store.TriggerStep) error {
	state := store.TriggerRunning
	var processed sql.NullInt64
	if st.Done {
		state = store.TriggerProcessed
		processed = nullMicros(&st.At)
		if !processed.Valid {
			processed = sql.NullInt64{Int64: micros(s.now()), Valid: true}
		}
	}
	err := s.tx(ctx, func(tx *Store) error {
		// The per-action tallies are read and written back: the steps
		// fence below refuses the write if another step committed between.
		var tallies jsonCol
		if err := tx.reader.QueryRowContext(ctx, tx.d.rebind(`SELECT action_counts FROM triggers WHERE id = ?`),
			st.TriggerID).Scan(&tallies); err != nil {
			return tx.d.mapErr(err)
		}
		var sum []store.ActionTally
		if err := tallies.into(&sum); err != nil {
			return err
		}
		counts, err := toJSON(store.AddTallies(sum, st.Actions))
		if err != nil {
			return err
		}
		rows, err := tx.queryWrite(ctx, false, `UPDATE triggers SET cursor = ?, steps = steps + 1,
			matched = matched + ?, flows = flows + ?, action_counts = ?, errors = errors + ?, state = ?,
			processed_at = COALESCE(?, processed_at)
			WHERE id = ? AND steps = ? AND state IN ('queued', 'running') RETURNING errors`,
			st.Cursor, st.Matched, st.Flows, counts, len(st.Errors), string(state), processed, st.TriggerID, st.Steps)
		if err != nil {
			return err
		}
		total, err := collect(rows, scanInt64)
		if err != nil {
			return err
		}
		if len(total) == 0 {
			return fmt.Errorf("trigger %d is not at step %d or not running: %w", st.TriggerID, st.Steps, store.ErrConflict)
		}
		return tx.insertTriggerErrors(ctx, st.TriggerID, total[0]-int64(len(st.Errors)), st.Errors)
	})
	if err != nil {
		return fmt.Errorf("advance trigger %d: %w", st.TriggerID, err)
	}
	return nil
}

// FailTrigger ends an open trigger as failed.
func (s *Store) FailTrigger(ctx context.Context, id int64, reason string, errs []string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	err := s.tx(ctx, func(tx *Store) error {
		rows, err := tx.queryWrite(ctx, false, `UPDATE triggers SET state = 'failed', error = ?, processed_at = ?,
			errors = errors + ? WHERE id = ? AND state IN ('queued', 'running') RETURNING errors`,
			reason, micros(at), len(errs), id)
		if err != nil {
			return err
		}
		total, err := collect(rows, scanInt64)
		if err != nil {
			return err
		}
		if len(total) == 0 {
			return fmt.Errorf("no open trigger %d: %w", id, store.ErrNotFound)
		}
		return tx.insertTriggerErrors(ctx, id, total[0]-int64(len(errs)), errs)
	})
	if err != nil {
		return fmt.Errorf("fail trigger %d: %w", id, err)
	}
	return nil
}

// insertTriggerErrors appends error lines numbered from seq.
func (s *Store) insertTriggerErrors(ctx context.Context, triggerID, seq int64, errs []string) error {
	for start := 0; start < len(errs); start += batchRows {
		chunk := errs[start:min(start+batchRows, len(errs))]
		args := make([]any, 0, 3*len(chunk))
		for i, e := range chunk {
			args = append(args, triggerID, seq+int64(start+i), e)
		}
		if _, err := s.exec(ctx, `INSERT INTO trigger_errors (trigger_id, seq, message) VALUES `+
			placeholders(len(chunk), 3), args...); err != nil {
			return err
		}
	}
	return nil
}

// ListTriggerErrors pages through a trigger's error lines.
func (s *Store) ListTriggerErrors(ctx context.Context, triggerID int64, start, limit int) ([]string, int, error) {
	limit = limitOrDefault(limit)
	msgs, err := list(ctx, s, "list trigger errors", scanString, `SELECT message FROM trigger_errors
		WHERE trigger_id = ? AND seq >= ? ORDER BY seq LIMIT ?`, triggerID, start, limit+1)
	if err != nil {
		return nil, 0, err
	}
	if len(msgs) > limit {
		return msgs[:limit], start + limit, nil
	}
	return msgs, 0, nil
}

// ListTriggerFailures pages through a trigger's failed deliveries in the
// order they failed, on the deliveries_failed_source index.
func (s *Store) ListTriggerFailures(ctx context.Context, triggerID int64, except string, start, limit int) ([]store.Delivery, error) {
	return list(ctx, s, "list trigger failures", scanDelivery, `SELECT `+deliveryCols+` FROM deliveries
		WHERE source_kind = 'trigger' AND source_id = ? AND status = 'failed' AND reason <> ?
		ORDER BY updated_at, id LIMIT ? OFFSET ?`, strconv.FormatInt(triggerID, 10), except, limitOrDefault(limit), start)
}

// --- person events ---

// RecordPersonEvent stores a tracked event of an existing person.
func (s *Store) RecordPersonEvent(ctx context.Context, e store.PersonEvent) error {
	data, err := jsonMap(e.Data)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err = s.exec(ctx, `INSERT INTO person_events (workspace_id, person_id, name, data, at) VALUES (?, ?, ?, ?, ?)`,
		e.WorkspaceID, e.PersonID, e.Name, data, micros(e.At))
	if err != nil {
		return fmt.Errorf("record event %q of %s: %w", e.Name, e.PersonID, err)
	}
	return nil
}

// --- helpers ---

func scanString(r scanner) (string, error) {
	var v string
	return v, r.Scan(&v)
}

func scanInt64(r scanner) (int64, error) {
	var v int64
	return v, r.Scan(&v)
}

// params returns "?, ?, …" for n parameters.
func params(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// idStrings formats trigger ids as deliveries' source ids.
func idStrings(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}
