package app

import (
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/retention"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// newCleaner builds the cleaner every node runs; the store's lease makes
// one node at a time do the work.
func (a *App) newCleaner() *retention.Cleaner {
	return retention.New(retention.Options{
		Store:     a.Store,
		Policy:    policy(a.cfg.Retention),
		Holder:    a.Node.ID(),
		Interval:  a.cfg.Retention.Interval,
		BatchSize: a.cfg.Retention.BatchSize,
		Logger:    a.log,
	})
}

func policy(r config.RetentionConfig) retention.Policy {
	return retention.Policy{
		store.RetainFailedJobs:          r.FailedJobs,
		store.RetainSeenEvents:          r.SeenEvents,
		store.RetainSentDeliveries:      r.SentDeliveries,
		store.RetainFailedDeliveries:    r.FailedDeliveries,
		store.RetainMessages:            r.Messages,
		store.RetainClosedConversations: r.ClosedConversations,
		store.RetainTriggers:            r.Triggers,
		store.RetainFlowTriggers:        r.FlowTriggers,
	}
}
