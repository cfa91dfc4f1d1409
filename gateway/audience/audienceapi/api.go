// Package audienceapi serves the Customer.io-compatible Track API (people,
// events, manual segment members; Basic auth with the workspace id and a
// track key) and App API (broadcasts, triggers, segments, people; Bearer app
// key) on top of package audience.
//
// Errors use Customer.io's envelope, {"errors":[{"status":"4xx","detail":…,
// "source":{"pointer":…}}]}, with httpapi's machine-readable code added.
package audienceapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Authenticator checks raw API keys (auth.Authenticator is one).
type Authenticator interface {
	Authenticate(ctx context.Context, raw string, scope store.Scope) (store.APIKey, error)
}

// PeopleReader reads people for the App API.
type PeopleReader interface {
	audience.PersonFinder
	ListIdentities(ctx context.Context, workspaceID, personID string) ([]store.Identity, error)
	GetSegment(ctx context.Context, workspaceID string, id int64) (store.Segment, error)
	ListSegments(ctx context.Context, workspaceID string) ([]store.Segment, error)
	DeleteSegment(ctx context.Context, workspaceID string, id int64) error
	GetBroadcast(ctx context.Context, workspaceID string, id int64) (store.Broadcast, error)
	ListBroadcasts(ctx context.Context, workspaceID string) ([]store.Broadcast, error)
}

// Options configure the API.
type Options struct {
	Service *audience.Service
	Store   PeopleReader
	Auth    Authenticator
	// MaxTriggerBytes caps a trigger body (default 25 MB, Customer.io's).
	MaxTriggerBytes int64
	// MaxBodyBytes caps other bodies (default 1 MiB).
	MaxBodyBytes int64
	// ReadRateLimit is how many App API reads (GET) a key may make per
	// second (default 10, Customer.io's; negative disables the limit).
	ReadRateLimit float64
	// MaxInflight caps the trigger requests (dry runs included) and
	// segment counts one workspace may have running at once (default 2;
	// negative disables); more answer 429 with Retry-After.
	MaxInflight int
	// Now is the rate limit's clock (default time.Now).
	Now func() time.Time
}

// API is the HTTP surface.
type API struct {
	o        Options
	reads    *readLimiter // nil: reads are not limited
	inflight *inflight    // nil: not limited
}

// New returns the API.
func New(o Options) *API {
	if o.MaxTriggerBytes <= 0 {
		o.MaxTriggerBytes = 25 << 20
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.ReadRateLimit == 0 {
		o.ReadRateLimit = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 2
	}
	a := &API{o: o}
	if o.MaxInflight > 0 {
		a.inflight = newInflight(o.MaxInflight)
	}
	if o.ReadRateLimit > 0 {
		a.reads = newReadLimiter(o.ReadRateLimit, o.Now)
	}
	return a
}

// handler serves one route for an authenticated workspace.
type handler func(w http.ResponseWriter, r *http.Request, workspace string) error

// Routes lists the routes to mount.
func (a *API) Routes() []httpapi.Route {
	track := func(pattern string, h handler) httpapi.Route {
		return httpapi.Route{Pattern: pattern, Handler: a.serve(store.ScopeTrack, h)}
	}
	app := func(pattern string, h handler) httpapi.Route {
		return httpapi.Route{Pattern: pattern, Handler: a.serve(store.ScopeApp, h)}
	}
	return []httpapi.Route{
		track("PUT /api/v1/customers/{id}", a.identify),
		track("DELETE /api/v1/customers/{id}", a.deletePerson),
		track("POST /api/v1/customers/{id}/events", a.trackEvent),
		track("POST /api/v1/segments/{id}/add_customers", a.segmentMembers(true)),
		track("POST /api/v1/segments/{id}/remove_customers", a.segmentMembers(false)),

		app("POST /v1/campaigns/{id}/triggers", a.heavy(a.trigger)),
		app("GET /v1/campaigns/{id}/triggers/{trigger_id}", a.triggerStatus),
		app("GET /v1/campaigns/{id}/triggers/{trigger_id}/errors", a.triggerErrors),
		app("GET /v1/broadcasts", a.listBroadcasts),
		app("POST /v1/broadcasts", a.createBroadcast),
		app("GET /v1/broadcasts/{id}", a.getBroadcast),
		app("PUT /v1/broadcasts/{id}", a.updateBroadcast),
		app("POST /v1/broadcasts/{id}/activate", a.setActive(true)),
		app("POST /v1/broadcasts/{id}/deactivate", a.setActive(false)),
		app("POST /v1/broadcasts/{id}/duplicate", a.duplicate),
		app("GET /v1/broadcasts/{id}/triggers", a.history),
		app("GET /v1/broadcasts/{id}/metrics", a.metrics),
		app("GET /v1/segments", a.listSegments),
		app("POST /v1/segments", a.createSegment),
		app("GET /v1/segments/{id}", a.getSegment),
		app("DELETE /v1/segments/{id}", a.deleteSegment),
		app("GET /v1/segments/{id}/customer_count", a.heavy(a.segmentCount)),
		app("GET /v1/customers/{id}/attributes", a.getPerson),
	}
}

// heavy runs h while the workspace has fewer than MaxInflight heavy
// requests running, and refuses it otherwise before its body is read.
func (a *API) heavy(h handler) handler {
	if a.inflight == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, ws string) error {
		if !a.inflight.acquire(ws) {
			w.Header().Set("Retry-After", "1")
			return httpapi.Errf(http.StatusTooManyRequests, "too_many_inflight", "",
				"at most %d triggers (dry runs included) and segment counts may run at once in a workspace; retry after 1 s",
				a.o.MaxInflight)
		}
		defer a.inflight.release(ws)
		return h(w, r, ws)
	}
}

// serve authenticates the request for scope and runs h. Track keys come
// as Basic auth with the workspace id as user name; app keys as Bearer.
func (a *API) serve(scope store.Scope, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, site := "", ""
		if scope == store.ScopeTrack {
			user, pass, ok := r.BasicAuth()
			if ok {
				raw, site = pass, user
			}
		} else if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			raw = strings.TrimSpace(v[7:])
		}
		k, err := a.o.Auth.Authenticate(r.Context(), raw, scope)
		wrongSite := err == nil && scope == store.ScopeTrack && site != k.WorkspaceID
		if wrongSite {
			err = auth.ErrUnauthorized
		}
		if errors.Is(err, auth.ErrUnauthorized) {
			httpapi.WriteErrors(w, unauthorized(scope, raw, site, wrongSite))
			return
		}
		if err == nil && scope == store.ScopeApp && r.Method == http.MethodGet && a.reads != nil {
			if wait := a.reads.wait(k.ID); wait > 0 {
				secs := int(math.Ceil(wait.Seconds()))
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				httpapi.WriteErrors(w, httpapi.Errf(http.StatusTooManyRequests, "rate_limited", "",
					"over the %g-per-second limit of read requests for this API key; retry after %d s", a.o.ReadRateLimit, secs))
				return
			}
		}
		if err == nil {
			err = h(w, r, k.WorkspaceID)
		}
		var nf *NotFoundError
		if errors.Is(err, store.ErrNotFound) && !errors.As(err, &nf) {
			err = a.missing(r.Context(), r, k.WorkspaceID, err)
		}
		if err != nil {
			WriteError(w, r, err)
		}
	})
}

// WriteError answers a domain error (package audience's typed errors,
// store.ErrNotFound, an *httpapi.APIError) with its status and envelope.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		fe  *audience.FieldError
		nf  *audience.NeedsFixing
		re  *audience.RecipientsError
		le  *store.TriggerLimitError
		tl  *store.FilterTooLargeError
		mbe *http.MaxBytesError

		missing *NotFoundError
	)
	switch {
	case errors.As(err, &fe):
		httpapi.WriteErrors(w, httpapi.Errf(fe.Status, fe.Code, fe.Pointer, "%s", fe.Detail))
	case errors.As(err, &nf):
		errs := make([]*httpapi.APIError, len(nf.Problems))
		for i, p := range nf.Problems {
			errs[i] = httpapi.Errf(p.Status, p.Code, p.Pointer, "needs fixing: %s", p.Detail)
		}
		httpapi.WriteErrors(w, errs...)
	case errors.As(err, &re):
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusUnprocessableEntity, "unresolved_recipients", re.Pointer, "%s", re.Error()))
	case errors.As(err, &le):
		if le.Limit == "interval" {
			wait := int(math.Ceil(le.RetryAfter.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			httpapi.WriteErrors(w, httpapi.Errf(http.StatusTooManyRequests, "trigger_rate_limited", "",
				"this broadcast was triggered too recently (one trigger per broadcast per interval); retry after %d s", wait))
			return
		}
		w.Header().Set("Retry-After", "10")
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusTooManyRequests, "trigger_queue_full", "",
			"queue limit reached: at most %d triggers may be queued or running in a workspace; retry when one finishes", le.Max))
	case errors.As(err, &tl):
		// The store's own bound, past the configured limits.
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusUnprocessableEntity, "filter_too_large", "", "%s", tl.Error()))
	case errors.As(err, &mbe):
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusRequestEntityTooLarge, "body_too_large", "",
			"request body is larger than %d bytes", mbe.Limit))
	case errors.As(err, &missing):
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusNotFound, "not_found", "", "%s", missing.Error()))
	case errors.Is(err, store.ErrNotFound):
		httpapi.WriteErrors(w, httpapi.Errf(http.StatusNotFound, "not_found", "", "not found"))
	default:
		httpapi.WriteError(w, r, err)
	}
}

// body reads a request body of at most limit bytes.
func body(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// pathID parses an integer path parameter.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, &audience.FieldError{Status: http.StatusBadRequest, Code: "bad_id",
			Detail: fmt.Sprintf("%s must be a positive integer, not %q", name, r.PathValue(name))}
	}
	return id, nil
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string, def, maxV int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxV {
		return 0, &audience.FieldError{Status: http.StatusBadRequest, Code: "bad_parameter", Pointer: "/" + name,
			Detail: fmt.Sprintf("%s must be an integer from 0 to %d", name, maxV)}
	}
	return n, nil
}

func ok(w http.ResponseWriter, v any) error {
	httpapi.WriteJSON(w, http.StatusOK, v)
	return nil
}
