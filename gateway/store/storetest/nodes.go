package storetest

import (
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// The suite's nodes: most cases claim as nodeA.
const (
	nodeA = "node-a"
	nodeB = "node-b"
)

// testEnqueueClaimed checks the fan-out's hand-off: each recipient's next
// delivery is claimed for the inserting node in the same call, the others
// wait their turn for any node.
func testEnqueueClaimed(t *testing.T, s store.Store) {
	// r0 already has a pending delivery: its new one must wait.
	enqueue(t, s, delivery("old-r0", "r0"))
	later := delivery("later-r3", "r3")
	later.NextAttemptAt = t0.Add(time.Hour)
	batch := []store.Delivery{
		delivery("new-r0", "r0"),
		delivery("r1-a", "r1"),
		delivery("r1-b", "r1"), // behind r1-a in the same batch
		delivery("r2-a", "r2"),
		delivery("old-r0", "r0-dup"), // key exists: not inserted, not claimed
	}
	for i := range batch {
		batch[i].NextAttemptAt = time.Time{} // due now, by the store's clock
	}
	batch = append(batch, later) // not due: not claimed
	claimed, n, err := s.EnqueueClaimedDeliveries(ctx(t), nodeA, batch)
	must(t, err)
	wantEqual(t, "inserted", n, 5)
	wantEqual(t, "claimed", keys(claimed), []string{"r1-a", "r2-a"})
	for _, d := range claimed {
		if d.ID == 0 {
			t.Fatalf("claimed delivery %s has no id", d.IdempotencyKey)
		}
		wantEqual(t, "claimed status", d.Status, store.DeliverySending)
		wantEqual(t, "stored status", get(t, s, d.ID).Status, store.DeliverySending)
	}
	// A claim scan does not see the handed-off rows, and r1-b waits
	// behind r1-a, new-r0 behind old-r0.
	wantEqual(t, "scan", keys(claim(t, s, t0, 100)), []string{"old-r0"})

	// Only the holder records outcomes.
	must(t, s.CompleteDeliveries(ctx(t), nodeB, []store.DeliveryResult{{ID: claimed[0].ID, Status: store.DeliverySent, At: t0}}))
	wantEqual(t, "completed by another node", get(t, s, claimed[0].ID).Status, store.DeliverySending)
	complete(t, s, store.DeliveryResult{ID: claimed[0].ID, Status: store.DeliverySent, At: t0})
	wantEqual(t, "completed by its holder", get(t, s, claimed[0].ID).Status, store.DeliverySent)
	wantEqual(t, "after r1-a", keys(claim(t, s, t0, 100)), []string{"r1-b"})

	_, _, err = s.EnqueueClaimedDeliveries(ctx(t), "", []store.Delivery{delivery("no-node", "r9")})
	if err == nil {
		t.Fatal("EnqueueClaimedDeliveries without a node succeeded")
	}
}

// testNodeRescue: a node whose lease runs out loses its claims to the
// others, and its late outcomes are ignored.
func testNodeRescue(t *testing.T, s store.Store) {
	_, err := s.StartNode(ctx(t), nodeA, t0, 5*time.Second)
	must(t, err)
	_, err = s.StartNode(ctx(t), nodeB, t0, 5*time.Second)
	must(t, err)
	enqueue(t, s, delivery("held", "r1"), delivery("behind", "r1"))
	job := enqueueJob(t, s, "held-job", "k", t0)
	held := claim(t, s, t0, 10)
	wantEqual(t, "claimed by A", keys(held), []string{"held"})
	wantEqual(t, "job claimed by A", claimJobs(t, s, t0), []string{"held-job"})

	// Leases still good at t0+4s: nothing to rescue, and renewing works.
	rel, err := s.RescueExpiredNodes(ctx(t), nodeB, t0.Add(4*time.Second))
	must(t, err)
	wantEqual(t, "rescued while leases hold", rel, store.Released{})
	must(t, s.RenewNode(ctx(t), nodeB, t0.Add(4*time.Second), 5*time.Second))

	// A never rescues itself, however late its heartbeat.
	rel, err = s.RescueExpiredNodes(ctx(t), nodeA, t0.Add(6*time.Second))
	must(t, err)
	wantEqual(t, "A sweeping", rel, store.Released{})
	// A stops renewing; B renews. At t0+6s A's lease has run out.
	rel, err = s.RescueExpiredNodes(ctx(t), nodeB, t0.Add(6*time.Second))
	must(t, err)
	wantEqual(t, "rescued", rel, store.Released{Nodes: []string{nodeA}, Jobs: 1, Deliveries: 1})

	// B takes the same rows, keys and ordering kept.
	got, err := s.ClaimDeliveries(ctx(t), store.ClaimOptions{Node: nodeB, Limit: 10, Now: t0.Add(6 * time.Second)})
	must(t, err)
	wantEqual(t, "taken over", keys(got), []string{"held"})
	wantEqual(t, "same row", got[0].ID, held[0].ID)
	js, err := s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeB, Limit: 10, Now: t0.Add(6 * time.Second)})
	must(t, err)
	if len(js) != 1 || js[0].ID != job.ID || js[0].Attempts != 2 {
		t.Fatalf("job after the takeover = %+v, want job %d at attempt 2", js, job.ID)
	}

	// A comes back: its renewal fails, its late results change nothing.
	wantErr(t, s.RenewNode(ctx(t), nodeA, t0.Add(7*time.Second), 5*time.Second), store.ErrClaimLost)
	must(t, s.CompleteDeliveries(ctx(t), nodeA, []store.DeliveryResult{{ID: held[0].ID, Status: store.DeliveryFailed,
		Reason: "late", At: t0}}))
	wantEqual(t, "after A's late result", get(t, s, held[0].ID).Status, store.DeliverySending)
	wantErr(t, s.CompleteJob(ctx(t), job.ID, 1), store.ErrClaimLost)
	must(t, s.CompleteJob(ctx(t), job.ID, 2))
	must(t, s.CompleteDeliveries(ctx(t), nodeB, []store.DeliveryResult{{ID: held[0].ID, Status: store.DeliverySent, At: t0}}))
	wantEqual(t, "B's result", get(t, s, held[0].ID).Status, store.DeliverySent)

	// A starts again and works as before.
	_, err = s.StartNode(ctx(t), nodeA, t0.Add(8*time.Second), 5*time.Second)
	must(t, err)
	must(t, s.RenewNode(ctx(t), nodeA, t0.Add(9*time.Second), 5*time.Second))
	wantEqual(t, "next in line for A", keys(claim(t, s, t0.Add(9*time.Second), 10)), []string{"behind"})
}

// testNodeRestart: a node that starts again under its id gets its own
// claims back at once, without waiting for its old lease; a clean stop
// releases them too.
func testNodeRestart(t *testing.T, s store.Store) {
	_, err := s.StartNode(ctx(t), nodeA, t0, time.Hour)
	must(t, err)
	retried := delivery("retried", "r2")
	enqueue(t, s, delivery("mine", "r1"), retried)
	got := claim(t, s, t0, 10)
	wantEqual(t, "claimed", keys(got), []string{"mine", "retried"})
	complete(t, s, store.DeliveryResult{ID: got[1].ID, Status: store.DeliveryRetrying, CountAttempt: true,
		NextAttemptAt: t0, At: t0})
	wantEqual(t, "retry claimed", keys(claim(t, s, t0, 10)), []string{"retried"})

	rel, err := s.StartNode(ctx(t), nodeA, t0.Add(time.Second), time.Hour)
	must(t, err)
	wantEqual(t, "released at restart", rel, store.Released{Deliveries: 2})
	wantEqual(t, "never sent stays queued", get(t, s, got[0].ID).Status, store.DeliveryQueued)
	wantEqual(t, "retried stays retrying", get(t, s, got[1].ID).Status, store.DeliveryRetrying)
	again := claim(t, s, t0.Add(time.Second), 10)
	wantEqual(t, "claimed again at once", keys(again), []string{"mine", "retried"})
	wantEqual(t, "attempts kept", again[1].Attempts, 1)

	rel, err = s.StopNode(ctx(t), nodeA)
	must(t, err)
	wantEqual(t, "released at stop", rel, store.Released{Deliveries: 2})
	wantErr(t, s.RenewNode(ctx(t), nodeA, t0.Add(2*time.Second), time.Hour), store.ErrClaimLost)
}

// testJobFencing: an attempt that lost its claim cannot complete, retry
// or fail the job's newer attempt.
func testJobFencing(t *testing.T, s store.Store) {
	j := enqueueJob(t, s, "fenced", "", t0)
	wantEqual(t, "first", claimJobs(t, s, t0), []string{"fenced"})
	_, err := s.StartNode(ctx(t), nodeA, t0, time.Minute) // the process restarted
	must(t, err)
	wantEqual(t, "second", claimJobs(t, s, t0), []string{"fenced"})
	wantErr(t, s.CompleteJob(ctx(t), j.ID, 1), store.ErrClaimLost)
	wantErr(t, s.RetryJob(ctx(t), j.ID, 1, "late", t0), store.ErrClaimLost)
	wantErr(t, s.FailJob(ctx(t), j.ID, 1, "late"), store.ErrClaimLost)
	wantEqual(t, "still running", claimJobs(t, s, t0.Add(time.Hour)), []string{})
	must(t, s.FailJob(ctx(t), j.ID, 2, "gave up"))
}

// testReleaseOrphans: a node that holds nothing in memory releases what
// the store says it claimed before then (a claim whose answer was lost),
// and nothing claimed since.
func testReleaseOrphans(t *testing.T, s store.Store) {
	enqueue(t, s, delivery("lost", "r1"))
	enqueueJob(t, s, "lost-job", "", t0)
	wantEqual(t, "claimed", keys(claim(t, s, t0, 10)), []string{"lost"})
	wantEqual(t, "job claimed", claimJobs(t, s, t0), []string{"lost-job"})
	enqueue(t, s, delivery("later", "r2"))
	enqueueJob(t, s, "later-job", "", t0)
	wantEqual(t, "claimed later", keys(claim(t, s, t0.Add(time.Minute), 10)), []string{"later"})
	wantEqual(t, "job claimed later", claimJobs(t, s, t0.Add(time.Minute)), []string{"later-job"})

	rel, err := s.ReleaseOrphans(ctx(t), nodeB, t0.Add(time.Hour), true, true)
	must(t, err)
	wantEqual(t, "another node's claims", rel, store.Released{})
	rel, err = s.ReleaseOrphans(ctx(t), nodeA, t0.Add(time.Second), false, true)
	must(t, err)
	wantEqual(t, "deliveries only", rel, store.Released{Deliveries: 1})
	rel, err = s.ReleaseOrphans(ctx(t), nodeA, t0.Add(time.Second), true, false)
	must(t, err)
	wantEqual(t, "jobs only", rel, store.Released{Jobs: 1})
	wantEqual(t, "released delivery", keys(claim(t, s, t0.Add(time.Minute), 10)), []string{"lost"})
	wantEqual(t, "released job", claimJobs(t, s, t0.Add(time.Minute)), []string{"lost-job"})
}

// testStats counts what waits and runs.
func testStats(t *testing.T, s store.Store) {
	qs, err := s.QueueStats(ctx(t))
	must(t, err)
	wantEqual(t, "empty queue", qs, []store.QueueStat(nil))
	enqueueJob(t, s, "a", "", t0)
	enqueueJob(t, s, "a", "", t0.Add(-time.Minute))
	enqueueJob(t, s, "b", "", t0.Add(time.Hour))
	js, err := s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 1, Now: t0})
	must(t, err)
	wantEqual(t, "claimed", len(js), 1)
	qs, err = s.QueueStats(ctx(t))
	must(t, err)
	wantEqual(t, "queue", qs, []store.QueueStat{
		{Kind: "a", Pending: 1, Running: 1, OldestDue: t0},
		{Kind: "b", Pending: 1, OldestDue: t0.Add(time.Hour)},
	})

	enqueue(t, s, delivery("s1", "r1"), delivery("s2", "r1"), delivery("s3", "r2"))
	other := delivery("s4", "r3")
	other.ChannelID = "ch2"
	enqueue(t, s, other)
	got := claim(t, s, t0, 1)
	complete(t, s, store.DeliveryResult{ID: got[0].ID, Status: store.DeliverySent, At: t0})
	claim(t, s, t0, 1)
	os, err := s.OutboxStats(ctx(t))
	must(t, err)
	wantEqual(t, "outbox", os, []store.OutboxStat{
		{ChannelID: "ch", Status: store.DeliveryQueued, Count: 1},
		{ChannelID: "ch", Status: store.DeliverySending, Count: 1},
		{ChannelID: "ch2", Status: store.DeliveryQueued, Count: 1},
	})
}
