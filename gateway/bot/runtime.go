package bot

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// What the conversation engine uses of a compiled bot.

// Flow returns the flow whose id or name is idOrName, compared
// case-insensitively (CSML behaviour), or nil.
func (b *Bot) Flow(idOrName string) *Flow {
	return b.flows[strings.ToLower(strings.TrimSpace(idOrName))]
}

// Default returns the default flow.
func (b *Bot) Default() *Flow { return b.defaultFlow }

// Target returns the step t names, seen from step from (a target without a
// flow is in from's flow). It resolves targets that arrive at run time, such
// as a call step's answer.
func (b *Bot) Target(from *Step, t Target) (*Step, error) {
	return b.target(from.flow, t)
}

// Step returns the step with that id (or generated "#n" key),
// case-insensitively, or nil.
func (f *Flow) Step(id string) *Step { return f.steps[strings.ToLower(id)] }

// First returns the entry step of the flow.
func (f *Flow) First() *Step { return f.Steps[0] }

// Kind says what the step does.
func (s *Step) Kind() Kind { return s.kind }

// Key is the step's id, or its generated position ("#2", "#3.then.1") when
// it has none. Conversations record the key of the step they wait at.
func (s *Step) Key() string { return s.key }

// Flow returns the flow the step belongs to.
func (s *Step) Flow() *Flow { return s.flow }

// Next returns the step that follows, or nil when the flow ends here. The
// last step of a then/else block is followed by the step after the if.
func (s *Step) Next() *Step { return s.next }

// Branch returns where an if step continues: the first step of its then
// (ok) or else block, its goto target, or Next when there is no else.
func (s *Step) Branch(ok bool) *Step {
	b := s.Else
	if ok {
		b = s.Then
	}
	switch {
	case b == nil:
		return s.next
	case b.Goto != nil:
		return b.Goto.to
	default:
		return b.Steps[0]
	}
}

// To returns the step a compiled target points at.
func (t *Target) To() *Step { return t.to }

// CallTimeout is the timeout of a call step: its own, the bot's, or the
// default.
func (s *Step) CallTimeout() time.Duration {
	for _, d := range []Duration{s.Call.Timeout, s.flow.bot.Call.Timeout} {
		if d > 0 {
			return d.D()
		}
	}
	return DefaultCallTimeout
}

// Render renders the message. ok is false when it renders to a blank text
// message, which is not sent.
func (s *Say) Render(ctx context.Context, v *template.Vars) (c message.Content, ok bool, err error) {
	return s.tpl.render(ctx, v)
}

// RenderPrompt renders what the ask sends before waiting. ok is false when it
// sends nothing.
func (a *Ask) RenderPrompt(ctx context.Context, v *template.Vars) (c message.Content, ok bool, err error) {
	if a.prompt == nil {
		return message.Content{}, false, nil
	}
	return a.prompt.render(ctx, v)
}

// RenderRetry renders the message sent before asking again; ok is false
// when it renders blank.
func (a *Ask) RenderRetry(ctx context.Context, v *template.Vars) (c message.Content, ok bool, err error) {
	return a.retry.render(ctx, v)
}

// MaxAttempts is how many times the question may be asked again after the
// first answer was refused.
func (a *Ask) MaxAttempts() int {
	if a.MaxRetries == 0 {
		return DefaultMaxRetries
	}
	return a.MaxRetries
}

// Accept checks an answer, given as the user's text and, for a button click,
// the payload. It returns the value to store, or ok false when the answer
// must be asked again.
func (a *Ask) Accept(text, payload string) (value any, ok bool) {
	text = strings.TrimSpace(text)
	switch {
	case len(a.Choices) > 0:
		c, ok := a.match(text, payload)
		if !ok {
			return nil, false
		}
		if c.Payload != "" {
			return c.Payload, true
		}
		return c.Title, true
	case a.Type == "number":
		n, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, false
		}
		return n, true
	case text != "":
		return text, true
	case payload != "":
		return payload, true
	}
	return nil, false
}

// match finds the chosen choice: by payload, by number, or by title or
// payload typed out, case-insensitively.
func (a *Ask) match(text, payload string) (Button, bool) {
	for _, want := range []string{payload, text} {
		if want == "" {
			continue
		}
		for _, c := range a.Choices {
			if strings.EqualFold(want, c.Payload) || strings.EqualFold(want, c.Title) {
				return c, true
			}
		}
	}
	if n, err := strconv.Atoi(text); err == nil && n >= 1 && n <= len(a.Choices) {
		return a.Choices[n-1], true
	}
	return Button{}, false
}

// SetValues evaluates a set step: string values are rendered, the others
// taken as written. A nil value deletes the variable.
func (s *Step) SetValues(ctx context.Context, v *template.Vars) (map[string]any, error) {
	out := make(map[string]any, len(s.set))
	for _, sv := range s.set {
		if sv.tpl == nil {
			out[sv.name] = sv.value
			continue
		}
		r, err := sv.tpl.Render(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", sv.name, err)
		}
		out[sv.name] = r
	}
	return out, nil
}

// Eval evaluates the condition.
func (c *Condition) Eval(ctx context.Context, v *template.Vars) (bool, error) {
	switch {
	case len(c.All) > 0:
		for _, sub := range c.All {
			if ok, err := sub.Eval(ctx, v); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case len(c.Any) > 0:
		for _, sub := range c.Any {
			if ok, err := sub.Eval(ctx, v); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case c.Not != nil:
		ok, err := c.Not.Eval(ctx, v)
		return !ok, err
	}
	left, err := c.value.Render(ctx, v)
	if err != nil {
		return false, fmt.Errorf("if value: %w", err)
	}
	left = strings.TrimSpace(left)
	if c.op == "empty" {
		return (left == "") == *c.Empty, nil
	}
	right, err := c.operand.Render(ctx, v)
	if err != nil {
		return false, fmt.Errorf("if %s: %w", c.op, err)
	}
	return compare(c.op, left, strings.TrimSpace(right)), nil
}

// compare applies op numerically when both sides are numbers, otherwise to
// the lower-cased strings.
func compare(op, a, b string) bool {
	if op == "contains" {
		return strings.Contains(strings.ToLower(a), strings.ToLower(b))
	}
	var cmp int
	x, errX := strconv.ParseFloat(a, 64)
	y, errY := strconv.ParseFloat(b, 64)
	if errX == nil && errY == nil {
		switch {
		case x < y:
			cmp = -1
		case x > y:
			cmp = 1
		}
	} else {
		cmp = strings.Compare(strings.ToLower(a), strings.ToLower(b))
	}
	switch op {
	case "eq":
		return cmp == 0
	case "ne":
		return cmp != 0
	case "lt":
		return cmp < 0
	case "lte":
		return cmp <= 0
	case "gt":
		return cmp > 0
	default: // gte
		return cmp >= 0
	}
}

// RenderError renders the message sent when a call fails and the step has
// no on_error; ok is false when it renders blank.
func (c *Call) RenderError(ctx context.Context, v *template.Vars) (m message.Content, ok bool, err error) {
	return c.errorMessage.render(ctx, v)
}
