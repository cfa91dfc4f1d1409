package webchat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// batchTimeout bounds one write of a coalescer.
const batchTimeout = 10 * time.Second

// coalescer writes values per key in batches: values that arrive while a
// batch is being written are merged per key and written together next, so
// a burst (a broadcast acknowledged by thousands of clients, thousands of
// reconnects) costs a few transactions, not thousands.
type coalescer[K comparable, V any] struct {
	// merge folds a newer value into a pending one; nil: the newer wins.
	merge func(old, v V) V
	write func(ctx context.Context, batch map[K]V) error
	what  string // for the error log
	log   *slog.Logger

	mu       sync.Mutex
	pending  map[K]V
	flushing bool
	wg       sync.WaitGroup
}

func (c *coalescer[K, V]) add(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[K]V{}
	}
	if old, ok := c.pending[k]; ok && c.merge != nil {
		v = c.merge(old, v)
	}
	c.pending[k] = v
	if c.flushing {
		return
	}
	c.flushing = true
	c.wg.Add(1)
	go c.flush()
}

// flush writes batches until nothing is pending.
func (c *coalescer[K, V]) flush() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		batch := c.pending
		c.pending = nil
		if len(batch) == 0 {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		if err := c.write(ctx, batch); err != nil {
			c.log.Error("web chat: "+c.what, "count", len(batch), "err", err)
		}
		cancel()
	}
}

// wait returns once no batch is being written.
func (c *coalescer[K, V]) wait() { c.wg.Wait() }

// ackStore records acks.
type ackStore interface {
	AckWebchat(ctx context.Context, acks []store.WebchatAck, keep int, at time.Time) error
}

// newAcker records client acks in batches, the highest sequence number per
// user winning. An ack lost in a crash only means its messages are written
// again on the next connection, where the client skips sequence numbers it
// has.
func newAcker(st ackStore, keep int, log *slog.Logger) *coalescer[userKey, int64] {
	return &coalescer[userKey, int64]{
		merge: func(old, v int64) int64 { return max(old, v) },
		write: func(ctx context.Context, batch map[userKey]int64) error {
			acks := make([]store.WebchatAck, 0, len(batch))
			for k, seq := range batch {
				acks = append(acks, store.WebchatAck{ChannelID: k.channel, UserID: k.user, Seq: seq})
			}
			return st.AckWebchat(ctx, acks, keep, time.Time{})
		},
		what: "record acks",
		log:  log,
	}
}
