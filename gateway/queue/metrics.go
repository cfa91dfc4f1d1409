package queue

import "github.com/prometheus/client_golang/prometheus"

var jobsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "switchboard",
	Name:      "jobs_total",
	Help:      "Job runs by kind and outcome (completed, retrying, failed, gave_up, lost_claim).",
}, []string{"kind", "outcome"})

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector { return []prometheus.Collector{jobsTotal} }
