package storetest

import (
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

func ids(ds []store.Delivery) []int64 {
	out := []int64{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// testListDeliveries checks the admin API's delivery listing: filters,
// both paging directions, and that another workspace's rows never show.
func testListDeliveries(t *testing.T, s store.Store) {
	ds := []store.Delivery{delivery("l1", "r1"), delivery("l2", "r2"), delivery("l3", "r3"), delivery("l4", "r4"), delivery("l5", "r5")}
	ds[1].ChannelID, ds[2].PersonID = "other", "p3"
	ds[3].WorkspaceID = "b"
	for i := range ds {
		enqueue(t, s, ds[i:i+1]...) // one by one: creation times in id order
	}
	claimed := claim(t, s, t0, 10)
	wantEqual(t, "claimed", len(claimed), 5)
	complete(t, s, store.DeliveryResult{ID: ds[0].ID, Status: store.DeliveryFailed, Reason: "blocked", CountAttempt: true, At: t0},
		store.DeliveryResult{ID: ds[4].ID, Status: store.DeliverySent, ProviderID: "p-5", CountAttempt: true, At: t0})

	list := func(f store.DeliveryFilter) []int64 {
		t.Helper()
		if f.WorkspaceID == "" {
			f.WorkspaceID = "a"
		}
		got, err := s.ListDeliveries(ctx(t), f)
		must(t, err)
		for _, d := range got {
			if d.WorkspaceID != f.WorkspaceID {
				t.Fatalf("listing workspace %s returned delivery %d of workspace %s", f.WorkspaceID, d.ID, d.WorkspaceID)
			}
		}
		return ids(got)
	}
	a0, a1, a2, a4 := ds[0].ID, ds[1].ID, ds[2].ID, ds[4].ID
	wantEqual(t, "all of a, newest first", list(store.DeliveryFilter{}), []int64{a4, a2, a1, a0})
	wantEqual(t, "b", list(store.DeliveryFilter{WorkspaceID: "b"}), []int64{ds[3].ID})
	wantEqual(t, "failed", list(store.DeliveryFilter{Status: store.DeliveryFailed}), []int64{a0})
	wantEqual(t, "reason", list(store.DeliveryFilter{Reason: "blocked"}), []int64{a0})
	wantEqual(t, "sending", list(store.DeliveryFilter{Status: store.DeliverySending}), []int64{a2, a1})
	wantEqual(t, "channel", list(store.DeliveryFilter{ChannelID: "other"}), []int64{a1})
	wantEqual(t, "person", list(store.DeliveryFilter{PersonID: "p3"}), []int64{a2})
	// The store's clock stamps creation times: the window is a1's to a4's,
	// so it holds a1 and a2 and whichever of a0 and a4 share those
	// instants, never b's.
	since, until := get(t, s, a1).CreatedAt, get(t, s, a4).CreatedAt
	window := []int64{}
	for _, id := range []int64{a4, a2, a1, a0} {
		if c := get(t, s, id).CreatedAt; !c.Before(since) && c.Before(until) {
			window = append(window, id)
		}
	}
	wantEqual(t, "since (inclusive) until (exclusive)", list(store.DeliveryFilter{Since: since, Until: until}), window)
	wantEqual(t, "page before", list(store.DeliveryFilter{Before: a2, Limit: 1}), []int64{a1})
	wantEqual(t, "page after, oldest first", list(store.DeliveryFilter{After: a0, Limit: 2}), []int64{a1, a2})
	wantEqual(t, "nothing after the newest", list(store.DeliveryFilter{After: a4}), []int64{})
}

// testCountPendingDeliveries checks the outbox depth by channel and status.
func testCountPendingDeliveries(t *testing.T, s store.Store) {
	ds := []store.Delivery{delivery("q1", "r1"), delivery("q2", "r2"), delivery("q3", "r3"), delivery("q4", "r4")}
	ds[2].ChannelID = "other"
	ds[3].WorkspaceID = "b"
	enqueue(t, s, ds[:1]...)
	claim(t, s, t0, 10) // q1 is sending
	enqueue(t, s, ds[1:]...)
	for i := range ds {
		ds[i].CreatedAt = get(t, s, ds[i].ID).CreatedAt
	}
	got, err := s.CountPendingDeliveries(ctx(t), "a")
	must(t, err)
	wantEqual(t, "groups", len(got), 3)
	want := []store.PendingCount{
		{ChannelID: "ch", Status: store.DeliveryQueued, N: 1, Oldest: ds[1].CreatedAt},
		{ChannelID: "ch", Status: store.DeliverySending, N: 1, Oldest: ds[0].CreatedAt},
		{ChannelID: "other", Status: store.DeliveryQueued, N: 1, Oldest: ds[2].CreatedAt},
	}
	for i, w := range want {
		g := got[i]
		if g.ChannelID != w.ChannelID || g.Status != w.Status || g.N != w.N || !g.Oldest.Equal(w.Oldest) {
			t.Fatalf("count %d = %+v, want %+v", i, g, w)
		}
	}
	complete(t, s, store.DeliveryResult{ID: ds[0].ID, Status: store.DeliverySent, CountAttempt: true, At: t0})
	got, err = s.CountPendingDeliveries(ctx(t), "a")
	must(t, err)
	wantEqual(t, "groups once q1 is sent", len(got), 2)
}

// testListNodes checks that leases are listed and a rescued node is gone.
func testListNodes(t *testing.T, s store.Store) {
	_, err := s.StartNode(ctx(t), nodeB, t0, 5*time.Second)
	must(t, err)
	_, err = s.StartNode(ctx(t), nodeA, t0, time.Minute)
	must(t, err)
	got, err := s.ListNodes(ctx(t))
	must(t, err)
	wantEqual(t, "nodes", len(got), 2)
	if got[0].ID != nodeA || !got[0].LeaseUntil.Equal(t0.Add(time.Minute)) || !got[0].StartedAt.Equal(t0) || got[1].ID != nodeB {
		t.Fatalf("nodes = %+v", got)
	}
	_, err = s.RescueExpiredNodes(ctx(t), nodeA, t0.Add(10*time.Second))
	must(t, err)
	got, err = s.ListNodes(ctx(t))
	must(t, err)
	wantEqual(t, "nodes after the rescue", len(got), 1)
}
