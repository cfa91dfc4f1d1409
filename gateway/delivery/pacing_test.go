package delivery

import (
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

func TestScheduleSpacesRecipientsAndTheChannel(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	st := newChannelState(sdk.RateLimits{
		Global:       sdk.Rate{Count: 10, Per: time.Second, Burst: 2},
		PerRecipient: sdk.Rate{Count: 1, Per: time.Second},
	})
	ds := []store.Delivery{{ID: 1, Recipient: "a"}, {ID: 2, Recipient: "b"}, {ID: 3, Recipient: "c"}, {ID: 4, Recipient: "a"}}
	ready, snoozed := st.schedule(ds, now, 500*time.Millisecond)
	at := map[int64]time.Duration{}
	for _, s := range ready {
		at[s.d.ID] = s.at.Sub(now)
	}
	// Burst 2 lets a and b go at once; c waits one global slot (100ms).
	want := map[int64]time.Duration{1: 0, 2: 0, 3: 100 * time.Millisecond}
	for id, w := range want {
		if got, ok := at[id]; !ok || got != w {
			t.Errorf("delivery %d at +%v (scheduled %v), want +%v", id, got, ok, w)
		}
	}
	// a's second message must wait a full second after the first: past the
	// 500ms horizon, so it goes back to the store until then.
	if len(snoozed) != 1 || snoozed[0].d.ID != 4 || snoozed[0].at.Sub(now) != time.Second {
		t.Fatalf("snoozed = %+v, want delivery 4 at +1s", snoozed)
	}
}

func TestSchedulePauseHoldsEverything(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	st := newChannelState(sdk.RateLimits{})
	st.pause(now.Add(30 * time.Second))
	ready, snoozed := st.schedule([]store.Delivery{{ID: 1, Recipient: "a"}, {ID: 2, Recipient: "b"}}, now, time.Second)
	if len(ready) != 0 || len(snoozed) != 2 {
		t.Fatalf("ready %d, snoozed %d; want all snoozed while paused", len(ready), len(snoozed))
	}
	for _, s := range snoozed {
		if !s.at.Equal(now.Add(30 * time.Second)) {
			t.Errorf("delivery %d snoozed until %v, want the pause's end", s.d.ID, s.at)
		}
	}
}

func TestUnlimitedChannelKeepsNoState(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	st := newChannelState(sdk.RateLimits{})
	var ds []store.Delivery
	for i := range 1000 {
		ds = append(ds, store.Delivery{ID: int64(i), Recipient: string(rune('a' + i%26))})
	}
	ready, snoozed := st.schedule(ds, now, time.Second)
	if len(ready) != 1000 || len(snoozed) != 0 || len(st.next) != 0 {
		t.Fatalf("ready %d snoozed %d tracked %d; want all ready and nothing tracked", len(ready), len(snoozed), len(st.next))
	}
}

func TestRecipientSpacingStartsWhenTheMessageWentOut(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	st := newChannelState(sdk.RateLimits{PerRecipient: sdk.Rate{Count: 1, Per: time.Second}})
	ready, _ := st.schedule([]store.Delivery{{ID: 1, Recipient: "a"}}, now, time.Second)
	// Its batch went out 800ms after a's slot (it waited for another
	// delivery's turn), and Send returned then.
	st.sent([]store.Delivery{ready[0].d}, now.Add(800*time.Millisecond))
	ready, snoozed := st.schedule([]store.Delivery{{ID: 2, Recipient: "a"}}, now.Add(900*time.Millisecond), 2*time.Second)
	if len(snoozed) != 0 || len(ready) != 1 || !ready[0].at.Equal(now.Add(1800*time.Millisecond)) {
		t.Fatalf("a's next message at %v, want a second after the first went out (+1.8s)", ready)
	}
}
