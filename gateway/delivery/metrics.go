package delivery

import "github.com/prometheus/client_golang/prometheus"

var (
	deliveriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "switchboard",
		Name:      "delivery_results_total",
		Help:      "Delivery attempt outcomes by channel, resulting status and reason (retrying/throttled and retrying/rate_limited are rate-limit waits).",
	}, []string{"channel", "status", "reason"})
	sendLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "switchboard",
		Name:      "delivery_latency_seconds",
		Help:      "Time from a delivery's enqueue to its successful send, by channel.",
		Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
	}, []string{"channel"})
	claimSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "switchboard",
		Name:      "delivery_claim_seconds",
		Help:      "Time one claim of pending deliveries took.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
)

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{deliveriesTotal, sendLatency, claimSeconds}
}
