package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// TestPostgresClaimCostIsBounded claims from an outbox whose statistics
// mislead the planner (never analyzed; vacuumed empty after a drain, so
// the planner believes the pending indexes hold nothing) while many rows
// are pending and a claim's worth are being sent, and bounds the rows the
// claim statement touches. A per-recipient ordering check planned as an
// anti-join over the pending set touches claimed × pending rows (millions
// here); the probe touches about one index entry per candidate. Recording
// a batch's outcomes is bounded the same way.
func TestPostgresClaimCostIsBounded(t *testing.T) {
	s := OpenTestPostgres(t)
	ctx := context.Background()
	const pending, limit = 20000, 512

	fill := func(round int) {
		t.Helper()
		ds := make([]store.Delivery, pending)
		for i := range ds {
			ds[i] = store.Delivery{WorkspaceID: "w", ChannelID: "ch", Recipient: fmt.Sprintf("user-%d", i),
				Content: message.Text("hi"), IdempotencyKey: fmt.Sprintf("r%d-%d", round, i), SourceKind: "trigger", SourceID: "t"}
		}
		if _, err := s.EnqueueDeliveries(ctx, ds); err != nil {
			t.Fatal(err)
		}
		// A claim's worth in flight, as while a fan-out is being sent.
		if got, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n", Limit: limit}); err != nil || len(got) != limit {
			t.Fatalf("claimed %d, %v", len(got), err)
		}
	}
	check := func(what string) {
		t.Helper()
		now := micros(time.Now())
		touched, plan := rowsTouched(t, s, claimDeliveriesQuery(s.d, limit), now, "probe", now, now)
		t.Logf("%s: a claim of %d touched %d rows", what, limit, touched)
		if touched > int64(20*limit) {
			t.Fatalf("%s: a claim of %d touched %d rows (bound %d); plan:\n%s", what, limit, touched, 20*limit, plan)
		}
		// Recording a batch of 128 outcomes while the node sends 512 more:
		// primary-key lookups, not every row the node holds.
		held, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n", Limit: 128})
		if err != nil || len(held) != 128 {
			t.Fatalf("claimed %d, %v", len(held), err)
		}
		var args []any
		for _, d := range held {
			args = append(args, d.ID, "sent", "", "", "", int64(0), 1, now)
		}
		touched, plan = rowsTouched(t, s, completeQuery(len(held)), append(args, "n")...)
		t.Logf("%s: recording a batch of outcomes touched %d rows", what, touched)
		if touched > int64(20*len(held)) {
			t.Fatalf("%s: recording a batch of outcomes touched %d rows (bound %d); plan:\n%s", what, touched, 20*len(held), plan)
		}
	}

	fill(1)
	check("never analyzed")

	// Drain, vacuum (the planner now believes the outbox is empty), then
	// the next fan-out arrives.
	for {
		got, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		rs := make([]store.DeliveryResult, len(got))
		for i, d := range got {
			rs[i] = store.DeliveryResult{ID: d.ID, Status: store.DeliverySent}
		}
		if err := s.CompleteDeliveries(ctx, "n", rs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.conns.write.ExecContext(ctx, `UPDATE deliveries SET status = 'sent', pending = 0 WHERE status = 'sending'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.conns.write.ExecContext(ctx, `VACUUM deliveries`); err != nil {
		t.Fatal(err)
	}
	fill(2)
	check("vacuumed after a drain")
}

// rowsTouched runs a statement, plan pinned as the store pins it, under
// EXPLAIN ANALYZE in a transaction it rolls back, and adds up the rows
// every plan node produced or threw away, over all its loops.
func rowsTouched(t *testing.T, s *Store, query string, args ...any) (int64, string) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.conns.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	var out string
	if _, err := tx.ExecContext(ctx, s.d.pinPlan()); err != nil {
		t.Fatal(err)
	}
	err = tx.QueryRowContext(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+s.d.rebind(query), args...).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(out), &plans); err != nil {
		t.Fatal(err)
	}
	return plans[0].Plan.touched(), out
}

type planNode struct {
	Rows          float64    `json:"Actual Rows"`
	Loops         float64    `json:"Actual Loops"`
	RemovedFilter float64    `json:"Rows Removed by Filter"`
	RemovedJoin   float64    `json:"Rows Removed by Join Filter"`
	Plans         []planNode `json:"Plans"`
}

func (p planNode) touched() int64 {
	n := (p.Rows + p.RemovedFilter + p.RemovedJoin) * max(p.Loops, 1)
	for _, c := range p.Plans {
		n += float64(c.touched())
	}
	return int64(n)
}
