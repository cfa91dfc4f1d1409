package webchat

import "github.com/prometheus/client_golang/prometheus"

var (
	connectionsOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "switchboard",
		Name:      "webchat_connections",
		Help:      "Web chat websockets open on this node.",
	})
	connectionsClosed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "switchboard",
		Name:      "webchat_connections_closed_total",
		Help:      "Web chat websockets closed, by the close code the gateway gave (0: none; the client left or the network failed).",
	}, []string{"code"})
	framesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "switchboard",
		Name:      "webchat_frames_total",
		Help:      "Web chat frames: received from clients (in), dropped over the rate limit (dropped), written to clients (out).",
	}, []string{"direction"})
	resumeResetsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "switchboard",
		Name:      "webchat_resume_resets_total",
		Help:      "Web chat sessions whose client asked to resume after a sequence number never given out, resumed after the last one instead.",
	})
)

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{connectionsOpen, connectionsClosed, framesTotal, resumeResetsTotal}
}
