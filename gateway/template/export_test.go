package template

import (
	"bytes"
	"context"
	"time"
)

// SetClock replaces the clock renders of e read.
func SetClock(e *Engine, now func() time.Time) { e.now = now }

// Usage is what one render used of its budget.
type Usage struct{ Iterations, Held, Output int }

// RenderUsage renders t with v as Render does, and reports the budget used.
func RenderUsage(t *Template, v *Vars) (string, Usage, error) {
	if t.static {
		out, err := t.Render(context.Background(), v)
		return out, Usage{Output: len(out)}, err
	}
	var buf bytes.Buffer
	u, err := t.frender(context.Background(), &buf, v.bindings())
	return buf.String(), Usage{u.iterations, u.held, u.output}, err
}

// ErrPanic marks a recovered panic of liquid.
var ErrPanic = errPanic
