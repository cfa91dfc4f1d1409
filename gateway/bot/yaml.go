package bot

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Every type of the document decodes itself from its YAML node through
// decodeStrict, so unknown fields are refused at any depth even when a Bot is
// embedded in a larger document decoded without KnownFields, and every error
// carries its line. Errors are returned as *yaml.TypeError, which the decoder
// collects before carrying on: one pass reports every structural problem.

func typeErr(n *yaml.Node, format string, a ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, a...)}}
}

// decodeStrict decodes mapping node n into v (a pointer to a struct),
// refusing keys that are not among v's yaml field names. what names the
// object in messages.
func decodeStrict(n *yaml.Node, v any, what string) error {
	if n.Kind != yaml.MappingNode {
		return typeErr(n, "%s must be a mapping", what)
	}
	allowed := yamlFields(reflect.TypeOf(v).Elem())
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			errs = append(errs, fmt.Sprintf("line %d: unknown field %q in %s (known: %s)", k.Line, k.Value, what, strings.Join(allowed, ", ")))
		}
	}
	if err := n.Decode(v); err != nil {
		te, ok := err.(*yaml.TypeError)
		if !ok {
			return err
		}
		errs = append(errs, te.Errors...)
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

func yamlFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// UnmarshalYAML decodes a bot strictly.
func (b *Bot) UnmarshalYAML(n *yaml.Node) error {
	type fields Bot
	return decodeStrict(n, (*fields)(b), "bot")
}

// UnmarshalYAML decodes call settings strictly.
func (c *CallSettings) UnmarshalYAML(n *yaml.Node) error {
	type fields CallSettings
	return decodeStrict(n, (*fields)(c), "call settings")
}

// UnmarshalYAML decodes a flow strictly.
func (f *Flow) UnmarshalYAML(n *yaml.Node) error {
	type fields Flow
	err := decodeStrict(n, (*fields)(f), "flow")
	f.line = n.Line
	return err
}

// UnmarshalYAML decodes a step: a mapping with one kind key, or the bare
// word "end".
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	defer func() { s.line = n.Line }()
	if n.Kind == yaml.ScalarNode && n.Value == "end" {
		s.End = true
		return nil
	}
	type fields Step
	return decodeStrict(n, (*fields)(s), "step (kinds: say, ask, set, if, goto, call, end)")
}

// UnmarshalYAML decodes a message: a string is a text message.
func (s *Say) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.Text = n.Value
		return nil
	}
	type fields Say
	return decodeStrict(n, (*fields)(s), "say")
}

// UnmarshalYAML decodes a button: a string is a button with that title.
func (b *Button) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Title = n.Value
		return nil
	}
	type fields Button
	return decodeStrict(n, (*fields)(b), "button")
}

// UnmarshalYAML decodes media: a string is its URL.
func (m *Media) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m.URL = n.Value
		return nil
	}
	type fields Media
	return decodeStrict(n, (*fields)(m), "media")
}

// UnmarshalYAML decodes a card strictly.
func (c *Card) UnmarshalYAML(n *yaml.Node) error {
	type fields Card
	return decodeStrict(n, (*fields)(c), "card")
}

// UnmarshalYAML decodes an ask strictly.
func (a *Ask) UnmarshalYAML(n *yaml.Node) error {
	type fields Ask
	return decodeStrict(n, (*fields)(a), "ask")
}

// UnmarshalYAML decodes a condition strictly.
func (c *Condition) UnmarshalYAML(n *yaml.Node) error {
	type fields Condition
	return decodeStrict(n, (*fields)(c), "if")
}

// UnmarshalYAML decodes a call: a string is its URL.
func (c *Call) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		c.URL = n.Value
		return nil
	}
	type fields Call
	return decodeStrict(n, (*fields)(c), "call")
}

// UnmarshalYAML decodes a target: a string is a step of the current flow.
func (t *Target) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.Step = n.Value
		return nil
	}
	type fields Target
	return decodeStrict(n, (*fields)(t), "goto target")
}

// UnmarshalYAML decodes a branch: a target, or a list of steps.
func (b *Branch) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		return n.Decode(&b.Steps)
	}
	b.Goto = new(Target)
	return b.Goto.UnmarshalYAML(n)
}

// UnmarshalYAML reads a string such as "1.5s" or "24h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) (err error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return typeErr(n, "expected a duration such as \"1.5s\" or \"24h\", got %q", n.Value)
	}
	if *d, err = parseDuration(n.Value); err != nil {
		return typeErr(n, "%v", err)
	}
	return nil
}

// CompileNode is apply's bot compiler (apply.BotCompiler): it decodes a
// bot document strictly (keeping the file's line numbers in errors),
// validates and compiles it, and returns its name and the definition to
// store as JSON.
func CompileNode(node *yaml.Node) (string, json.RawMessage, error) {
	var b Bot
	if err := node.Decode(&b); err != nil {
		return "", nil, err
	}
	if err := b.Compile(Options{}); err != nil {
		return "", nil, err
	}
	def, err := json.Marshal(&b)
	if err != nil {
		return "", nil, fmt.Errorf("encode bot %s: %w", b.Name, err)
	}
	return b.Name, def, nil
}
