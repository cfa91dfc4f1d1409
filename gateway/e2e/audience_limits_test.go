package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// nested builds a filter nested depth levels deep.
func nested(depth int) map[string]any {
	f := map[string]any{"attribute": map[string]any{"field": "a", "operator": "exists"}}
	for range depth - 1 {
		f = map[string]any{"not": f}
	}
	return f
}

// TestAudienceLimitsAndErrorShapes checks every limit and validation error
// of the trigger API: status, Customer.io's errors envelope, and the
// source.pointer naming the offending field.
func TestAudienceLimitsAndErrorShapes(t *testing.T) {
	t.Parallel()
	_, _, c, _ := startAudience(t, gatewaytest.Options{Configure: func(cfg *config.Config) {
		cfg.Audience.TriggerInterval = time.Hour
		cfg.Audience.MaxTriggerBytes = 2 << 20 // a 25 MB upload would only slow the test down
	}})
	news := c.broadcast(newsBroadcast())
	path := fmt.Sprintf("/v1/campaigns/%d/triggers", news)
	manyIDs := make([]string, 10_001)
	for i := range manyIDs {
		manyIDs[i] = fmt.Sprint("p", i)
	}
	leaves := make([]any, 1001)
	for i := range leaves {
		leaves[i] = map[string]any{"attribute": map[string]any{"field": "a", "operator": "exists"}}
	}

	for _, tc := range []struct {
		name    string
		body    any
		status  int
		pointer string
		detail  string
	}{
		{"malformed JSON", `{"data":`, 400, "", "bad request"},
		{"two recipient sources", map[string]any{"ids": []string{"ann"}, "emails": []string{"a@b.c"}}, 400, "/emails",
			"give at most one recipient source"},
		{"empty recipients filter", map[string]any{"recipients": map[string]any{}}, 422, "/recipients",
			"empty recipients filter is not valid"},
		{"ids over 10,000", map[string]any{"ids": manyIDs}, 400, "/ids", "has 10001 items, the limit is 10000"},
		{"emails over 10,000", map[string]any{"emails": strings.Split(strings.Repeat("a@b.c,", 10_001), ",")[:10_001]}, 400,
			"/emails", "the limit is 10000"},
		{"data over 50 KB", map[string]any{"data": map[string]any{"x": strings.Repeat("x", 50_000)}}, 400, "/data",
			"the limit is 50000"},
		{"filter deeper than 10", map[string]any{"recipients": nested(11)}, 400,
			"/recipients" + strings.Repeat("/not", 10), "deeper than 10 levels"},
		{"filter with more than 1,000 leaves", map[string]any{"recipients": map[string]any{"or": leaves}}, 400,
			"/recipients/or/1000/attribute", "more than 1000 conditions"},
		{"eq without value", map[string]any{"recipients": map[string]any{"attribute": map[string]any{"field": "a", "operator": "eq"}}},
			400, "/recipients/attribute/value", "value is required"},
		{"unknown operator", map[string]any{"recipients": map[string]any{"attribute": map[string]any{"field": "a", "operator": "gt", "value": 1}}},
			400, "/recipients/attribute/operator", "operator must be eq or exists"},
		{"not with an array", map[string]any{"recipients": map[string]any{"not": []any{}}}, 400, "/recipients/not", "one filter object"},
		{"unknown segment", map[string]any{"recipients": map[string]any{"segment": map[string]any{"id": 12345}}}, 422,
			"/recipients", "unknown segment 12345"},
		{"bad email", map[string]any{"emails": []string{"ann@example.com", "nope"}}, 400, "/emails/1", "not an email"},
		{"per_user_data with neither id nor email", map[string]any{"per_user_data": []any{map[string]any{"data": map[string]any{}}}},
			400, "/per_user_data/0", "id or email is required"},
		{"data file URL not http", map[string]any{"data_file_url": "ftp://x/y"}, 400, "/data_file_url", "http or https"},
		{"body over the limit", `{"data":{"x":"` + strings.Repeat("x", 2<<20) + `"}}`, 413, "", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			status, out := c.do(http.MethodPost, path, tc.body, false)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			e := firstError(t, out)
			if e["status"] != fmt.Sprint(tc.status) || pointer(e) != tc.pointer || !strings.Contains(e["detail"].(string), tc.detail) {
				t.Fatalf("error = %v, want status %q, pointer %q, detail containing %q", e, fmt.Sprint(tc.status), tc.pointer, tc.detail)
			}
		})
	}
	c.t = t

	// Auth and unknown resources.
	c.app = "sba_not-a-key"
	if status, out := c.do(http.MethodPost, path, map[string]any{}, false); status != 401 || firstError(t, out)["detail"] != "this route needs an App API key (sba_…) as Authorization: Bearer; the key given is unknown, revoked or expired" {
		t.Fatalf("bad key: %d %v", status, out)
	}
	c.app = c.track // a track key is no app key
	if status, _ := c.do(http.MethodPost, path, map[string]any{}, false); status != 401 {
		t.Fatalf("track key on the App API: %d", status)
	}
	c.wsID = "other"
	if status, _ := c.do(http.MethodPut, "/api/v1/customers/x", map[string]any{}, true); status != 401 {
		t.Fatalf("track key with another site id: %d", status)
	}
	c.wsID = "media"
	c.app = gatewaytest.NewKey(t, c.store, "media", "app", "")
	if status, out := c.do(http.MethodPost, "/v1/campaigns/999999/triggers", map[string]any{}, false); status != 404 || firstError(t, out)["status"] != "404" {
		t.Fatalf("unknown broadcast: %d %v", status, out)
	}
	if status, _ := c.do(http.MethodPost, "/v1/campaigns/abc/triggers", map[string]any{}, false); status != 400 {
		t.Fatalf("non-numeric broadcast id: %d", status)
	}

	// Unknown ids are errors unless ignored: the trigger exists, failed,
	// and its errors endpoint names them.
	status, out := c.do(http.MethodPost, path, map[string]any{"ids": []string{"ann", "ghost1", "ghost2"}}, false)
	e := firstError(t, out)
	if status != 422 || pointer(e) != "/ids" || !strings.Contains(e["detail"].(string), "errors endpoint for trigger") {
		t.Fatalf("unknown ids: %d %v", status, out)
	}
	var failed int64
	fmt.Sscanf(e["detail"].(string)[strings.LastIndex(e["detail"].(string), " ")+1:], "%d", &failed)
	errs := c.must(200, http.MethodGet, fmt.Sprintf("%s/%d/errors?start=1&limit=1", path, failed), nil, false)
	if lines := errs["errors"].([]any); len(lines) != 1 || lines[0] != `ids/2: no person with id "ghost2"` || errs["next"].(float64) != 0 {
		t.Fatalf("errors page = %v", errs)
	}
	st := c.must(200, http.MethodGet, fmt.Sprintf("%s/%d", path, failed), nil, false)
	if st["status"] != "failed" || st["counts"].(map[string]any)["sent"].(float64) != 0 {
		t.Fatalf("trigger with unknown ids = %v, want failed with nothing sent", st)
	}

	// The failed trigger counts towards the interval: one trigger per
	// broadcast per interval, with Retry-After.
	status, out = c.do(http.MethodPost, path, map[string]any{"ids": []string{"ann"}}, false)
	if status != 429 || c.lastResp.Header.Get("Retry-After") == "" || firstError(t, out)["code"] != "trigger_rate_limited" {
		t.Fatalf("second trigger within the interval: %d %v (Retry-After %q)", status, out, c.lastResp.Header.Get("Retry-After"))
	}
}

// TestAudienceQueueLimitAndDataFileFailures checks the per-workspace queue
// limit (triggers held open by a data file that takes its time) and data
// files that cannot be fetched.
func TestAudienceQueueLimitAndDataFileFailures(t *testing.T) {
	t.Parallel()
	_, _, c, _ := startAudience(t, gatewaytest.Options{Configure: func(cfg *config.Config) {
		cfg.Audience.TriggerInterval = -1
		cfg.Audience.MaxOpenTriggers = 2
	}})
	release := make(chan struct{})
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/forbidden":
			http.Error(w, "no", http.StatusForbidden)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
			fmt.Fprintln(w, `{"id":"ann"}`)
		}
	}))
	t.Cleanup(files.Close)
	t.Cleanup(func() { close(release) })
	news := c.broadcast(newsBroadcast())
	path := fmt.Sprintf("/v1/campaigns/%d/triggers", news)

	forbidden := c.trigger(news, map[string]any{"data_file_url": files.URL + "/forbidden"})
	st := c.wait(news, forbidden)
	if st["status"] != "failed" || !strings.Contains(st["error"].(string), "403 Forbidden") {
		t.Fatalf("unfetchable data file: %v", st)
	}
	if lines := c.triggerErrors(news, forbidden); len(lines) != 1 || lines[0] != "failed to download data file, server responded with code 403 Forbidden" {
		t.Fatalf("errors = %q", lines)
	}

	c.trigger(news, map[string]any{"data_file_url": files.URL + "/slow"})
	c.trigger(news, map[string]any{"data_file_url": files.URL + "/slow"})
	status, out := c.do(http.MethodPost, path, map[string]any{"ids": []string{"ann"}}, false)
	if status != 429 || firstError(t, out)["code"] != "trigger_queue_full" || !strings.Contains(firstError(t, out)["detail"].(string), "at most 2 triggers") {
		t.Fatalf("third open trigger: %d %v", status, out)
	}
}

// TestAudienceInternalDataFileRefused checks the SSRF guard: without
// allow_internal_fetch a data file on loopback fails the trigger, however
// its address is spelled (zoned [::1%25lo] was fetched once: netip's
// prefix check never matches a zoned address), and the file server is
// never asked.
func TestAudienceInternalDataFileRefused(t *testing.T) {
	t.Parallel()
	_, _, c, _ := startAudience(t, gatewaytest.Options{Configure: func(cfg *config.Config) {
		cfg.Security.AllowInternalFetch = false
	}})
	var hits atomic.Int32
	serveFile := func(network, addr string) string {
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatalf("listen %s: %v", addr, err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			io.WriteString(w, `{"id":"ann","data":{"headline":"internal content"}}`+"\n")
		}))
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		return port
	}
	p4 := serveFile("tcp4", "127.0.0.1:0")
	urls := []string{
		"http://127.0.0.1:9/file.jsonl",
		"http://[::ffff:127.0.0.1]:" + p4 + "/file.jsonl",
		"http://2130706433:" + p4 + "/file.jsonl",
		"http://127.1:" + p4 + "/file.jsonl",
	}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil { // hosts without IPv6 test the IPv4 spellings only
		ln.Close()
		p6 := serveFile("tcp6", "[::1]:0")
		urls = append(urls, "http://[::1%25lo]:"+p6+"/file.jsonl", "http://[::1%251]:"+p6+"/file.jsonl")
	}
	for i, u := range urls {
		b := newsBroadcast() // one each: a broadcast takes one trigger per 10 s
		b["name"] = fmt.Sprintf("news-%d", i)
		news := c.broadcast(b)
		id := c.trigger(news, map[string]any{"data_file_url": u})
		st := c.wait(news, id)
		if st["status"] != "failed" || !strings.Contains(st["error"].(string), "not allowed") {
			t.Errorf("internal data file %s: %v", u, st)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the file server was asked %d times", n)
	}
}
