package template_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/template"
)

func render(t *testing.T, e *template.Engine, src string, v *template.Vars) string {
	t.Helper()
	tpl, err := e.Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	out, err := tpl.Render(context.Background(), v)
	if err != nil {
		t.Fatalf("Render(%q): %v", src, err)
	}
	return out
}

func TestRenderVariables(t *testing.T) {
	e := template.New(template.Options{})
	v := &template.Vars{
		Memory:   map[string]any{"name": "Ada", "age": float64(36)},
		Event:    map[string]any{"text": "hi", "payload": "P"},
		Metadata: map[string]any{"plan": "pro"},
		Customer: map[string]any{"first_name": "Grace"},
		Trigger:  map[string]any{"coupon": "X1"},
		Channel:  map[string]any{"id": "c1", "type": "webhook"},
		User:     map[string]any{"id": "u1"},
	}
	cases := map[string]string{
		"plain text": "plain text",
		"Hi {{ memory.name }} ({{ memory.age }})":        "Hi Ada (36)",
		"{{ event.text }}/{{ event.payload }}":           "hi/P",
		"{{ metadata.plan | upcase }}":                   "PRO",
		"{{ customer.first_name }} {{ trigger.coupon }}": "Grace X1",
		"{{ channel.type }}:{{ user.id }}":               "webhook:u1",
		"{{ memory.missing | default: 'there' }}":        "there",
		"{{ memory.missing.deep }}":                      "",
		"{% if memory.age >= 18 %}adult{% endif %}":      "adult",
	}
	for src, want := range cases {
		if got := render(t, e, src, v); got != want {
			t.Errorf("%q rendered %q, want %q", src, got, want)
		}
	}
	if got := render(t, e, "{{ memory.name }}", nil); got != "" {
		t.Errorf("nil vars rendered %q", got)
	}
}

func TestValidate(t *testing.T) {
	e := template.New(template.Options{})
	good := []string{
		"static",
		"{{ memory.anything.at[0].all }} {{ metadata.x | default: 'y' }}",
		"{{ event.text }} {{ event.payload }} {{ user.id }} {{ user.profile.name }} {{ channel.type }}",
		"{% assign n = memory.count | plus: 1 %}{{ n }}",
		"{% for i in (1..3) %}{{ i }}{{ forloop.index }}{% endfor %}",
		"{% if customer.vip %}VIP{% else %}{{ trigger.x }}{% endif %}",
		"{{ 10 | divided_by: memory.n }} {{ memory.when | date: '%Y' }}",
	}
	for _, src := range good {
		if err := e.Validate(src); err != nil {
			t.Errorf("Validate(%q) = %v", src, err)
		}
	}
	bad := map[string]error{
		"{{ memroy.name }}":                        template.ErrRender,
		"{{ event.txt }}":                          template.ErrRender,
		"{{ memory.name | shout }}":                template.ErrRender,
		"{{ 1 | divided_by: 0 | shout }}":          template.ErrRender,
		"{% if memory.x %}unclosed":                template.ErrInvalid,
		"{% cycle 'a', 'b' %}":                     template.ErrInvalid,
		"{% include 'configs/gateway.yaml' %}":     template.ErrInvalid,
		"{% render 'x' %}":                         template.ErrInvalid,
		"{% for i in (1..100000) %}{% endfor %}":   template.ErrInvalid,
		"{% for i in (1..memory.n) %}{% endfor %}": template.ErrInvalid,
		strings.Repeat("x", 40<<10):                template.ErrInvalid,
		"{% for i in (1..1000) %}{% for j in (1..1000) %}xxxxxxxxxx{% endfor %}{% endfor %}": template.ErrOutputLimit,
	}
	for src, want := range bad {
		err := e.Validate(src)
		if !errors.Is(err, want) {
			t.Errorf("Validate(%.60q) = %v, want %v", src, err, want)
		}
	}
}

func TestRenderLimits(t *testing.T) {
	e := template.New(template.Options{MaxOutputBytes: 64})
	tpl, err := e.Parse("{% for i in (1..100) %}0123456789{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(context.Background(), nil); !errors.Is(err, template.ErrOutputLimit) {
		t.Errorf("output cap: %v", err)
	}
	// Text without markup too.
	tpl, _ = e.Parse(strings.Repeat("x", 65))
	if _, err := tpl.Render(context.Background(), nil); !errors.Is(err, template.ErrOutputLimit) {
		t.Errorf("output cap on static text: %v", err)
	}
	// Output from data (not the template) is capped the same way.
	tpl, _ = e.Parse("{{ memory.big }}")
	v := &template.Vars{Memory: map[string]any{"big": strings.Repeat("x", 65)}}
	if _, err := tpl.Render(context.Background(), v); !errors.Is(err, template.ErrOutputLimit) {
		t.Errorf("output cap on data: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tpl, _ = e.Parse("{{ memory.x }}x")
	if _, err := tpl.Render(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	slow := template.New(template.Options{MaxRenderTime: time.Nanosecond})
	tpl, _ = slow.Parse("{% for i in (1..100) %}{{ i }}{% endfor %}")
	if _, err := tpl.Render(context.Background(), nil); !errors.Is(err, template.ErrRenderTime) {
		t.Errorf("render time cap: %v", err)
	}
	tpl, _ = e.Parse("{{ 'a' | nosuchfilter }}")
	if _, err := tpl.Render(context.Background(), nil); !errors.Is(err, template.ErrRender) {
		t.Errorf("unknown filter at render: %v", err)
	}
}

func TestParseCaches(t *testing.T) {
	e := template.New(template.Options{CacheSize: 2})
	a, _ := e.Parse("{{ memory.a }}")
	b, _ := e.Parse("{{ memory.a }}")
	if a != b {
		t.Error("same source parsed twice")
	}
	e.Parse("{{ memory.b }}")
	e.Parse("{{ memory.c }}") // evicts
	c, _ := e.Parse("{{ memory.a }}")
	if c == a {
		t.Error("cache exceeded its size")
	}
}

// TestConcurrentRender renders one template from many goroutines with
// different data; run under -race it also guards against liquid tags with
// shared state (cycle is unregistered for that reason).
func TestConcurrentRender(t *testing.T) {
	e := template.New(template.Options{})
	src := `{% assign n = memory.n | plus: 0 %}{% capture c %}{{ memory.name }}{% endcapture %}` +
		`{% for i in (1..3) %}{{ c }}{{ forloop.index }}{% endfor %}-{{ n }}`
	tpl, err := e.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				name := fmt.Sprintf("p%d_%d", g, i)
				out, err := tpl.Render(context.Background(), &template.Vars{Memory: map[string]any{"name": name, "n": i}})
				want := fmt.Sprintf("%[1]s1%[1]s2%[1]s3-%d", name, i)
				if err != nil || out != want {
					errs <- fmt.Errorf("got %q, %v; want %q", out, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkRender is the broadcast hot path: one parsed template, a new
// person each time.
func BenchmarkRender(b *testing.B) {
	e := template.New(template.Options{})
	tpl, err := e.Parse("Hi {{ customer.first_name | default: 'there' }}, your code is {{ trigger.code }}.")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	vars := make([]template.Vars, 1024)
	for i := range vars {
		vars[i] = template.Vars{
			Customer: map[string]any{"first_name": fmt.Sprintf("P%d", i)},
			Trigger:  map[string]any{"code": "C0DE"},
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := tpl.Render(ctx, &vars[i%len(vars)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkRenderStatic(b *testing.B) {
	e := template.New(template.Options{})
	tpl, _ := e.Parse("Hello, thanks for writing!")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Render(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
}
