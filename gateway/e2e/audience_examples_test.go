package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// TestExamplesApply applies every file of configs/examples, as their
// comments say (demo.yaml first, then each file in its own apply), so that
// none of them can rot. Secrets come from placeholder variables.
func TestExamplesApply(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../configs/examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	// demo.yaml first: the others add to its workspace.
	slices.SortStableFunc(files, func(a, b string) int {
		return boolOrder(filepath.Base(b) == "demo.yaml") - boolOrder(filepath.Base(a) == "demo.yaml")
	})
	st := sqlstore.OpenTest(t)
	env := func(name string) (string, bool) { return "example_" + name, true }
	var out bytes.Buffer
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := apply.ParseFile(filepath.Base(path), raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := apply.Apply(t.Context(), st, []apply.File{doc}, apply.Options{Bots: bot.CompileNode, LookupEnv: env, Out: &out}); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	for _, want := range []string{"segment pro (id 1): created", "broadcast appointment-reminders (id 1, active): created"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("apply output lacks %q:\n%s", want, out.String())
		}
	}
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAudienceExampleBroadcast triggers configs/examples/broadcasts.yaml's
// broadcast on the demo workspace as its comment shows: for its default
// audience (the segment), then for bob with his own data. Each person gets
// the message (customer.* and trigger.*, per-person data over data), the
// reminder flow, and the attribute update.
func TestAudienceExampleBroadcast(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: noTriggerInterval})
	g.Apply(t, demoWorkspace(t, sink.URL))
	raw, err := os.ReadFile("../../configs/examples/broadcasts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g.Apply(t, string(raw))
	c := newCIO(t, g, "demo")
	b, err := g.Store.GetBroadcastByName(context.Background(), "demo", "appointment-reminders")
	if err != nil || !b.Active {
		t.Fatalf("the example broadcast: %+v, %v; want it active", b, err)
	}
	data := map[string]any{"title": "the dentist", "when": "Monday 9:00"}
	for _, tc := range []struct {
		body    map[string]any
		want    map[string][]string
		lastBob string
	}{
		{map[string]any{"data": data}, map[string][]string{
			"alice": {"Hi Alice, about the dentist on Monday 9:00:", "Reminder: the dentist on Monday 9:00."},
			"bob":   {"Hi Bob, about the dentist on Monday 9:00:", "Reminder: the dentist on Monday 9:00."},
		}, "the dentist, Monday 9:00"},
		{map[string]any{"data": data, "per_user_data": []any{map[string]any{"id": "bob", "data": map[string]any{"when": "Tuesday 10:00"}}}},
			map[string][]string{"bob": {"Hi Bob, about the dentist on Tuesday 10:00:", "Reminder: the dentist on Tuesday 10:00."}},
			"the dentist, Tuesday 10:00"},
	} {
		id := c.trigger(b.ID, tc.body)
		c.wait(b.ID, id)
		// The reminder flow asks a question: three messages each.
		got := map[string][]string{}
		prefix := fmt.Sprintf("trigger:%d:", id)
		eventually(t, 30*time.Second, func() string {
			clear(got)
			n := 0
			for _, m := range sink.Messages() {
				if strings.HasPrefix(m.IdempotencyKey, prefix) || strings.HasPrefix(m.IdempotencyKey, "conversation:"+prefix) {
					got[m.UserID] = append(got[m.UserID], m.Text)
					n++
				}
			}
			if n < 3*len(tc.want) {
				return fmt.Sprintf("trigger %d: the sink got %q", id, got)
			}
			return ""
		})
		for user, want := range tc.want {
			if len(got[user]) != 3 || !slices.Equal(got[user][:2], want) {
				t.Errorf("trigger %d: %s got %q, want %q then the reminder's question", id, user, got[user], want)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("trigger %d reached %q, want %d people", id, keysOf(got), len(tc.want))
		}
		bob := c.must(200, http.MethodGet, "/v1/customers/bob/attributes", nil, false)["customer"].(map[string]any)
		if last := bob["attributes"].(map[string]any)["last_reminder"]; last != tc.lastBob {
			t.Fatalf("trigger %d: bob's last_reminder = %v, want %q", id, last, tc.lastBob)
		}
	}
}

func keysOf(m map[string][]string) []string {
	return slices.Sorted(maps.Keys(m))
}
