package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
)

// fakeDeliveries answers ListDeliveries from a table the test changes
// between polls, like the admin API would: ids above After, oldest first,
// in pages of Limit.
type fakeDeliveries struct {
	adminapi.Admin // only ListDeliveries is called
	rows           []adminapi.Delivery
	limit          int
}

func (f *fakeDeliveries) ListDeliveries(_ context.Context, _ string, q adminapi.DeliveryQuery) (adminapi.Page[adminapi.Delivery], error) {
	after := q.After
	if q.Cursor != "" {
		after = int64(q.Cursor[0]) // the test's cursors are one byte: the last id
	}
	p := adminapi.Page[adminapi.Delivery]{}
	for _, d := range f.rows {
		if d.ID <= after {
			continue
		}
		if len(p.Data) == f.limit {
			p.Next = string(rune(p.Data[len(p.Data)-1].ID))
			break
		}
		p.Data = append(p.Data, d)
	}
	return p, nil
}

func (f *fakeDeliveries) set(id int64, status string) {
	for i := range f.rows {
		if f.rows[i].ID == id {
			f.rows[i].Status = status
			return
		}
	}
	f.rows = append(f.rows, adminapi.Delivery{ID: id, Status: status, ChannelID: "ch", Recipient: "r"})
}

// TestTailFollowsOutcomes: a delivery is printed when first seen and at
// each status change until final; one left behind by more pages than a
// poll reads is let go instead of stalling the tail.
func TestTailFollowsOutcomes(t *testing.T) {
	f := &fakeDeliveries{limit: 2}
	s := &session{Admin: f}
	var out bytes.Buffer
	tl := &tail{out: &out, seen: map[int64]string{}}
	ctx := context.Background()
	poll := func(floor int64) int64 {
		t.Helper()
		next, err := tl.poll(ctx, s, "ws", adminapi.DeliveryQuery{}, floor)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	lines := func() []string {
		t.Helper()
		got := strings.Split(strings.TrimSpace(out.String()), "\n")
		out.Reset()
		for i, l := range got {
			_, got[i], _ = strings.Cut(l, "  ") // drop the time
		}
		return got
	}

	f.set(1, "delivered") // before the tail started: never printed
	f.set(2, "queued")
	f.set(3, "failed")
	floor := poll(1)
	if got := strings.Join(lines(), "|"); got != "delivery 2  ch → r  queued|delivery 3  ch → r  failed" {
		t.Fatalf("first poll printed %q", got)
	}
	if floor != 1 {
		t.Fatalf("floor = %d, want 1: delivery 2 is still followed", floor)
	}
	f.set(2, "retrying")
	floor = poll(floor)
	f.set(2, "sent")
	floor = poll(floor)
	if got := strings.Join(lines(), "|"); got != "delivery 2  ch → r  retrying|delivery 2  ch → r  sent" {
		t.Fatalf("status changes printed %q", got)
	}
	if tl.outcomes != 2 { // failed 3, sent 2
		t.Fatalf("outcomes = %d, want 2", tl.outcomes)
	}
	poll(floor)
	if out.Len() != 0 {
		t.Fatalf("an unchanged poll printed %q", out.String())
	}

	// Twelve more deliveries: more than five pages of two after 2, which
	// is still "sent" (a receipt may come). It is let go.
	for id := int64(4); id <= 15; id++ {
		f.set(id, "delivered")
	}
	floor = poll(floor)
	if _, followed := tl.seen[2]; followed {
		t.Fatal("delivery 2 is still followed after falling five pages behind")
	}
	if got := lines(); len(got) != 8 || !strings.HasPrefix(got[0], "delivery 4 ") || !strings.HasPrefix(got[7], "delivery 11 ") {
		t.Fatalf("the poll that fell behind printed %q, want 4 to 11 (five pages from 2)", got)
	}
	floor = poll(floor)
	if got := lines(); len(got) != 4 || !strings.HasPrefix(got[0], "delivery 12 ") {
		t.Fatalf("the poll after letting go printed %q, want 12 to 15, each once", got)
	}
	if floor != 15 {
		t.Fatalf("floor = %d, want 15", floor)
	}
}
