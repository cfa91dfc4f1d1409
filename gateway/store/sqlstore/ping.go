package sqlstore

import (
	"context"
	"errors"
	"fmt"
)

// Ping checks that both pools answer; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error {
	err := s.conns.write.PingContext(ctx)
	if s.conns.read != s.conns.write {
		err = errors.Join(err, s.conns.read.PingContext(ctx))
	}
	if err != nil {
		return fmt.Errorf("ping %s: %w", s.d.name(), err)
	}
	return nil
}
