package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// seedPeople writes n people p00000… with an address on the audience
// workspace's news channel, in one transaction.
func seedPeople(t testing.TB, st store.Store, n int) {
	t.Helper()
	err := st.WithTx(context.Background(), func(tx store.Store) error {
		for i := range n {
			id := fmt.Sprintf("p%07d", i)
			if _, err := tx.UpsertPerson(context.Background(), store.Person{WorkspaceID: "media", ID: id,
				Attributes: map[string]any{"first_name": id, "likes_baseball": true}}); err != nil {
				return err
			}
			if err := tx.LinkIdentity(context.Background(), store.Identity{WorkspaceID: "media", PersonID: id,
				ChannelID: "media-news", Address: id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAudienceCrashMidFanOut SIGKILLs the gateway process while a trigger
// fans out (small batches and budgets, so the fan-out spans many steps and
// continuation jobs), restarts it on the same SQLite file, and checks that
// every recipient received exactly one distinct delivery at the sink: a
// re-send after the crash carries the same idempotency key.
func TestAudienceCrashMidFanOut(t *testing.T) {
	t.Parallel()
	const people = 3000
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	cfg.Audience.BatchSize = 20
	cfg.Audience.StepBudget = 100 * time.Millisecond
	st := gatewaytest.OpenStore(t, cfg)
	t.Cleanup(func() { st.Close() })
	gatewaytest.ApplyTo(t, st, audienceWorkspace(sink.URL))
	seedPeople(t, st, people)
	app := gatewaytest.NewKey(t, st, "media", store.ScopeApp, "")
	p := gatewaytest.StartProcess(t, cfg)
	c := &cio{t: t, url: p.URL, app: app, wsID: "media"}
	news := c.broadcast(newsBroadcast())
	id := c.trigger(news, map[string]any{"data": map[string]any{"headline": "crash"}})

	// Kill once the fan-out is under way but not done.
	deadline := time.Now().Add(30 * time.Second)
	for {
		tr, err := st.GetTrigger(context.Background(), "media", id)
		if err != nil {
			t.Fatal(err)
		}
		if tr.State == store.TriggerProcessed {
			t.Fatalf("the fan-out ended before the kill (%d steps); make it slower", tr.Steps)
		}
		if tr.Steps >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fan-out did not start: %+v", tr)
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.Kill()
	before, err := st.GetTrigger(context.Background(), "media", id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed at step %d with %d recipients matched and %d messages at the sink", before.Steps, before.Matched, len(sink.Messages()))
	p.Restart()

	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// Say where the missing deliveries stand.
		ds, err := st.ListDeliveriesBySource(context.Background(), "trigger", fmt.Sprint(id))
		if err != nil {
			t.Logf("list deliveries: %v", err)
		}
		for _, d := range ds {
			if d.Status != store.DeliverySent {
				t.Logf("delivery %d to %s: %s %s attempts %d next %s: %s", d.ID, d.Recipient, d.Status, d.Reason,
					d.Attempts, d.NextAttemptAt.Format(time.RFC3339Nano), d.LastError)
			}
		}
	})
	msgs := sink.WaitFor(t, people, 120*time.Second)
	st2 := c.wait(news, id)
	dups := checkOncePerRecipient(t, msgs, people)
	counts := st2["counts"].(map[string]any)
	if counts["matched"].(float64) != people || counts["sent"].(float64) != people {
		t.Fatalf("trigger counts after the restart = %v, want %d matched and sent", counts, people)
	}
	t.Logf("%d messages at the sink for %d recipients (re-sends with the same key: %d)", len(msgs), people, dups)
}
