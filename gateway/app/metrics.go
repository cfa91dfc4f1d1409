package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-gw/switchboard/gateway/buildinfo"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// stateCollector reads, at each scrape, the gauges that live in the store
// (queue and outbox depth: shared by every node, so every node reports the
// same values) and in the plugin host, and this node's identity.
type stateCollector struct {
	stats   store.Stats
	plugins func() []pluginhost.PluginStatus
	node    string
	now     func() time.Time

	queueDepth, queueAge, outboxDepth, pluginUp, pluginRestarts, channelHealthy, info *prometheus.Desc
	scrapeErrors                                                                      prometheus.Counter
}

func newStateCollector(stats store.Stats, plugins func() []pluginhost.PluginStatus, node string) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("switchboard_"+name, help, labels, nil)
	}
	return &stateCollector{
		stats: stats, plugins: plugins, node: node, now: time.Now,
		queueDepth:     d("queue_jobs", "Jobs waiting (pending) or running, by kind.", "kind", "state"),
		queueAge:       d("queue_oldest_pending_seconds", "How long the longest-waiting due job of a kind has waited.", "kind"),
		outboxDepth:    d("outbox_deliveries", "Deliveries not final yet, by channel and state (queued, retrying, sending).", "channel", "state"),
		pluginUp:       d("plugin_up", "1 while the plugin process runs; 0 while it starts, restarts or is failed (circuit breaker open).", "plugin", "state"),
		pluginRestarts: d("plugin_restarts", "Restarts of the plugin's process since the gateway started.", "plugin"),
		channelHealthy: d("channel_healthy", "1 while the channel's plugin reports it healthy.", "channel", "plugin"),
		info:           d("node_info", "This gateway node: its id and version.", "node", "version"),
		scrapeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_metrics_store_errors_total",
			Help: "Scrapes whose store-backed gauges could not be read (they are left out of that scrape)."}),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queueDepth, c.queueAge, c.outboxDepth, c.pluginUp, c.pluginRestarts, c.channelHealthy, c.info} {
		ch <- d
	}
	c.scrapeErrors.Describe(ch)
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, c.node, buildinfo.Version)
	for _, p := range c.plugins() {
		up := 0.0
		if p.State == pluginhost.StateRunning {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.pluginUp, prometheus.GaugeValue, up, p.Name, string(p.State))
		ch <- prometheus.MustNewConstMetric(c.pluginRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
		for _, in := range p.Instances {
			healthy := 0.0
			if in.Healthy {
				healthy = 1
			}
			ch <- prometheus.MustNewConstMetric(c.channelHealthy, prometheus.GaugeValue, healthy, in.ChannelID, p.Name)
		}
	}
	// A scrape must not hang on a busy store.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	qs, err := c.stats.QueueStats(ctx)
	if err == nil {
		now := c.now()
		for _, q := range qs {
			ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, float64(q.Pending), q.Kind, "pending")
			ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, float64(q.Running), q.Kind, "running")
			age := 0.0
			if !q.OldestDue.IsZero() && now.After(q.OldestDue) {
				age = now.Sub(q.OldestDue).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(c.queueAge, prometheus.GaugeValue, age, q.Kind)
		}
	}
	os, oerr := c.stats.OutboxStats(ctx)
	if oerr == nil {
		for _, o := range os {
			ch <- prometheus.MustNewConstMetric(c.outboxDepth, prometheus.GaugeValue, float64(o.Count), o.ChannelID, string(o.Status))
		}
	}
	if err != nil || oerr != nil {
		c.scrapeErrors.Inc()
	}
	c.scrapeErrors.Collect(ch)
}
