package bot

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every *ValidationError.
var ErrInvalid = errors.New("invalid bot")

// Problem is one thing wrong with a bot document.
type Problem struct {
	Bot  string // bot name; "" when the document did not decode
	Flow string // flow id; "" for bot-level problems
	Step string // step id, or its generated "#n" path; "" for flow-level problems
	Line int    // YAML line when known, else 0
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Bot != "" {
		fmt.Fprintf(&b, "bot %q: ", p.Bot)
	}
	if p.Flow != "" {
		fmt.Fprintf(&b, "flow %q: ", p.Flow)
	}
	if p.Step != "" {
		fmt.Fprintf(&b, "step %q: ", p.Step)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a bot document.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "invalid bot: " + lines[0]
	}
	return fmt.Sprintf("invalid bot (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// problems collects Problems with the bot, flow and step in scope.
type problems struct {
	list []Problem
	bot  string
}

func (ps *problems) add(f *Flow, s *Step, format string, a ...any) {
	p := Problem{Bot: ps.bot, Msg: fmt.Sprintf(format, a...)}
	if f != nil {
		p.Flow, p.Line = f.ID, f.line
	}
	if s != nil {
		p.Step, p.Line = s.key, s.line
	}
	ps.list = append(ps.list, p)
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	// Document order: bot-level problems (no line) first, then by line.
	slices.SortStableFunc(ps.list, func(a, b Problem) int { return a.Line - b.Line })
	return &ValidationError{Problems: ps.list}
}
