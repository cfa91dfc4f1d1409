package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

func claimJobs(t *testing.T, s store.Store, at time.Time) []string {
	t.Helper()
	js, err := s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 100, Now: at})
	must(t, err)
	out := []string{}
	for _, j := range js {
		out = append(out, j.Kind)
	}
	return out
}

func enqueueJob(t *testing.T, s store.Store, kind, key string, runAt time.Time) store.Job {
	t.Helper()
	j := store.Job{Kind: kind, Key: key, Payload: json.RawMessage(`{"kind":"` + kind + `"}`), RunAt: runAt}
	must(t, s.EnqueueJob(ctx(t), &j))
	if j.ID == 0 || j.CreatedAt.IsZero() {
		t.Fatalf("EnqueueJob did not fill in id and creation time: %+v", j)
	}
	return j
}

func testJobs(t *testing.T, s store.Store) {
	now := enqueueJob(t, s, "now", "", t0)
	later := enqueueJob(t, s, "later", "", t0.Add(time.Hour))

	js, err := s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 10, Now: t0})
	must(t, err)
	if len(js) != 1 || js[0].ID != now.ID {
		t.Fatalf("claimed %+v, want only job %d", js, now.ID)
	}
	wantEqual(t, "attempts", js[0].Attempts, 1)
	wantJSON(t, "payload", js[0].Payload, json.RawMessage(`{"kind":"now"}`))

	// Running: not claimed again while its node holds it, however long
	// it runs…
	wantEqual(t, "while it runs", claimJobs(t, s, t0.Add(59*time.Minute)), []string{})
	// …until the node restarts: then it is due at once, its attempt used.
	rel, err := s.StartNode(ctx(t), nodeA, t0.Add(2*time.Minute), time.Minute)
	must(t, err)
	wantEqual(t, "released jobs", rel.Jobs, 1)
	js, err = s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 10, Now: t0.Add(2 * time.Minute)})
	must(t, err)
	if len(js) != 1 || js[0].ID != now.ID || js[0].Attempts != 2 {
		t.Fatalf("after the restart: %+v, want job %d at attempt 2", js, now.ID)
	}

	must(t, s.RetryJob(ctx(t), now.ID, 2, "flaky", t0.Add(10*time.Minute)))
	wantEqual(t, "before the retry time", claimJobs(t, s, t0.Add(5*time.Minute)), []string{})
	js, err = s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 10, Now: t0.Add(10 * time.Minute)})
	must(t, err)
	if len(js) != 1 || js[0].LastError != "flaky" || js[0].Attempts != 3 {
		t.Fatalf("retried job = %+v, want last error flaky at attempt 3", js)
	}
	must(t, s.CompleteJob(ctx(t), now.ID, 3))

	wantEqual(t, "due later", claimJobs(t, s, t0.Add(time.Hour)), []string{"later"})
	must(t, s.FailJob(ctx(t), later.ID, 1, "broken"))
	wantEqual(t, "failed jobs stay failed", claimJobs(t, s, t0.Add(48*time.Hour)), []string{})

	// Limit and order: earliest due first.
	enqueueJob(t, s, "b", "", t0.Add(2*time.Second))
	enqueueJob(t, s, "a", "", t0.Add(time.Second))
	js, err = s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 1, Now: t0.Add(time.Minute)})
	must(t, err)
	if len(js) != 1 || js[0].Kind != "a" {
		t.Fatalf("limit 1 claimed %+v, want job a", js)
	}

	for name, err := range map[string]error{
		"complete": s.CompleteJob(ctx(t), 1<<40, 1),
		"retry":    s.RetryJob(ctx(t), 1<<40, 1, "x", t0),
		"fail":     s.FailJob(ctx(t), 1<<40, 1, "x"),
		"complete twice": func() error {
			must(t, s.CompleteJob(ctx(t), js[0].ID, 1))
			return s.CompleteJob(ctx(t), js[0].ID, 1)
		}(),
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, err, store.ErrClaimLost) })
	}
}

func testJobKeys(t *testing.T, s store.Store) {
	k1 := enqueueJob(t, s, "k1-first", "conv-1", t0)
	enqueueJob(t, s, "k1-second", "conv-1", t0)
	enqueueJob(t, s, "k2", "conv-2", t0)
	enqueueJob(t, s, "unkeyed", "", t0)

	wantEqual(t, "first claim", claimJobs(t, s, t0), []string{"k1-first", "k2", "unkeyed"})
	// The second job of conv-1 waits while the first runs…
	wantEqual(t, "while k1-first runs", claimJobs(t, s, t0), []string{})
	// …and while it waits for a retry.
	must(t, s.RetryJob(ctx(t), k1.ID, 1, "later", t0.Add(time.Minute)))
	wantEqual(t, "while k1-first waits to retry", claimJobs(t, s, t0.Add(30*time.Second)), []string{})
	wantEqual(t, "k1-first retried", claimJobs(t, s, t0.Add(time.Minute)), []string{"k1-first"})
	must(t, s.CompleteJob(ctx(t), k1.ID, 2))
	wantEqual(t, "after k1-first completed", claimJobs(t, s, t0.Add(time.Minute)), []string{"k1-second"})

	// A failed job releases its key.
	k3 := enqueueJob(t, s, "k3-first", "conv-3", t0)
	enqueueJob(t, s, "k3-second", "conv-3", t0)
	wantEqual(t, "conv-3", claimJobs(t, s, t0.Add(time.Minute)), []string{"k3-first"})
	must(t, s.FailJob(ctx(t), k3.ID, 1, "poison"))
	wantEqual(t, "after k3-first failed", claimJobs(t, s, t0.Add(time.Minute)), []string{"k3-second"})
}

func testInboundDedupe(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		channel, event string
		at             time.Time
		want           bool
	}{
		{"ch", "e1", t0, true},
		{"ch", "e1", t0.Add(time.Second), false},
		{"ch", "e2", t0.Add(time.Hour), true},
		{"other", "e1", t0, true},
	} {
		got, err := s.MarkEventSeen(ctx(t), tc.channel, tc.event, tc.at)
		must(t, err)
		if got != tc.want {
			t.Fatalf("MarkEventSeen(%s, %s) = %v, want %v", tc.channel, tc.event, got, tc.want)
		}
	}
	n, err := s.Prune(ctx(t), store.RetainSeenEvents, t0.Add(time.Minute), 10)
	must(t, err)
	wantEqual(t, "pruned", n, 2)
	again, err := s.MarkEventSeen(ctx(t), "ch", "e1", t0.Add(2*time.Hour))
	must(t, err)
	wantEqual(t, "seen again after pruning", again, true)
	again, err = s.MarkEventSeen(ctx(t), "ch", "e2", t0.Add(2*time.Hour))
	must(t, err)
	wantEqual(t, "kept event", again, false)
}
