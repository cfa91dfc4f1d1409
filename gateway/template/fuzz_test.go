package template_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/template"
)

// fuzzOptions are small limits, so that each input is cheap and reaches
// them.
var fuzzOptions = template.Options{MaxSourceBytes: 4 << 10, MaxOutputBytes: 1 << 10, MaxRange: 100,
	MaxIterations: 1000, MaxValueBytes: 4 << 10, MaxValueItems: 200, MaxVariableBytes: 16 << 10,
	MaxRenderTime: time.Hour} // the clock stands still (newEngine): time is not what is fuzzed

// FuzzRender renders random template sources with random data (a JSON
// object as memory and trigger): a render never panics, returns an error
// of this package or the output within the limits, and never counts more
// iterations, variable bytes or output than its budget allows.
func FuzzRender(f *testing.F) {
	for _, src := range []string{
		doubling,
		`{% if trigger.go == "yes" %}` + doubling + `{% endif %}`,
		`{% for i in (1..100) %}{% for j in (1..100) %}{% assign x = j %}{% endfor %}{% endfor %}`,
		`Hi {{ customer.first_name | default: 'there' }}, your code is {{ trigger.code }}.`,
		`{% assign n = memory.n | plus: 1 %}{% capture c %}{{ memory.name }}{% endcapture %}{% for i in (1..3) %}{{ c }}{{ forloop.index }}{% endfor %}-{{ n }}`,
		`{% tablerow x in memory.items cols: 2 %}{{ x }}{% endtablerow %}`,
		`{%- for x in memory.items reversed limit: 2 -%} {{ x | upcase }} {%- else -%}none{%- endfor -%}`,
		`{{ memory.s | replace: "a", memory.s | split: "" | join: "," | json | size }}`,
		`{% case memory.n %}{% when 1 %}one{% else %}{{ memory.n | times: 2 }}{% endcase %}`,
		`{{ "abc" | slice: 1, memory.n }} {{ memory.items | uniq | sort | concat: memory.items | size }}`,
		`{% capture a %}{% capture b %}{{ memory.s }}{% endcapture %}{{ b }}{{ b }}{% endcapture %}{{ a | size }}`,
	} {
		f.Add(src, `{"n": -5, "name": "Ada", "s": "abcabc", "items": ["a", "b", "a", {"k": 1}], "go": "yes"}`)
	}
	e := newEngine(fuzzOptions)
	f.Fuzz(func(t *testing.T, src, data string) {
		var m map[string]any
		if json.Unmarshal([]byte(data), &m) != nil {
			m = nil
		}
		_ = e.Validate(src) // must not panic
		tpl, err := e.Parse(src)
		if err != nil {
			if !errors.Is(err, template.ErrInvalid) {
				t.Fatalf("Parse: %v, want ErrInvalid", err)
			}
			return
		}
		out, used, err := template.RenderUsage(tpl, &template.Vars{Memory: m, Trigger: m})
		switch {
		case errors.Is(err, template.ErrPanic):
			t.Fatalf("liquid panicked: %v", err)
		case err != nil && !errors.Is(err, template.ErrRender) && !errors.Is(err, template.ErrLimit):
			t.Fatalf("Render: %v, want ErrRender or ErrLimit", err)
		case len(out) > fuzzOptions.MaxOutputBytes || used.Output > fuzzOptions.MaxOutputBytes:
			t.Fatalf("output of %d bytes (%d counted)", len(out), used.Output)
		case used.Iterations > fuzzOptions.MaxIterations+1: // the one refused is counted
			t.Fatalf("%d iterations", used.Iterations)
		case used.Held > fuzzOptions.MaxVariableBytes:
			t.Fatalf("variables hold %d bytes", used.Held)
		}
	})
}
