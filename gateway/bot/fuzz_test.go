package bot_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/template"
)

// FuzzCompile parses and compiles random bot YAML: it never panics, refuses
// with a *ValidationError, or yields a bot that compiles again from its
// stored form to the same stored form.
func FuzzCompile(f *testing.F) {
	demo, err := os.ReadFile("testdata/demo-bot.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, src := range []string{string(demo), sample, doublingBot,
		"{name: x, default_flow: m, flows: [{id: m, steps: [{say: hi}]}]}",
		"{name: x, default_flow: m, flows: [{id: m, steps: [{set: {n: '{{ memory.n | plus: 1 }}'}}, " +
			"{if: {value: '{{ memory.n }}', gt: 2}, then: {flow: m}}]}]}",
		"name: &a x\nflows: *a\n",
	} {
		f.Add([]byte(src))
	}
	// Small template limits keep each input cheap.
	o := bot.Options{Templates: template.New(template.Options{MaxIterations: 1000, MaxRange: 100}), MaxFlows: 10, MaxSteps: 50}
	f.Fuzz(func(t *testing.T, src []byte) {
		b, err := bot.Parse(src, o)
		if err != nil {
			var ve *bot.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, bot.ErrInvalid) {
				t.Fatalf("Parse: %v, want a *ValidationError", err)
			}
			return
		}
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := bot.FromJSON(data, o)
		if err != nil {
			t.Fatalf("a compiled bot does not compile from its stored form: %v\n%s", err, data)
		}
		if data2, _ := json.Marshal(again); string(data2) != string(data) {
			t.Fatalf("stored form changed:\n%s\n%s", data, data2)
		}
	})
}
