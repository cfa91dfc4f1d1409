package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

func mustParse(t *testing.T, src string) *bot.Bot {
	t.Helper()
	b, err := bot.Parse([]byte(src), bot.Options{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return b
}

// problems parses src, expecting a *ValidationError, and returns its lines.
func problems(t *testing.T, src string) []string {
	t.Helper()
	_, err := bot.Parse([]byte(src), bot.Options{})
	var ve *bot.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, bot.ErrInvalid) {
		t.Fatalf("Parse error = %v, want a *ValidationError", err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.String())
	}
	return out
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.Contains(g, w) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no problem contains %q; problems:\n  %s", w, strings.Join(got, "\n  "))
		}
	}
}

func TestDemoBotValidates(t *testing.T) {
	data, err := os.ReadFile("testdata/demo-bot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bot.Parse(data, bot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"welcome", "ASK NAME", "Reminder"} {
		if b.Flow(f) == nil {
			t.Errorf("flow %q not found", f)
		}
	}
}

func TestValidationReportsEverything(t *testing.T) {
	got := problems(t, `
name: shop
default_flow: missing
flows:
  - id: main
    steps:
      - id: a
        say: hi
      - id: a
        say: again
      - goto: nowhere
      - goto: {flow: other}
      - say: "{{ memory.x | nosuch }}"
      - say: "{% if x %}"
      - say: {text: q, buttons: [{title: ""}]}
      - say: {image: "https://x/i.png", card: {title: t}}
      - ask: {var: "1bad"}
      - set: {ok: 1, "bad-name": 2}
      - if: {value: "{{ memory.a }}"}
        then: a
      - if: {value: "{{ memory.a }}", eq: x}
      - say: hi
        then: a
      - call: http://example.com/hook
      - say: "`+strings.Repeat("x", message.MaxTextBytes+1)+`"
  - id: Main2
    name: MAIN
    steps: []
`)
	wantProblems(t, got,
		`bot "shop": default_flow "missing" is not a flow`,
		`bot "shop": flow "main": step "a": line 9: duplicate step id (first at line 7)`,
		`flow "main": step "#3": line 11: goto: no step "nowhere" in flow "main"`,
		`step "#4": line 12: goto: no flow "other"`,
		`step "#5": line 13: say: text: template render failed: Liquid error: undefined filter "nosuch"`,
		`step "#6": line 14: say: text: invalid template`,
		`step "#7": line 15: say: invalid message: button 0 has no title`,
		`step "#8": line 16: say: a message is one of`,
		`step "#9": line 17: ask: var "1bad"`,
		`step "#10": line 18: set: variable "bad-name"`,
		`step "#11": line 19: if: give exactly one operator`,
		`step "#12": line 21: if: then is required`,
		`step "#13": line 22: then/else belong to an if step`,
		`step "#14": line 24: call: url: netguard: destination not allowed: http://example.com/hook: only https is allowed`,
		`step "#14": line 24: call: the bot has no call.secret`,
		`step "#15": line 25: say: invalid message: text is`,
		`flow "Main2": line 26: id or name "MAIN" is already used by flow "main"`,
		`flow "Main2": line 26: the flow has no steps`,
	)
}

func TestYAMLStructuralErrors(t *testing.T) {
	got := problems(t, `
name: x
default_flow: main
colour: blue
flows:
  - id: main
    steps:
      - sayy: hi
      - say: {txt: hi}
      - ask: {var: a, prompt: {text: q}, choices: [{title: t, colour: red}]}
      - if: {value: "1", eq: 1}
        then: {flow: main, stp: x}
      - say: {typing: 1500}
`)
	wantProblems(t, got,
		`line 4: unknown field "colour" in bot`,
		`line 8: unknown field "sayy" in step (kinds: say, ask, set, if, goto, call, end)`,
		`line 9: unknown field "txt" in say`,
		`line 10: unknown field "colour" in button`,
		`line 12: unknown field "stp" in goto target`,
		`line 13: expected a duration`,
	)
	if got := problems(t, "name: [unclosed"); len(got) != 1 {
		t.Errorf("syntax error: %v", got)
	}
}

const sample = `
name: sample
default_flow: Start
conversation_ttl: 2h
call: {secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", timeout: 3s}
flows:
  - id: start
    name: Start
    steps:
      - say: "Hello {{ memory.name | default: 'you' }}"
      - say: {text: "Pick", buttons: [{title: A, payload: a}, {title: Docs, url: "https://d"}]}
      - say: {quick_replies: [Yes, No]}
      - say: {image: "https://x/{{ metadata.img }}.png", text: caption}
      - say: {file: {url: "https://x/f.pdf", name: f.pdf, mime_type: application/pdf}}
      - say: {carousel: [{title: one}, {title: "{{ memory.name }}", buttons: ["{{ memory.name | default: 'a default title that is rather long' | truncate: 70 }}"]}]}
      - say: {typing: 1.5s}
      - id: q
        ask: {var: color, choices: [{title: Red, payload: r}, Blue], prompt: "Which?"}
      - id: n
        ask: {var: age, type: number, prompt: {text: "Age?"}, max_retries: 1, on_fail: {flow: other}}
      - set: {greeting: "hi {{ memory.name }}", count: 3, flag: true, gone: null}
      - id: check
        if: {all: [{value: "{{ memory.age }}", gte: 18}, {not: {value: "{{ memory.name }}", empty: true}}]}
        then:
          - say: adult
          - id: inner
            ask: {var: more}
        else: other_step
      - id: other_step
        call: {url: "https://example.com/hook", on_error: {flow: other, step: oops}}
      - end
  - id: other
    steps:
      - id: oops
        say: oops
`

func TestStructureAndNavigation(t *testing.T) {
	b := mustParse(t, sample)
	if b.Default() != b.Flow("START") || b.Flow("start") == nil || b.Flow("nope") != nil {
		t.Fatal("flow lookup by id/name is not case-insensitive")
	}
	f := b.Flow("start")
	check := f.Step("CHECK")
	if check.Kind() != bot.KindIf {
		t.Fatalf("check kind %q", check.Kind())
	}
	then := check.Branch(true)
	if then.Key() != "check.then.1" || then.Next().Key() != "inner" || then.Next().Next() != f.Step("other_step") {
		t.Errorf("then block: %q → %q → %v", then.Key(), then.Next().Key(), then.Next().Next())
	}
	if check.Branch(false) != f.Step("other_step") {
		t.Error("else goto not resolved")
	}
	if f.Step("n").Ask.OnFail.To() != b.Flow("other").First() {
		t.Error("on_fail not resolved")
	}
	call := f.Step("other_step")
	if call.Call.OnError.To() != b.Flow("other").Step("oops") || call.CallTimeout() != 3*time.Second {
		t.Error("call step not compiled")
	}
	if s, err := b.Target(call, bot.Target{Step: "q"}); err != nil || s != f.Step("q") {
		t.Errorf("Target: %v %v", s, err)
	}
	if _, err := b.Target(call, bot.Target{Flow: "zzz"}); err == nil {
		t.Error("Target to a missing flow succeeded")
	}
	if f.Step("#1").Kind() != bot.KindSay || f.Steps[len(f.Steps)-1].Kind() != bot.KindEnd {
		t.Error("generated keys or bare end")
	}
}

func TestRenderContent(t *testing.T) {
	b := mustParse(t, sample)
	f := b.Flow("start")
	ctx := context.Background()
	v := &template.Vars{Memory: map[string]any{"name": "Ada"}, Metadata: map[string]any{"img": "cat"}}
	want := []message.Content{
		{Type: message.TypeText, Text: "Hello Ada"},
		{Type: message.TypeButtons, Text: "Pick", Buttons: []message.Button{{Title: "A", Payload: "a"}, {Title: "Docs", URL: "https://d"}}},
		{Type: message.TypeButtons, QuickReplies: true, Buttons: []message.Button{{Title: "Yes"}, {Title: "No"}}},
		{Type: message.TypeImage, Text: "caption", Media: &message.Media{URL: "https://x/cat.png"}},
		{Type: message.TypeFile, Media: &message.Media{URL: "https://x/f.pdf", Name: "f.pdf", MimeType: "application/pdf"}},
		{Type: message.TypeCarousel, Cards: []message.Card{{Title: "one"}, {Title: "Ada", Buttons: []message.Button{{Title: "Ada"}}}}},
		{Type: message.TypeTyping, DurationMS: 1500},
	}
	for i, w := range want {
		got, ok, err := f.Steps[i].Say.Render(ctx, v)
		if err != nil || !ok {
			t.Fatalf("step %d: %v %v", i+1, ok, err)
		}
		if g, w := jsonString(got), jsonString(w); g != w {
			t.Errorf("step %d:\n got %s\nwant %s", i+1, g, w)
		}
	}
	// The compiled source is not modified by rendering.
	again, _, _ := f.Steps[5].Say.Render(ctx, &template.Vars{Memory: map[string]any{"name": "Bob"}})
	if again.Cards[1].Title != "Bob" {
		t.Errorf("second render: %+v", again)
	}
	prompt, ok, err := f.Step("q").Ask.RenderPrompt(ctx, v)
	if err != nil || !ok || prompt.Type != message.TypeButtons || !prompt.QuickReplies || len(prompt.Buttons) != 2 || prompt.Text != "Which?" {
		t.Errorf("prompt with choices: %+v %v %v", prompt, ok, err)
	}
	if _, ok, _ := f.Step("inner").Ask.RenderPrompt(ctx, v); ok {
		t.Error("ask without prompt sent something")
	}
	retry, ok, _ := f.Step("q").Ask.RenderRetry(ctx, v)
	if !ok || retry.Text != bot.DefaultRetry {
		t.Errorf("retry: %+v", retry)
	}
	blank := mustParse(t, `{name: b, default_flow: m, flows: [{id: m, steps: [{say: "{% if memory.vip %}VIP{% endif %}"}]}]}`)
	if _, ok, err := blank.Flow("m").First().Say.Render(ctx, nil); ok || err != nil {
		t.Errorf("blank text: ok=%v err=%v", ok, err)
	}
}

func TestAskAccept(t *testing.T) {
	b := mustParse(t, sample)
	choice := b.Flow("start").Step("q").Ask
	for _, c := range []struct {
		text, payload string
		want          any
	}{
		{"", "r", "r"}, {"red", "", "r"}, {" RED ", "", "r"}, {"R", "", "r"}, {"1", "", "r"},
		{"2", "", "Blue"}, {"blue", "", "Blue"}, {"3", "", nil}, {"green", "", nil}, {"", "", nil},
	} {
		got, ok := choice.Accept(c.text, c.payload)
		if (c.want == nil) == ok || (ok && got != c.want) {
			t.Errorf("Accept(%q, %q) = %v, %v; want %v", c.text, c.payload, got, ok, c.want)
		}
	}
	number := b.Flow("start").Step("n").Ask
	if v, ok := number.Accept(" 42 ", ""); !ok || v != 42.0 {
		t.Errorf("number: %v %v", v, ok)
	}
	if _, ok := number.Accept("forty", ""); ok {
		t.Error("number accepted text")
	}
	if number.MaxAttempts() != 1 || choice.MaxAttempts() != bot.DefaultMaxRetries {
		t.Error("MaxAttempts")
	}
	text := b.Flow("start").Step("inner").Ask
	if v, ok := text.Accept("  hello ", ""); !ok || v != "hello" {
		t.Errorf("text: %v %v", v, ok)
	}
}

func TestSetAndConditions(t *testing.T) {
	b := mustParse(t, sample)
	f := b.Flow("start")
	ctx := context.Background()
	vals, err := f.Step("#10").SetValues(ctx, &template.Vars{Memory: map[string]any{"name": "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(vals) != "map[count:3 flag:true gone:<nil> greeting:hi Ada]" {
		t.Errorf("set: %v", vals)
	}
	check := f.Step("check").If
	for _, c := range []struct {
		mem  map[string]any
		want bool
	}{
		{map[string]any{"age": "18", "name": "a"}, true},
		{map[string]any{"age": 17.0, "name": "a"}, false},
		{map[string]any{"age": "30", "name": " "}, false},
		{map[string]any{"age": "9", "name": "a"}, false}, // numeric, not "9" >= "18" as strings
	} {
		got, err := check.Eval(ctx, &template.Vars{Memory: c.mem})
		if err != nil || got != c.want {
			t.Errorf("Eval(%v) = %v, %v; want %v", c.mem, got, err, c.want)
		}
	}
	ops := mustParse(t, `
name: ops
default_flow: m
flows:
  - id: m
    steps:
      - {id: eq, if: {value: "{{ event.text }}", eq: "YES"}, then: {flow: m}}
      - {id: ne, if: {value: "{{ event.text }}", ne: "yes"}, then: {flow: m}}
      - {id: lt, if: {value: "{{ event.text }}", lt: "10"}, then: {flow: m}}
      - {id: contains, if: {value: "{{ event.text }}", contains: "E"}, then: {flow: m}}
      - {id: any, if: {any: [{value: "a", eq: b}, {value: "{{ metadata.plan }}", eq: pro}]}, then: {flow: m}}
`)
	for _, c := range []struct {
		step, text string
		want       bool
	}{
		{"eq", "yes", true}, {"eq", "no", false}, {"ne", "Yes", false}, {"lt", "9.5", true},
		{"lt", "10", false}, {"contains", "hello", true}, {"contains", "abc", false}, {"any", "", true},
	} {
		v := &template.Vars{Event: map[string]any{"text": c.text}, Metadata: map[string]any{"plan": "pro"}}
		got, err := ops.Flow("m").Step(c.step).If.Eval(ctx, v)
		if err != nil || got != c.want {
			t.Errorf("%s(%q) = %v, %v; want %v", c.step, c.text, got, err, c.want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	b := mustParse(t, sample)
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := bot.FromJSON(data, bot.Options{})
	if err != nil {
		t.Fatalf("FromJSON: %v\n%s", err, data)
	}
	data2, _ := json.Marshal(b2)
	if string(data) != string(data2) {
		t.Errorf("round trip differs:\n%s\n%s", data, data2)
	}
	if b2.ConversationTTL.D() != 2*time.Hour || b2.Flow("start").Step("check").Branch(false).Key() != "other_step" {
		t.Error("round trip lost data")
	}
	if _, err := bot.FromJSON([]byte(`{"name":"x","bogus":1}`), bot.Options{}); !errors.Is(err, bot.ErrInvalid) {
		t.Errorf("unknown JSON field: %v", err)
	}
}

func TestTooManySteps(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("{name: big, default_flow: m, flows: [{id: m, steps: [")
	for range 6 {
		sb.WriteString("{say: hi},")
	}
	sb.WriteString("]}]}")
	_, err := bot.Parse([]byte(sb.String()), bot.Options{MaxSteps: 5})
	if err == nil || !strings.Contains(err.Error(), `flow "m": line 1: 6 steps, the limit is 5`) {
		t.Errorf("step limit: %v", err)
	}
}

type loader struct {
	calls int
	def   []byte
}

func (l *loader) GetBot(_ context.Context, id string) (store.Bot, error) {
	l.calls++
	if l.def == nil || id != "b" {
		return store.Bot{}, store.ErrNotFound
	}
	return store.Bot{ID: id, Definition: l.def}, nil
}

func TestCache(t *testing.T) {
	def, _ := json.Marshal(mustParse(t, sample))
	l := &loader{def: def}
	now := time.Unix(0, 0)
	c := bot.NewCache(l, bot.CacheOptions{MaxAge: time.Minute, Now: func() time.Time { return now }})
	ctx := context.Background()
	b1, err := c.Bot(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := c.Bot(ctx, "b")
	if b1 != b2 || l.calls != 1 {
		t.Errorf("not cached: %d loads", l.calls)
	}
	c.Invalidate("b")
	c.Bot(ctx, "b")
	now = now.Add(2 * time.Minute)
	c.Bot(ctx, "b")
	if l.calls != 3 {
		t.Errorf("invalidate/max age: %d loads, want 3", l.calls)
	}
	if _, err := c.Bot(ctx, "missing"); err == nil {
		t.Error("missing bot")
	}
	l.def = nil
	c.Invalidate("b")
	if _, err := c.Bot(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("loader error not wrapped: %v", err)
	}
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// doublingBot says a string doubled 40 times (a terabyte) by a loop that
// writes nothing.
const doublingBot = `
name: doubling
default_flow: m
flows:
  - id: m
    steps:
      - say: '{% assign s = "x" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s }}'
`

// TestTemplateLimitsAtCompile: a template that exceeds a limit of the
// template engine without any data is refused when the bot is applied,
// quickly and with the limit named, instead of running out of memory.
func TestTemplateLimitsAtCompile(t *testing.T) {
	wantProblems(t, problems(t, doublingBot), "template limit exceeded: value size: append: 131072 bytes, the limit is 65536")
}
