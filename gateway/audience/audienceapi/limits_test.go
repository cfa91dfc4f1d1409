package audienceapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// workspaceKeys accepts any key starting with "k" as an app key of workspace w;
// the key is its own id, so tests choose which key a request uses.
type workspaceKeys struct{}

func (workspaceKeys) Authenticate(_ context.Context, raw string, scope store.Scope) (store.APIKey, error) {
	if !strings.HasPrefix(raw, "k") || scope != store.ScopeApp {
		return store.APIKey{}, auth.ErrUnauthorized
	}
	return store.APIKey{ID: raw, WorkspaceID: "w", Scope: scope}, nil
}

// testAPI serves the App API over a real SQLite store with workspace w,
// person p and an active broadcast (returned) that sets an attribute.
type testAPI struct {
	t   *testing.T
	st  *sqlstore.Store
	mux *http.ServeMux
	srv *httptest.Server
	bc  int64
}

func newTestAPI(t *testing.T, o Options) *testAPI {
	t.Helper()
	ctx := context.Background()
	st := sqlstore.OpenTest(t)
	if err := st.UpsertWorkspace(ctx, store.Workspace{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertPerson(ctx, store.Person{WorkspaceID: "w", ID: "p"}); err != nil {
		t.Fatal(err)
	}
	b := store.Broadcast{WorkspaceID: "w", Name: "b", Active: true,
		Actions: []store.BroadcastAction{{Type: store.ActionAttributes, Attributes: map[string]any{"seen": true}}}}
	if err := st.CreateBroadcast(ctx, &b); err != nil {
		t.Fatal(err)
	}
	o.Store, o.Auth = st, workspaceKeys{}
	if o.Service == nil {
		o.Service = audience.New(audience.Options{Store: st, Engine: audience.NewEngine(st, audience.EngineOptions{})})
	}
	mux := http.NewServeMux()
	for _, r := range New(o).Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testAPI{t: t, st: st, mux: mux, srv: srv, bc: b.ID}
}

// do sends body (JSON-encoded unless it is a string) with key k1.
func (a *testAPI) do(method, path string, body any) (int, http.Header, map[string]any) {
	a.t.Helper()
	return a.doKey("k1", method, path, body)
}

func (a *testAPI) doKey(key, method, path string, body any) (int, http.Header, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, ok := body.(string)
		if !ok {
			b, err := json.Marshal(body)
			if err != nil {
				a.t.Fatal(err)
			}
			raw = string(b)
		}
		rd = strings.NewReader(raw)
	}
	req, _ := http.NewRequest(method, a.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		a.t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// segment creates a segment through the API and returns its id.
func (a *testAPI) segment(name string, filter any) int64 {
	a.t.Helper()
	status, _, out := a.do(http.MethodPost, "/v1/segments", map[string]any{"name": name, "filter": filter})
	if status != http.StatusCreated {
		a.t.Fatalf("create segment %s: %d %v", name, status, out)
	}
	return int64(out["segment"].(map[string]any)["id"].(float64))
}

func orOf(n int, item func(i int) any) map[string]any {
	items := make([]any, n)
	for i := range items {
		items[i] = item(i)
	}
	return map[string]any{"or": items}
}

func attr(i int) any {
	return map[string]any{"attribute": map[string]any{"field": "n", "operator": "eq", "value": i}}
}

func segRef(id int64) func(int) any {
	return func(int) any { return map[string]any{"segment": map[string]any{"id": id}} }
}

// wantError checks a Customer.io error envelope.
func wantError(t *testing.T, status int, out map[string]any, wantStatus int, pointer, detail string) {
	t.Helper()
	errs, _ := out["errors"].([]any)
	if status != wantStatus || len(errs) == 0 {
		t.Fatalf("status %d %v, want %d", status, out, wantStatus)
	}
	e := errs[0].(map[string]any)
	gotPtr := ""
	if src, ok := e["source"].(map[string]any); ok {
		gotPtr, _ = src["pointer"].(string)
	}
	if e["status"] != fmt.Sprint(wantStatus) || gotPtr != pointer || e["detail"] != detail {
		t.Fatalf("error %v, want status %d pointer %q detail %q", e, wantStatus, pointer, detail)
	}
}

// TestSegmentExpansionRefused is row 5 of the hardening issue through the
// App API: segments of segments are refused with 422 naming the segment
// and the limit when saved (a segment, a broadcast) and when used (a
// count, a trigger) after a segment they name grew, before any SQL is
// built.
func TestSegmentExpansionRefused(t *testing.T) {
	a := newTestAPI(t, Options{})

	// 30-way ors, level by level: the third level expands to 27,000.
	s1 := a.segment("l1", orOf(30, attr))
	s2 := a.segment("l2", orOf(30, segRef(s1)))
	status, _, out := a.do(http.MethodPost, "/v1/segments", map[string]any{"name": "l3", "filter": orOf(30, segRef(s2))})
	wantError(t, status, out, 422, "/filter", "the filter expands to 27,000 conditions; the limit is 1,000")
	status, _, out = a.do(http.MethodPost, "/v1/segments", map[string]any{"name": "l3",
		"filter": map[string]any{"and": []any{attr(1), map[string]any{"not": orOf(1, segRef(s2))}}}})
	if status != http.StatusCreated {
		t.Fatalf("a segment within the limits: %d %v", status, out)
	}

	// Segments grow after segments naming them were saved: 999-way ors,
	// three levels. Each level names the one below once, so each passed
	// when it was made; then the first grows to 999 conditions (as apply
	// may do), and every use of the levels above is refused.
	g1 := a.segment("g1", attr(0))
	g2 := a.segment("g2", orOf(999, segRef(g1)))
	g3 := a.segment("g3", orOf(1, segRef(g2)))
	grown := store.Segment{ID: g1, WorkspaceID: "w", Name: "g1"}
	raw, _ := json.Marshal(orOf(999, attr))
	if err := json.Unmarshal(raw, &grown.Filter); err != nil {
		t.Fatal(err)
	}
	if err := a.st.UpdateSegment(context.Background(), grown); err != nil {
		t.Fatal(err)
	}
	status, _, out = a.do(http.MethodGet, fmt.Sprintf("/v1/segments/%d/customer_count", g3), nil)
	wantError(t, status, out, 422, "", fmt.Sprintf("segment %d expands to 998,001 conditions; the limit is 1,000", g3))
	status, _, out = a.do(http.MethodGet, fmt.Sprintf("/v1/segments/%d/customer_count", g1), nil)
	if status != http.StatusOK || out["count"] != 0.0 {
		t.Fatalf("count of the 999-way segment: %d %v", status, out)
	}
	trig := fmt.Sprintf("/v1/campaigns/%d/triggers", a.bc)
	for _, body := range []map[string]any{
		{"recipients": map[string]any{"and": []any{attr(1), map[string]any{"segment": map[string]any{"id": g3}}}}},
		{"recipients": map[string]any{"and": []any{attr(1), map[string]any{"segment": map[string]any{"id": g3}}}}, "dry_run": true},
	} {
		status, _, out = a.do(http.MethodPost, trig, body)
		wantError(t, status, out, 422, "/recipients/and/1/segment",
			fmt.Sprintf("segment %d expands to 998,001 conditions; the limit is 1,000", g3))
	}
	status, _, out = a.do(http.MethodPost, "/v1/broadcasts", map[string]any{"name": "big", "actions": []any{},
		"recipients": map[string]any{"segment": map[string]any{"id": g2}}})
	wantError(t, status, out, 422, "/recipients/segment", fmt.Sprintf("segment %d expands to 998,001 conditions; the limit is 1,000", g2))

	// Depth: a chain of segments, each a not of the one below.
	prev := a.segment("d0", attr(0))
	for i := 1; i < 6; i++ {
		prev = a.segment(fmt.Sprint("d", i), map[string]any{"not": map[string]any{"not": map[string]any{"segment": map[string]any{"id": prev}}}})
	}
	status, _, out = a.do(http.MethodPost, "/v1/segments", map[string]any{"name": "deep",
		"filter": map[string]any{"not": map[string]any{"not": map[string]any{"not": map[string]any{"not": map[string]any{"segment": map[string]any{"id": prev}}}}}}})
	wantError(t, status, out, 422, "/filter", "the filter nests 21 levels deep with its segments expanded; the limit is 20")
}

// big returns a per_user_data trigger body of about n bytes.
func big(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"dry_run": true, "per_user_data": [`)
	pad := strings.Repeat("x", 1000)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"p","data":{"pad":%q}}`, pad)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// TestConcurrentDryRunsLimited is row 6 of the hardening issue: a
// workspace has at most MaxInflight triggers (dry runs included) running
// at once; more are refused with 429 and Retry-After before their bodies
// are read, and places are given back when requests end.
func TestConcurrentDryRunsLimited(t *testing.T) {
	a := newTestAPI(t, Options{})
	path := fmt.Sprintf("/v1/campaigns/%d/triggers", a.bc)
	body := big(1 << 20)
	post := func(rd io.Reader) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, rd)
		req.Header.Set("Authorization", "Bearer k1")
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, req)
		return w
	}
	// Two dry runs whose bodies are still arriving hold both places: a
	// write to a pipe returns only once the handler has read it.
	var writers []*io.PipeWriter
	done := make(chan *httptest.ResponseRecorder, 2)
	for range 2 {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		go func() { done <- post(pr) }()
		if _, err := pw.Write(body[:4096]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		w := post(bytes.NewReader(body))
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" ||
			!strings.Contains(w.Body.String(), "at most 2 triggers (dry runs included)") {
			t.Fatalf("dry run %d beyond the cap: %d %q %s", i+3, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	for _, pw := range writers {
		go func() {
			_, err := pw.Write(body[4096:])
			pw.CloseWithError(err)
		}()
	}
	for range 2 {
		if w := <-done; w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"dry_run"`) {
			t.Fatalf("held dry run: %d %s", w.Code, w.Body)
		}
	}
	if w := post(bytes.NewReader(body)); w.Code != http.StatusOK {
		t.Fatalf("dry run after the others ended: %d %s", w.Code, w.Body)
	}
}
