package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

const conversationCols = `id, workspace_id, bot_id, channel_id, user_id, person_id, reply_to, status,
	flow_id, step_id, memory, last_interaction_at, expires_at, created_at, closed_at`

func scanConversation(r scanner) (store.Conversation, error) {
	var c store.Conversation
	var status string
	var memory jsonCol
	var last, expires, created int64
	var closed sql.NullInt64
	if err := r.Scan(&c.ID, &c.WorkspaceID, &c.BotID, &c.ChannelID, &c.UserID, &c.PersonID, &c.ReplyTo,
		&status, &c.FlowID, &c.StepID, &memory, &last, &expires, &created, &closed); err != nil {
		return c, err
	}
	c.Status = store.ConversationStatus(status)
	c.LastInteractionAt, c.ExpiresAt, c.CreatedAt = fromMicros(last), fromMicros(expires), fromMicros(created)
	c.ClosedAt = fromNullMicros(closed)
	c.Memory = map[string]any{}
	return c, memory.into(&c.Memory)
}

// GetOpenConversation returns the open conversation of (bot, channel, user).
func (s *Store) GetOpenConversation(ctx context.Context, botID, channelID, userID string) (store.Conversation, error) {
	return getOne(ctx, s, "get open conversation", scanConversation, `SELECT `+conversationCols+`
		FROM conversations WHERE bot_id = ? AND channel_id = ? AND user_id = ? AND status = 'open'`,
		botID, channelID, userID)
}

// CreateConversation stores a new open conversation. It fills in ID,
// Status, CreatedAt and LastInteractionAt when empty.
func (s *Store) CreateConversation(ctx context.Context, c *store.Conversation) error {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	c.Status, c.ClosedAt = store.ConversationOpen, nil
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	if c.LastInteractionAt.IsZero() {
		c.LastInteractionAt = c.CreatedAt
	}
	memory, err := jsonMap(c.Memory)
	if err != nil {
		return fmt.Errorf("create conversation: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO conversations (`+conversationCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
		c.ID, c.WorkspaceID, c.BotID, c.ChannelID, c.UserID, c.PersonID, c.ReplyTo, string(c.Status),
		c.FlowID, c.StepID, memory, micros(c.LastInteractionAt), micros(c.ExpiresAt), micros(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create conversation for %s on %s: %w", c.UserID, c.ChannelID, err)
	}
	return nil
}

// UpdateConversation saves the mutable state of a conversation (person,
// reply-to, status, flow, step, memory, times). Reopening a conversation
// while another is open fails with store.ErrConflict.
func (s *Store) UpdateConversation(ctx context.Context, c store.Conversation) error {
	memory, err := jsonMap(c.Memory)
	if err != nil {
		return fmt.Errorf("update conversation %s: %w", c.ID, err)
	}
	status := c.Status
	if status == "" {
		status = store.ConversationOpen
	}
	closed := c.ClosedAt
	if status == store.ConversationOpen {
		closed = nil
	}
	n, err := s.execCount(ctx, `UPDATE conversations SET person_id = ?, reply_to = ?, status = ?, flow_id = ?,
		step_id = ?, memory = ?, last_interaction_at = ?, expires_at = ?, closed_at = ? WHERE id = ?`,
		c.PersonID, c.ReplyTo, string(status), c.FlowID, c.StepID, memory,
		micros(c.LastInteractionAt), micros(c.ExpiresAt), nullMicros(closed), c.ID)
	return notFoundIfNone(n, err, "update conversation "+c.ID)
}

// GetConversation returns one conversation.
func (s *Store) GetConversation(ctx context.Context, id string) (store.Conversation, error) {
	return getOne(ctx, s, "get conversation "+id, scanConversation,
		`SELECT `+conversationCols+` FROM conversations WHERE id = ?`, id)
}

// CloseConversation closes the conversation; closing it again keeps the
// first closing time.
func (s *Store) CloseConversation(ctx context.Context, id string, at time.Time) error {
	n, err := s.execCount(ctx, `UPDATE conversations SET status = 'closed', closed_at = COALESCE(closed_at, ?)
		WHERE id = ?`, micros(at), id)
	return notFoundIfNone(n, err, "close conversation "+id)
}

// CloseExpired closes open conversations whose ExpiresAt (when set) is
// before now.
func (s *Store) CloseExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := s.execCount(ctx, `UPDATE conversations SET status = 'closed', closed_at = ?
		WHERE status = 'open' AND expires_at > 0 AND expires_at < ?`, micros(now), micros(now))
	if err != nil {
		return 0, fmt.Errorf("close expired conversations: %w", err)
	}
	return n, nil
}

// ListConversations lists conversations newest first.
func (s *Store) ListConversations(ctx context.Context, f store.ConversationFilter) ([]store.Conversation, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, val string }{
		{"workspace_id", f.WorkspaceID},
		{"channel_id", f.ChannelID},
		{"user_id", f.UserID},
		{"status", string(f.Status)},
	} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if f.Before != "" {
		where = append(where, "(created_at, id) < (SELECT created_at, id FROM conversations WHERE id = ?)")
		args = append(args, f.Before)
	}
	q := `SELECT ` + conversationCols + ` FROM conversations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limitOrDefault(f.Limit))
	return list(ctx, s, "list conversations", scanConversation, q, args...)
}

// AppendMessages stores messages and fills in their IDs (and CreatedAt when
// zero). The conversation must exist, or it fails with store.ErrNotFound.
func (s *Store) AppendMessages(ctx context.Context, msgs []store.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := s.now()
	err := s.tx(ctx, func(tx *Store) error {
		// One statement per message: RETURNING does not promise the
		// order of a multi-row insert, and replies are a few messages.
		q := tx.d.rebind(`INSERT INTO messages (conversation_id, direction, content, delivery_id, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`)
		for i := range msgs {
			m := &msgs[i]
			if m.CreatedAt.IsZero() {
				m.CreatedAt = now
			}
			content, err := toJSON(m.Content)
			if err != nil {
				return err
			}
			if err := tx.writer.QueryRowContext(ctx, q, m.ConversationID, string(m.Direction), content,
				m.DeliveryID, micros(m.CreatedAt)).Scan(&m.ID); err != nil {
				return tx.d.mapErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append messages: %w", err)
	}
	return nil
}

// ListMessages returns a conversation's messages after afterID, oldest first;
// limit ≤ 0 means 100.
func (s *Store) ListMessages(ctx context.Context, conversationID string, afterID int64, limit int) ([]store.Message, error) {
	return list(ctx, s, "list messages", func(r scanner) (store.Message, error) {
		var m store.Message
		var dir string
		var content jsonCol
		var created int64
		if err := r.Scan(&m.ID, &m.ConversationID, &dir, &content, &m.DeliveryID, &created); err != nil {
			return m, err
		}
		m.Direction, m.CreatedAt = store.Direction(dir), fromMicros(created)
		return m, content.into(&m.Content)
	}, `SELECT id, conversation_id, direction, content, delivery_id, created_at FROM messages
		WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?`, conversationID, afterID, limitOrDefault(limit))
}
