package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

var _ store.WebchatNodes = (*Store)(nil)

// RenewWebchatNode extends a node's lease, creating it when unknown.
func (s *Store) RenewWebchatNode(ctx context.Context, node string, until time.Time) (bool, error) {
	n, err := s.execCount(ctx, `UPDATE webchat_nodes SET expires_at = ? WHERE node_id = ?`, micros(until), node)
	if err != nil {
		return false, fmt.Errorf("renew webchat node: %w", err)
	}
	if n > 0 {
		return true, nil
	}
	if _, err := s.exec(ctx, `INSERT INTO webchat_nodes (node_id, expires_at) VALUES (?, ?)
		ON CONFLICT (node_id) DO UPDATE SET expires_at = excluded.expires_at`, node, micros(until)); err != nil {
		return false, fmt.Errorf("renew webchat node: %w", err)
	}
	return false, nil
}

// ForgetWebchatNodes deletes nodes whose lease ran out before before, and
// their presence, and re-evaluates their users' unacknowledged messages,
// in one transaction.
func (s *Store) ForgetWebchatNodes(ctx context.Context, before, at time.Time) (store.WebchatForgotten, error) {
	var out store.WebchatForgotten
	err := s.tx(ctx, func(tx *Store) error {
		out = store.WebchatForgotten{}
		// The nodes first: a node renewing its lease meanwhile either keeps
		// its row and presence, or finds its row gone (known = false) and
		// files its presence again.
		rows, err := tx.queryWrite(ctx, false, `DELETE FROM webchat_nodes WHERE expires_at < ? RETURNING node_id`, micros(before))
		if err != nil {
			return err
		}
		if out.Nodes, err = collect(rows, scanString); err != nil || len(out.Nodes) == 0 {
			return err
		}
		type user struct{ channel, id string }
		seen := map[user]bool{}
		var users []any // (channel, user) pairs, each once
		for start := 0; start < len(out.Nodes); start += inChunk {
			in, args := inArgs(out.Nodes[start:min(start+inChunk, len(out.Nodes))])
			rows, err := tx.queryWrite(ctx, false, `DELETE FROM webchat_presence WHERE node_id IN `+in+`
				RETURNING channel_id, user_id`, args...)
			if err != nil {
				return err
			}
			us, err := collect(rows, func(r scanner) (user, error) {
				var u user
				return u, r.Scan(&u.channel, &u.id)
			})
			if err != nil {
				return err
			}
			for _, u := range us {
				if !seen[u] {
					seen[u] = true
					users = append(users, u.channel, u.id)
				}
			}
		}
		// Users with messages who are still connected to a live node
		// (every node left has a lease running past before): their
		// messages are woken there. The others' wait for a connection.
		elsewhere := map[user]bool{}
		for start := 0; start < len(users); start += 2 * webchatChunk {
			part := users[start:min(start+2*webchatChunk, len(users))]
			ws, err := list(ctx, tx, "webchat users elsewhere", func(r scanner) (store.WebchatWake, error) {
				var w store.WebchatWake
				return w, r.Scan(&w.ChannelID, &w.UserID, &w.Seq)
			}, `SELECT c.channel_id, c.user_id, c.last_seq FROM (VALUES `+placeholders(len(part)/2, 2)+`) AS v
				JOIN webchat_cursors c ON c.channel_id = v.column1 AND c.user_id = v.column2
				WHERE EXISTS (SELECT 1 FROM webchat_presence p JOIN webchat_nodes n ON n.node_id = p.node_id
					WHERE p.channel_id = c.channel_id AND p.user_id = c.user_id)`, part...)
			if err != nil {
				return err
			}
			for _, w := range ws {
				elsewhere[user{w.ChannelID, w.UserID}] = true
			}
			out.Elsewhere = append(out.Elsewhere, ws...)
		}
		var away []any
		for i := 0; i < len(users); i += 2 {
			if u := (user{users[i].(string), users[i+1].(string)}); !elsewhere[u] {
				away = append(away, u.channel, u.id)
			}
		}
		out.Waiting, err = tx.markWaiting(ctx, away, at)
		return err
	})
	if err != nil {
		return store.WebchatForgotten{}, fmt.Errorf("forget webchat nodes: %w", err)
	}
	return out, nil
}

// SetWebchatPresence files and removes users under a node, in one
// transaction of at most two statements per chunk.
func (s *Store) SetWebchatPresence(ctx context.Context, node string, ps []store.WebchatPresence) error {
	var on, off []any
	for _, p := range ps {
		if p.Online {
			on = append(on, p.ChannelID, p.UserID, node)
		} else {
			off = append(off, p.ChannelID, p.UserID)
		}
	}
	err := s.tx(ctx, func(tx *Store) error {
		for start := 0; start < len(on); start += 3 * webchatChunk {
			part := on[start:min(start+3*webchatChunk, len(on))]
			if _, err := tx.exec(ctx, `INSERT INTO webchat_presence (channel_id, user_id, node_id) VALUES `+
				placeholders(len(part)/3, 3)+` ON CONFLICT DO NOTHING`, part...); err != nil {
				return err
			}
		}
		for start := 0; start < len(off); start += 2 * webchatChunk {
			part := off[start:min(start+2*webchatChunk, len(off))]
			if _, err := tx.exec(ctx, `DELETE FROM webchat_presence WHERE node_id = ? AND (channel_id, user_id) IN (VALUES `+
				placeholders(len(part)/2, 2)+`)`, append([]any{node}, part...)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set webchat presence: %w", err)
	}
	return nil
}

// WebchatOnline returns the users connected to another live node.
func (s *Store) WebchatOnline(ctx context.Context, channelID string, userIDs []string, exceptNode string, now time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	for start := 0; start < len(userIDs); start += inChunk {
		in, args := inArgs(userIDs[start:min(start+inChunk, len(userIDs))])
		users, err := list(ctx, s, "webchat online", scanString, `SELECT DISTINCT p.user_id FROM webchat_presence p JOIN webchat_nodes n ON n.node_id = p.node_id
			WHERE p.channel_id = ? AND p.node_id <> ? AND n.expires_at > ? AND p.user_id IN `+in,
			append([]any{channelID, exceptNode, micros(now)}, args...)...)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out[u] = true
		}
	}
	return out, nil
}
