package conversation

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
)

func (k *keyedLock) waiting(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if q, ok := k.keys[key]; ok {
		return len(q.waiters)
	}
	return 0
}

// waitFor yields until cond holds; the test's own timeout bounds it.
func waitFor(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}

// TestKeyedLockFIFO queues waiters one by one, so their arrival order is
// known, and checks they get the lock in that order.
func TestKeyedLockFIFO(t *testing.T) {
	k := newKeyedLock()
	ctx := context.Background()
	unlock, err := k.lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	got := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := k.lock(ctx, "a")
			if err != nil {
				t.Error(err)
				return
			}
			got <- i
			u()
		}()
		waitFor(func() bool { return k.waiting("a") == i+1 })
	}
	// Another key is not held up by "a".
	ub, err := k.lock(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	ub()
	unlock()
	for want := range n {
		if i := <-got; i != want {
			t.Fatalf("waiter %d got the lock in place %d", i, want)
		}
	}
	wg.Wait()
	if len(k.keys) != 0 {
		t.Errorf("%d keys left behind", len(k.keys))
	}
}

func TestKeyedLockCancel(t *testing.T) {
	k := newKeyedLock()
	unlock, _ := k.lock(context.Background(), "a")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := k.lock(ctx, "a")
		done <- err
	}()
	waitFor(func() bool { return k.waiting("a") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	// The cancelled waiter left the queue: the next one is served.
	next := make(chan struct{})
	go func() {
		u, err := k.lock(context.Background(), "a")
		if err == nil {
			u()
		}
		close(next) // after u: the map is not touched any more
	}()
	waitFor(func() bool { return k.waiting("a") == 1 })
	unlock()
	<-next
	if len(k.keys) != 0 {
		t.Errorf("%d keys left behind", len(k.keys))
	}
}
