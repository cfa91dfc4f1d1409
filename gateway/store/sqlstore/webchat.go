package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

var _ store.Webchat = (*Store)(nil)

// inChunk bounds the values of one IN list.
const inChunk = 500

const webchatCols = `channel_id, user_id, seq, idempotency_key, frame, created_at`

func scanWebchat(r scanner) (store.WebchatMessage, error) {
	var m store.WebchatMessage
	var created int64
	err := r.Scan(&m.ChannelID, &m.UserID, &m.Seq, &m.IdempotencyKey, &m.Frame, &created)
	m.CreatedAt = fromMicros(created)
	return m, err
}

// inArgs returns "(?, …)" for vals and vals as arguments.
func inArgs(vals []string) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return placeholders(1, len(vals)), args
}

// WebchatSeqs returns the last sequence number given out per user.
func (s *Store) WebchatSeqs(ctx context.Context, channelID string, userIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(userIDs))
	for start := 0; start < len(userIDs); start += inChunk {
		in, args := inArgs(userIDs[start:min(start+inChunk, len(userIDs))])
		type seq struct {
			user string
			last int64
		}
		rows, err := list(ctx, s, "webchat seqs", func(r scanner) (seq, error) {
			var v seq
			return v, r.Scan(&v.user, &v.last)
		}, `SELECT user_id, last_seq FROM webchat_cursors WHERE channel_id = ? AND user_id IN `+in,
			append([]any{channelID}, args...)...)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r.user] = r.last
		}
	}
	return out, nil
}

// WebchatByKeys returns the messages carrying these idempotency keys.
func (s *Store) WebchatByKeys(ctx context.Context, keys []string) ([]store.WebchatMessage, error) {
	var out []store.WebchatMessage
	for start := 0; start < len(keys); start += inChunk {
		in, args := inArgs(keys[start:min(start+inChunk, len(keys))])
		ms, err := list(ctx, s, "webchat by keys", scanWebchat,
			`SELECT `+webchatCols+` FROM webchat_messages WHERE idempotency_key IN `+in, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// webchatChunk bounds the rows of one statement of AppendWebchat and
// AckWebchat (6 parameters a row at most).
const webchatChunk = 500

// AppendWebchat stores messages and hands their deliveries over, in one
// transaction of a few statements per chunk. A zero at means now.
func (s *Store) AppendWebchat(ctx context.Context, msgs []store.WebchatAppend, at time.Time) ([]bool, error) {
	if at.IsZero() {
		at = s.now()
	}
	stored := make([]bool, len(msgs))
	type user struct{ channel, id string }
	skipped := map[user]bool{} // users with a message missing: their later ones must wait too
	err := s.tx(ctx, func(tx *Store) error {
		for start := 0; start < len(msgs); start += webchatChunk {
			part := msgs[start:min(start+webchatChunk, len(msgs))]
			inserted, err := tx.insertWebchat(ctx, part, at)
			if err != nil {
				return err
			}
			var undo []string
			last := map[user]int64{}
			var handed []store.WebchatAppend
			for i, m := range part {
				u := user{m.ChannelID, m.UserID}
				switch {
				case !inserted[webchatRow{m.IdempotencyKey, m.Seq}]:
					// Sequence number or key taken: the caller renders it
					// again, or finds it stored.
					skipped[u] = true
				case skipped[u]:
					undo = append(undo, m.IdempotencyKey)
				default:
					stored[start+i] = true
					last[u] = max(last[u], m.Seq)
					handed = append(handed, m)
				}
			}
			if len(undo) > 0 {
				in, args := inArgs(undo)
				if _, err := tx.exec(ctx, `DELETE FROM webchat_messages WHERE idempotency_key IN `+in, args...); err != nil {
					return err
				}
			}
			if len(handed) == 0 {
				continue
			}
			args := make([]any, 0, 3*len(last))
			for u, seq := range last {
				args = append(args, u.channel, u.id, seq)
			}
			if _, err := tx.exec(ctx, `INSERT INTO webchat_cursors (channel_id, user_id, last_seq, acked_seq) VALUES `+
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, 0), ", len(last)), ", ")+`
				ON CONFLICT (channel_id, user_id) DO UPDATE SET last_seq = CASE
					WHEN excluded.last_seq > webchat_cursors.last_seq THEN excluded.last_seq
					ELSE webchat_cursors.last_seq END`, args...); err != nil {
				return err
			}
			if err := tx.handOver(ctx, handed, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append webchat: %w", err)
	}
	return stored, nil
}

// webchatRow identifies an inserted message: a key may come twice in one
// call (a message rendered again), under different sequence numbers.
type webchatRow struct {
	key string
	seq int64
}

// insertWebchat inserts messages, skipping those whose sequence number or
// key is taken, and returns the rows inserted.
func (s *Store) insertWebchat(ctx context.Context, msgs []store.WebchatAppend, at time.Time) (map[webchatRow]bool, error) {
	args := make([]any, 0, 6*len(msgs))
	for _, m := range msgs {
		created := m.CreatedAt
		if created.IsZero() {
			created = at
		}
		args = append(args, m.ChannelID, m.UserID, m.Seq, m.IdempotencyKey, m.Frame, micros(created))
	}
	rows, err := s.queryWrite(ctx, false, `INSERT INTO webchat_messages (`+webchatCols+`) VALUES `+
		placeholders(len(msgs), 6)+` ON CONFLICT DO NOTHING RETURNING idempotency_key, seq`, args...)
	if err != nil {
		return nil, err
	}
	got, err := collect(rows, func(r scanner) (webchatRow, error) {
		var w webchatRow
		return w, r.Scan(&w.key, &w.seq)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[webchatRow]bool, len(got))
	for _, w := range got {
		out[w] = true
	}
	return out, nil
}

// handOver marks the pending deliveries of stored messages sent, awaiting
// an ack (pending_connection for offline users). The pipeline's own
// completion of them then finds them no longer pending and changes nothing.
func (s *Store) handOver(ctx context.Context, msgs []store.WebchatAppend, at time.Time) error {
	args := make([]any, 0, 3*len(msgs)+2)
	args = append(args, micros(at), micros(at))
	for _, m := range msgs {
		reason := store.ReasonAwaitingAck
		if m.Offline {
			reason = store.ReasonPendingConnection
		}
		args = append(args, m.IdempotencyKey, reason, store.WebchatProviderID(m.Seq))
	}
	_, err := s.exec(ctx, `UPDATE deliveries SET status = 'sent', pending = 0, reason = v.column2, last_error = '',
		provider_id = v.column3, attempts = deliveries.attempts + 1,
		sent_at = COALESCE(deliveries.sent_at, CAST(? AS BIGINT)), updated_at = CAST(? AS BIGINT)
		FROM (VALUES `+placeholders(len(msgs), 3)+`) AS v
		WHERE deliveries.idempotency_key = v.column1 AND deliveries.pending = 1`, args...)
	return err
}

// ListWebchat returns a user's messages after afterSeq.
func (s *Store) ListWebchat(ctx context.Context, channelID, userID string, afterSeq int64, limit int) ([]store.WebchatMessage, error) {
	return list(ctx, s, "list webchat", scanWebchat, `SELECT `+webchatCols+` FROM webchat_messages
		WHERE channel_id = ? AND user_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		channelID, userID, afterSeq, limitOrDefault(limit))
}

// AckWebchat records acknowledgements in one transaction of three
// statements per chunk. A zero at means now.
func (s *Store) AckWebchat(ctx context.Context, acks []store.WebchatAck, keep int, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	// One row per user, the highest ack: UPDATE … FROM must not match a
	// row twice.
	type user struct{ channel, id string }
	top := map[user]int64{}
	for _, a := range acks {
		u := user{a.ChannelID, a.UserID}
		top[u] = max(top[u], a.Seq)
	}
	rows := make([]any, 0, 3*len(top))
	for u, seq := range top {
		rows = append(rows, u.channel, u.id, seq)
	}
	err := s.tx(ctx, func(tx *Store) error {
		for start := 0; start < len(rows); start += 3 * webchatChunk {
			// Clipped: appending to part must not overwrite the next chunk.
			part := slices.Clip(rows[start:min(start+3*webchatChunk, len(rows))])
			values := `(VALUES ` + strings.TrimSuffix(strings.Repeat(`(?, ?, CAST(? AS BIGINT)), `, len(part)/3), ", ") + `) AS v`
			// The deliveries of messages newly acknowledged (after the
			// cursor's acked_seq, which the next statement moves).
			if _, err := tx.exec(ctx, `UPDATE deliveries SET status = 'delivered', reason = '',
				delivered_at = CAST(? AS BIGINT), updated_at = CAST(? AS BIGINT)
				WHERE status = 'sent' AND idempotency_key IN (
					SELECT m.idempotency_key FROM `+values+`
					JOIN webchat_cursors c ON c.channel_id = v.column1 AND c.user_id = v.column2
					JOIN webchat_messages m ON m.channel_id = v.column1 AND m.user_id = v.column2
						AND m.seq > c.acked_seq AND m.seq <= v.column3)`,
				append([]any{micros(at), micros(at)}, part...)...); err != nil {
				return err
			}
			// Never beyond the last sequence number given out.
			if _, err := tx.exec(ctx, `UPDATE webchat_cursors SET acked_seq = CASE
					WHEN v.column3 > webchat_cursors.last_seq THEN webchat_cursors.last_seq ELSE v.column3 END
				FROM `+values+`
				WHERE webchat_cursors.channel_id = v.column1 AND webchat_cursors.user_id = v.column2
					AND webchat_cursors.acked_seq < v.column3`, part...); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `DELETE FROM webchat_messages WHERE idempotency_key IN (
					SELECT m.idempotency_key FROM `+values+`
					JOIN webchat_cursors c ON c.channel_id = v.column1 AND c.user_id = v.column2
					JOIN webchat_messages m ON m.channel_id = v.column1 AND m.user_id = v.column2
						AND m.seq <= c.acked_seq - CAST(? AS BIGINT))`, append(part, keep)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack webchat: %w", err)
	}
	return nil
}

// MarkWebchatWaiting marks a user's unacknowledged deliveries as waiting for
// a connection. A zero at means now.
func (s *Store) MarkWebchatWaiting(ctx context.Context, channelID, userID string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	if _, err := s.markWaiting(ctx, []any{channelID, userID}, at); err != nil {
		return fmt.Errorf("mark webchat waiting: %w", err)
	}
	return nil
}

// markWaiting gives the unacknowledged deliveries of users, given as
// (channel, user) pairs flattened, the reason pending_connection, and
// returns how many it changed.
func (s *Store) markWaiting(ctx context.Context, users []any, at time.Time) (int, error) {
	var n int
	for start := 0; start < len(users); start += 2 * webchatChunk {
		part := users[start:min(start+2*webchatChunk, len(users))]
		c, err := s.execCount(ctx, `UPDATE deliveries SET reason = ?, updated_at = ?
			WHERE status = 'sent' AND reason = ? AND idempotency_key IN (
				SELECT m.idempotency_key FROM (VALUES `+placeholders(len(part)/2, 2)+`) AS v
				JOIN webchat_cursors c ON c.channel_id = v.column1 AND c.user_id = v.column2
				JOIN webchat_messages m ON m.channel_id = c.channel_id AND m.user_id = c.user_id
					AND m.seq > c.acked_seq)`,
			append([]any{store.ReasonPendingConnection, micros(at), store.ReasonAwaitingAck}, part...)...)
		if err != nil {
			return n, err
		}
		n += c
	}
	return n, nil
}

// ExpireWebchat deletes the oldest messages created before before, at most
// limit, and fails the deliveries of those no client acknowledged, in one
// transaction. A zero at means now.
func (s *Store) ExpireWebchat(ctx context.Context, before time.Time, limit int, at time.Time) (int, error) {
	if at.IsZero() {
		at = s.now()
	}
	var n int
	err := s.tx(ctx, func(tx *Store) error {
		rows, err := tx.queryWrite(ctx, false, `DELETE FROM webchat_messages WHERE idempotency_key IN (
				SELECT idempotency_key FROM webchat_messages WHERE created_at < ? ORDER BY created_at LIMIT ?)
			RETURNING idempotency_key`, micros(before), limitOrDefault(limit))
		if err != nil {
			return err
		}
		keys, err := collect(rows, scanString)
		if err != nil {
			return err
		}
		n = len(keys)
		// Acknowledged ones are delivered already and stay so.
		for start := 0; start < len(keys); start += inChunk {
			in, args := inArgs(keys[start:min(start+inChunk, len(keys))])
			if _, err := tx.exec(ctx, `UPDATE deliveries SET status = 'failed', reason = ?, last_error = ?, updated_at = ?
				WHERE status = 'sent' AND idempotency_key IN `+in,
				append([]any{store.ReasonExpired, "no client acknowledged the message within the web chat retention", micros(at)}, args...)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire webchat: %w", err)
	}
	return n, nil
}
