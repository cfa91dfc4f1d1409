package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// TestAudienceCioIdentifiers checks Customer.io's cio_<id> identifiers on
// the Track API: every person has a stable cio id, which addresses them
// so that their id and email can be changed (their identities, segment
// memberships and attributes follow); it never creates a person.
func TestAudienceCioIdentifiers(t *testing.T) {
	t.Parallel()
	_, sink, c, seg := startAudience(t, gatewaytest.Options{Configure: noTriggerInterval})
	person := func(ref string) map[string]any {
		t.Helper()
		return c.must(200, http.MethodGet, "/v1/customers/"+ref+"/attributes", nil, false)["customer"].(map[string]any)
	}
	ann := person("ann")
	cio, _ := ann["cio_id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(cio) || person("bob")["cio_id"] == cio {
		t.Fatalf("ann's cio_id = %q, want 16 hex digits of her own", cio)
	}
	if got := person("cio_" + cio)["id"]; got != "ann" {
		t.Fatalf("cio_%s reads %v, want ann", cio, got)
	}

	// A new id and email through the cio identifier.
	c.must(200, http.MethodPut, "/api/v1/customers/cio_"+cio,
		map[string]any{"id": "ann-2", "email": "Ann@New.example", "first_name": "Annie"}, true)
	c.must(404, http.MethodGet, "/v1/customers/ann/attributes", nil, false)
	moved := person("ann-2")
	attrs := moved["attributes"].(map[string]any)
	if moved["cio_id"] != cio || moved["email"] != "ann@new.example" || attrs["first_name"] != "Annie" ||
		attrs["likes_baseball"] != true || moved["_identities"].(map[string]any)["media-news"] != "ann" {
		t.Fatalf("after the change: %v, want ann's cio id, address and attributes under ann-2 with the new email", moved)
	}
	if n := c.must(200, http.MethodGet, fmt.Sprintf("/v1/segments/%d/customer_count", int64(seg)), nil, false)["count"]; n != 2.0 {
		t.Fatalf("fans has %v people, want 2: ann-2 kept ann's membership", n)
	}
	c.must(200, http.MethodPost, "/api/v1/customers/cio_"+cio+"/events", map[string]any{"name": "purchase"}, true)

	// The new id and email reach her.
	news := c.broadcast(newsBroadcast())
	id := c.trigger(news, map[string]any{"data": map[string]any{"headline": "moved"}, "emails": []string{"ann@new.example"}})
	c.wait(news, id)
	if got := triggerTexts(sink, id); len(got) != 1 || got["ann"] != "Annie: moved" {
		t.Fatalf("deliveries = %q, want Annie's at her address", got)
	}

	// Refusals: an id in use, a cio id nobody has (which creates nobody).
	e := firstError(t, c.must(409, http.MethodPut, "/api/v1/customers/cio_"+cio, map[string]any{"id": "bob"}, true))
	if e["code"] != "id_taken" || pointer(e) != "/id" {
		t.Fatalf("taking bob's id: %v", e)
	}
	c.must(400, http.MethodPut, "/api/v1/customers/cio_"+cio, map[string]any{"id": "cio_x"}, true)
	e = firstError(t, c.must(404, http.MethodPut, "/api/v1/customers/cio_ffffffffffffffff", map[string]any{"first_name": "X"}, true))
	if e["code"] != "unknown_person" {
		t.Fatalf("unknown cio id: %v", e)
	}
	c.must(404, http.MethodPost, "/api/v1/customers/cio_ffffffffffffffff/events", map[string]any{"name": "purchase"}, true)
	c.must(404, http.MethodGet, "/v1/customers/cio_ffffffffffffffff/attributes", nil, false)

	c.must(200, http.MethodDelete, "/api/v1/customers/cio_"+cio, nil, true)
	c.must(404, http.MethodGet, "/v1/customers/ann-2/attributes", nil, false)
	c.must(200, http.MethodDelete, "/api/v1/customers/cio_"+cio, nil, true)
}
