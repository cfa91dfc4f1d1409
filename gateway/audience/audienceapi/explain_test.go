package audienceapi

import (
	"fmt"
	"net/http"
	"testing"
)

// TestErrorsNameTheObjectAndTheKey is item 5 of issue 13: a 404 names
// what is missing in the workspace, a 401 the key the route needs and the
// kind of key given.
func TestErrorsNameTheObjectAndTheKey(t *testing.T) {
	a := newTestAPI(t, Options{})
	for _, c := range []struct {
		key, method, path string
		status            int
		detail            string
	}{
		{"k1", http.MethodGet, "/v1/broadcasts/12", 404, "broadcast 12 not found in this workspace"},
		{"k1", http.MethodPost, "/v1/campaigns/12/triggers", 404, "broadcast 12 not found in this workspace"},
		{"k1", http.MethodGet, fmt.Sprintf("/v1/campaigns/%d/triggers/99", a.bc), 404,
			fmt.Sprintf("trigger 99 of broadcast %d not found in this workspace", a.bc)},
		{"k1", http.MethodGet, "/v1/segments/5", 404, "segment 5 not found in this workspace"},
		{"k1", http.MethodGet, "/v1/customers/ghost/attributes", 404, `customer "ghost" not found in this workspace`},
		{"sbt_abc", http.MethodGet, "/v1/broadcasts", 401,
			"this route needs an App API key (sba_…) as Authorization: Bearer; the key given is a track key"},
		{"sba_abc", http.MethodGet, "/v1/broadcasts", 401,
			"this route needs an App API key (sba_…) as Authorization: Bearer; the key given is unknown, revoked or expired"},
		{"", http.MethodGet, "/v1/broadcasts", 401,
			"this route needs an App API key (sba_…) as Authorization: Bearer; no key was given"},
	} {
		status, _, out := a.doKey(c.key, c.method, c.path, nil)
		wantError(t, status, out, c.status, "", c.detail)
	}
}
