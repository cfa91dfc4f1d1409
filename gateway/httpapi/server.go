package httpapi

import (
	_ "embed"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

//go:embed openapi.yaml
var openAPISpec []byte

// Route is one extra handler mounted by a domain package's API.
type Route struct {
	Pattern string // a net/http ServeMux pattern, e.g. "POST /v1/api/broadcasts"
	Handler http.Handler
}

// Server assembles the routes.
type Server struct {
	Health  *Health
	Ingress *Ingress
	Metrics http.Handler
	Routes  []Route
	Logger  *slog.Logger
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.Health.healthz)
	mux.HandleFunc("GET /readyz", s.Health.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openAPISpec)
	})
	if s.Ingress != nil {
		mux.Handle("/channels/{channel_id}/webhook", s.Ingress)
		mux.Handle("/channels/{channel_id}/webhook/{rest...}", s.Ingress)
	}
	for _, r := range s.Routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteErrors(w, Errf(http.StatusNotFound, "route_not_found", "", "no route for %s %s; see /openapi.yaml", r.Method, r.URL.Path))
	})
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	return recoverer(log, accessLog(log, mux))
}

func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				WriteErrors(w, Errf(http.StatusInternalServerError, "internal", "", "internal error"))
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
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("took", time.Since(start)))
	})
}
