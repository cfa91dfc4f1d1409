package delivery

import "github.com/prometheus/client_golang/prometheus"

var deliveriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "switchboard",
	Name:      "delivery_results_total",
	Help:      "Delivery attempt outcomes by resulting status and reason.",
}, []string{"status", "reason"})

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector { return []prometheus.Collector{deliveriesTotal} }
