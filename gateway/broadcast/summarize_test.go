package broadcast

import (
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// TestSummarizeWebchatNeedsAnAck: a web chat message handed to the outbox
// is not delivered until a client acknowledges it, whether the user is
// connected (awaiting_ack) or not (pending_connection).
func TestSummarizeWebchatNeedsAnAck(t *testing.T) {
	d := func(status store.DeliveryStatus, reason string) store.Delivery {
		return store.Delivery{Status: status, Reason: reason}
	}
	for _, c := range []struct {
		name       string
		ds         []store.Delivery
		status     Status
		wantReason string
	}{
		{"written, not acknowledged", []store.Delivery{d(store.DeliverySent, store.ReasonAwaitingAck), d(store.DeliverySent, store.ReasonAwaitingAck)},
			StatusSending, store.ReasonAwaitingAck},
		{"one acknowledged", []store.Delivery{d(store.DeliveryDelivered, ""), d(store.DeliverySent, store.ReasonAwaitingAck)},
			StatusSending, store.ReasonAwaitingAck},
		{"another still sending", []store.Delivery{d(store.DeliverySending, ""), d(store.DeliverySent, store.ReasonAwaitingAck)},
			StatusSending, ""},
		{"user offline", []store.Delivery{d(store.DeliverySent, store.ReasonAwaitingAck), d(store.DeliverySent, store.ReasonPendingConnection)},
			StatusPendingConnection, "not_connected"},
		{"all acknowledged", []store.Delivery{d(store.DeliveryDelivered, ""), d(store.DeliveryDelivered, "")},
			StatusDelivered, ""},
		{"other channels: accepted by the platform", []store.Delivery{d(store.DeliverySent, "")},
			StatusDelivered, ""},
	} {
		if status, reason, _ := summarize(c.ds); status != c.status || reason != c.wantReason {
			t.Errorf("%s: %s/%q, want %s/%q", c.name, status, reason, c.status, c.wantReason)
		}
	}
}

// TestSummarizeDeliveredAtIsTheLastMessages: the result's delivered_at is
// the latest of its messages' times, a confirmed delivery's (a web chat
// ack) rather than its send.
func TestSummarizeDeliveredAtIsTheLastMessages(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := t0.Add(d); return &t }
	ds := []store.Delivery{
		{Status: store.DeliveryDelivered, SentAt: at(0), DeliveredAt: at(3 * time.Second)},
		{Status: store.DeliverySent, SentAt: at(time.Second)},
	}
	status, _, last := summarize(ds)
	if status != StatusDelivered || last == nil || !last.Equal(*ds[0].DeliveredAt) {
		t.Fatalf("summarize = %s at %v, want delivered at %v (the ack)", status, last, ds[0].DeliveredAt)
	}
}
