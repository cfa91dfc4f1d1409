package e2e

import (
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// startAudience runs a gateway with the webhook plugin, the audience
// workspace and five people, ready for broadcasts.
func startAudience(t *testing.T, configure gatewaytest.Options) (*gatewaytest.Gateway, *gatewaytest.Sink, *cio, float64) {
	t.Helper()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	configure.Plugins = []string{"webhook"}
	g := gatewaytest.Start(t, configure)
	g.Apply(t, audienceWorkspace(sink.URL))
	c := newCIO(t, g, "media")
	ids := func(addr string) map[string]string { return map[string]string{"news": addr} }
	c.identify("ann", map[string]any{"first_name": "Ann", "likes_baseball": true, "email": "ann@example.com", "_identities": ids("ann")})
	c.identify("bob", map[string]any{"first_name": "Bob", "likes_baseball": false, "email": "road@runner.net", "_identities": ids("bob")})
	c.identify("cat", map[string]any{"likes_baseball": true, "_identities": ids("cat")})
	c.identify("wiley", map[string]any{"first_name": "Wiley", "_identities": ids("wiley")})
	c.identify("dan", map[string]any{"first_name": "Dan"}) // no identity on any channel
	seg := c.must(201, http.MethodPost, "/v1/segments", map[string]any{"name": "fans"}, false)
	segID := seg["segment"].(map[string]any)["id"].(float64)
	c.must(200, http.MethodPost, fmt.Sprintf("/api/v1/segments/%d/add_customers", int64(segID)),
		map[string]any{"ids": []string{"wiley", "ann"}}, true)
	return g, sink, c, segID
}

const newsText = "{{ customer.first_name | default: 'friend' }}: {{ trigger.headline }}" +
	"{% if trigger.voucher_code %} code {{ trigger.voucher_code }}{% endif %}"

// named is a default audience: the people with a first name.
var named = map[string]any{"attribute": map[string]any{"field": "first_name", "operator": "exists"}}

func newsBroadcast() map[string]any {
	return map[string]any{
		"name": "news",
		"recipients": map[string]any{"attribute": map[string]any{
			"field": "likes_baseball", "operator": "eq", "value": true}},
		"actions": []any{map[string]any{"type": "message", "channel": "news",
			"message": map[string]any{"type": "text", "text": newsText}}},
		"goal": map[string]any{"type": "event", "event": "purchase", "within": "1h"},
	}
}

// TestAudienceCustomerIODocExamples runs every example of Customer.io's
// API-triggered broadcast doc against the gateway: the webhook plugin
// delivers to a signing sink, and each person gets their own rendering.
func TestAudienceCustomerIODocExamples(t *testing.T) {
	t.Parallel()
	_, sink, c, seg := startAudience(t, gatewaytest.Options{Configure: noTriggerInterval})
	news := c.broadcast(newsBroadcast())
	headline := map[string]any{"headline": "Roadrunner spotted in Albuquerque!", "date": 1511315635,
		"text": "We received reports of a roadrunner in your immediate area!"}
	hl := "Roadrunner spotted in Albuquerque!"

	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lines := `{"id":"ann","data":{"voucher_code":"A1"}}` + "\nnot json\n" +
			`{"email":"road@runner.net","data":{"voucher_code":"B2"}}` + "\n" + `{"id":"ghost","data":{}}` + "\n"
		if r.URL.Path == "/file.jsonl.gz" {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			fmt.Fprint(zw, lines)
			zw.Close()
			return
		}
		fmt.Fprint(w, lines)
	}))
	t.Cleanup(files.Close)

	for _, tc := range []struct {
		name     string
		body     map[string]any
		want     map[string]string
		wantErrs []string
	}{
		{"and", map[string]any{"data": headline, "recipients": map[string]any{"and": []any{
			map[string]any{"attribute": map[string]any{"field": "first_name", "operator": "exists"}},
			map[string]any{"attribute": map[string]any{"field": "likes_baseball", "operator": "eq", "value": true}},
		}}}, map[string]string{"ann": "Ann: " + hl}, nil},
		{"or", map[string]any{"data": headline, "recipients": map[string]any{"or": []any{
			map[string]any{"segment": map[string]any{"id": seg}},
			map[string]any{"attribute": map[string]any{"field": "likes_baseball", "operator": "eq", "value": true}},
		}}}, map[string]string{"ann": "Ann: " + hl, "cat": "friend: " + hl, "wiley": "Wiley: " + hl}, nil},
		{"not", map[string]any{"data": headline, "recipients": map[string]any{"not": map[string]any{"and": []any{
			map[string]any{"segment": map[string]any{"id": seg}},
			map[string]any{"attribute": map[string]any{"field": "likes_baseball", "operator": "eq", "value": true}},
		}}}}, map[string]string{"bob": "Bob: " + hl, "cat": "friend: " + hl, "wiley": "Wiley: " + hl, "dan": "Dan: " + hl}, nil},
		{"segment", map[string]any{"data": headline, "recipients": map[string]any{"segment": map[string]any{"id": seg}}},
			map[string]string{"ann": "Ann: " + hl, "wiley": "Wiley: " + hl}, nil},
		{"attribute", map[string]any{"data": headline, "recipients": map[string]any{"attribute": map[string]any{
			"field": "likes_baseball", "operator": "eq", "value": true}}},
			map[string]string{"ann": "Ann: " + hl, "cat": "friend: " + hl}, nil},
		{"default recipients", map[string]any{"data": headline},
			map[string]string{"ann": "Ann: " + hl, "cat": "friend: " + hl}, nil},
		{"per_user_data by id and by email", map[string]any{"data": headline, "per_user_data": []any{
			map[string]any{"id": "wiley", "data": map[string]any{"voucher_code": "FESwYm"}},
			map[string]any{"email": "road@runner.net", "data": map[string]any{"voucher_code": "cYm6XJ"}},
		}}, map[string]string{"wiley": "Wiley: " + hl + " code FESwYm", "bob": "Bob: " + hl + " code cYm6XJ"}, nil},
		{"data_file_url", map[string]any{"data": headline, "data_file_url": files.URL + "/file.jsonl"},
			map[string]string{"ann": "Ann: " + hl + " code A1", "bob": "Bob: " + hl + " code B2"},
			[]string{"line 2: must be an object with id or email, and data: invalid character 'o' in literal null (expecting 'u')",
				`line 4: no person with id "ghost"`}},
		{"data_file_url gzip", map[string]any{"data": headline, "data_file_url": files.URL + "/file.jsonl.gz", "id_ignore_missing": true},
			map[string]string{"ann": "Ann: " + hl + " code A1", "bob": "Bob: " + hl + " code B2"},
			[]string{"line 2: must be an object with id or email, and data: invalid character 'o' in literal null (expecting 'u')"}},
		{"ids", map[string]any{"data": headline, "ids": []string{"ann", "cat"}},
			map[string]string{"ann": "Ann: " + hl, "cat": "friend: " + hl}, nil},
		{"emails", map[string]any{"data": headline, "emails": []string{"ANN@example.com"}},
			map[string]string{"ann": "Ann: " + hl}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			id := c.trigger(news, tc.body)
			st := c.wait(news, id)
			got := triggerTexts(sink, id)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("deliveries = %q, want %q", got, tc.want)
			}
			errs := c.triggerErrors(news, id)
			if !reflect.DeepEqual(errs, tc.wantErrs) {
				t.Fatalf("errors = %q, want %q", errs, tc.wantErrs)
			}
			counts := st["counts"].(map[string]any)
			if int(counts["sent"].(float64)) != len(tc.want) || st["status"] != "processed" {
				t.Fatalf("status = %v, want processed with %d sent", st, len(tc.want))
			}
		})
	}
	c.t = t

	// Dan, matched by "not", has no identity: the webhook channel reaches
	// him at customer.id (its default), so nobody is skipped.
	hist := c.must(200, http.MethodGet, fmt.Sprintf("/v1/broadcasts/%d/triggers", news), nil, false)
	triggers := hist["triggers"].([]any)
	if len(triggers) != 11 {
		t.Fatalf("history has %d triggers, want 11", len(triggers))
	}
	notTrigger := triggers[len(triggers)-3].(map[string]any)
	counts := notTrigger["counts"].(map[string]any)
	if counts["matched"].(float64) != 4 || counts["sent"].(float64) != 4 || counts["skipped"].(float64) != 0 {
		t.Fatalf("the not trigger's counts = %v, want 4 matched and sent, dan at his id", counts)
	}

	// Ann buys within the goal window: one conversion.
	c.must(200, http.MethodPost, "/api/v1/customers/ann/events", map[string]any{"name": "purchase", "data": map[string]any{"sku": "x"}}, true)
	m := c.must(200, http.MethodGet, fmt.Sprintf("/v1/broadcasts/%d/metrics", news), nil, false)["metric"].(map[string]any)
	mc := m["counts"].(map[string]any)
	if mc["converted"].(float64) != 1 || mc["sent"].(float64) < 20 {
		t.Fatalf("metrics = %v, want 1 conversion", m)
	}
	action := m["actions"].([]any)[0].(map[string]any)
	if action["converted"].(float64) != 1 || action["type"] != "message" {
		t.Fatalf("action metrics = %v", action)
	}
}

// TestAudienceFlowAndAttributeActions checks the other two actions: a bot
// flow triggered per person (its Liquid sees trigger.*, per-person data
// merged over data, customer.*, and the data as metadata.* as well) and an
// attribute update rendered per person.
func TestAudienceFlowAndAttributeActions(t *testing.T) {
	t.Parallel()
	_, sink, c, _ := startAudience(t, gatewaytest.Options{Configure: noTriggerInterval})
	promo := c.broadcast(map[string]any{
		"name":       "promo",
		"recipients": named,
		"actions": []any{
			map[string]any{"type": "flow", "channel": "news", "flow": "promo", "close_flows": true},
			map[string]any{"type": "attributes", "attributes": map[string]any{"last_promo": "{{ trigger.headline }}", "promos": 1}},
		},
	})
	id := c.trigger(promo, map[string]any{"data": map[string]any{"headline": "Big sale", "code": "ALL"},
		"per_user_data": []any{map[string]any{"id": "ann", "data": map[string]any{"code": "A1"}}, map[string]any{"id": "dan", "data": map[string]any{}}}})
	sink.WaitFor(t, 2, 20*time.Second)
	st := c.wait(promo, id)
	// Dan has no identity: the flow starts at his customer.id (the
	// webhook channel's default), which is then his identity there.
	want := map[string]string{"ann": "Promo for Ann: Big sale, code A1 (Big sale)", "dan": "Promo for Dan: Big sale, code ALL (Big sale)"}
	if got := triggerTexts(sink, id); !reflect.DeepEqual(got, want) {
		t.Fatalf("flow deliveries = %q, want %q", got, want)
	}
	counts := st["counts"].(map[string]any)
	if counts["flows_triggered"].(float64) != 2 || counts["skipped"].(float64) != 0 {
		t.Fatalf("counts = %v, want two flows, nobody skipped", counts)
	}
	dan := c.must(200, http.MethodGet, "/v1/customers/dan/attributes", nil, false)["customer"].(map[string]any)
	if !reflect.DeepEqual(dan["_identities"], map[string]any{"media-news": "dan"}) {
		t.Fatalf("dan's identities = %v, want the address the flow started at", dan["_identities"])
	}
	// Each action counts the two recipients it was performed for and what
	// it did itself: the flow started two flows, the update updated two.
	actions := st["actions"].([]any)
	flow, update := actions[0].(map[string]any), actions[1].(map[string]any)
	if flow["matched"] != 2.0 || flow["flows_triggered"] != 2.0 || flow["attributes_updated"] != 0.0 {
		t.Fatalf("flow action = %v, want 2 matched and 2 flows", flow)
	}
	if update["matched"] != 2.0 || update["attributes_updated"] != 2.0 || update["flows_triggered"] != 0.0 || counts["attributes_updated"] != 2.0 {
		t.Fatalf("attributes action = %v (top %v), want 2 matched and 2 updated", update, counts)
	}
	for _, who := range []string{"ann", "dan"} {
		p := c.must(200, http.MethodGet, "/v1/customers/"+who+"/attributes", nil, false)["customer"].(map[string]any)
		attrs := p["attributes"].(map[string]any)
		if attrs["last_promo"] != "Big sale" || attrs["promos"].(float64) != 1 {
			t.Fatalf("%s's attributes = %v, want the rendered update", who, attrs)
		}
	}
}

// TestAudienceBroadcastLifecycle covers review, duplicate, editing an active
// broadcast and dry runs.
func TestAudienceBroadcastLifecycle(t *testing.T) {
	t.Parallel()
	g, sink, c, seg := startAudience(t, gatewaytest.Options{Configure: noTriggerInterval})

	bad := c.must(201, http.MethodPost, "/v1/broadcasts", map[string]any{
		"name":       "broken",
		"recipients": map[string]any{"segment": map[string]any{"id": 999}},
		"actions": []any{
			map[string]any{"type": "message", "channel": "nope", "message": map[string]any{"text": "hi"}},
			map[string]any{"type": "flow", "channel": "news", "flow": "nowhere"},
			map[string]any{"type": "message", "channel": "news", "message": map[string]any{"text": "{{ customer.name | nofilter }}"}},
		},
	}, false)
	badID := int64(bad["broadcast"].(map[string]any)["id"].(float64))
	out := c.must(422, http.MethodPost, fmt.Sprintf("/v1/broadcasts/%d/activate", badID), nil, false)
	var problems []string
	for _, e := range out["errors"].([]any) {
		e := e.(map[string]any)
		problems = append(problems, pointer(e)+" "+e["detail"].(string))
	}
	for _, want := range []string{"/recipients needs fixing: unknown segment 999", `/actions/0/channel needs fixing: unknown channel "nope"`,
		`/actions/1/flow needs fixing: unknown flow "nowhere"`, "/actions/2/message/text needs fixing: broken Liquid"} {
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("needs fixing list %q lacks %q", problems, want)
		}
	}
	if got := c.must(200, http.MethodGet, fmt.Sprintf("/v1/broadcasts/%d", badID), nil, false)["broadcast"].(map[string]any)["active"]; got != false {
		t.Fatalf("a broadcast that needs fixing became active")
	}
	e := firstError(t, c.must(422, http.MethodPost, fmt.Sprintf("/v1/campaigns/%d/triggers", badID), map[string]any{"ids": []string{"ann"}}, false))
	if e["code"] != "broadcast_inactive" {
		t.Fatalf("triggering an inactive broadcast: %v", e)
	}

	// No recipients source: refused with the fix. A broadcast activated
	// before the review checked it still refuses a trigger naming nobody.
	apiOnly := c.must(201, http.MethodPost, "/v1/broadcasts", map[string]any{"name": "api only", "actions": []any{
		map[string]any{"type": "message", "channel": "news", "message": map[string]any{"text": "hi"}}}}, false)["broadcast"].(map[string]any)
	apiOnlyID := int64(apiOnly["id"].(float64))
	out = c.must(422, http.MethodPost, fmt.Sprintf("/v1/broadcasts/%d/activate", apiOnlyID), nil, false)
	if errs := out["errors"].([]any); len(errs) != 1 || pointer(errs[0].(map[string]any)) != "/recipients" ||
		!strings.HasPrefix(errs[0].(map[string]any)["detail"].(string), "needs fixing: no recipients source: set recipients,") {
		t.Fatalf("activating a broadcast without recipients: %v", out)
	}
	legacy, err := g.Store.GetBroadcast(t.Context(), "media", apiOnlyID)
	if err != nil {
		t.Fatal(err)
	}
	legacy.Active = true
	if err := g.Store.UpdateBroadcast(t.Context(), &legacy); err != nil {
		t.Fatal(err)
	}
	e = firstError(t, c.must(422, http.MethodPost, fmt.Sprintf("/v1/campaigns/%d/triggers", apiOnlyID), map[string]any{}, false))
	if e["code"] != "no_recipients" || pointer(e) != "/recipients" {
		t.Fatalf("a trigger naming nobody for a broadcast without recipients: %v", e)
	}
	c.trigger(apiOnlyID, map[string]any{"ids": []string{"ann"}})

	news := c.broadcast(newsBroadcast())
	dup := c.must(201, http.MethodPost, fmt.Sprintf("/v1/broadcasts/%d/duplicate", news), nil, false)["broadcast"].(map[string]any)
	if dup["name"] != "[COPY] news" || dup["active"] != false || len(dup["actions"].([]any)) != 1 || dup["goal"] == nil {
		t.Fatalf("duplicate = %v, want an inactive [COPY] with everything copied", dup)
	}

	// Dry run: counts per channel and skip reasons, nothing sent.
	dry := c.must(200, http.MethodPost, fmt.Sprintf("/v1/campaigns/%d/triggers", news), map[string]any{
		"dry_run": true, "recipients": map[string]any{"not": map[string]any{"segment": map[string]any{"id": seg}}}}, false)["dry_run"].(map[string]any)
	if dry["matched"].(float64) != 3 || dry["channels"].(map[string]any)["media-news"].(float64) != 3 ||
		len(dry["skipped"].(map[string]any)) != 0 {
		t.Fatalf("dry run = %v, want bob, cat and dan matched and reached (dan at his id)", dry)
	}

	first := c.trigger(news, map[string]any{"data": map[string]any{"headline": "one"}, "ids": []string{"ann"}})
	// Editing the active broadcast changes later triggers only.
	edited := newsBroadcast()
	edited["actions"] = []any{map[string]any{"type": "message", "channel": "news", "message": map[string]any{"text": "v2 {{ trigger.headline }}"}}}
	c.must(200, http.MethodPut, fmt.Sprintf("/v1/broadcasts/%d", news), edited, false)
	second := c.trigger(news, map[string]any{"data": map[string]any{"headline": "two"}, "ids": []string{"ann"}})
	c.wait(news, first)
	c.wait(news, second)
	if got := triggerTexts(sink, first)["ann"]; got != "Ann: one" {
		t.Fatalf("trigger before the edit sent %q", got)
	}
	if got := triggerTexts(sink, second)["ann"]; got != "v2 two" {
		t.Fatalf("trigger after the edit sent %q", got)
	}
	// A person whose Liquid fails gets a failed delivery with the reason
	// and an error line; the others go on.
	c.identify("ann", map[string]any{"n": 2})
	c.identify("bob", map[string]any{"n": 0})
	math := c.broadcast(map[string]any{"name": "math", "recipients": named, "actions": []any{map[string]any{"type": "message", "channel": "news",
		"message": map[string]any{"text": "{{ 10 | divided_by: customer.n }}"}}}})
	id := c.trigger(math, map[string]any{"ids": []string{"ann", "bob"}})
	st := c.wait(math, id)
	if got := triggerTexts(sink, id); !reflect.DeepEqual(got, map[string]string{"ann": "5"}) {
		t.Fatalf("render: sink got %q", got)
	}
	if n := st["counts"].(map[string]any)["failed_by_reason"].(map[string]any)["render_error"]; n != 1.0 {
		t.Fatalf("render: counts = %v, want bob failed with render_error", st["counts"])
	}
	if lines := c.triggerErrors(math, id); len(lines) != 1 || !strings.HasPrefix(lines[0], "person bob: action 0: message/text: ") {
		t.Fatalf("render errors = %q", lines)
	}

	// An edit that breaks an active broadcast is refused.
	edited["actions"] = []any{map[string]any{"type": "message", "channel": "gone", "message": map[string]any{"text": "x"}}}
	c.must(422, http.MethodPut, fmt.Sprintf("/v1/broadcasts/%d", news), edited, false)
}

// TestAudienceTriggerErrorsListFailedDeliveries checks that the errors
// endpoint lists, after the fan-out's own lines, the deliveries the
// delivery pipeline failed (who, which action, the reason and the
// platform's message, with the channel's secrets redacted), with offsets
// that page through both kinds without a gap or a repeat.
func TestAudienceTriggerErrorsListFailedDeliveries(t *testing.T) {
	t.Parallel()
	_, sink, c, _ := startAudience(t, gatewaytest.Options{Configure: noTriggerInterval})
	// The receiver refuses bob, and echoes a secret of the channel.
	sink.Handler = func(w http.ResponseWriter, m gatewaytest.SinkMessage) bool {
		if m.UserID != "bob" {
			return false
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "unknown recipient (key %s)", gatewaytest.OutboundSecret)
		return true
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":"ann","data":{}}`+"\nnot json\n"+`{"id":"bob","data":{}}`+"\n"+`{"id":"ghost","data":{}}`+"\n")
	}))
	t.Cleanup(files.Close)
	alerts := c.broadcast(map[string]any{
		"name":       "alerts",
		"recipients": named,
		"actions": []any{
			map[string]any{"type": "message", "channel": "news", "message": map[string]any{"text": "{{ trigger.headline }}"}},
			map[string]any{"type": "flow", "channel": "news", "flow": "promo"},
		},
	})
	id := c.trigger(alerts, map[string]any{"data": map[string]any{"headline": "Storm"}, "data_file_url": files.URL})
	path := fmt.Sprintf("/v1/campaigns/%d/triggers/%d", alerts, id)
	// Bob's flow delivery exists only once his conversation job ran.
	c.poll(alerts, id, func(st map[string]any) bool { return st["done"] == true && st["error_count"] == 4.0 })

	all := c.triggerErrors(alerts, id)
	if len(all) != 4 {
		t.Fatalf("errors = %q, want 2 fan-out lines and bob's 2 failed deliveries", all)
	}
	wantFanout := []string{"line 2: must be an object with id or email, and data: invalid character 'o' in literal null (expecting 'u')",
		`line 4: no person with id "ghost"`}
	if !reflect.DeepEqual(all[:2], wantFanout) {
		t.Fatalf("fan-out lines = %q, want %q first", all[:2], wantFanout)
	}
	failures := slices.Sorted(slices.Values(all[2:]))
	for i, action := range []string{"action 0 (message)", "action 1 (flow)"} {
		want := "person bob: " + action + ": delivery failed: channel_rejected: permanent (400): 400 Bad Request: unknown recipient (key [redacted])"
		if failures[i] != want {
			t.Errorf("failure line %d = %q, want %q", i, failures[i], want)
		}
	}
	if strings.Contains(strings.Join(all, "\n"), gatewaytest.OutboundSecret) {
		t.Fatal("an error line shows the channel's secret")
	}

	// Pages of any size add up to the same list; next is 0 at the end.
	for _, size := range []int{1, 3} {
		var paged []string
		start := 0
		for page := 0; ; page++ {
			out := c.must(200, http.MethodGet, fmt.Sprintf("%s/errors?start=%d&limit=%d", path, start, size), nil, false)
			lines := out["errors"].([]any)
			if len(lines) > size || page > 4 {
				t.Fatalf("limit %d: page %d has %d lines", size, page, len(lines))
			}
			for _, l := range lines {
				paged = append(paged, l.(string))
			}
			next := int(out["next"].(float64))
			if next == 0 {
				break
			}
			if next != start+len(lines) {
				t.Fatalf("limit %d: next = %d after %d lines from %d", size, next, len(lines), start)
			}
			start = next
		}
		if !reflect.DeepEqual(paged, all) {
			t.Fatalf("limit %d: pages = %q, want %q", size, paged, all)
		}
	}
}
