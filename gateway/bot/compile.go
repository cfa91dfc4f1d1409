package bot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	yaml "go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Limits and defaults of a bot document.
const (
	DefaultMaxFlows    = 100
	DefaultMaxSteps    = 200 // per flow, nested steps included
	DefaultCallTimeout = 5 * time.Second
	MaxCallTimeout     = 30 * time.Second
	DefaultMaxRetries  = 2
	DefaultRetry       = "Sorry, I didn't get that."
	DefaultCallError   = "Sorry, something went wrong."
)

// Options of Parse, FromJSON and Compile. Zero fields take the defaults.
type Options struct {
	// Templates parses the bot's Liquid; a shared default when nil.
	Templates *template.Engine
	MaxFlows  int
	MaxSteps  int
}

var defaultTemplates = sync.OnceValue(func() *template.Engine { return template.New(template.Options{}) })

func (o *Options) defaults() {
	if o.Templates == nil {
		o.Templates = defaultTemplates()
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = DefaultMaxFlows
	}
	if o.MaxSteps <= 0 {
		o.MaxSteps = DefaultMaxSteps
	}
}

// Parse decodes one bot document from YAML and compiles it. Every problem,
// structural or semantic, is reported in one *ValidationError.
func Parse(data []byte, o Options) (*Bot, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, decodeError(err)
	}
	if len(n.Content) == 0 {
		return nil, &ValidationError{Problems: []Problem{{Msg: "empty document"}}}
	}
	return ParseNode(n.Content[0], o)
}

// ParseNode is Parse for a bot that is part of a larger YAML document, such
// as the operator's apply resources; lines are those of that document.
func ParseNode(n *yaml.Node, o Options) (*Bot, error) {
	var b Bot
	if err := n.Decode(&b); err != nil {
		return nil, decodeError(err)
	}
	if err := b.Compile(o); err != nil {
		return nil, err
	}
	return &b, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeError turns a YAML error into a *ValidationError with one problem
// per message.
func decodeError(err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	ps := make([]Problem, len(msgs))
	for i, m := range msgs {
		ps[i] = Problem{Msg: m}
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			ps[i].Line, _ = strconv.Atoi(sm[1])
			ps[i].Msg = sm[2]
		}
	}
	return &ValidationError{Problems: ps}
}

// FromJSON decodes a bot from its stored form (json.Marshal of a Bot) and
// compiles it.
func FromJSON(data []byte, o Options) (*Bot, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bot
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: stored definition: %w", ErrInvalid, err)
	}
	if err := b.Compile(o); err != nil {
		return nil, err
	}
	return &b, nil
}

var varName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// ValidVarName reports whether s may name a memory variable: a letter
// followed by letters, digits or _ (so names starting with _ stay free for
// the engine's own use).
func ValidVarName(s string) bool { return varName.MatchString(s) }

// Compile validates b and prepares it to run. It reports every problem at
// once as a *ValidationError. A bot must not be used after a failed Compile.
func (b *Bot) Compile(o Options) error {
	o.defaults()
	ps := &problems{bot: b.Name}
	if strings.TrimSpace(b.Name) == "" {
		ps.add(nil, nil, "name is required")
	}
	if b.ConversationTTL < 0 {
		ps.add(nil, nil, "conversation_ttl must not be negative")
	}
	if t := b.Call.Timeout.D(); t < 0 || t > MaxCallTimeout {
		ps.add(nil, nil, "call.timeout must be between 0 and %s", MaxCallTimeout)
	}
	if b.Call.Secret != "" {
		if _, err := standardwebhooks.NewWebhook(b.Call.Secret); err != nil {
			ps.add(nil, nil, "call.secret must be \"whsec_\" followed by base64: %v", err)
		}
	}
	b.compileFlows(ps, o)
	return ps.err()
}

func (b *Bot) compileFlows(ps *problems, o Options) {
	if len(b.Flows) == 0 {
		ps.add(nil, nil, "the bot has no flows")
	}
	if len(b.Flows) > o.MaxFlows {
		ps.add(nil, nil, "%d flows, the limit is %d", len(b.Flows), o.MaxFlows)
	}
	b.flows = map[string]*Flow{}
	for i, f := range b.Flows {
		if f == nil {
			ps.add(nil, nil, "flow %d is empty", i+1)
			b.Flows[i] = &Flow{}
			f = b.Flows[i]
		}
		f.bot = b
		if strings.TrimSpace(f.ID) == "" {
			ps.add(f, nil, "flow %d has no id", i+1)
		}
		for _, name := range []string{f.ID, f.Name} {
			key := strings.ToLower(name)
			if key == "" {
				continue
			}
			// Names and ids share one case-insensitive namespace, since a
			// flow_trigger may use either.
			if other, dup := b.flows[key]; dup && other != f {
				ps.add(f, nil, "id or name %q is already used by flow %q", name, other.ID)
				continue
			}
			b.flows[key] = f
		}
	}
	if b.DefaultFlow == "" {
		ps.add(nil, nil, "default_flow is required")
	} else if b.defaultFlow = b.Flow(b.DefaultFlow); b.defaultFlow == nil {
		ps.add(nil, nil, "default_flow %q is not a flow", b.DefaultFlow)
	}
	// Link every flow first, so that gotos can be resolved across flows.
	for _, f := range b.Flows {
		f.steps = map[string]*Step{}
		f.all = nil
		if len(f.Steps) == 0 {
			ps.add(f, nil, "the flow has no steps")
		}
		f.link(ps, f.Steps, "#", nil)
		if len(f.all) > o.MaxSteps {
			ps.add(f, nil, "%d steps, the limit is %d", len(f.all), o.MaxSteps)
		}
	}
	for _, f := range b.Flows {
		for _, s := range f.all {
			s.compile(ps, o.Templates)
		}
	}
}

// link names the steps of list (generated keys are prefix + position),
// chains them, and makes the last continue at after.
func (f *Flow) link(ps *problems, list []*Step, prefix string, after *Step) {
	for i, s := range list {
		if s == nil {
			s = &Step{}
			list[i] = s
		}
		s.flow = f
		s.key = s.ID
		if s.ID == "" {
			s.key = prefix + strconv.Itoa(i+1)
		} else if strings.HasPrefix(s.ID, "#") {
			ps.add(f, s, "step ids must not start with #")
		}
		if other, dup := f.steps[strings.ToLower(s.key)]; dup {
			ps.add(f, s, "duplicate step id (first at line %d)", other.line)
		} else {
			f.steps[strings.ToLower(s.key)] = s
		}
		f.all = append(f.all, s)
		s.next = after
		if i+1 < len(list) {
			s.next = list[i+1]
		}
		s.kind = s.detectKind(ps)
		for _, br := range []struct {
			name string
			b    *Branch
		}{{"then", s.Then}, {"else", s.Else}} {
			if br.b != nil && len(br.b.Steps) > 0 {
				f.link(ps, br.b.Steps, s.key+"."+br.name+".", s.next)
			}
		}
	}
}

func (s *Step) detectKind(ps *problems) Kind {
	var kinds []Kind
	for _, k := range []struct {
		kind Kind
		set  bool
	}{
		{KindSay, s.Say != nil}, {KindAsk, s.Ask != nil}, {KindSet, s.Set != nil},
		{KindIf, s.If != nil}, {KindGoto, s.Goto != nil}, {KindCall, s.Call != nil}, {KindEnd, s.End},
	} {
		if k.set {
			kinds = append(kinds, k.kind)
		}
	}
	switch len(kinds) {
	case 0:
		ps.add(s.flow, s, "the step does nothing: give it one of say, ask, set, if, goto, call, end")
		return ""
	case 1:
	default:
		ps.add(s.flow, s, "a step does one thing, this one has %v", kinds)
	}
	if kinds[0] != KindIf && (s.Then != nil || s.Else != nil) {
		ps.add(s.flow, s, "then/else belong to an if step")
	}
	return kinds[0]
}

func (s *Step) compile(ps *problems, eng *template.Engine) {
	f := s.flow
	report := func(format string, a ...any) { ps.add(f, s, format, a...) }
	switch s.kind {
	case KindSay:
		s.Say.compile(eng, report)
	case KindAsk:
		s.Ask.compile(eng, f, report)
	case KindSet:
		s.compileSet(eng, report)
	case KindIf:
		s.If.compile(eng, "if", report)
		if s.Then == nil {
			report("if: then is required")
		}
		for _, br := range []struct {
			name string
			b    *Branch
		}{{"then", s.Then}, {"else", s.Else}} {
			if br.b != nil && br.b.Goto != nil {
				f.resolve(br.b.Goto, br.name, report)
			} else if br.b != nil && len(br.b.Steps) == 0 {
				report("%s: empty list of steps", br.name)
			}
		}
	case KindGoto:
		f.resolve(s.Goto, "goto", report)
	case KindCall:
		s.Call.compile(eng, f, report)
	}
}

// resolve points t at its step, reporting a missing flow or step.
func (f *Flow) resolve(t *Target, field string, report func(string, ...any)) {
	to, err := f.bot.target(f, *t)
	if err != nil {
		report("%s: %v", field, err)
		return
	}
	t.to = to
}

// target finds the step t names, from flow f.
func (b *Bot) target(f *Flow, t Target) (*Step, error) {
	if t.Flow == "" && t.Step == "" {
		return nil, errors.New("empty target: give a step, a flow, or both")
	}
	if t.Flow != "" {
		if f = b.Flow(t.Flow); f == nil {
			return nil, fmt.Errorf("no flow %q", t.Flow)
		}
	}
	if t.Step == "" {
		if len(f.Steps) == 0 {
			return nil, fmt.Errorf("flow %q has no steps", f.ID)
		}
		return f.Steps[0], nil
	}
	s := f.Step(t.Step)
	if s == nil {
		return nil, fmt.Errorf("no step %q in flow %q", t.Step, f.ID)
	}
	return s, nil
}

func (s *Say) compile(eng *template.Engine, report func(string, ...any)) {
	if ks := s.kinds(); len(ks) > 1 {
		report("say: a message is one of buttons, quick_replies, image, file, card, carousel, typing; this one has %v", ks)
	}
	s.tpl = compileContent(eng, s.content(), func(format string, a ...any) { report("say: "+format, a...) })
}

func (a *Ask) compile(eng *template.Engine, f *Flow, report func(string, ...any)) {
	r := func(format string, args ...any) { report("ask: "+format, args...) }
	if !varName.MatchString(a.Var) {
		r("var %q must be a letter followed by letters, digits or _", a.Var)
	}
	if a.Type != "" && a.Type != "text" && a.Type != "number" {
		r("type %q is not text or number", a.Type)
	}
	if a.Type == "number" && len(a.Choices) > 0 {
		r("choices and type number do not mix")
	}
	for i, c := range a.Choices {
		if strings.TrimSpace(c.Title) == "" {
			r("choice %d has no title", i+1)
		}
		if c.URL != "" {
			r("choice %d has a url: choices answer, links do not", i+1)
		}
	}
	if a.MaxRetries < 0 {
		r("max_retries must not be negative")
	}
	prompt := a.promptContent()
	if a.Prompt != nil && len(a.Choices) > 0 && len(a.Prompt.kinds()) > 0 {
		r("a prompt with choices must be plain text (the choices become its quick replies)")
	}
	if prompt.Type != "" {
		a.prompt = compileContent(eng, prompt, func(format string, args ...any) { r("prompt: "+format, args...) })
	}
	a.retry = compileContent(eng, message.Text(a.retryText()), func(format string, args ...any) { r("retry: "+format, args...) })
	if a.OnFail != nil {
		f.resolve(a.OnFail, "ask: on_fail", report)
	}
}

// promptContent is what the ask sends: the prompt, with the choices as
// quick replies. Its Type is "" when there is nothing to send.
func (a *Ask) promptContent() message.Content {
	var c message.Content
	if a.Prompt != nil {
		c = a.Prompt.content()
	}
	if len(a.Choices) > 0 && (c.Type == "" || c.Type == message.TypeText) {
		c.Type, c.Buttons, c.QuickReplies = message.TypeButtons, buttons(a.Choices), true
	}
	return c
}

func (a *Ask) retryText() string {
	if a.Retry == "" {
		return DefaultRetry
	}
	return a.Retry
}

// setVar is one compiled variable of a set step.
type setVar struct {
	name  string
	tpl   *template.Template // for string values
	value any                // for the others
}

func (s *Step) compileSet(eng *template.Engine, report func(string, ...any)) {
	if len(s.Set) == 0 {
		report("set: no variables")
	}
	names := make([]string, 0, len(s.Set))
	for name := range s.Set {
		names = append(names, name)
	}
	slices.Sort(names) // a stable order of evaluation and of problems
	for _, name := range names {
		if !varName.MatchString(name) {
			report("set: variable %q must be a letter followed by letters, digits or _", name)
		}
		v := setVar{name: name, value: s.Set[name]}
		if src, ok := v.value.(string); ok {
			t, err := compileTemplate(eng, src)
			if err != nil {
				report("set %s: %v", name, err)
			}
			v.tpl, v.value = t, nil
		} else if _, err := json.Marshal(v.value); err != nil {
			report("set %s: value cannot be stored: %v", name, err)
		}
		s.set = append(s.set, v)
	}
}

var operators = []string{"eq", "ne", "lt", "lte", "gt", "gte", "contains", "empty"}

func (c *Condition) compile(eng *template.Engine, field string, report func(string, ...any)) {
	ops := map[string]*string{"eq": c.Eq, "ne": c.Ne, "lt": c.Lt, "lte": c.Lte, "gt": c.Gt, "gte": c.Gte, "contains": c.Contains}
	var set []string
	for _, op := range operators {
		if ops[op] != nil || (op == "empty" && c.Empty != nil) {
			set = append(set, op)
		}
	}
	groups := 0
	for _, g := range []bool{len(set) > 0 || c.Value != "", len(c.All) > 0, len(c.Any) > 0, c.Not != nil} {
		if g {
			groups++
		}
	}
	switch {
	case groups != 1:
		report("%s: give exactly one of value with an operator (%s), all, any or not", field, strings.Join(operators, ", "))
		return
	case len(c.All) > 0:
		for i, sub := range c.All {
			sub.compile(eng, fmt.Sprintf("%s.all[%d]", field, i), report)
		}
		return
	case len(c.Any) > 0:
		for i, sub := range c.Any {
			sub.compile(eng, fmt.Sprintf("%s.any[%d]", field, i), report)
		}
		return
	case c.Not != nil:
		c.Not.compile(eng, field+".not", report)
		return
	case len(set) != 1:
		report("%s: give exactly one operator (%s) with value, got %v", field, strings.Join(operators, ", "), set)
		return
	}
	c.op = set[0]
	var err error
	if c.value, err = compileTemplate(eng, c.Value); err != nil {
		report("%s.value: %v", field, err)
	}
	if c.op != "empty" {
		if c.operand, err = compileTemplate(eng, *ops[c.op]); err != nil {
			report("%s.%s: %v", field, c.op, err)
		}
	}
}

func (c *Call) compile(eng *template.Engine, f *Flow, report func(string, ...any)) {
	r := func(format string, a ...any) { report("call: "+format, a...) }
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		r("url is required")
	case err != nil:
		r("url: %v", err)
	default:
		// Internal addresses are the engine's policy, checked when
		// dialling; here only what the bot document decides.
		g := netguard.Options{AllowHTTP: f.bot.Call.AllowHTTP, AllowPrivate: true}
		if err := g.CheckURL(u); err != nil {
			r("url: %v (set call.allow_http on the bot for local development)", err)
		}
	}
	if f.bot.Call.Secret == "" {
		r("the bot has no call.secret to sign requests with")
	}
	if t := c.Timeout.D(); t < 0 || t > MaxCallTimeout {
		r("timeout must be between 0 and %s", MaxCallTimeout)
	}
	if c.OnError != nil {
		f.resolve(c.OnError, "call: on_error", report)
	}
	msg := c.ErrorMessage
	if msg == "" {
		msg = DefaultCallError
	}
	c.errorMessage = compileContent(eng, message.Text(msg), func(format string, a ...any) { r("error_message: "+format, a...) })
}
