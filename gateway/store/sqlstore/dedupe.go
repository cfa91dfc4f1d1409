package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// MarkEventSeen records (channelID, eventID) and reports whether it was new.
func (s *Store) MarkEventSeen(ctx context.Context, channelID, eventID string, at time.Time) (bool, error) {
	n, err := s.execCount(ctx, `INSERT INTO seen_events (channel_id, event_id, seen_at) VALUES (?, ?, ?)
		ON CONFLICT (channel_id, event_id) DO NOTHING`, channelID, eventID, micros(at))
	if err != nil {
		return false, fmt.Errorf("mark event seen: %w", err)
	}
	return n == 1, nil
}
