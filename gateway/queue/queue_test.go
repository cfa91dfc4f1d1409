package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	r := queue.New(st, queue.Options{Lease: newLease("n1"), PollInterval: 10 * time.Millisecond, MaxAttempts: 3})
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

// lease is a node lease a test can lose.
type lease struct {
	id     string
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

func newLease(id string) *lease {
	l := &lease{id: id}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

func (l *lease) ID() string { return l.id }

func (l *lease) Held() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx
}

func (l *lease) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancel()
}

func runRunner(t *testing.T, r *queue.Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = r.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	r.Notify()
}

func waitFor[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

// A job whose runs keep dying with their process (here: claimed, then its
// node restarts, as after a crash) is failed once it is claimed past its
// maximum, without running again, and its GiveUp hears why.
func TestRunnerGivesUpOnJobsThatKeepDying(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	ctx := context.Background()
	job := store.Job{Kind: "crashes", Payload: []byte(`{}`)}
	if err := st.EnqueueJob(ctx, &job); err != nil {
		t.Fatal(err)
	}
	const max = 3
	for range max {
		js, err := st.ClaimJobs(ctx, store.JobClaimOptions{Node: "n1", Limit: 10})
		if err != nil || len(js) != 1 {
			t.Fatalf("claim = %v, %v", js, err)
		}
		if _, err := st.StartNode(ctx, "n1", time.Now(), time.Minute); err != nil { // the process died
			t.Fatal(err)
		}
	}
	ran := make(chan struct{}, 1)
	gaveUp := make(chan string, 1)
	r := queue.New(st, queue.Options{Lease: newLease("n1"), PollInterval: 10 * time.Millisecond, MaxAttempts: max})
	r.Handle("crashes", func(context.Context, store.Job) error { ran <- struct{}{}; return nil })
	r.OnGiveUp("crashes", func(_ context.Context, j store.Job, reason string) error {
		gaveUp <- reason
		return nil
	})
	runRunner(t, r)
	reason := waitFor(t, "give-up", gaveUp)
	if !strings.Contains(reason, "gave up after 3 attempts") || !strings.Contains(reason, "restarted") {
		t.Fatalf("reason = %q", reason)
	}
	// Failed for good: claiming finds nothing, and the handler never ran.
	deadline := time.Now().Add(10 * time.Second)
	for {
		js, err := st.ClaimJobs(ctx, store.JobClaimOptions{Node: "probe", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 0 {
			t.Fatalf("job claimable after it was given up: %+v", js)
		}
		var status string
		if err := st.WriteDB().QueryRowContext(ctx, `SELECT status FROM jobs WHERE id = `+strconv.FormatInt(job.ID, 10)).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job status %q, want failed", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-ran:
		t.Fatal("the handler ran a job past its maximum attempts")
	default:
	}
}

// Losing the node's lease cancels the jobs running under it, and their
// outcome is not recorded: the job stays with whoever takes it over.
func TestRunnerCancelsJobsWhenTheLeaseIsLost(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	ctx := context.Background()
	if _, err := st.StartNode(ctx, "n1", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	job := store.Job{Kind: "long", Payload: []byte(`{}`)}
	if err := st.EnqueueJob(ctx, &job); err != nil {
		t.Fatal(err)
	}
	started, cancelled := make(chan struct{}, 1), make(chan error, 1)
	l := newLease("n1")
	r := queue.New(st, queue.Options{Lease: l, PollInterval: 10 * time.Millisecond})
	r.Handle("long", func(ctx context.Context, _ store.Job) error {
		started <- struct{}{}
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	})
	runRunner(t, r)
	waitFor(t, "job start", started)
	l.lose()
	if err := waitFor(t, "cancellation", cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("job context ended with %v, want canceled", err)
	}
	// Not retried, completed or failed by the node that lost it: still
	// running under n1 until n1's claims are released.
	time.Sleep(100 * time.Millisecond)
	rel, err := st.StartNode(ctx, "n1", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Jobs != 1 {
		t.Fatalf("released %d jobs, want the cancelled one still held", rel.Jobs)
	}
}

// Two runners of different nodes on one store never run one job at once,
// and every job completes exactly once.
func TestRunnersOnTwoNodesNeverShareAJob(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) *sqlstore.Store{
		"sqlite": func(t testing.TB) *sqlstore.Store { return sqlstore.OpenTest(t) },
		"postgres": func(t testing.TB) *sqlstore.Store {
			return sqlstore.OpenTestPostgres(t)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			ctx := context.Background()
			const jobs = 200
			for i := range jobs {
				key := ""
				if i%2 == 0 {
					key = fmt.Sprintf("conv-%d", i%10) // keyed ones also run in order
				}
				if err := st.EnqueueJob(ctx, &store.Job{Kind: "work", Key: key, Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			running := map[int64]bool{}
			runs := map[int64]int{}
			lastOfKey := map[string]int64{}
			done := make(chan struct{}, jobs)
			errs := make(chan string, jobs)
			handler := func(_ context.Context, j store.Job) error {
				mu.Lock()
				if running[j.ID] {
					errs <- fmt.Sprintf("job %d runs twice at once", j.ID)
				}
				if j.Key != "" && lastOfKey[j.Key] > j.ID {
					errs <- fmt.Sprintf("job %d of key %s ran after job %d", j.ID, j.Key, lastOfKey[j.Key])
				}
				running[j.ID] = true
				runs[j.ID]++
				lastOfKey[j.Key] = j.ID
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				running[j.ID] = false
				mu.Unlock()
				done <- struct{}{}
				return nil
			}
			for _, node := range []string{"n1", "n2"} {
				r := queue.New(st, queue.Options{Lease: newLease(node), Workers: 8, PollInterval: 5 * time.Millisecond})
				r.Handle("work", handler)
				runRunner(t, r)
			}
			for range jobs {
				waitFor(t, "jobs to finish", done)
			}
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			mu.Lock()
			defer mu.Unlock()
			for id, n := range runs {
				if n != 1 {
					t.Errorf("job %d ran %d times", id, n)
				}
			}
			if len(runs) != jobs {
				t.Errorf("%d jobs ran, want %d", len(runs), jobs)
			}
		})
	}
}
