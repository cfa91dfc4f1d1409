// Package cluster makes a gateway process a node among those sharing one
// store, and holds the lease under which the node's work runs.
//
// Every job and delivery a node claims names the node (store.Nodes). The
// node renews one lease for all of them by heartbeat, instead of each claim
// guessing how long its work may take:
//
//   - while the heartbeat lands, nothing the node holds is taken from it,
//     however long it runs (a fan-out step, a slow platform);
//   - a node that stops renewing (kill -9, a partition, a stalled process)
//     loses all of its claims when the lease runs out: every live node
//     sweeps for expired leases at each heartbeat, so another node takes
//     the work over within Lease plus one Heartbeat;
//   - a node that starts again under the same id takes its own claims back
//     at once (the process that held them is gone);
//   - a node that learns it lost its lease (its renewal finds the lease
//     taken, or the store was unreachable for longer than the lease)
//     cancels Held: everything running under the lost lease stops, and
//     its late results are refused by the store's fencing. Then it starts
//     a new lease and carries on.
//
// Node ids must be unique among live processes and stable across restarts
// of one process (see config cluster.node_id): two live processes under one
// id would release each other's work.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Store is what a node needs from the store.
type Store interface {
	StartNode(ctx context.Context, id string, now time.Time, lease time.Duration) (store.Released, error)
	RenewNode(ctx context.Context, id string, now time.Time, lease time.Duration) error
	RescueExpiredNodes(ctx context.Context, self string, now time.Time) (store.Released, error)
	StopNode(ctx context.Context, id string) (store.Released, error)
}

// Options configure a Node. Zero values take the defaults.
type Options struct {
	// ID names the node; required.
	ID string
	// Lease is how long the node's claims hold without a heartbeat: the
	// longest a dead node's work waits for another node. Defaults to 5s.
	Lease time.Duration
	// Heartbeat is how often the lease is renewed and expired leases are
	// swept. Defaults to a fifth of Lease.
	Heartbeat time.Duration
	// Released is called after work was released: the node's own at
	// start, or a dead node's. Workers should claim at once.
	Released func(store.Released)
	Logger   *slog.Logger
	Now      func() time.Time
}

// Node is this process's membership: its id and its lease.
type Node struct {
	st   Store
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	held   context.Context
	cancel context.CancelFunc
	until  time.Time // the lease as last renewed
}

// New returns a node; Start takes its lease.
func New(st Store, o Options) (*Node, error) {
	if o.ID == "" {
		return nil, errors.New("cluster: a node id is required")
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = o.Lease / 5
	}
	if o.Heartbeat >= o.Lease {
		return nil, fmt.Errorf("cluster: heartbeat %s must be shorter than the lease %s", o.Heartbeat, o.Lease)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := &Node{st: st, opts: o, log: o.Logger.With("component", "cluster", "node", o.ID)}
	n.held, n.cancel = context.WithCancel(context.Background())
	n.cancel() // not held until Start
	return n, nil
}

// ID is the node id claims are made under.
func (n *Node) ID() string { return n.opts.ID }

// Held is cancelled when the lease under which it was returned is lost.
// Run claimed work under it, so losing the lease stops the work.
func (n *Node) Held() context.Context {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.held
}

// Start takes the lease, releasing what an earlier process under the same
// id held.
func (n *Node) Start(ctx context.Context) error {
	now := n.opts.Now()
	rel, err := n.st.StartNode(ctx, n.opts.ID, now, n.opts.Lease)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.held, n.cancel = context.WithCancel(context.Background())
	n.until = now.Add(n.opts.Lease)
	n.mu.Unlock()
	if rel.Jobs+rel.Deliveries > 0 {
		n.log.Info("took back this node's claims from before its restart", "jobs", rel.Jobs, "deliveries", rel.Deliveries)
	}
	n.released("restart", rel)
	return nil
}

// Run renews the lease and sweeps expired ones every Heartbeat until ctx
// ends, then releases the node's claims and its lease. Call it after
// Start, and stop the workers first so nothing is claimed after the stop.
func (n *Node) Run(ctx context.Context) error {
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return n.stop()
		case <-t.C:
		}
		n.beat(ctx)
	}
}

// Stop releases the lease; Run does it on its way out.
func (n *Node) stop() error {
	n.mu.Lock()
	n.cancel()
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
	defer cancel()
	rel, err := n.st.StopNode(ctx, n.opts.ID)
	if err != nil {
		return fmt.Errorf("release node lease: %w", err)
	}
	if rel.Jobs+rel.Deliveries > 0 {
		n.log.Info("released unfinished claims at stop", "jobs", rel.Jobs, "deliveries", rel.Deliveries)
	}
	return nil
}

func (n *Node) beat(ctx context.Context) {
	// A statement that outlives the lease is worthless: by then the lease
	// may be gone.
	sctx, cancel := context.WithTimeout(ctx, n.opts.Lease/2)
	defer cancel()
	now := n.opts.Now()
	err := n.st.RenewNode(sctx, n.opts.ID, now, n.opts.Lease)
	switch {
	case err == nil:
		n.mu.Lock()
		n.until = now.Add(n.opts.Lease)
		n.mu.Unlock()
	case errors.Is(err, store.ErrClaimLost):
		n.lost(ctx, "another node took this node's lease over")
		return
	default:
		n.mu.Lock()
		expired := now.After(n.until)
		n.mu.Unlock()
		if expired {
			n.lost(ctx, "the store was unreachable for longer than the lease: "+err.Error())
			return
		}
		if ctx.Err() == nil {
			n.log.Warn("renew node lease", "err", err)
		}
		return
	}
	rel, err := n.st.RescueExpiredNodes(sctx, n.opts.ID, now)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("sweep expired node leases", "err", err)
		}
		return
	}
	if len(rel.Nodes) > 0 {
		n.log.Warn("took over the work of nodes whose lease ran out", "nodes", rel.Nodes,
			"jobs", rel.Jobs, "deliveries", rel.Deliveries)
		takeoversTotal.Add(float64(len(rel.Nodes)))
	}
	n.released("takeover", rel)
}

// lost cancels the work under the lost lease and starts a new one.
func (n *Node) lost(ctx context.Context, why string) {
	n.log.Error("lost this node's lease: cancelling its running work", "reason", why)
	lostLeasesTotal.Inc()
	n.mu.Lock()
	n.cancel()
	n.mu.Unlock()
	if err := n.Start(ctx); err != nil && ctx.Err() == nil {
		n.log.Warn("start a new node lease", "err", err)
	}
}

func (n *Node) released(why string, rel store.Released) {
	releasedTotal.WithLabelValues("job", why).Add(float64(rel.Jobs))
	releasedTotal.WithLabelValues("delivery", why).Add(float64(rel.Deliveries))
	if n.opts.Released != nil && rel.Jobs+rel.Deliveries > 0 {
		n.opts.Released(rel)
	}
}

var (
	takeoversTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_cluster_takeovers_total",
		Help: "Nodes whose lease ran out and whose work this node released to all.",
	})
	lostLeasesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_cluster_lost_leases_total",
		Help: "Times this node lost its lease and cancelled its running work.",
	})
	releasedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_cluster_released_total",
		Help: "Claims released for any node to take, by kind (job, delivery) and cause (restart, takeover).",
	}, []string{"kind", "cause"})
)

// Collectors are the package's Prometheus metrics, for the app to register.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{takeoversTotal, lostLeasesTotal, releasedTotal}
}
