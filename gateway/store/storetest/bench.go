package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// BenchOutbox pushes rows deliveries through the outbox the way a fan-out
// does: enqueue in batches of 1,000, then claim 1,000 at a time and complete
// each claim as sent. It reports enqueue, claim+complete and overall rows/s.
func BenchOutbox(b *testing.B, s store.Store, rows int) {
	const batch = 1000
	ctx := b.Context()
	content := message.Text("Hello {{ name }}, your order has shipped.")
	var enqueueTime, drainTime, claimTime time.Duration
	run := 0
	for b.Loop() {
		run++
		start := time.Now()
		ds := make([]store.Delivery, batch)
		for i := 0; i < rows; i += batch {
			for j := range ds {
				n := i + j
				ds[j] = store.Delivery{WorkspaceID: "bench", ChannelID: "ch", Recipient: fmt.Sprintf("user-%d", n),
					Content: content, IdempotencyKey: fmt.Sprintf("bench-%d-%d", run, n),
					SourceKind: "trigger", SourceID: fmt.Sprint(run)}
			}
			if _, err := s.EnqueueDeliveries(ctx, ds); err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		enqueueTime += mid.Sub(start)

		done := 0
		rs := make([]store.DeliveryResult, 0, batch)
		for {
			claimStart := time.Now()
			got, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "bench", Limit: batch})
			claimTime += time.Since(claimStart)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			rs = rs[:0]
			for _, d := range got {
				rs = append(rs, store.DeliveryResult{ID: d.ID, Status: store.DeliverySent,
					ProviderID: d.IdempotencyKey, CountAttempt: true})
			}
			if err := s.CompleteDeliveries(ctx, "bench", rs); err != nil {
				b.Fatal(err)
			}
			done += len(got)
		}
		if done != rows {
			b.Fatalf("drained %d deliveries, want %d", done, rows)
		}
		drainTime += time.Since(mid)
	}
	total := float64(rows * run)
	b.ReportMetric(total/enqueueTime.Seconds(), "enqueue-rows/s")
	b.ReportMetric(total/drainTime.Seconds(), "claim+complete-rows/s")
	b.ReportMetric(total/claimTime.Seconds(), "claim-rows/s")
	b.ReportMetric(total/(drainTime-claimTime).Seconds(), "complete-rows/s")
	b.ReportMetric(total/(enqueueTime+drainTime).Seconds(), "rows/s")
}
