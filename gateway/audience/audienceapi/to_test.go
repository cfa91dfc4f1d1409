package audienceapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// TestBroadcastToValidation: the App API refuses to: where it does not
// belong on create (400 with its pointer), and activation review refuses a
// to: whose Liquid does not validate or whose literal address the channel
// type cannot take (422 needs_fixing at /actions/N/to).
func TestBroadcastToValidation(t *testing.T) {
	a := newTestAPI(t, Options{})
	ctx := context.Background()
	bt := store.Bot{WorkspaceID: "w", Name: "bot", Definition: json.RawMessage(`{"flows":[]}`)}
	if err := a.st.UpsertBot(ctx, &bt); err != nil {
		t.Fatal(err)
	}
	if err := a.st.UpsertChannel(ctx, &store.Channel{WorkspaceID: "w", BotID: bt.ID, Name: "sms", Type: "twilio", Enabled: true}); err != nil {
		t.Fatal(err)
	}

	status, _, out := a.do(http.MethodPost, "/v1/broadcasts", map[string]any{"name": "attrs", "recipients": map[string]any{"attribute": map[string]any{"field": "x", "operator": "exists"}},
		"actions": []any{map[string]any{"type": "attributes", "to": "{{ customer.phone }}", "attributes": map[string]any{"a": 1}}}})
	if status != http.StatusBadRequest || pointerOf(out) != "/actions/0" {
		t.Fatalf("to: on an attributes action: %d %v", status, out)
	}

	msg := map[string]any{"type": "text", "text": "hi"}
	status, _, out = a.do(http.MethodPost, "/v1/broadcasts", map[string]any{"name": "sms", "recipients": map[string]any{"attribute": map[string]any{"field": "x", "operator": "exists"}},
		"actions": []any{
			map[string]any{"type": "message", "channel": "sms", "to": "{{ customer.phone | nosuchfilter }}", "message": msg},
			map[string]any{"type": "message", "channel": "sms", "to": "0555 1234", "message": msg},
			map[string]any{"type": "message", "channel": "sms", "to": "{{ customer.mobile }}", "message": msg},
		}})
	if status != http.StatusCreated {
		t.Fatalf("create inactive: %d %v", status, out)
	}
	id := int64(out["broadcast"].(map[string]any)["id"].(float64))
	status, _, out = a.do(http.MethodPost, fmt.Sprintf("/v1/broadcasts/%d/activate", id), nil)
	raw, _ := json.Marshal(out)
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(raw), `"pointer":"/actions/0/to"`) ||
		!strings.Contains(string(raw), `"pointer":"/actions/1/to"`) || strings.Contains(string(raw), `/actions/2`) ||
		!strings.Contains(string(raw), "not an E.164 phone number") {
		t.Fatalf("activate: %d %s", status, raw)
	}
}

// pointerOf is the source pointer of a response's first error.
func pointerOf(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	src, _ := errs[0].(map[string]any)["source"].(map[string]any)
	p, _ := src["pointer"].(string)
	return p
}
