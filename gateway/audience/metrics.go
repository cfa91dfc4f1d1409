package audience

import "github.com/prometheus/client_golang/prometheus"

var triggersTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "switchboard",
	Name:      "triggers_total",
	Help:      "Broadcast triggers whose fan-out started, and those that ended (processed or failed).",
}, []string{"event"})

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector { return []prometheus.Collector{triggersTotal} }
