package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// shortRetention makes the cleaner run every 100 ms and keep requests and
// deliveries for a second.
func shortRetention(cfg *config.Config) {
	cfg.Retention.Interval = 100 * time.Millisecond
	cfg.Retention.FlowTriggers = time.Second
	cfg.Retention.SentDeliveries = time.Second
	cfg.Retention.FailedDeliveries = time.Second
}

// TestBroadcastResultExpires checks that once the cleaner deleted a
// request, its GET answers 404 expired, and that an id never given out
// still answers request_not_found.
func TestBroadcastResultExpires(t *testing.T) {
	t.Parallel()
	e := newCSMLWith(t, shortRetention)
	code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, seedBroadcast)
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, out)
	}
	id := out["request_id"].(string)
	e.result(t, id, "delivered")

	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, _ = e.do(t, "GET", "/v1/api/broadcasts/"+id, e.key, "")
		if code == http.StatusNotFound {
			break
		}
		if code != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("GET after the retention: %d %v, want 404 expired", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.g.Store.GetFlowTrigger(context.Background(), "demo-webhook", id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("request still stored after its 404: %v", err)
	}
	if e := firstError(t, out); e["code"] != "expired" || !strings.Contains(e["detail"].(string), "retention.flow_triggers") {
		t.Fatalf("expired request: %v, want code expired naming the retention", out)
	}
	code, out, _ = e.do(t, "GET", "/v1/api/broadcasts/"+uuid.NewString(), e.key, "")
	if code != http.StatusNotFound || firstError(t, out)["code"] != "request_not_found" {
		t.Fatalf("unknown id: %d %v, want 404 request_not_found", code, out)
	}
}

// TestTrackDeleteErasesConversationsAndDeliveries deletes a person through
// the Track API and checks that what they said and were sent is gone,
// while another person's history stays.
func TestTrackDeleteErasesConversationsAndDeliveries(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	ctx := context.Background()
	send(t, e.g, "m-alice", map[string]any{"user_id": "alice", "text": "hi"})
	send(t, e.g, "m-bob", map[string]any{"user_id": "bob", "text": "hi"})
	e.sink.WaitFor(t, 4, 10*time.Second)

	type trail struct {
		conv       string
		deliveries []int64
	}
	trailOf := func(user string) trail {
		t.Helper()
		cs, err := e.g.Store.ListConversations(ctx, store.ConversationFilter{ChannelID: "demo-webhook", UserID: user})
		if err != nil || len(cs) != 1 {
			t.Fatalf("conversations of %s: %v, %v", user, cs, err)
		}
		ms, err := e.g.Store.ListMessages(ctx, cs[0].ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		tr := trail{conv: cs[0].ID}
		for _, m := range ms {
			if m.DeliveryID != 0 {
				tr.deliveries = append(tr.deliveries, m.DeliveryID)
			}
		}
		if len(tr.deliveries) == 0 {
			t.Fatalf("%s was sent nothing: %+v", user, ms)
		}
		return tr
	}
	alice, bob := trailOf("alice"), trailOf("bob")
	bobPerson, err := e.g.Store.PersonByIdentity(ctx, "demo-webhook", "bob")
	if err != nil {
		t.Fatal(err)
	}

	newCIO(t, e.g, "demo").must(http.StatusOK, "DELETE", "/api/v1/customers/alice", nil, true)

	if _, err := e.g.Store.GetConversation(ctx, alice.conv); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice's conversation (memory) after her deletion: %v", err)
	}
	if ms, err := e.g.Store.ListMessages(ctx, alice.conv, 0, 100); err != nil || len(ms) != 0 {
		t.Fatalf("alice's messages after her deletion: %d, %v", len(ms), err)
	}
	for _, id := range alice.deliveries {
		if _, err := e.g.Store.GetDelivery(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("alice's delivery %d after her deletion: %v", id, err)
		}
	}
	if _, err := e.g.Store.GetPerson(ctx, "demo", bobPerson.ID); err != nil {
		t.Fatalf("bob after alice's deletion: %v", err)
	}
	if _, err := e.g.Store.GetConversation(ctx, bob.conv); err != nil {
		t.Fatalf("bob's conversation after alice's deletion: %v", err)
	}
	for _, id := range bob.deliveries {
		if _, err := e.g.Store.GetDelivery(ctx, id); err != nil {
			t.Fatalf("bob's delivery %d after alice's deletion: %v", id, err)
		}
	}
}
