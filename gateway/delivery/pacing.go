package delivery

import (
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// channelState paces one channel: a global token bucket, a minimum spacing
// per recipient, and a pause set by the platform's retry-after.
type channelState struct {
	mu sync.Mutex
	// global spacing between sends and the burst allowance, as a virtual
	// schedule: tat is the theoretical arrival time of the next send (GCRA).
	globalEvery time.Duration
	globalBurst int
	tat         time.Time
	// per-recipient spacing; next holds only recipients whose next slot is
	// still in the future, so it stays small even during a fan-out to
	// millions.
	recipientEvery time.Duration
	next           map[string]time.Time
	pausedUntil    time.Time
}

func newChannelState(l sdk.RateLimits) *channelState {
	st := &channelState{next: map[string]time.Time{}}
	if !l.Global.Unlimited() {
		st.globalEvery = l.Global.Per / time.Duration(l.Global.Count)
		st.globalBurst = max(l.Global.Burst, 1)
	}
	if !l.PerRecipient.Unlimited() {
		st.recipientEvery = l.PerRecipient.Per / time.Duration(l.PerRecipient.Count)
	}
	return st
}

func (c *channelState) pause(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
}

// pauseEnd is when the latest retry-after ends.
func (c *channelState) pauseEnd() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pausedUntil
}

// schedule assigns each delivery its earliest send time. Those that fall
// within horizon are returned ready, sorted by time; the rest are snoozed
// and go back to the store until their time.
func (c *channelState) schedule(ds []store.Delivery, now time.Time, horizon time.Duration) (ready, snoozed []scheduled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prune(now)
	limit := now.Add(horizon)
	for _, d := range ds {
		at := now
		if c.pausedUntil.After(at) {
			at = c.pausedUntil
		}
		if c.recipientEvery > 0 {
			if n, ok := c.next[d.Recipient]; ok && n.After(at) {
				at = n
			}
		}
		if c.globalEvery > 0 {
			// GCRA: a send may happen once tat - burst*every <= at.
			earliest := c.tat.Add(-time.Duration(c.globalBurst-1) * c.globalEvery)
			if earliest.After(at) {
				at = earliest
			}
		}
		if at.After(limit) {
			snoozed = append(snoozed, scheduled{d: d, at: at})
			continue
		}
		if c.recipientEvery > 0 {
			c.next[d.Recipient] = at.Add(c.recipientEvery)
		}
		if c.globalEvery > 0 {
			c.tat = maxTime(c.tat, at).Add(c.globalEvery)
		}
		ready = append(ready, scheduled{d: d, at: at})
	}
	sortByTime(ready)
	return ready, snoozed
}

// sent restarts the spacing of the recipients of ds at now, when their Send
// returned. A message may reach the platform well after its slot (its batch
// waits for its last delivery's turn, the plugin paces or retries inside
// Send), and the platform counts its per-recipient limit from when a message
// arrived: spacing the next message from the slot would send it too early
// and earn a 429, which pauses the whole channel.
func (c *channelState) sent(ds []store.Delivery, now time.Time) {
	if c.recipientEvery <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := now.Add(c.recipientEvery)
	for _, d := range ds {
		if next.After(c.next[d.Recipient]) {
			c.next[d.Recipient] = next
		}
	}
}

// prune forgets recipients whose spacing has passed.
func (c *channelState) prune(now time.Time) {
	for r, t := range c.next {
		if !t.After(now) {
			delete(c.next, r)
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
