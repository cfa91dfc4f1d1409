package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// doublingLiquid doubles a string 40 times (a terabyte) in a loop that
// writes nothing: issue 12, row 1.
const doublingLiquid = `{% assign s = "x" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}`

// TestAudienceLiquidLimits runs the doubling template against a gateway
// process: activation refuses it with the limit named; behind a condition
// activation cannot take, each person's render fails as a render_error in
// the trigger's errors, and the gateway stays up and keeps sending.
func TestAudienceLiquidLimits(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	noTriggerInterval(cfg)
	st := gatewaytest.OpenStore(t, cfg)
	t.Cleanup(func() { st.Close() })
	gatewaytest.ApplyTo(t, st, audienceWorkspace(sink.URL))
	p := gatewaytest.StartProcess(t, cfg)
	c := &cio{t: t, url: p.URL, wsID: "media", store: st,
		app:   gatewaytest.NewKey(t, st, "media", store.ScopeApp, ""),
		track: gatewaytest.NewKey(t, st, "media", store.ScopeTrack, "")}
	for _, id := range []string{"ann", "bob"} {
		c.identify(id, map[string]any{"first_name": strings.ToUpper(id[:1]) + id[1:], "_identities": map[string]string{"news": id}})
	}
	def := func(name, text string) map[string]any {
		return map[string]any{"name": name, "recipients": named, "actions": []any{
			map[string]any{"type": "message", "channel": "news", "message": map[string]any{"text": text}}}}
	}

	out := c.must(201, http.MethodPost, "/v1/broadcasts", def("unguarded", doublingLiquid+"Hi"), false)
	unguarded := int64(out["broadcast"].(map[string]any)["id"].(float64))
	e := firstError(t, c.must(422, http.MethodPost, fmt.Sprintf("/v1/broadcasts/%d/activate", unguarded), nil, false))
	if pointer(e) != "/actions/0/message/text" || !strings.Contains(e["detail"].(string), "template limit exceeded: value size: append: ") {
		t.Fatalf("activating the doubling template: %v, want a needs fixing naming the limit", e)
	}

	guarded := c.broadcast(def("guarded", `{% if trigger.go == "yes" %}`+doublingLiquid+`{% endif %}Hi {{ customer.first_name }}`))
	id := c.trigger(guarded, map[string]any{"ids": []string{"ann", "bob"}, "data": map[string]any{"go": "yes"}})
	status := c.wait(guarded, id)
	if n := status["counts"].(map[string]any)["failed_by_reason"].(map[string]any)["render_error"]; n != 2.0 {
		t.Fatalf("trigger counts = %v, want ann and bob failed with render_error", status["counts"])
	}
	lines := c.triggerErrors(guarded, id)
	if len(lines) != 2 {
		t.Fatalf("trigger errors = %q, want one line each for ann and bob", lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, "action 0: message/text: template: template limit exceeded: value size: append: ") {
			t.Errorf("error line %q does not name the limit", l)
		}
	}
	resp, err := http.Get(p.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the trigger: %v %v", resp, err)
	}
	resp.Body.Close()
	// The same broadcast without the condition met still sends.
	id = c.trigger(guarded, map[string]any{"ids": []string{"ann"}, "data": map[string]any{"go": "no"}})
	c.wait(guarded, id)
	if got := triggerTexts(sink, id)["ann"]; got != "Hi Ann" {
		t.Fatalf("after the failed trigger, ann got %q", got)
	}
}
