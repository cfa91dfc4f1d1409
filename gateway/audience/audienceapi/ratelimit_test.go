package audienceapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// keys authenticates "key-a" and "key-b" as app keys of one workspace.
type keys struct{}

func (keys) Authenticate(_ context.Context, raw string, scope store.Scope) (store.APIKey, error) {
	if (raw != "key-a" && raw != "key-b") || scope != store.ScopeApp {
		return store.APIKey{}, auth.ErrUnauthorized
	}
	return store.APIKey{ID: raw, WorkspaceID: "ws", Scope: scope}, nil
}

// noBroadcasts answers the list of broadcasts; nothing else is read.
type noBroadcasts struct{ PeopleReader }

func (noBroadcasts) ListBroadcasts(context.Context, string) ([]store.Broadcast, error) {
	return nil, nil
}

// clock is a test clock that moves only when told to.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func serve(t *testing.T, o Options) func(method, key string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	o.Store, o.Auth = noBroadcasts{}, keys{}
	for _, r := range New(o).Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	return func(method, key string) *httptest.ResponseRecorder {
		path := "/v1/broadcasts"
		if method != http.MethodGet {
			// Refused for its id before the service is called.
			path = "/v1/campaigns/x/triggers"
		}
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w
	}
}

// TestReadRateLimit checks Customer.io's read limit per App API key, on a
// clock that stands still unless the test moves it.
func TestReadRateLimit(t *testing.T) {
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	do := serve(t, Options{Now: clk.now})
	for i := range 10 {
		if w := do(http.MethodGet, "key-a"); w.Code != http.StatusOK {
			t.Fatalf("read %d: status %d, want 200 within the limit", i+1, w.Code)
		}
	}
	w := do(http.MethodGet, "key-a")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("11th read: status %d, Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	var body struct {
		Errors []struct{ Status, Code, Detail string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 ||
		body.Errors[0].Status != "429" || body.Errors[0].Code != "rate_limited" {
		t.Fatalf("429 body = %s, want the errors envelope", w.Body)
	}
	// Writes are not reads.
	if w := do(http.MethodPost, "key-a"); w.Code != http.StatusBadRequest {
		t.Fatalf("a write after the reads: status %d, want 400 for its id, not 429", w.Code)
	}
	// Another key has its own budget; a refused read used none.
	if w := do(http.MethodGet, "key-b"); w.Code != http.StatusOK {
		t.Fatalf("another key: status %d", w.Code)
	}
	clk.t = clk.t.Add(100 * time.Millisecond)
	if w := do(http.MethodGet, "key-a"); w.Code != http.StatusOK {
		t.Fatalf("a tenth of a second later: status %d, want one more read", w.Code)
	}
	if w := do(http.MethodGet, "key-a"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("then: status %d, want 429", w.Code)
	}
	// A bad key is refused before it counts.
	if w := do(http.MethodGet, "nope"); w.Code != http.StatusUnauthorized {
		t.Fatalf("bad key: status %d", w.Code)
	}
}

func TestReadRateLimitConfigurable(t *testing.T) {
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		limit float64
		ok    int // reads allowed at one instant, of 30
	}{{3, 3}, {-1, 30}} {
		do := serve(t, Options{Now: clk.now, ReadRateLimit: tc.limit})
		ok := 0
		for range 30 {
			if do(http.MethodGet, "key-a").Code == http.StatusOK {
				ok++
			}
		}
		if ok != tc.ok {
			t.Errorf("read_rate_limit %g: %d of 30 reads allowed, want %d", tc.limit, ok, tc.ok)
		}
	}
}
