package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// fakeStore answers renewals as told and records what the node asked.
type fakeStore struct {
	mu       sync.Mutex
	renewErr error
	rescued  store.Released
	starts   int
	selves   []string
}

func (f *fakeStore) StartNode(context.Context, string, time.Time, time.Duration) (store.Released, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	return store.Released{Jobs: 1}, nil
}

func (f *fakeStore) RenewNode(context.Context, string, time.Time, time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renewErr
}

func (f *fakeStore) RescueExpiredNodes(_ context.Context, self string, _ time.Time) (store.Released, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.selves = append(f.selves, self)
	r := f.rescued
	f.rescued = store.Released{}
	return r, nil
}

func (f *fakeStore) StopNode(context.Context, string) (store.Released, error) {
	return store.Released{}, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestNode(t *testing.T, st *fakeStore, released *[]store.Released) (*Node, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	n, err := New(st, Options{ID: "n1", Lease: 5 * time.Second, Now: c.now,
		Released: func(r store.Released) { *released = append(*released, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if n.Held().Err() == nil {
		t.Fatal("held before Start")
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n, c
}

func TestLostLeaseCancelsHeldWorkAndStartsAnew(t *testing.T) {
	st := &fakeStore{}
	var released []store.Released
	n, c := newTestNode(t, st, &released)
	held := n.Held()
	c.t = c.t.Add(time.Second)
	n.beat(t.Context())
	if held.Err() != nil {
		t.Fatal("a renewed lease cancelled its work")
	}
	st.renewErr = store.ErrClaimLost
	n.beat(t.Context())
	if held.Err() == nil {
		t.Fatal("work under a lost lease was not cancelled")
	}
	if n.Held().Err() != nil || st.starts != 2 {
		t.Fatalf("no new lease after the loss (starts %d)", st.starts)
	}
	if len(released) != 2 {
		t.Fatalf("released callbacks = %v, want one per start", released)
	}
}

// While the store is unreachable the node keeps its work for as long as
// its lease would hold, and gives it up once the lease must have run out.
func TestUnreachableStoreLosesTheLeaseOnlyAfterItRunsOut(t *testing.T) {
	st := &fakeStore{}
	var released []store.Released
	n, c := newTestNode(t, st, &released)
	held := n.Held()
	st.renewErr = errors.New("connection refused")
	c.t = c.t.Add(4 * time.Second)
	n.beat(t.Context())
	if held.Err() != nil {
		t.Fatal("a short outage cancelled the node's work")
	}
	c.t = c.t.Add(2 * time.Second) // 6s since the last renewal, lease 5s
	n.beat(t.Context())
	if held.Err() == nil {
		t.Fatal("the node kept its work after its lease ran out")
	}
}

func TestHeartbeatSweepsOtherNodesAndReportsTakeovers(t *testing.T) {
	st := &fakeStore{rescued: store.Released{Nodes: []string{"dead"}, Jobs: 2, Deliveries: 40}}
	var released []store.Released
	n, _ := newTestNode(t, st, &released)
	n.beat(t.Context())
	if len(st.selves) != 1 || st.selves[0] != "n1" {
		t.Fatalf("sweeps = %v, want one excluding n1", st.selves)
	}
	if len(released) != 2 || released[1].Deliveries != 40 {
		t.Fatalf("released = %v, want the takeover reported", released)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	if _, err := New(&fakeStore{}, Options{}); err == nil {
		t.Error("a node without an id was accepted")
	}
	if _, err := New(&fakeStore{}, Options{ID: "x", Lease: time.Second, Heartbeat: 2 * time.Second}); err == nil {
		t.Error("a heartbeat longer than the lease was accepted")
	}
}
