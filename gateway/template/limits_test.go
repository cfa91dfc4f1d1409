package template_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osteele/liquid"

	"github.com/switchboard-gw/switchboard/gateway/template"
)

// doubling is the template of the adversarial review: a string doubled 40
// times (a terabyte) in a loop that writes nothing.
const doubling = `{% assign s = "x" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}`

// allocated returns the bytes f allocated (all of them, not only those
// still live).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// newEngine returns an engine with o whose clock stands still: these tests
// check other limits than time, on a machine of any speed.
func newEngine(o template.Options) *template.Engine {
	e := template.New(o)
	start := time.Unix(0, 0)
	template.SetClock(e, func() time.Time { return start })
	return e
}

const maxAlloc = 16 << 20 // well below what any of these templates would allocate unchecked

func renderErr(t *testing.T, e *template.Engine, src string, v *template.Vars) error {
	t.Helper()
	tpl, err := e.Parse(src)
	if err != nil {
		t.Fatalf("Parse(%.60q): %v", src, err)
	}
	_, err = tpl.Render(context.Background(), v)
	return err
}

// TestDoublingRefused: validation (apply, activation review) refuses the
// doubling template quickly, naming the filter and the limit; behind a
// condition that validation cannot take, the render refuses it per person.
func TestDoublingRefused(t *testing.T) {
	e := newEngine(template.Options{})
	var err error
	if n := allocated(func() { err = e.Validate(doubling) }); n > maxAlloc {
		t.Errorf("Validate allocated %d bytes", n)
	}
	if !errors.Is(err, template.ErrValueSize) || !errors.Is(err, template.ErrLimit) ||
		!strings.Contains(err.Error(), "append: 131072 bytes, the limit is 65536") {
		t.Fatalf("Validate(doubling) = %v, want a value size error naming append", err)
	}

	guarded := `{% if trigger.go == "yes" %}` + doubling + `{% endif %}`
	if err := e.Validate(guarded); err != nil {
		t.Fatalf("Validate(guarded) = %v; validation cannot know trigger.go", err)
	}
	v := &template.Vars{Trigger: map[string]any{"go": "yes"}}
	if n := allocated(func() { err = renderErr(t, e, guarded, v) }); n > maxAlloc {
		t.Errorf("Render allocated %d bytes", n)
	}
	if !errors.Is(err, template.ErrValueSize) {
		t.Fatalf("Render(guarded) = %v, want ErrValueSize", err)
	}
	if err := renderErr(t, e, guarded, &template.Vars{Trigger: map[string]any{"go": "no"}}); err != nil {
		t.Fatalf("Render(guarded) without go = %v", err)
	}
}

// TestIterationsAcrossNestedLoops counts every iteration of every loop of
// one render, so nested loops that write nothing stop at the budget.
func TestIterationsAcrossNestedLoops(t *testing.T) {
	e := newEngine(template.Options{})
	deep := `{% for i in (1..1000) %}{% for j in (1..1000) %}{% for k in (1..1000) %}{% assign x = k %}` +
		`{% endfor %}{% endfor %}{% endfor %}`
	tpl, err := e.Parse(deep)
	if err != nil {
		t.Fatal(err)
	}
	_, used, err := template.RenderUsage(tpl, nil)
	if !errors.Is(err, template.ErrIterations) || used.Iterations != 100_001 {
		t.Fatalf("three nested loops: %v after %d iterations, want ErrIterations at the 100,001st", err, used.Iterations)
	}
	if err := e.Validate(deep); !errors.Is(err, template.ErrIterations) {
		t.Fatalf("Validate: %v, want ErrIterations", err)
	}

	// 10 outer and 100 inner iterations, a loop over data included.
	small := newEngine(template.Options{MaxIterations: 110})
	src := `{% for i in (1..10) %}{% for x in memory.items %}{% endfor %}{% endfor %}`
	items := func(n int) *template.Vars { return &template.Vars{Memory: map[string]any{"items": make([]any, n)}} }
	if err := renderErr(t, small, src, items(10)); err != nil {
		t.Fatalf("110 iterations with a budget of 110: %v", err)
	}
	if err := renderErr(t, small, src, items(11)); !errors.Is(err, template.ErrIterations) {
		t.Fatalf("120 iterations with a budget of 110: %v", err)
	}
}

// stepClock advances by step at every reading.
func stepClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

// TestRenderTimeInsideLoops: the clock is read at every iteration and
// assign, not only when output is written.
func TestRenderTimeInsideLoops(t *testing.T) {
	for name, src := range map[string]string{
		"loop":   `{% for i in (1..1000) %}{% endfor %}`,
		"assign": strings.Repeat(`{% assign x = 1 %}`, 300),
	} {
		e := template.New(template.Options{MaxRenderTime: 250 * time.Millisecond})
		template.SetClock(e, stepClock(time.Millisecond))
		tpl, err := e.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		_, used, err := template.RenderUsage(tpl, nil)
		if !errors.Is(err, template.ErrRenderTime) {
			t.Errorf("%s: %v, want ErrRenderTime", name, err)
		}
		// The first reading starts the render; each iteration reads once.
		if name == "loop" && used.Iterations != 251 {
			t.Errorf("loop stopped after %d iterations, want 251 (one clock reading each)", used.Iterations)
		}
	}
}

// TestValueLimits: assign, capture and the filters that grow values refuse
// a value over the limits, before allocating it.
func TestValueLimits(t *testing.T) {
	e := newEngine(template.Options{MaxValueBytes: 1000, MaxValueItems: 100, MaxVariableBytes: 5000})
	big := &template.Vars{Memory: map[string]any{"big": strings.Repeat("x", 1001), "s": strings.Repeat("x", 999),
		"list": make([]any, 101)}}
	cases := map[string]error{
		// assign and capture
		`{% assign s = memory.big %}`:  template.ErrValueSize,
		`{% assign a = memory.list %}`: template.ErrValueSize,
		`{% capture c %}{% for i in (1..101) %}0123456789{% endfor %}{% endcapture %}`: template.ErrValueSize,
		// variables: 6 distinct values of 999 bytes exceed 5000; the same
		// variable set 10 times does not
		strings.Repeat(`{% assign a = memory.s %}`, 10): nil,
		`{% assign a = memory.s %}{% assign b = memory.s %}{% assign c = memory.s %}{% assign d = memory.s %}` +
			`{% assign e = memory.s %}{% assign f = memory.s %}`: template.ErrVariables,
		`{% capture a %}{{ memory.s }}{% endcapture %}{% capture b %}{{ memory.s }}{% endcapture %}` +
			`{% capture c %}{{ memory.s }}{% endcapture %}{% capture d %}{{ memory.s }}{% endcapture %}` +
			`{% capture e %}{{ memory.s }}{% endcapture %}{% capture f %}{{ memory.s }}{% endcapture %}`: template.ErrVariables,
		// a capture in progress holds its buffer
		`{% assign a = memory.s %}{% assign b = memory.s %}{% assign c = memory.s %}{% assign d = memory.s %}` +
			`{% capture e %}{{ memory.s }}{% capture f %}{{ memory.s }}{% endcapture %}{% endcapture %}`: template.ErrVariables,
		// filters
		`{{ memory.s | append: "xx" | size }}`:                                                               template.ErrValueSize,
		`{{ memory.s | prepend: "xx" | size }}`:                                                              template.ErrValueSize,
		`{{ memory.s | replace: "x", memory.s | size }}`:                                                     template.ErrValueSize,
		`{{ memory.s | replace_first: "x", "xxx" | size }}`:                                                  template.ErrValueSize,
		`{{ memory.s | split: "" | size }}`:                                                                  template.ErrValueSize,
		`{{ memory.s | split: "xxxxxxxxx" | join: memory.s }}`:                                               template.ErrValueSize,
		`{{ memory.s | json | size }}`:                                                                       template.ErrValueSize,
		`{{ memory.s | url_encode | url_encode | size }}`:                                                    nil,
		`{{ memory.s | replace: "x", "&" | escape | size }}`:                                                 template.ErrValueSize,
		`{% assign a = "a,b" | split: "," %}{% for i in (1..6) %}{% assign a = a | concat: a %}{% endfor %}`: template.ErrValueSize,
	}
	for src, want := range cases {
		var err error
		n := allocated(func() { err = renderErr(t, e, src, big) })
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("%.80q: %v, want %v", src, err, want)
		}
		if n > 1<<20 {
			t.Errorf("%.80q allocated %d bytes", src, n)
		}
	}
	nested := strings.Repeat(`{% capture c %}`, 5) + strings.Repeat(`{% endcapture %}`, 5)
	if err := e.Validate(nested); !errors.Is(err, template.ErrInvalid) {
		t.Errorf("captures nested 5 deep: %v", err)
	}
}

// TestReplaceRefusedBeforeAllocating: replacing each byte of 64 KiB by
// 64 KiB would be 4 GiB; the filter counts first.
func TestReplaceRefusedBeforeAllocating(t *testing.T) {
	e := newEngine(template.Options{})
	v := &template.Vars{Memory: map[string]any{"s": strings.Repeat("x", 64<<10)}}
	var err error
	if n := allocated(func() { err = renderErr(t, e, `{{ memory.s | replace: "x", memory.s }}`, v) }); n > maxAlloc {
		t.Errorf("allocated %d bytes", n)
	}
	if !errors.Is(err, template.ErrValueSize) || !strings.Contains(err.Error(), "replace: ") {
		t.Fatalf("%v, want ErrValueSize naming replace", err)
	}
}

// TestNoPanics: liquid v1.9.2's tablerow panics when a write fails, its
// lexer on some identifiers, and slice on a negative length; each took the
// gateway down.
func TestNoPanics(t *testing.T) {
	// 36 bytes: `<tr class="row1">` and `<td class="col1">` fit, and the
	// write that fails is tablerow's own `</td>`.
	e := newEngine(template.Options{MaxOutputBytes: 36})
	if err := renderErr(t, e, `{% tablerow i in (1..100) %}{% endtablerow %}`, nil); !errors.Is(err, template.ErrOutputLimit) {
		t.Errorf("tablerow over the output limit: %v", err)
	}
	e = newEngine(template.Options{MaxValueBytes: 64})
	if err := renderErr(t, e, `{% capture c %}{% tablerow i in (1..1000) %}{{ i }}{% endtablerow %}{% endcapture %}`, nil); !errors.Is(err, template.ErrValueSize) {
		t.Errorf("tablerow over the capture limit: %v", err)
	}
	// liquid's lexer panics on this identifier (found by FuzzRender).
	if err := e.Validate("{{۾}}"); !errors.Is(err, template.ErrInvalid) {
		t.Errorf("an invalid identifier: %v", err)
	}
	tpl, _ := e.Parse(`[{{ "abc" | slice: 1, memory.n }}]`)
	out, err := tpl.Render(context.Background(), &template.Vars{Memory: map[string]any{"n": -5}})
	if err != nil || out != "[]" {
		t.Errorf("slice with a negative length = %q, %v", out, err)
	}
}

// TestSameOutputAsLiquid: wrapping loop and capture bodies keeps liquid's
// output, whitespace control, break, continue and else included.
func TestSameOutputAsLiquid(t *testing.T) {
	e := newEngine(template.Options{})
	std := liquid.NewEngine()
	bindings := map[string]any{"memory": map[string]any{"items": []any{"a", "b", "c"}, "empty": []any{}}}
	for _, src := range []string{
		`{%- for i in (1..3) -%} a{{ i }} {%- if i == 2 %}{% break %}{% endif -%} {%- endfor -%}|`,
		`{% for x in memory.items %} {% if x == "b" %}{% continue %}{% endif %}{{ x }}-{{ forloop.index }} {% endfor %}`,
		`{% for x in memory.empty %}{{ x }}{% else %}none{% endfor %}`,
		`{% for x in memory.items reversed limit: 2 offset: 1 %}{{ x }}{% endfor %}`,
		`{% capture x -%}  hi {{ memory.items | join: "," }}  {%- endcapture %}[{{ x }}]`,
		"{% capture x %}\n  {%- for i in (1..2) %} {{ i }} {% endfor -%}\n{% endcapture %}[{{ x }}]",
		`{% tablerow x in memory.items cols: 2 %}{{ x }}{% endtablerow %}`,
		`{% for i in (1..2) %}{% for j in (1..2) %}{{ i }}{{ j }}{% if j == 1 %}{% break %}{% endif %}{% endfor %}{% endfor %}`,
		`{% assign s = "a" | append: "b" | prepend: "c" | replace: "a", "d" | upcase %}{{ s }} {{ "x,y" | split: "," | join: "+" }}`,
		`{{ "a & b" | escape }} {{ "<b>" | escape_once }} {{ "a b" | url_encode }} {{ "abc" | truncate: 2, "!" }} {{ "x" | json }}`,
	} {
		want, lerr := std.ParseAndRenderString(src, bindings)
		if lerr != nil {
			t.Fatalf("liquid: %q: %v", src, lerr)
		}
		tpl, err := e.Parse(src)
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		got, err := tpl.Render(context.Background(), &template.Vars{Memory: bindings["memory"].(map[string]any)})
		if err != nil || got != want {
			t.Errorf("%q rendered %q, %v; liquid renders %q", src, got, err, want)
		}
	}
	if err := e.Validate(`{% switchboard_loop %}{% endswitchboard_loop %}`); !errors.Is(err, template.ErrInvalid) {
		t.Errorf("the package's own block in a template: %v", err)
	}
}

// TestBudgetPerRender: concurrent renders of one template each have their
// own budget, so who fails depends on their own data only (run with -race).
func TestBudgetPerRender(t *testing.T) {
	e := newEngine(template.Options{MaxIterations: 100, MaxValueBytes: 200})
	tpl, err := e.Parse(`{% assign s = "" %}{% for x in memory.items %}{% assign s = s | append: x %}{% endfor %}{{ s | size }}`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := (g*200 + i) % 150 // items of 1 byte: over the iteration budget from 101
				items := make([]any, n)
				for j := range items {
					items[j] = "x"
				}
				out, err := tpl.Render(context.Background(), &template.Vars{Memory: map[string]any{"items": items}})
				switch {
				case n <= 100 && (err != nil || out != fmt.Sprint(n)):
					errs <- fmt.Errorf("%d items: %q, %v", n, out, err)
					return
				case n > 100 && !errors.Is(err, template.ErrIterations):
					errs <- fmt.Errorf("%d items: %q, %v, want ErrIterations", n, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
