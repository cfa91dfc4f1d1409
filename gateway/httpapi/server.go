package httpapi

import (
	_ "embed"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

//go:embed openapi.yaml
var openAPISpec []byte

// Route is one extra handler mounted by a domain package's API.
type Route struct {
	Pattern string // a net/http ServeMux pattern, e.g. "POST /v1/api/broadcasts"
	Handler http.Handler
	// Public marks a route served without a key: Server.Public's
	// per-address rate limit and body timeout apply to it.
	Public bool
	// Stream marks a long-lived route (a websocket, a streamed response):
	// the server's read and write timeouts are lifted for it, and the
	// handler bounds its own reads and writes.
	Stream bool
}

// Server assembles the routes.
type Server struct {
	Health  *Health
	Ingress *Ingress
	Metrics http.Handler
	Routes  []Route
	// Public limits the routes anyone may call (Route.Public, channel
	// ingress, health, metrics, the OpenAPI document, unknown routes).
	Public PublicLimits
	Logger *slog.Logger
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	public := newPublicGuard(s.Public)
	mount := func(r Route) {
		h := r.Handler
		if r.Stream {
			h = streaming(h)
		}
		if r.Public {
			h = public.wrap(h)
		}
		mux.Handle(r.Pattern, h)
	}
	mount(Route{Pattern: "GET /healthz", Handler: http.HandlerFunc(s.Health.healthz), Public: true})
	mount(Route{Pattern: "GET /readyz", Handler: http.HandlerFunc(s.Health.readyz), Public: true})
	if s.Metrics != nil {
		mount(Route{Pattern: "GET /metrics", Handler: s.Metrics, Public: true})
	}
	mount(Route{Pattern: "GET /openapi.yaml", Public: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openAPISpec)
	})})
	if s.Ingress != nil {
		mount(Route{Pattern: "/channels/{channel_id}/webhook", Handler: s.Ingress, Public: true})
		mount(Route{Pattern: "/channels/{channel_id}/webhook/{rest...}", Handler: s.Ingress, Public: true})
	}
	for _, r := range s.Routes {
		mount(r)
	}
	mount(Route{Pattern: "/", Public: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteErrors(w, Errf(http.StatusNotFound, "route_not_found", "", "no route for %s %s; see /openapi.yaml", r.Method, r.URL.Path))
	})})
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	return withRequestID(recoverer(log, accessLog(log, mux)))
}

// streaming lifts the connection's read and write deadlines (the server's
// ReadTimeout and WriteTimeout) for a long-lived handler. They would
// otherwise stay on a hijacked connection too.
func streaming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		next.ServeHTTP(w, r)
	})
}

func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()),
					"panic", p, "stack", string(debug.Stack()))
				WriteErrors(w, Errf(http.StatusInternalServerError, "internal", "", "internal error; the gateway log has the details%s",
					underRequestID(r)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer (websocket
// hijacking, flushing).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog logs every request at debug level, without query strings or
// headers, which may carry keys.
// accessLog logs each request at debug and counts it by route pattern
// (the mux's, e.g. "POST /v1/api/broadcasts", filled in by routing), so
// metrics do not grow a label per path.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		requestsTotal.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		requestSeconds.WithLabelValues(route).Observe(took.Seconds())
		log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("request_id", RequestID(r.Context())),
			slog.Int("status", rec.status), slog.Float64("took_ms", float64(took.Microseconds())/1000))
	})
}

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "switchboard",
		Name:      "http_requests_total",
		Help:      "HTTP requests by route pattern and status code.",
	}, []string{"route", "status"})
	requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "switchboard",
		Name:      "http_request_duration_seconds",
		Help:      "HTTP request handling time by route pattern (web chat sockets: the socket's life).",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
)

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{requestsTotal, requestSeconds}
}
