package queue_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/queue"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

func TestRunnerCompletesRetriesAndGivesUp(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	ctx := context.Background()
	var mu sync.Mutex
	runs := map[string]int{}
	done := make(chan string, 16)
	r := queue.New(st, queue.Options{PollInterval: 10 * time.Millisecond, MaxAttempts: 3})
	r.Handle("ok", func(_ context.Context, j store.Job) error { done <- "ok"; return nil })
	r.Handle("flaky", func(_ context.Context, j store.Job) error {
		mu.Lock()
		runs["flaky"]++
		n := runs["flaky"]
		mu.Unlock()
		if n < 2 {
			return errors.New("temporary")
		}
		done <- "flaky"
		return nil
	})
	r.Handle("bad", func(_ context.Context, j store.Job) error {
		mu.Lock()
		runs["bad"]++
		mu.Unlock()
		return queue.Permanent(errors.New("cannot ever work"))
	})
	r.Handle("panics", func(_ context.Context, j store.Job) error {
		mu.Lock()
		runs["panics"]++
		mu.Unlock()
		panic("boom")
	})
	for _, kind := range []string{"ok", "flaky", "bad", "panics", "unknown"} {
		if err := st.EnqueueJob(ctx, &store.Job{Kind: kind, Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { _ = r.Run(runCtx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	r.Notify()

	got := map[string]bool{}
	timeout := time.After(20 * time.Second) // the flaky job's one retry backs off about a second
	for len(got) < 2 {
		select {
		case k := <-done:
			got[k] = true
		case <-timeout:
			t.Fatalf("completed %v, want ok and flaky", got)
		}
	}
	// Give the permanent failures time to be retried if the runner were
	// (wrongly) going to.
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if runs["flaky"] != 2 {
		t.Errorf("flaky ran %d times, want 2 (one retry)", runs["flaky"])
	}
	if runs["bad"] != 1 || runs["panics"] != 1 {
		t.Errorf("permanent failures ran bad=%d panics=%d times, want once each", runs["bad"], runs["panics"])
	}
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt <= 20; attempt++ {
		d := queue.Backoff(attempt, time.Second, time.Minute)
		want := min(time.Second<<(attempt-1), time.Minute)
		if d < want*8/10 || d > want*12/10 {
			t.Fatalf("attempt %d: backoff %s outside ±20%% of %s", attempt, d, want)
		}
	}
}
