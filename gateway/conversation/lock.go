package conversation

import (
	"context"
	"slices"
	"sync"
)

// keyedLock serializes work per key in arrival order: a FIFO of waiters per
// key, handed the lock one by one. sync.Mutex is not used per key because it
// does not promise FIFO order, and a message must not overtake the one sent
// before it. Keys with nobody holding or waiting take no memory.
type keyedLock struct {
	mu   sync.Mutex
	keys map[string]*lockQueue
}

type lockQueue struct {
	waiters []chan struct{} // closed when the lock is handed over
}

func newKeyedLock() *keyedLock { return &keyedLock{keys: map[string]*lockQueue{}} }

// lock blocks until key is free and the caller's turn has come, or ctx ends.
// The returned function releases the lock.
func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	q, busy := k.keys[key]
	if !busy {
		k.keys[key] = &lockQueue{}
		k.mu.Unlock()
		return func() { k.release(key) }, nil
	}
	ch := make(chan struct{})
	q.waiters = append(q.waiters, ch)
	k.mu.Unlock()

	select {
	case <-ch:
		return func() { k.release(key) }, nil
	case <-ctx.Done():
		k.mu.Lock()
		defer k.mu.Unlock()
		select {
		case <-ch:
			// Handed over while giving up: pass it on.
			k.releaseLocked(key)
		default:
			q.waiters = slices.DeleteFunc(q.waiters, func(c chan struct{}) bool { return c == ch })
		}
		return nil, ctx.Err()
	}
}

func (k *keyedLock) release(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.releaseLocked(key)
}

func (k *keyedLock) releaseLocked(key string) {
	q := k.keys[key]
	if len(q.waiters) == 0 {
		delete(k.keys, key)
		return
	}
	next := q.waiters[0]
	q.waiters = q.waiters[1:]
	close(next)
}
