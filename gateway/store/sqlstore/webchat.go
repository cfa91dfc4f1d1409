package sqlstore

import (
	"context"
	"errors"
	"fmt"
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

// AppendWebchat stores messages and hands their deliveries over, in one
// transaction. A zero at means now.
func (s *Store) AppendWebchat(ctx context.Context, msgs []store.WebchatAppend, at time.Time) ([]bool, error) {
	if at.IsZero() {
		at = s.now()
	}
	stored := make([]bool, len(msgs))
	err := s.tx(ctx, func(tx *Store) error {
		type user struct{ channel, id string }
		skipped := map[user]bool{}
		for i, m := range msgs {
			u := user{m.ChannelID, m.UserID}
			if skipped[u] {
				continue // never store a user's message after one that is missing
			}
			created := m.CreatedAt
			if created.IsZero() {
				created = at
			}
			// Any unique violation (sequence number or key taken) skips
			// the message: the caller renders it again against the
			// current cursor, or finds it stored.
			n, err := tx.execCount(ctx, `INSERT INTO webchat_messages (`+webchatCols+`) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT DO NOTHING`, m.ChannelID, m.UserID, m.Seq, m.IdempotencyKey, m.Frame, micros(created))
			if err != nil {
				return err
			}
			if n == 0 {
				skipped[u] = true
				continue
			}
			stored[i] = true
			if _, err := tx.exec(ctx, `INSERT INTO webchat_cursors (channel_id, user_id, last_seq, acked_seq)
				VALUES (?, ?, ?, 0)
				ON CONFLICT (channel_id, user_id) DO UPDATE SET last_seq = CASE
					WHEN excluded.last_seq > webchat_cursors.last_seq THEN excluded.last_seq
					ELSE webchat_cursors.last_seq END`, m.ChannelID, m.UserID, m.Seq); err != nil {
				return err
			}
			reason := ""
			if m.Offline {
				reason = store.ReasonPendingConnection
			}
			// The delivery is done once its message is in the outbox: the
			// pipeline's own completion of it finds it no longer pending
			// and changes nothing.
			if _, err := tx.exec(ctx, `UPDATE deliveries SET status = 'sent', pending = 0, reason = ?, last_error = '',
				provider_id = ?, attempts = attempts + 1, sent_at = COALESCE(sent_at, ?), updated_at = ?
				WHERE idempotency_key = ? AND pending = 1`,
				reason, store.WebchatProviderID(m.Seq), micros(at), micros(at), m.IdempotencyKey); err != nil {
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

// ListWebchat returns a user's messages after afterSeq.
func (s *Store) ListWebchat(ctx context.Context, channelID, userID string, afterSeq int64, limit int) ([]store.WebchatMessage, error) {
	return list(ctx, s, "list webchat", scanWebchat, `SELECT `+webchatCols+` FROM webchat_messages
		WHERE channel_id = ? AND user_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		channelID, userID, afterSeq, limitOrDefault(limit))
}

// AckWebchat records acknowledgements. A zero at means now.
func (s *Store) AckWebchat(ctx context.Context, acks []store.WebchatAck, keep int, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	err := s.tx(ctx, func(tx *Store) error {
		for _, a := range acks {
			type cursor struct{ last, acked int64 }
			cur, err := getOne(ctx, tx, "webchat cursor", func(r scanner) (cursor, error) {
				var c cursor
				return c, r.Scan(&c.last, &c.acked)
			}, `SELECT last_seq, acked_seq FROM webchat_cursors WHERE channel_id = ? AND user_id = ?`, a.ChannelID, a.UserID)
			if errors.Is(err, store.ErrNotFound) {
				continue // nothing was ever sent to this user: nothing to acknowledge
			}
			if err != nil {
				return err
			}
			seq := min(a.Seq, cur.last)
			if seq <= cur.acked {
				continue
			}
			if _, err := tx.exec(ctx, `UPDATE webchat_cursors SET acked_seq = ? WHERE channel_id = ? AND user_id = ?`,
				seq, a.ChannelID, a.UserID); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `UPDATE deliveries SET status = 'delivered', reason = '', delivered_at = ?, updated_at = ?
				WHERE status = 'sent' AND idempotency_key IN (SELECT idempotency_key FROM webchat_messages
					WHERE channel_id = ? AND user_id = ? AND seq > ? AND seq <= ?)`,
				micros(at), micros(at), a.ChannelID, a.UserID, cur.acked, seq); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `DELETE FROM webchat_messages WHERE channel_id = ? AND user_id = ? AND seq <= ?`,
				a.ChannelID, a.UserID, seq-int64(keep)); err != nil {
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
	_, err := s.exec(ctx, `UPDATE deliveries SET reason = ?, updated_at = ?
		WHERE status = 'sent' AND reason = '' AND idempotency_key IN (
			SELECT m.idempotency_key FROM webchat_messages m JOIN webchat_cursors c
				ON c.channel_id = m.channel_id AND c.user_id = m.user_id
			WHERE m.channel_id = ? AND m.user_id = ? AND m.seq > c.acked_seq)`,
		store.ReasonPendingConnection, micros(at), channelID, userID)
	if err != nil {
		return fmt.Errorf("mark webchat waiting: %w", err)
	}
	return nil
}
