package broadcast

import (
	"testing"

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
