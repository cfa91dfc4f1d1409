package webchat

import (
	"context"
	"time"
)

// expireBatch is how many messages one expiry transaction deletes: small
// enough not to hold the (SQLite: only) writer long.
const expireBatch = 1000

// expireLoop expires old messages until ctx ends, every quarter of the
// retention and at least every minute, so a message outlives it by little.
func (s *Service) expireLoop(ctx context.Context) {
	t := time.NewTicker(min(s.limits.Retention/4, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.expire(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("web chat: expire old messages", "expired", n, "err", err)
		} else if n > 0 {
			s.log.Info("web chat: expired old messages", "count", n, "retention", s.limits.Retention)
		}
	}
}

// expire deletes the messages older than the retention, batch by batch, and
// fails the deliveries of those never acknowledged (reason expired). It
// returns how many it deleted.
func (s *Service) expire(ctx context.Context) (int, error) {
	now := s.now()
	before := now.Add(-s.limits.Retention)
	total := 0
	for {
		n, err := s.opts.Store.ExpireWebchat(ctx, before, expireBatch, now)
		total += n
		if err != nil || n < expireBatch {
			return total, err
		}
	}
}
