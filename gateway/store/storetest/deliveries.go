package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// delivery is a queued delivery of the test channel "ch".
func delivery(key, recipient string) store.Delivery {
	return store.Delivery{WorkspaceID: "a", ChannelID: "ch", Recipient: recipient, IdempotencyKey: key,
		Content: message.Text("hello " + recipient), SourceKind: "trigger", SourceID: "t1", NextAttemptAt: t0}
}

func enqueue(t *testing.T, s store.Store, ds ...store.Delivery) []store.Delivery {
	t.Helper()
	n, err := s.EnqueueDeliveries(ctx(t), ds)
	must(t, err)
	wantEqual(t, "inserted", n, len(ds))
	return ds
}

func claim(t *testing.T, s store.Store, at time.Time, limit int) []store.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(ctx(t), store.ClaimOptions{Node: nodeA, Limit: limit, Now: at})
	must(t, err)
	return ds
}

func keys(ds []store.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.IdempotencyKey)
	}
	return out
}

func complete(t *testing.T, s store.Store, rs ...store.DeliveryResult) {
	t.Helper()
	must(t, s.CompleteDeliveries(ctx(t), nodeA, rs))
}

func get(t *testing.T, s store.Store, id int64) store.Delivery {
	t.Helper()
	d, err := s.GetDelivery(ctx(t), id)
	must(t, err)
	return d
}

func testEnqueueDeliveries(t *testing.T, s store.Store) {
	first := []store.Delivery{delivery("k1", "r1"), delivery("k2", "r2")}
	first[1].ReplyTo, first[1].PersonID, first[1].ConversationID = "thread", "p2", "conv2"
	enqueue(t, s, first...)
	if first[0].ID == 0 || first[1].ID <= first[0].ID {
		t.Fatalf("ids not filled in increasing: %d, %d", first[0].ID, first[1].ID)
	}

	got := get(t, s, first[1].ID)
	wantEqual(t, "status", got.Status, store.DeliveryQueued)
	wantEqual(t, "recipient", got.Recipient, "r2")
	wantEqual(t, "reply to", got.ReplyTo, "thread")
	wantEqual(t, "person", got.PersonID, "p2")
	wantEqual(t, "conversation", got.ConversationID, "conv2")
	wantEqual(t, "content", got.Content, message.Text("hello r2"))
	wantEqual(t, "source", got.SourceKind+"/"+got.SourceID, "trigger/t1")
	wantTime(t, "next attempt", got.NextAttemptAt, t0)
	if got.CreatedAt.IsZero() || got.SentAt != nil || got.DeliveredAt != nil {
		t.Fatalf("unexpected times on a new delivery: %+v", got)
	}

	// Existing keys are skipped, also when repeated inside one batch.
	again := []store.Delivery{delivery("k1", "r1"), delivery("k3", "r3"), delivery("k3", "r3"), delivery("k2", "r2")}
	n, err := s.EnqueueDeliveries(ctx(t), again)
	must(t, err)
	wantEqual(t, "inserted on re-enqueue", n, 1)
	if again[0].ID != 0 || again[1].ID == 0 || again[2].ID != 0 || again[3].ID != 0 {
		t.Fatalf("ids after re-enqueue = %d %d %d %d, want only the first k3 set",
			again[0].ID, again[1].ID, again[2].ID, again[3].ID)
	}

	// More rows than one statement holds, and generated keys.
	big := make([]store.Delivery, 2500)
	for i := range big {
		big[i] = store.Delivery{WorkspaceID: "a", ChannelID: "ch", Recipient: fmt.Sprintf("big-%d", i),
			Content: message.Text("x"), SourceKind: "trigger", SourceID: "big"}
	}
	n, err = s.EnqueueDeliveries(ctx(t), big)
	must(t, err)
	wantEqual(t, "inserted big batch", n, 2500)
	seen := map[int64]bool{}
	for _, d := range big {
		if d.ID == 0 || seen[d.ID] || d.IdempotencyKey == "" {
			t.Fatalf("bad id or key after a big batch: %+v", d)
		}
		seen[d.ID] = true
	}
	bySource, err := s.ListDeliveriesBySource(ctx(t), "trigger", "big")
	must(t, err)
	wantEqual(t, "listed by source", len(bySource), 2500)
	wantEqual(t, "first listed", bySource[0].ID, big[0].ID)
	wantEqual(t, "last listed", bySource[2499].IdempotencyKey, big[2499].IdempotencyKey)

	n, err = s.EnqueueDeliveries(ctx(t), nil)
	must(t, err)
	wantEqual(t, "inserted of nothing", n, 0)
	_, err = s.GetDelivery(ctx(t), 1<<40)
	wantErr(t, err, store.ErrNotFound)
}

func testClaimOrdering(t *testing.T, s store.Store) {
	ds := enqueue(t, s,
		delivery("r1-a", "r1"),
		delivery("r1-b", "r1"),
		delivery("r1-c", "r1"),
		delivery("r2-a", "r2"),
		// Same recipient on another channel is independent.
		func() store.Delivery { d := delivery("other-ch", "r1"); d.ChannelID = "ch2"; return d }(),
		// Not due yet.
		func() store.Delivery { d := delivery("later", "r9"); d.NextAttemptAt = t0.Add(time.Hour); return d }(),
	)
	r1b := ds[1]

	got := claim(t, s, t0, 100)
	wantEqual(t, "first claim", keys(got), []string{"r1-a", "r2-a", "other-ch"})
	for _, d := range got {
		wantEqual(t, "claimed status", d.Status, store.DeliverySending)
		wantTime(t, "claim time", d.NextAttemptAt, t0)
	}
	wantEqual(t, "claim while the first ones are out", keys(claim(t, s, t0, 100)), []string{})

	for _, d := range got {
		complete(t, s, store.DeliveryResult{ID: d.ID, Status: store.DeliverySent, CountAttempt: true, At: t0})
	}
	wantEqual(t, "after r1-a was sent", keys(claim(t, s, t0, 100)), []string{"r1-b"})

	// A retry due later holds back the younger deliveries to the same
	// recipient until it is sent.
	complete(t, s, store.DeliveryResult{ID: r1b.ID, Status: store.DeliveryRetrying, CountAttempt: true,
		NextAttemptAt: t0.Add(10 * time.Minute), LastError: "503", At: t0})
	wantEqual(t, "while r1-b waits", keys(claim(t, s, t0.Add(5*time.Minute), 100)), []string{})
	wantEqual(t, "when r1-b is due", keys(claim(t, s, t0.Add(10*time.Minute), 100)), []string{"r1-b"})
	complete(t, s, store.DeliveryResult{ID: r1b.ID, Status: store.DeliveryFailed, CountAttempt: true, Reason: "gone", At: t0})
	r1c := claim(t, s, t0.Add(10*time.Minute), 100)
	wantEqual(t, "after r1-b failed", keys(r1c), []string{"r1-c"})
	complete(t, s, store.DeliveryResult{ID: r1c[0].ID, Status: store.DeliverySent, At: t0})
	wantEqual(t, "the one due later", keys(claim(t, s, t0.Add(time.Hour), 100)), []string{"later"})
}

// testClaimDueOrder checks the limit picks the earliest due rows first.
func testClaimDueOrder(t *testing.T, s store.Store) {
	late := delivery("due-late", "x")
	late.NextAttemptAt = t0.Add(time.Minute)
	early := delivery("due-early", "y")
	enqueue(t, s, late, early)
	wantEqual(t, "limit 1", keys(claim(t, s, t0.Add(time.Hour), 1)), []string{"due-early"})
	wantEqual(t, "next", keys(claim(t, s, t0.Add(time.Hour), 1)), []string{"due-late"})
}

// testClaimConcurrent claims from several goroutines at once: every
// delivery is claimed exactly once.
func testClaimConcurrent(t *testing.T, s store.Store) {
	const total = 300
	ds := make([]store.Delivery, total)
	for i := range ds {
		ds[i] = delivery(fmt.Sprintf("c-%d", i), fmt.Sprintf("user-%d", i%100))
	}
	enqueue(t, s, ds...)

	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		errs    = make(chan error, 4)
	)
	for range 4 {
		wg.Go(func() {
			for {
				got, err := s.ClaimDeliveries(ctx(t), store.ClaimOptions{Node: nodeA, Limit: 7, Now: t0})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				rs := make([]store.DeliveryResult, len(got))
				mu.Lock()
				for i, d := range got {
					claimed[d.IdempotencyKey]++
					rs[i] = store.DeliveryResult{ID: d.ID, Status: store.DeliverySent, CountAttempt: true, At: t0}
				}
				mu.Unlock()
				if err := s.CompleteDeliveries(ctx(t), nodeA, rs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A worker may stop while another still holds a recipient's older
	// row; drain what is left.
	for got := claim(t, s, t0, 100); len(got) > 0; got = claim(t, s, t0, 100) {
		rs := []store.DeliveryResult{}
		for _, d := range got {
			claimed[d.IdempotencyKey]++
			rs = append(rs, store.DeliveryResult{ID: d.ID, Status: store.DeliverySent, At: t0})
		}
		complete(t, s, rs...)
	}
	for _, d := range ds {
		if claimed[d.IdempotencyKey] != 1 {
			t.Fatalf("%s claimed %d times, want once", d.IdempotencyKey, claimed[d.IdempotencyKey])
		}
	}
}

func testCompleteDeliveries(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name    string
		results []store.DeliveryResult // applied in turn; ID filled in
		want    store.DeliveryStatus
		attempt int
		check   func(t *testing.T, d store.Delivery)
	}{
		{"sent", []store.DeliveryResult{{Status: store.DeliverySent, ProviderID: "pid-1", CountAttempt: true, At: t0}},
			store.DeliverySent, 1, func(t *testing.T, d store.Delivery) {
				wantEqual(t, "provider id", d.ProviderID, "pid-1")
				if d.SentAt == nil || !d.SentAt.Equal(t0) {
					t.Fatalf("sent at = %v, want %v", d.SentAt, t0)
				}
			}},
		{"delivered", []store.DeliveryResult{{Status: store.DeliveryDelivered, CountAttempt: true, At: t0}},
			store.DeliveryDelivered, 1, func(t *testing.T, d store.Delivery) {
				if d.SentAt == nil || d.DeliveredAt == nil || !d.DeliveredAt.Equal(t0) {
					t.Fatalf("times of a delivered delivery: sent %v delivered %v", d.SentAt, d.DeliveredAt)
				}
			}},
		{"retry counts an attempt", []store.DeliveryResult{{Status: store.DeliveryRetrying, CountAttempt: true,
			NextAttemptAt: t0.Add(time.Minute), LastError: "timeout"}},
			store.DeliveryRetrying, 1, func(t *testing.T, d store.Delivery) {
				wantEqual(t, "last error", d.LastError, "timeout")
				wantTime(t, "next attempt", d.NextAttemptAt, t0.Add(time.Minute))
			}},
		{"rate-limit snoozes do not count", []store.DeliveryResult{
			{Status: store.DeliveryRetrying, NextAttemptAt: t0.Add(time.Second), Reason: "rate_limited"},
			{Status: store.DeliveryRetrying, NextAttemptAt: t0.Add(2 * time.Second), Reason: "rate_limited"},
		}, store.DeliveryRetrying, 0, nil},
		{"failed", []store.DeliveryResult{{Status: store.DeliveryFailed, CountAttempt: true, Reason: "invalid_recipient", LastError: "400"}},
			store.DeliveryFailed, 1, func(t *testing.T, d store.Delivery) {
				wantEqual(t, "reason", d.Reason, "invalid_recipient")
				wantEqual(t, "last error", d.LastError, "400")
			}},
		{"skipped", []store.DeliveryResult{{Status: store.DeliverySkipped, Reason: "unsubscribed"}},
			store.DeliverySkipped, 0, nil},
		{"final rows ignore later results", []store.DeliveryResult{
			{Status: store.DeliveryFailed, CountAttempt: true, Reason: "first"},
			{Status: store.DeliverySent, CountAttempt: true, Reason: "second"},
		}, store.DeliveryFailed, 1, func(t *testing.T, d store.Delivery) { wantEqual(t, "reason", d.Reason, "first") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := enqueue(t, s, delivery("complete-"+tc.name, "r-"+tc.name))[0]
			got := claim(t, s, t0, 1000)
			if len(got) != 1 || got[0].ID != d.ID {
				t.Fatalf("claimed %v, want only %s", keys(got), d.IdempotencyKey)
			}
			for _, r := range tc.results {
				r.ID = d.ID
				complete(t, s, r)
			}
			after := get(t, s, d.ID)
			wantEqual(t, "status", after.Status, tc.want)
			wantEqual(t, "attempts", after.Attempts, tc.attempt)
			if tc.check != nil {
				tc.check(t, after)
			}
			// Leave nothing claimable for the next case.
			for _, left := range claim(t, s, t0.Add(24*time.Hour), 1000) {
				complete(t, s, store.DeliveryResult{ID: left.ID, Status: store.DeliveryFailed, Reason: "cleanup"})
			}
		})
	}

	// A snooze makes the row due again later, and it keeps its key.
	d := enqueue(t, s, delivery("snoozed", "snoozer"))[0]
	claim(t, s, t0, 10)
	complete(t, s, store.DeliveryResult{ID: d.ID, Status: store.DeliveryRetrying, NextAttemptAt: t0.Add(time.Hour), At: t0})
	wantEqual(t, "before the snooze ends", keys(claim(t, s, t0.Add(time.Minute), 10)), []string{})
	wantEqual(t, "after the snooze", keys(claim(t, s, t0.Add(time.Hour), 10)), []string{"snoozed"})

	for _, bad := range []store.DeliveryResult{
		{ID: d.ID, Status: store.DeliveryQueued},
		{ID: d.ID, Status: store.DeliveryRetrying}, // no NextAttemptAt
	} {
		if err := s.CompleteDeliveries(ctx(t), nodeA, []store.DeliveryResult{bad}); err == nil {
			t.Fatalf("CompleteDeliveries accepted %+v", bad)
		}
	}

	// Different outcomes in one call: each row gets its own.
	mixed := enqueue(t, s, delivery("mixed-sent", "mx-1"), delivery("mixed-sent-noid", "mx-2"),
		delivery("mixed-retry", "mx-3"), delivery("mixed-failed", "mx-4"))
	claim(t, s, t0, 10)
	at := t0.Add(time.Minute)
	complete(t, s,
		store.DeliveryResult{ID: mixed[0].ID, Status: store.DeliverySent, ProviderID: "pid-mx", CountAttempt: true, At: at},
		store.DeliveryResult{ID: mixed[1].ID, Status: store.DeliverySent, CountAttempt: true, At: at},
		store.DeliveryResult{ID: mixed[2].ID, Status: store.DeliveryRetrying, NextAttemptAt: t0.Add(time.Hour), LastError: "503", CountAttempt: true, At: at},
		store.DeliveryResult{ID: mixed[3].ID, Status: store.DeliveryFailed, Reason: "blocked", CountAttempt: true, At: at})
	for i, want := range []struct {
		status   store.DeliveryStatus
		provider string
		reason   string
	}{{store.DeliverySent, "pid-mx", ""}, {store.DeliverySent, "", ""}, {store.DeliveryRetrying, "", ""}, {store.DeliveryFailed, "", "blocked"}} {
		got := get(t, s, mixed[i].ID)
		wantEqual(t, mixed[i].IdempotencyKey+" status", got.Status, want.status)
		wantEqual(t, mixed[i].IdempotencyKey+" provider id", got.ProviderID, want.provider)
		wantEqual(t, mixed[i].IdempotencyKey+" reason", got.Reason, want.reason)
		wantEqual(t, mixed[i].IdempotencyKey+" attempts", got.Attempts, 1)
	}
	wantTime(t, "retry's next attempt", get(t, s, mixed[2].ID).NextAttemptAt, t0.Add(time.Hour))
	// A later delivered receipt-like result keeps the first sent time.
	if sent := get(t, s, mixed[0].ID).SentAt; sent == nil || !sent.Equal(at) {
		t.Fatalf("sent at = %v, want %v", sent, at)
	}
	complete(t, s, store.DeliveryResult{ID: mixed[2].ID, Status: store.DeliveryFailed, Reason: "cleanup"})

	// Many results in one call.
	many := make([]store.Delivery, 1500)
	for i := range many {
		many[i] = delivery(fmt.Sprintf("many-%d", i), fmt.Sprintf("m-%d", i))
	}
	enqueue(t, s, many...)
	var rs []store.DeliveryResult
	for got := claim(t, s, t0.Add(2*time.Hour), 1000); len(got) > 0; got = claim(t, s, t0.Add(2*time.Hour), 1000) {
		for _, d := range got {
			rs = append(rs, store.DeliveryResult{ID: d.ID, Status: store.DeliverySent, ProviderID: "p-" + d.IdempotencyKey, CountAttempt: true})
		}
	}
	wantEqual(t, "claimed", len(rs), 1501) // the snoozed row too
	complete(t, s, rs...)
	for _, i := range []int{0, 999, 1000, 1499} {
		got := get(t, s, many[i].ID)
		wantEqual(t, "status", got.Status, store.DeliverySent)
		wantEqual(t, "provider id", got.ProviderID, "p-"+many[i].IdempotencyKey)
	}
}

func testReceipts(t *testing.T, s store.Store) {
	d := enqueue(t, s, delivery("receipt", "r1"))[0]
	claim(t, s, t0, 10)
	complete(t, s, store.DeliveryResult{ID: d.ID, Status: store.DeliverySent, ProviderID: "SM123", CountAttempt: true, At: t0})

	must(t, s.ApplyReceipt(ctx(t), "ch", "SM123", store.DeliveryDelivered, "", t0.Add(time.Second)))
	got := get(t, s, d.ID)
	wantEqual(t, "status", got.Status, store.DeliveryDelivered)
	if got.DeliveredAt == nil || !got.DeliveredAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("delivered at = %v", got.DeliveredAt)
	}

	// A late "sent" receipt does not undo "delivered".
	must(t, s.ApplyReceipt(ctx(t), "ch", "SM123", store.DeliverySent, "", t0.Add(2*time.Second)))
	wantEqual(t, "status after a late sent receipt", get(t, s, d.ID).Status, store.DeliveryDelivered)

	must(t, s.ApplyReceipt(ctx(t), "ch", "SM123", store.DeliveryFailed, "carrier_rejected", t0.Add(3*time.Second)))
	got = get(t, s, d.ID)
	wantEqual(t, "status", got.Status, store.DeliveryFailed)
	wantEqual(t, "reason", got.Reason, "carrier_rejected")

	wantErr(t, s.ApplyReceipt(ctx(t), "ch", "unknown", store.DeliveryDelivered, "", t0), store.ErrNotFound)
	wantErr(t, s.ApplyReceipt(ctx(t), "other-channel", "SM123", store.DeliveryDelivered, "", t0), store.ErrNotFound)
	if err := s.ApplyReceipt(ctx(t), "ch", "SM123", store.DeliveryQueued, "", t0); err == nil {
		t.Fatal("ApplyReceipt accepted status queued")
	}
}
