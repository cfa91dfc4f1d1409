package template

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/osteele/liquid/render"
)

// budget is the state of one render: what it may still spend. Every render
// gets its own (renders of one Template run concurrently), reachable by the
// tags of this package through the bindings under budgetKey, and it is the
// writer the output goes through.
type budget struct {
	ctx      context.Context
	opts     *Options
	now      func() time.Time
	deadline time.Time

	w       io.Writer
	outLeft int
	writes  int
	err     error // the first write failure, see Write

	iterations int            // loop iterations so far, across every loop
	held       int            // bytes held by variables set by assign and capture
	charged    map[string]int // what each of those variables holds, by name
}

// budgetKey names the budget in the bindings. A template cannot name it: a
// variable name has no space, and capture refuses one.
const budgetKey = "switchboard budget"

// budgetOf returns the budget of the render a tag runs in.
func budgetOf(ctx render.Context) (*budget, error) {
	b, ok := ctx.Get(budgetKey).(*budget)
	if !ok {
		return nil, fmt.Errorf("%w: no render budget in scope", ErrRender)
	}
	return b, nil
}

// clockEvery: the clock is read every clockEvery writes only: reading it is
// a noticeable share of a short render, and a loop long enough to matter is
// checked at each iteration anyway.
const clockEvery = 16

// Write refuses output past the limit, and checks time and context every
// clockEvery writes. A refused write reports success and records the error,
// which the render returns at its next check or at its end: tablerow panics
// when a write fails, and the other tags stop at the next loop iteration or
// assign.
func (b *budget) Write(p []byte) (int, error) {
	if b.err != nil {
		return len(p), nil
	}
	if len(p) > b.outLeft {
		b.err = fmt.Errorf("%w: more than %d bytes", ErrOutputLimit, b.opts.MaxOutputBytes)
		return len(p), nil
	}
	b.writes++
	if b.writes%clockEvery == 0 {
		if b.err = b.check(); b.err != nil {
			return len(p), nil
		}
	}
	b.outLeft -= len(p)
	if _, err := b.w.Write(p); err != nil {
		b.err = err
	}
	return len(p), nil
}

// check fails once the render has run out of time, its context is done, or
// a write failed.
func (b *budget) check() error {
	if b.err != nil {
		return b.err
	}
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if b.now().After(b.deadline) {
		return fmt.Errorf("%w: more than %v", ErrRenderTime, b.opts.MaxRenderTime)
	}
	return nil
}

// iterate counts one loop iteration.
func (b *budget) iterate() error {
	b.iterations++
	if b.iterations > b.opts.MaxIterations {
		return fmt.Errorf("%w: more than %d in one render, across all loops", ErrIterations, b.opts.MaxIterations)
	}
	return b.check()
}

// hold records that variable name now holds v (replacing what it held),
// refusing a value or a total over the limits.
func (b *budget) hold(name string, v any) error {
	n, err := b.opts.checkValue("assign", v)
	if err != nil {
		return fmt.Errorf("%w (variable %s)", err, name)
	}
	return b.holdBytes(name, n)
}

func (b *budget) holdBytes(name string, n int) error {
	held := b.held - b.charged[name] + n
	if held > b.opts.MaxVariableBytes {
		return fmt.Errorf("%w: setting %s would hold %d bytes in variables, the limit is %d",
			ErrVariables, name, held, b.opts.MaxVariableBytes)
	}
	if b.charged == nil {
		b.charged = make(map[string]int)
	}
	b.held, b.charged[name] = held, n
	return nil
}

// checkValue refuses a string or array larger than the value limits and
// returns what it costs a variable to hold v: the bytes of a string, 16 per
// item of an array (items are shared, not copied, by the filters and
// tags that make arrays). Other values cost nothing: numbers and booleans
// are small, and maps only come from the data.
func (o *Options) checkValue(what string, v any) (int, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case string:
		return o.checkBytes(what, len(v))
	case []byte:
		return o.checkBytes(what, len(v))
	case []any:
		return o.checkItems(what, len(v))
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		return o.checkItems(what, rv.Len())
	}
	return 0, nil
}

func (o *Options) checkBytes(what string, n int) (int, error) {
	if n > o.MaxValueBytes {
		return 0, fmt.Errorf("%w: %s: %d bytes, the limit is %d", ErrValueSize, what, n, o.MaxValueBytes)
	}
	return n, nil
}

func (o *Options) checkItems(what string, n int) (int, error) {
	if n > o.MaxValueItems {
		return 0, fmt.Errorf("%w: %s: %d items, the limit is %d", ErrValueSize, what, n, o.MaxValueItems)
	}
	return 16 * n, nil
}

// captureWriter bounds what one {% capture %} collects, and counts it
// against the variables' total while it collects (nested captures each
// hold a buffer). Like budget.Write it records a refusal in the budget
// rather than failing the write.
type captureWriter struct {
	w    io.Writer
	b    *budget
	name string
	n    int
}

func (c *captureWriter) Write(p []byte) (int, error) {
	b := c.b
	if b.err != nil {
		return len(p), nil
	}
	if _, err := b.opts.checkBytes("capture", c.n+len(p)); err != nil {
		b.err = fmt.Errorf("%w (variable %s)", err, c.name)
		return len(p), nil
	}
	if b.held+len(p) > b.opts.MaxVariableBytes {
		b.err = fmt.Errorf("%w: capture %s would hold %d bytes in variables, the limit is %d",
			ErrVariables, c.name, b.held+len(p), b.opts.MaxVariableBytes)
		return len(p), nil
	}
	b.held += len(p)
	c.n += len(p)
	if _, err := c.w.Write(p); err != nil {
		b.err = err
	}
	return len(p), nil
}

// release gives back the buffer's bytes; the captured value is then held
// by its variable.
func (c *captureWriter) release() { c.b.held -= c.n }
