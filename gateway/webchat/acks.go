package webchat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// ackTimeout bounds one write of acknowledgements.
const ackTimeout = 10 * time.Second

// acker records client acks in batches: acks that arrive while a batch is
// being written are merged (the highest sequence number per user wins) and
// written together next, so a broadcast acked by thousands of clients costs
// a few transactions, not thousands. An ack lost in a crash only means its
// messages are written again on the next connection, where the client
// skips sequence numbers it has.
type acker struct {
	store interface {
		AckWebchat(ctx context.Context, acks []store.WebchatAck, keep int, at time.Time) error
	}
	keep int
	log  *slog.Logger

	mu       sync.Mutex
	pending  map[userKey]int64
	flushing bool
	wg       sync.WaitGroup
}

func (a *acker) add(k userKey, seq int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		a.pending = map[userKey]int64{}
	}
	a.pending[k] = max(a.pending[k], seq)
	if a.flushing {
		return
	}
	a.flushing = true
	a.wg.Add(1)
	go a.flush()
}

// flush writes batches until no ack is pending.
func (a *acker) flush() {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		batch := a.pending
		a.pending = nil
		if len(batch) == 0 {
			a.flushing = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		acks := make([]store.WebchatAck, 0, len(batch))
		for k, seq := range batch {
			acks = append(acks, store.WebchatAck{ChannelID: k.channel, UserID: k.user, Seq: seq})
		}
		ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
		if err := a.store.AckWebchat(ctx, acks, a.keep, time.Time{}); err != nil {
			a.log.Error("web chat: record acks", "count", len(acks), "err", err)
		}
		cancel()
	}
}

// wait returns once no batch is being written.
func (a *acker) wait() { a.wg.Wait() }
