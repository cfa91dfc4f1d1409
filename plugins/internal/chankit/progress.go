package chankit

import (
	"context"
	"sync"
)

// maxProgress bounds the memory Progress may use. Entries exist only for
// messages that failed halfway and have not been retried yet.
const maxProgress = 10_000

// Progress remembers, per message, the parts of a multi-part send that the
// platform already accepted (a long SMS split in several, a carousel sent as
// one Telegram message per card), so the gateway's retry of a message that
// failed halfway (typically rate limited at part 2) resumes where it stopped
// instead of sending the first parts again.
//
// It is an in-memory optimisation, not state the gateway relies on: after a
// plugin restart a retry starts from the first part again, which is the
// at-least-once behaviour the gateway already expects.
type Progress struct {
	mu   sync.Mutex
	done map[string][]string
}

// SendParts sends parts 0..n-1 in order with send, skipping those an earlier
// attempt of the same message (same key: channel id and idempotency key)
// completed, and returns the ids of all n parts.
func (p *Progress) SendParts(ctx context.Context, key string, n int, send func(ctx context.Context, part int) (string, error)) ([]string, error) {
	p.mu.Lock()
	ids := append([]string(nil), p.done[key]...)
	p.mu.Unlock()
	for i := len(ids); i < n; i++ {
		id, err := send(ctx, i)
		if err != nil {
			if len(ids) > 0 {
				p.save(key, ids)
			}
			return nil, err
		}
		ids = append(ids, id)
	}
	p.mu.Lock()
	delete(p.done, key)
	p.mu.Unlock()
	return ids, nil
}

func (p *Progress) save(key string, ids []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = make(map[string][]string)
	}
	if len(p.done) >= maxProgress {
		for k := range p.done { // forget an arbitrary entry: that message may repeat parts
			delete(p.done, k)
			break
		}
	}
	p.done[key] = ids
}
